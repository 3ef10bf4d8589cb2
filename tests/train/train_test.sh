#!/usr/bin/env bash
# boreas train end to end on the tiny model: the loss falls, checkpoints are atomic, a run
# killed mid-way and resumed gives the same losses bit for bit as an uninterrupted run, and a
# checkpoint of another config is refused with the differing keys named.
set -u
boreas=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
passes=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
pass() { passes=$((passes + 1)); }
losses() { grep '^losses:' "$1" | cut -d: -f2; }

# An uninterrupted run of 24 steps.
"$boreas" train --config tiny --steps 24 --threads 2 --checkpoint-dir "$work/a" --checkpoint-every 8 >"$work/a.out" 2>"$work/a.err" \
  && pass || fail "train: $(tail -3 "$work/a.err")"
ls "$work/a" | grep -q '^step-00000024$' && pass || fail "no final checkpoint: $(ls "$work/a")"
/usr/bin/python3 - "$work/a.out" <<'PY' && pass || fail "the loss did not fall: $(cat "$work/a.out")"
import sys
values = [float(v) for v in open(sys.argv[1]).read().split("losses:")[1].split()]
assert len(values) == 24 and values[-1] < 0.5 * values[0], values
PY

# Killed (SIGKILL) after its first checkpoint, then resumed: same losses as run a.
"$boreas" train --config tiny --steps 24 --threads 2 --checkpoint-dir "$work/b" --checkpoint-every 8 >"$work/b1.out" 2>&1 &
pid=$!
for _ in $(seq 1 1200); do
  [[ -d $work/b/step-00000008 ]] && break
  sleep 0.05
done
kill -9 "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
[[ -d $work/b/step-00000008 ]] && pass || fail "no checkpoint before the kill"
"$boreas" train --config tiny --steps 24 --threads 2 --checkpoint-dir "$work/b" --checkpoint-every 8 --resume >"$work/b2.out" 2>"$work/b2.err" \
  && pass || fail "resume: $(tail -3 "$work/b2.err")"
if [[ "$(losses "$work/a.out")" == "$(losses "$work/b2.out")" ]]; then pass; else
  fail "resumed losses differ: $(losses "$work/a.out") vs $(losses "$work/b2.out")"; fi
# A half-written checkpoint (a temporary folder) is never picked up.
mkdir -p "$work/b/.tmp-step-00000099-1" && touch "$work/b/.tmp-step-00000099-1/state.json"
"$boreas" train --config tiny --steps 24 --threads 2 --checkpoint-dir "$work/b" --resume >"$work/b3.out" 2>"$work/b3.err" \
  && grep -q "step 24" "$work/b3.err" && pass || fail "temporary checkpoint picked up: $(cat "$work/b3.err" | head -3)"

# Another config's checkpoint is refused, naming the keys.
"$boreas" train --config tiny --set model.num_channels=16 --steps 30 --checkpoint-dir "$work/a" --resume >"$work/c.out" 2>"$work/c.err"
rc=$?
if ((rc != 0 && rc < 126)) && grep -q "differing keys: model.num_channels" "$work/c.err"; then pass; else
  fail "config mismatch: rc=$rc $(cat "$work/c.err")"; fi
"$boreas" train --config tiny --data era5.zarr --steps 2 >"$work/d.out" 2>"$work/d.err"
rc=$?
((rc != 0 && rc < 126)) && grep -q "dataset store 'era5.zarr' does not exist" "$work/d.err" && pass || fail "unknown data: $(cat "$work/d.err")"

# From an anemoi dataset (written by anemoi-datasets create, one missing date): the loss falls,
# and a run killed after its first checkpoint and resumed reads the same batches, bit for bit.
store=$(dirname "$0")/../data/datasets/o16.zarr
"$boreas" train --config tiny --data "$store" --batch 2 --steps 12 --threads 2 --checkpoint-dir "$work/e" --checkpoint-every 4 >"$work/e.out" 2>"$work/e.err" \
  && grep -q "5 usable windows of 3 dates, 1 missing" "$work/e.err" && pass || fail "train --data: $(tail -3 "$work/e.err")"
/usr/bin/python3 - "$work/e.out" <<'PY' && pass || fail "the loss did not fall on the dataset: $(cat "$work/e.out")"
import sys
values = [float(v) for v in open(sys.argv[1]).read().split("losses:")[1].split()]
assert len(values) == 12 and values[-1] < 0.8 * values[0], values
PY
"$boreas" train --config tiny --data "$store" --batch 2 --steps 12 --threads 2 --checkpoint-dir "$work/f" --checkpoint-every 4 >"$work/f1.out" 2>&1 &
pid=$!
for _ in $(seq 1 1200); do
  [[ -d $work/f/step-00000004 ]] && break
  sleep 0.05
done
kill -9 "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
"$boreas" train --config tiny --data "$store" --batch 2 --steps 12 --threads 2 --checkpoint-dir "$work/f" --checkpoint-every 4 --resume >"$work/f2.out" 2>"$work/f2.err" \
  && pass || fail "resume with --data: $(tail -3 "$work/f2.err")"
if [[ "$(losses "$work/e.out")" == "$(losses "$work/f2.out")" ]]; then pass; else
  fail "resumed losses on the dataset differ: $(losses "$work/e.out") vs $(losses "$work/f2.out")"; fi
# data.timestep steps the windows in store dates (12 h on the 6-hourly store: dates p-2, p, p+2),
# and a time step that is not a multiple of the store's frequency is refused.
"$boreas" train --config tiny --set data.timestep=12h --data "$store" --steps 2 >"$work/t12.out" 2>"$work/t12.err" \
  && pass || fail "data.timestep 12h: $(tail -3 "$work/t12.err")"
"$boreas" train --config tiny --set data.timestep=5h --data "$store" --steps 2 >"$work/t5.out" 2>"$work/t5.err"
rc=$?
((rc != 0 && rc < 126)) && grep -q "time step (18000 s, data.timestep) is not a multiple of the store's frequency (21600 s)" "$work/t5.err" \
  && pass || fail "data.timestep 5h: rc=$rc $(cat "$work/t5.err")"
# Validation on held-out dates from 2024-01-02T06 (date 5): training windows end before it
# (anchors 1, 2), validation windows start there (anchors 6, 7, 8), in date order.
"$boreas" train --config tiny --data "$store" --batch 1 --steps 4 --threads 2 --validation-from 2024-01-02T06 --validate-every 2 \
  --checkpoint-dir "$work/v" --checkpoint-every 4 >"$work/v.out" 2>"$work/v.err" \
  && grep -q "^validation: 2:[0-9.e+-]* 4:[0-9.e+-]*$" "$work/v.out" && grep -q "(3 windows)" "$work/v.err" \
  && grep -q '"validation"' "$work/v/step-00000004/state.json" && pass || fail "validation: $(tail -3 "$work/v.err") $(cat "$work/v.out")"
# A store without statistics is refused naming the array.
"$boreas" train --config tiny --data "$(dirname "$0")/../data/datasets/codecs/blosc_lz4.zarr.zip" --steps 2 >"$work/g.out" 2>"$work/g.err"
rc=$?
((rc != 0 && rc < 126)) && grep -q "blosc_lz4.zarr.zip' has no array 'mean'" "$work/g.err" && pass || fail "another store: $(cat "$work/g.err")"

# A diverging run (learning rate 1e30) stops at the first non-finite loss, naming the step;
# --skip-nonfinite carries on instead.
"$boreas" train --config tiny --steps 6 --lr 1e30 --warmup 1 --clip 0 >"$work/n.out" 2>"$work/n.err"
rc=$?
((rc != 0 && rc < 126)) && grep -Eq "step [0-9]+: the (loss|gradient of '[^']+') is not finite" "$work/n.err" && pass \
  || fail "non-finite loss: rc=$rc $(tail -2 "$work/n.err")"
"$boreas" train --config tiny --steps 6 --lr 1e30 --warmup 1 --clip 0 --skip-nonfinite >"$work/s.out" 2>"$work/s.err" \
  && grep -q "step skipped" "$work/s.err" && pass || fail "--skip-nonfinite: $(tail -2 "$work/s.err")"

echo "train: $passes passed, $failures failed"
((failures == 0))

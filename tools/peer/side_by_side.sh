#!/usr/bin/env bash
# Boreas against anemoi-models on exactly the same model, graph, weights and input, on this CPU.
#
#   tools/peer/side_by_side.sh CONFIG [--repetitions N] [--warmup N] [--threads T] [--rounds R] [--out DIR]
#                                     [--seed S] [--batch B] [--min-time S] [--compile[=phases|whole]]
#                                     [--boreas PATH] [--peer-only] [--train [--no-activation-checkpointing]]
#
# 1. export:  boreas forward --config CONFIG --input synthetic --seed S --batch B
#                 --save-config/--save-graph/--save-weights/--save-input   (and Boreas' output, for verification)
# 2. rounds:  A B A B ... (R rounds, default 2), each a fresh process:
#                 A = boreas bench forward --config CONFIG --json boreas.roundK.json   (same seed, batch, threads,
#                     warm-up and repetitions; where bench has --input: the exported input/weights/graph and
#                     --verify against the export)
#                 B = tools/peer/run_anemoi.py on the exported files --json anemoi.roundK.json
#                     (--roof-from boreas.round1.json: same roof and FLOP/byte model; --verify against
#                     the exported Boreas output)
#             then each side's rounds are merged (tools/peer/merge_bench.py: samples concatenated) into
#             boreas.json and anemoi.json.
# 3. boreas compare anemoi.json boreas.json        (anemoi is the baseline, Boreas second)
#
# --compile applies to --train too: anemoi's training step with its forward compiled (backward by AOTAutograd).
# --train compares one training step instead (forward, loss, backward, AdamW; phases train, train/forward,
# train/loss, train/backward, train/optimizer): A = boreas bench train (same flags; plus --no-activation-checkpointing
# when given), B = run_anemoi.py --train (anemoi's gradient_checkpointing on encoder, processor chunks and decoder,
# or off with --no-activation-checkpointing: both sides checkpoint the same parts); --verify then checks anemoi's
# forward output of training step 1.  The files are the same names (boreas.json, anemoi.json hold the train phases).
#
# --peer-only skips every Boreas timing (export + anemoi rounds only).  Files go to --out DIR, else a new
# directory under ${TMPDIR:-/tmp}.  Environment: BOREAS (the binary, default build/cpu-release/boreas),
# BOREAS_BENCH_EXTRA (more arguments for boreas bench forward|train, word-split).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PY="$REPO/.venv-ref/bin/python"
BOREAS=${BOREAS:-$REPO/build/cpu-release/boreas}

usage() { sed -n '4,6p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
die() { echo "side_by_side.sh: error: $*" >&2; exit 2; }

[ $# -ge 1 ] || usage
case "$1" in -h|--help) usage ;; -*) die "the first argument is the config (tiny, small, o96, aifs-n320 or a YAML)" ;; esac
CONFIG=$1; shift
REPS=5 WARMUP=1 ROUNDS=2 OUT="" SEED=1 BATCH=1 MIN_TIME="" COMPILE="" PEER_ONLY=0 WHAT=forward AC=1
THREADS=${OMP_NUM_THREADS:-$(nproc)}
while [ $# -gt 0 ]; do
    case "$1" in
        --repetitions) REPS=$2; shift 2 ;;
        --warmup) WARMUP=$2; shift 2 ;;
        --threads) THREADS=$2; shift 2 ;;
        --rounds) ROUNDS=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --seed) SEED=$2; shift 2 ;;
        --batch) BATCH=$2; shift 2 ;;
        --min-time) MIN_TIME=$2; shift 2 ;;
        --compile) COMPILE=phases; shift ;;
        --compile=*) COMPILE=${1#--compile=}; shift ;;
        --boreas) BOREAS=$2; shift 2 ;;
        --peer-only) PEER_ONLY=1; shift ;;
        --train) WHAT=train; shift ;;
        --activation-checkpointing) AC=1; shift ;;
        --no-activation-checkpointing) AC=0; shift ;;
        -h|--help) usage ;;
        *) die "unknown option $1" ;;
    esac
done
for v in REPS WARMUP ROUNDS SEED BATCH THREADS; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number (got '${!v}')"
done
[ "$ROUNDS" -ge 1 ] && [ "$REPS" -ge 1 ] && [ "$THREADS" -ge 1 ] && [ "$BATCH" -ge 1 ] || die "rounds, repetitions, threads and batch must be >= 1"
if [ "$WHAT" != train ] && [ "$AC" -eq 0 ]; then
    die "--no-activation-checkpointing applies to --train only"
fi
[ "$ROUNDS" -ge 2 ] || echo "side_by_side.sh: warning: --rounds $ROUNDS: alternating needs at least 2 rounds to mean much" >&2

# ---- prerequisites
if [ ! -x "$PY" ] || ! "$PY" -c "import anemoi.models, torch, safetensors, yaml" 2>/dev/null; then
    cat >&2 <<EOF
side_by_side.sh: error: the reference environment $REPO/.venv-ref is missing or incomplete
(anemoi-models 0.18, torch 2.10; see tools/reference/README.md). Create it from the repository root:

    python3 -m venv .venv-ref
    .venv-ref/bin/pip install -r tools/reference/requirements.txt
EOF
    exit 2
fi
[ -x "$BOREAS" ] || die "no Boreas binary at $BOREAS (build it, or set BOREAS=... / --boreas PATH)"
if [ "$PEER_ONLY" -eq 0 ]; then
    "$BOREAS" bench --help >/dev/null 2>&1 || die "$BOREAS has no 'bench' subcommand (rebuild it, or use --peer-only)"
    "$BOREAS" compare --help >/dev/null 2>&1 || die "$BOREAS has no 'compare' subcommand (rebuild it, or use --peer-only)"
fi

# a busy machine ruins both sides' numbers (PyTorch's OpenMP threads suffer most: tiny went from 12 ms to 0.9 s
# per step with another 2-thread job running on 2 cores)
load=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo 0)
if awk -v l="$load" -v t="$THREADS" -v n="$(nproc)" 'BEGIN { exit !(l + t > n + 0.5) }'; then
    echo "side_by_side.sh: warning: load average $load with $THREADS thread(s) on $(nproc) CPU(s): timings will be noisy" >&2
fi

if [ -z "$OUT" ]; then
    OUT=$(mktemp -d "${TMPDIR:-/tmp}/boreas-side-by-side.XXXXXX")
else
    mkdir -p "$OUT"
fi
OUT=$(cd "$OUT" && pwd)
export OMP_NUM_THREADS=$THREADS
name=$(basename "$CONFIG" .yaml)
what_text="forward step"
[ "$WHAT" = forward ] || what_text="training step (activation checkpointing $([ "$AC" -eq 1 ] && echo on || echo off))"
echo "== side by side, $what_text: $CONFIG, $THREADS thread(s), batch $BATCH, seed $SEED, $ROUNDS round(s) of $REPS repetitions after $WARMUP warm-up(s) -> $OUT"

# ---- 1. export exactly what Boreas runs
"$BOREAS" forward --config "$CONFIG" --input synthetic --seed "$SEED" --batch "$BATCH" --threads "$THREADS" \
    -o "$OUT/boreas_output.safetensors" \
    --save-config "$OUT/config.yaml" --save-graph "$OUT/graph.safetensors" \
    --save-weights "$OUT/weights.safetensors" --save-input "$OUT/input.safetensors"

# ---- 2. rounds, alternating
bench_args=()
if [ "$PEER_ONLY" -eq 0 ]; then
    bench_help=$("$BOREAS" bench "$WHAT" --help 2>&1 || true)
    add_flag() {  # pass a flag only where `boreas bench` has it
        if grep -q -- "$1\b" <<<"$bench_help"; then bench_args+=("$1" "$2")
        else echo "side_by_side.sh: warning: boreas bench $WHAT has no $1; not passed (anemoi side uses $2)" >&2; fi
    }
    add_flag --threads "$THREADS"
    add_flag --repetitions "$REPS"
    add_flag --warmup "$WARMUP"
    add_flag --seed "$SEED"
    add_flag --batch "$BATCH"
    [ -z "$MIN_TIME" ] || add_flag --min-time "$MIN_TIME"
    if grep -q -- "--input\b" <<<"$bench_help"; then
        # bench can run the exported files: then both sides run exactly the same input, and Boreas verifies too
        bench_args+=(--input "$OUT/input.safetensors")
        grep -q -- "--weights\b" <<<"$bench_help" && bench_args+=(--weights "$OUT/weights.safetensors")
        grep -q -- "--graph\b" <<<"$bench_help" && bench_args+=(--graph "$OUT/graph.safetensors")
        # bench train verifies nothing (no forward output); anemoi's side checks its step-1 forward output instead
        [ "$WHAT" = train ] || add_flag --verify "$OUT/boreas_output.safetensors"
    else
        echo "side_by_side.sh: note: boreas bench $WHAT has no --input: it runs its own synthetic input (same seeded" \
             "weights, graph and shapes as the export, different input values), so it is not --verify'd against the export" >&2
    fi
    if [ "$WHAT" = train ]; then
        grep -q -- "--no-activation-checkpointing\b" <<<"$bench_help" ||
            die "$BOREAS bench has no --activation-checkpointing switch (rebuild it)"
        if [ "$AC" -eq 1 ]; then bench_args+=(--activation-checkpointing); else bench_args+=(--no-activation-checkpointing); fi
    fi
    # shellcheck disable=SC2206
    [ -z "${BOREAS_BENCH_EXTRA:-}" ] || bench_args+=($BOREAS_BENCH_EXTRA)
fi
peer_args=(--config "$OUT/config.yaml" --graph "$OUT/graph.safetensors" --weights "$OUT/weights.safetensors"
           --input "$OUT/input.safetensors" --config-name "$name" --seed "$SEED" --threads "$THREADS"
           --warmup "$WARMUP" --repetitions "$REPS" --verify "$OUT/boreas_output.safetensors")
[ -z "$MIN_TIME" ] || peer_args+=(--min-time "$MIN_TIME")
[ -z "$COMPILE" ] || peer_args+=(--compile "$COMPILE")
if [ "$WHAT" = train ]; then
    peer_args+=(--train)
    if [ "$AC" -eq 1 ]; then peer_args+=(--activation-checkpointing); else peer_args+=(--no-activation-checkpointing); fi
fi

verify_failed=0
a_rounds=() b_rounds=()
for ((r = 1; r <= ROUNDS; r++)); do
    if [ "$PEER_ONLY" -eq 0 ]; then
        echo "-- round $r/$ROUNDS: Boreas"
        "$BOREAS" bench "$WHAT" --config "$CONFIG" --json "$OUT/boreas.round$r.json" "${bench_args[@]}"
        a_rounds+=("$OUT/boreas.round$r.json")
        # Boreas' step-1 loss, where its bench train records one (params.first_step_loss of the result "train"):
        # anemoi's run is then failed unless its step-1 loss agrees (run_anemoi.py --loss-rtol, 1e-5)
        if [ "$WHAT" = train ] && [ "$r" -eq 1 ]; then
            ref_loss=$("$PY" -c 'import json, sys
d = json.load(open(sys.argv[1]))
v = [r["params"].get("first_step_loss") for r in d["results"] if r["name"] == "train"]
print(repr(float(v[0])) if v and v[0] is not None else "")' "$OUT/boreas.round1.json")
            if [ -n "$ref_loss" ]; then peer_args+=(--reference-loss "$ref_loss")
            else echo "side_by_side.sh: note: boreas bench train records no step-1 loss (params.first_step_loss);" \
                      "the losses are not compared (anemoi checks its loss against Boreas' formula on Boreas' output)" >&2; fi
        fi
    fi
    echo "-- round $r/$ROUNDS: anemoi-models"
    extra=()
    [ "$PEER_ONLY" -eq 1 ] || extra+=(--roof-from "$OUT/boreas.round1.json")
    [ "$r" -gt 1 ] || extra+=(--output-tensor "$OUT/anemoi_output.safetensors")
    rc=0
    "$PY" "$REPO/tools/peer/run_anemoi.py" "${peer_args[@]}" "${extra[@]}" --json "$OUT/anemoi.round$r.json" || rc=$?
    case $rc in
        0) ;;
        1) verify_failed=1 ;;  # timed and written, but anemoi's output (or --train: step-1 loss) differs from Boreas'
        *) die "run_anemoi.py failed (exit $rc)" ;;
    esac
    b_rounds+=("$OUT/anemoi.round$r.json")
done

"$PY" "$REPO/tools/peer/merge_bench.py" -o "$OUT/anemoi.json" "${b_rounds[@]}"
if [ "$PEER_ONLY" -eq 0 ]; then
    "$PY" "$REPO/tools/peer/merge_bench.py" -o "$OUT/boreas.json" "${a_rounds[@]}"
fi

# ---- 3. compare (anemoi = baseline)
echo
if [ "$PEER_ONLY" -eq 0 ]; then
    "$BOREAS" compare "$OUT/anemoi.json" "$OUT/boreas.json"
else
    "$PY" "$REPO/tools/peer/merge_bench.py" -o "$OUT/anemoi.json" --print "$OUT/anemoi.json"
    echo "(--peer-only: no Boreas timings, nothing to compare)"
fi
echo
echo "files: $OUT/{anemoi,boreas}.json (merged), *.roundK.json, config.yaml graph.safetensors weights.safetensors input.safetensors"
if [ "$verify_failed" -eq 1 ]; then
    echo "side_by_side.sh: WARNING: anemoi's output$([ "$WHAT" = forward ] || echo " or step-1 loss") differs from Boreas' beyond the tolerance (see verification in anemoi.json)" >&2
    exit 1
fi

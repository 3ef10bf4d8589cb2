#!/usr/bin/env bash
# Boreas' data loader against anemoi-training's on the same anemoi-datasets store, on this machine.
#
#   tools/peer/side_by_side_data.sh STORE [--threads "1 2"] [--batches N] [--batch B] [--rollout R]
#                                         [--chunks N] [--rounds R] [--out DIR] [--boreas PATH]
#
# Rounds A B A B ... (R rounds, default 3), each a fresh process, so that a machine busy for a while slows
# both sides alike:
#     A = boreas bench data --dataset STORE --data-threads T... --json boreas.roundK.json
#     B = tools/peer/bench_data_anemoi.py --dataset STORE --threads T... --json anemoi.roundK.json
#         (anemoi-training 0.16's dataset and torch DataLoader with T worker processes; needs .venv-ref and
#         the unpacked anemoi-training wheel, see tools/peer/README.md)
# then each side's rounds are merged (merge_bench.py: samples and seconds summed per thread count) into
# boreas.json and anemoi.json, and `boreas compare anemoi.json boreas.json` prints the ratios (anemoi is the
# baseline). The page cache is warmed by one untimed read of the store before the first round.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PY="$REPO/.venv-ref/bin/python"
BOREAS=${BOREAS:-$REPO/build/cpu-release/boreas}

usage() { sed -n '4,5p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
die() { echo "side_by_side_data.sh: error: $*" >&2; exit 2; }

[ $# -ge 1 ] || usage
case "$1" in -h|--help) usage ;; -*) die "the first argument is the store" ;; esac
store=$1
shift
threads="1 2" batches=8 batch=1 rollout=1 chunks=8 rounds=3 out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) threads=$2; shift 2 ;;
    --batches) batches=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --rollout) rollout=$2; shift 2 ;;
    --chunks) chunks=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --boreas) BOREAS=$2; shift 2 ;;
    -h|--help) usage ;;
    *) die "unknown option '$1'" ;;
  esac
done
[ -e "$store" ] || die "no store '$store'"
[ -x "$BOREAS" ] || die "no Boreas binary at '$BOREAS' (build it, or pass --boreas)"
[ -x "$PY" ] || die "no reference environment at $PY (tools/peer/README.md)"
[ -n "$out" ] || out=$(mktemp -d "${TMPDIR:-/tmp}/sbs-data.XXXXXX")
mkdir -p "$out"

common=(--batches "$batches" --batch "$batch" --rollout "$rollout" --chunks "$chunks")
echo "side_by_side_data.sh: warming the page cache with $store" >&2
find "$store" -type f -exec cat {} + >/dev/null
for k in $(seq 1 "$rounds"); do
  echo "side_by_side_data.sh: round $k/$rounds: Boreas" >&2
  # shellcheck disable=SC2086
  "$BOREAS" bench data --dataset "$store" --data-threads $threads "${common[@]}" --json "$out/boreas.round$k.json" >/dev/null
  echo "side_by_side_data.sh: round $k/$rounds: anemoi" >&2
  # shellcheck disable=SC2086
  CUDA_VISIBLE_DEVICES="" "$PY" "$REPO/tools/peer/bench_data_anemoi.py" --dataset "$store" --threads $threads \
    "${common[@]}" --json "$out/anemoi.round$k.json"
done
"$PY" "$REPO/tools/peer/merge_bench.py" -o "$out/boreas.json" "$out"/boreas.round*.json
"$PY" "$REPO/tools/peer/merge_bench.py" -o "$out/anemoi.json" "$out"/anemoi.round*.json
echo "side_by_side_data.sh: files in $out" >&2
"$BOREAS" compare "$out/anemoi.json" "$out/boreas.json"

#!/usr/bin/env bash
# The benchmark harness end to end: a tiny run writes a document that validates against
# docs/bench-schema.json, compares SAME with itself, and bad input fails cleanly.
set -u
boreas=$1
schema=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
passes=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
pass() { passes=$((passes + 1)); }

"$boreas" bench all --config tiny --warmup 1 --repetitions 3 --json "$work/r.json" --csv "$work/r.csv" >"$work/table" 2>"$work/err" \
  && pass || fail "bench all: $(cat "$work/err")"
/usr/bin/python3 - "$work/r.json" "$schema" <<'PY' && pass || fail "r.json does not validate against the schema"
import json, sys, jsonschema
document = json.load(open(sys.argv[1]))
jsonschema.validate(document, json.load(open(sys.argv[2])))
results = {r["name"]: r for r in document["results"]}
for name in ["forward", "forward/encoder", "forward/processor", "forward/decoder", "train",
             "train/forward", "train/backward", "train/optimizer"]:
    assert name in results, name
    r = results[name]
    assert len(r["samples"]) == r["stats"]["n"] == 3, r["stats"]
    assert r["flops"] > 0 and r["fraction_of_roof"] > 0, name
assert document["roof"]["fp32_fma_gflops"]["1"] > 0 and document["roof"]["sgemm_gflops"] > 0
assert document["roof"]["triad_gbs"]["all"] > 0
assert results["forward"]["verification"]["status"] in ("checksum", "passed")
PY
grep -q "^forward/processor" "$work/table" && grep -q "forecast steps/s" "$work/table" && grep -q "samples/s" "$work/table" && pass || fail "table: $(cat "$work/table")"
head -1 "$work/r.csv" | grep -q "^name,phase,median_s" && pass || fail "csv header"

"$boreas" compare "$work/r.json" "$work/r.json" >"$work/cmp" 2>&1 && pass || fail "compare: $(cat "$work/cmp")"
if grep -E "FASTER|SLOWER|NOISY" "$work/cmp" >/dev/null || ! grep -q "SAME" "$work/cmp"; then fail "self-compare not SAME: $(cat "$work/cmp")"; else pass; fi

# expect_error REGEX ARGS...: non-zero exit (not a signal) and the message on stderr.
expect_error() {
  local regex=$1
  shift
  "$boreas" "$@" >"$work/out" 2>"$work/err"
  local rc=$?
  if ((rc == 0 || rc > 125)) || ! grep -Eq "$regex" "$work/err"; then
    fail "boreas $* -> rc=$rc: $(head -c 300 "$work/err")"
  else
    pass
  fi
}
expect_error "unknown benchmark 'backward'; expected forward, train or all" bench backward --config tiny
expect_error "unknown config 'huge'" bench forward --config huge
expect_error "folder '$work/missing' is missing or not writable" bench forward --config tiny --json "$work/missing/r.json"
[[ ! -e $work/missing ]] && pass || fail "a failed bench created output"
printf '{"schema": "boreas-bench", "schema_version": "1.0.0", "results": [' >"$work/truncated.json"
expect_error "truncated.json' is not valid JSON" compare "$work/r.json" "$work/truncated.json"
printf '{"hello": "world"}' >"$work/foreign.json"
expect_error "foreign.json' is not a boreas-bench document" compare "$work/r.json" "$work/foreign.json"
/usr/bin/python3 -c "
import json,sys; d=json.load(open('$work/r.json')); d['context']['run']['resolved_config']='other'; json.dump(d, open('$work/other.json','w'))"
expect_error "ran different configs" compare "$work/r.json" "$work/other.json"
"$boreas" compare --force "$work/r.json" "$work/other.json" >/dev/null 2>&1 && pass || fail "compare --force"
expect_error "cannot open" compare "$work/r.json" "$work/none.json"
# Runs on different kernel paths are not compared without --force: the same run on the generic
# path (BOREAS_ISA), against the first run on the path dispatch picked for this CPU.
BOREAS_ISA=generic "$boreas" bench forward --config tiny --warmup 0 --repetitions 2 \
  --json "$work/generic.json" >/dev/null 2>"$work/err" && pass || fail "bench on the generic path: $(cat "$work/err")"
active=$(/usr/bin/python3 - "$work/r.json" "$work/generic.json" <<'PY'
import json, sys
first, generic = (json.load(open(f))["context"]["build"]["kernel_path"] for f in sys.argv[1:])
assert generic["name"] == "generic" and generic["selected_by"] == "BOREAS_ISA", generic
assert first["name"] in first["runnable"] and first["runnable"][-1] == first["name"], first
print(first["name"])
PY
) && pass || fail "kernel paths in the documents"
if [[ $active == generic ]]; then
  echo "note: this CPU runs the generic path only; the refusal across paths is not exercised" >&2
else
  expect_error "kernels; pass --force to compare different kernel paths" compare "$work/r.json" "$work/generic.json"
  "$boreas" compare --force "$work/r.json" "$work/generic.json" >/dev/null 2>&1 && pass || fail "compare --force across kernel paths"
fi
# bf16 forward: validates, says its precision and the roof it was held against.
"$boreas" bench forward --config tiny --warmup 0 --repetitions 2 --precision bf16 \
  --json "$work/bf16.json" >/dev/null 2>"$work/err" && pass || fail "bench forward --precision bf16: $(cat "$work/err")"
/usr/bin/python3 - "$work/bf16.json" "$schema" <<'PY' && pass || fail "bf16 document"
import json, sys, jsonschema
document = json.load(open(sys.argv[1]))
jsonschema.validate(document, json.load(open(sys.argv[2])))
path = document["context"]["build"]["kernel_path"]
native = path["bf16"] == "avx512_bf16" and document["roof"].get("bf16_dot_gflops") is not None
for r in document["results"]:
    assert r["params"]["precision"] == "bf16", r["name"]
    assert r["compute_roof"]["name"] == ("bf16_dot" if native else "sgemm"), r["compute_roof"]
PY
expect_error "precision bf16 is for inference: training runs in fp32" bench all --config tiny --precision bf16
expect_error "precision: fp16 not in" bench forward --config tiny --precision fp16
BOREAS_ISA=sse9 "$boreas" info >/dev/null 2>"$work/err"
(($? == 1)) && grep -q "BOREAS_ISA=sse9: not a kernel path of this binary" "$work/err" && pass || fail "BOREAS_ISA=sse9: $(cat "$work/err")"

echo "bench: $passes passed, $failures failed"
((failures == 0))

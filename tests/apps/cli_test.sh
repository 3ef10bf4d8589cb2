#!/usr/bin/env bash
# Command-line behaviour as users and scripts see it: bad input gets one clear line on stderr and a
# non-zero exit (never a crash or a signal), requested output goes to stdout only.
set -u
boreas=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
passes=0

# expect_error REGEX -- ARGS...: exit code 1..125, stderr matches REGEX, nothing on stdout.
expect_error() {
  local regex=$1
  shift 2
  "$boreas" "$@" >"$work/out" 2>"$work/err"
  local rc=$?
  if ((rc == 0 || rc > 125)) || ! grep -Eq "$regex" "$work/err" || [[ -s $work/out ]]; then
    echo "FAIL: boreas $* -> rc=$rc, stderr: $(head -c 400 "$work/err")" >&2
    failures=$((failures + 1))
  else
    passes=$((passes + 1))
  fi
}

# expect_ok ARGS...: exit 0.
expect_ok() {
  if ! "$boreas" "$@" >"$work/out" 2>"$work/err"; then
    echo "FAIL: boreas $* -> $(head -c 400 "$work/err")" >&2
    failures=$((failures + 1))
  else
    passes=$((passes + 1))
  fi
}

expect_ok info
OMP_NUM_THREADS=2 expect_ok info --json
grep -q '"git_commit"' "$work/out" && grep -q '"cpu_model"' "$work/out" && grep -q '"OMP_NUM_THREADS"' "$work/out" ||
  { echo "FAIL: info --json lacks build/system/environment context" >&2; failures=$((failures + 1)); }

expect_ok graph build --data-grid O16 --hidden-grid O4 -o "$work/g.safetensors"
[[ ! -s $work/out ]] || { echo "FAIL: graph build wrote to stdout without --json" >&2; failures=$((failures + 1)); }
expect_ok graph info "$work/g.safetensors" --json
grep -q '"hidden_to_data": 4800' "$work/out" ||
  { echo "FAIL: graph info --json: $(cat "$work/out")" >&2; failures=$((failures + 1)); }
expect_ok graph info "$work/g.safetensors"

expect_error "unknown grid 'Q96'" -- graph build --data-grid Q96 --hidden-grid O4 -o "$work/x"
expect_error "grid O0: N must be between 1" -- graph build --data-grid O16 --hidden-grid O0 -o "$work/x"
expect_error "N must be between 1" -- graph build --data-grid O-4 --hidden-grid O4 -o "$work/x"
expect_error "cutoff factor must be > 0, found 0" -- graph build --data-grid O16 --hidden-grid O4 --cutoff-factor 0 -o "$work/x"
expect_error "cutoff factor must be > 0, found -0.5" -- graph build --data-grid O16 --hidden-grid O4 --cutoff-factor -0.5 -o "$work/x"
expect_error "k = 300 is larger than the hidden grid O4 \(208 nodes\)" -- graph build --data-grid O16 --hidden-grid O4 -k 300 -o "$work/x"
expect_error "unknown graph convention" -- graph build --data-grid O16 --hidden-grid O4 --convention aifs -o "$work/x"
expect_error "does not exist" -- graph build --data-grid O16 --hidden-grid O4 -o "$work/no/such/dir/g.safetensors"
[[ ! -e $work/x ]] || { echo "FAIL: a failed build left $work/x" >&2; failures=$((failures + 1)); }

head -c 1000 "$work/g.safetensors" >"$work/truncated.safetensors"
expect_error "truncated" -- graph info "$work/truncated.safetensors"
printf 'not a graph at all' >"$work/garbage.safetensors"
expect_error "garbage.safetensors" -- graph info "$work/garbage.safetensors"
expect_error "cannot open" -- graph info "$work/missing.safetensors"
# A graph file from a newer Boreas: valid safetensors, format_version 99.
header='{"__metadata__":{"boreas":"{\"format\":\"boreas-graph\",\"format_version\":99,\"nodes\":{},\"edges\":{}}"}}'
printf "\\x$(printf %02x ${#header})\\x00\\x00\\x00\\x00\\x00\\x00\\x00%s" "$header" >"$work/future.safetensors"
expect_error "graph format version 99, this Boreas reads versions 1 to 1" -- graph info "$work/future.safetensors"
expect_error "required|Expected" -- graph build --data-grid O16

# forward: one step of the tiny model; bad configs, keys and files are refused by name.
expect_ok forward --config tiny --input synthetic --batch 2 -o "$work/out.safetensors"
[[ -s $work/out.safetensors ]] || { echo "FAIL: forward wrote no output" >&2; failures=$((failures + 1)); }
expect_error "unknown config 'nope'" -- forward --config nope --input synthetic -o "$work/y"
expect_error "unknown config key 'model.procesor'" -- forward --config tiny --set model.procesor.num_layers=3 --input synthetic -o "$work/y"
expect_error "cannot open '$work/missing.safetensors'" -- forward --config tiny --input "$work/missing.safetensors" -o "$work/y"
expect_error "has no tensor 'input'" -- forward --config tiny --input "$work/g.safetensors" -o "$work/y"
expect_error "lack [0-9]+ tensor\\(s\\) the model needs" -- forward --config tiny --weights "$work/out.safetensors" --input synthetic -o "$work/y"
[[ ! -e $work/y ]] || { echo "FAIL: a failed forward left $work/y" >&2; failures=$((failures + 1)); }

# checkpoint: anemoi inference checkpoints read natively; bad ones refused with one line.
ckpt=$(dirname "$0")/../data/checkpoint
schema=$(dirname "$0")/../../docs/checkpoint-info-schema.json
expect_ok checkpoint info "$ckpt/transformer.ckpt"
expect_ok checkpoint info "$ckpt/graphtransformer.ckpt" --json
/usr/bin/python3 - "$work/out" "$schema" <<'PY' || { echo "FAIL: checkpoint info --json does not validate" >&2; failures=$((failures + 1)); }
import json, sys, jsonschema
document = json.load(open(sys.argv[1]))
jsonschema.validate(document, json.load(open(sys.argv[2])))
assert document["boreas"]["processor"] == "graph_transformer" and document["parameters"] == 76962, document
PY
expect_ok forward --checkpoint "$ckpt/transformer.ckpt" --input "$ckpt/transformer.io.safetensors" -o "$work/ck.safetensors"
# bf16: the same forward in bf16 is near the fp32 one, not equal to it, and says its precision.
expect_ok forward --checkpoint "$ckpt/transformer.ckpt" --input "$ckpt/transformer.io.safetensors" --precision bf16 -o "$work/ck16.safetensors"
/usr/bin/python3 - "$work/ck.safetensors" "$work/ck16.safetensors" <<'PY' || { echo "FAIL: bf16 forward output" >&2; failures=$((failures + 1)); }
import json, struct, sys, array
def read(path):
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    begin, end = header["output"]["data_offsets"]
    values = array.array("f", data[8 + n + begin:8 + n + end])
    return json.loads(header["__metadata__"]["boreas"]), values
meta32, fp32 = read(sys.argv[1])
meta16, bf16 = read(sys.argv[2])
assert meta16["precision"] == "bf16" and meta32["precision"] == "fp32", (meta16, meta32)
num = sum((a - b) ** 2 for a, b in zip(bf16, fp32)) ** 0.5
den = sum(b * b for b in fp32) ** 0.5
assert 1e-5 < num / den < 5e-2, num / den
PY
expect_error "precision: fp16 not in" -- forward --config tiny --input synthetic --precision fp16 -o "$work/y"
# --device: names that are not devices, and a device this build or machine lacks, are one line
# each, and nothing is written.
expect_error "device: unknown device 'gpu' \(expected cpu, cuda or cuda:N\)" -- forward --config tiny --input synthetic --device gpu -o "$work/y"
[[ ! -e $work/y ]] || { echo "FAIL: --device gpu wrote $work/y" >&2; failures=$((failures + 1)); }
if ! "$boreas" info --json | grep -q '"compute_capability"'; then  # no GPU seen here
  expect_error "(this build of Boreas has no cuda backend \(configure with the cuda preset|device cuda:0: no usable GPU)" -- forward --config tiny --input synthetic --device cuda -o "$work/y"
  expect_error "(this build of Boreas has no cuda backend|device cuda:1: no usable GPU)" -- roof --device cuda:1
fi
expect_ok bench forward --config tiny --device cpu --warmup 0 --repetitions 1 --json "$work/bench-cpu.json"
grep -q '"device": "cpu"' "$work/bench-cpu.json" ||
  { echo "FAIL: bench JSON lacks context.device" >&2; failures=$((failures + 1)); }
rm -f /tmp/boreas-pickle-was-executed
expect_error "evil.ckpt: the pickle holds a dict, not an anemoi inference checkpoint" -- checkpoint info "$ckpt/evil.ckpt"
[[ ! -e /tmp/boreas-pickle-was-executed ]] || { echo "FAIL: evil.ckpt's os.system ran" >&2; failures=$((failures + 1)); }
expect_error "state_dict.ckpt: the pickle holds a dict" -- forward --checkpoint "$ckpt/state_dict.ckpt" --input synthetic -o "$work/y"
head -c 300000 "$ckpt/transformer.ckpt" >"$work/truncated.ckpt"
expect_error "truncated.ckpt: cannot open as a zip archive" -- checkpoint info "$work/truncated.ckpt"
printf 'PK\003\004 not really a zip' >"$work/garbage.ckpt"
expect_error "garbage.ckpt: cannot open as a zip archive" -- checkpoint info "$work/garbage.ckpt"
# Damaged metadata: each variant of the real checkpoint is refused naming what is wrong.
/usr/bin/python3 - "$ckpt/transformer.ckpt" "$work" <<'PY'
import json, sys, zipfile
source, work = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(source) as z:  # the largest storage record: a weight
    largest = max((i for i in z.infolist() if "/data/" in i.filename), key=lambda i: i.file_size).filename
def variant(name, edit=None, drop=None):
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(f"{work}/{name}.ckpt", "w", zipfile.ZIP_STORED) as zout:
        for item in zin.infolist():
            if drop and item.filename.endswith(drop if drop != "LARGEST" else largest):
                continue
            data = zin.read(item.filename)
            if name == "cut-pickle" and item.filename.endswith("data.pkl"):
                data = data[: len(data) // 2]
            if edit and item.filename.endswith("anemoi.json"):
                metadata = json.loads(data)
                edit(metadata)
                data = json.dumps(metadata).encode()
            zout.writestr(item, data)
variant("no-metadata", drop="anemoi.json")
variant("null-steps", edit=lambda m: m["config"]["task"].__setitem__("multistep_output", None))
variant("two-steps", edit=lambda m: m["config"]["task"].__setitem__("multistep_output", 2))
variant("no-heads", edit=lambda m: m["config"]["model"]["processor"].pop("num_heads"))
variant("qk-norm", edit=lambda m: m["config"]["model"]["processor"].__setitem__("qk_norm", True))
variant("reordered", edit=lambda m: m["data_indices"]["data"]["data"]["input"].__setitem__("full", [1, 0, 2, 3, 4, 5]))
variant("no-storage", drop="LARGEST")
variant("cut-pickle")
PY
expect_error "no-metadata.ckpt: no inference-transformer/anemoi-metadata/anemoi.json" -- checkpoint info "$work/no-metadata.ckpt"
expect_error "null-steps.ckpt: anemoi.json holds an unexpected value" -- checkpoint info "$work/null-steps.ckpt"
expect_error "predicts 2 output steps per forward" -- checkpoint info "$work/two-steps.ckpt"
expect_error "'model.processor.num_heads' is missing" -- checkpoint info "$work/no-heads.ckpt"
expect_error "'model.processor.qk_norm' is true" -- forward --checkpoint "$work/qk-norm.ckpt" --input synthetic -o "$work/y"
expect_error "data_indices.data.input.full is \[1, ?0, ?2, ?3, ?4, ?5\]" -- checkpoint info "$work/reordered.ckpt"
expect_error "no-storage.ckpt: tensor '.*': storage member 'inference-transformer/data/[0-9]+' is missing" -- forward --checkpoint "$work/no-storage.ckpt" --input synthetic -o "$work/y"
expect_error "cut-pickle.ckpt: inference-transformer/data.pkl: corrupt pickle at byte [0-9]+" -- checkpoint info "$work/cut-pickle.ckpt"
[[ ! -e $work/y ]] || { echo "FAIL: a failed forward left $work/y" >&2; failures=$((failures + 1)); }
expect_ok bench forward --checkpoint "$ckpt/graphtransformer.ckpt" --input "$ckpt/transformer.io.safetensors" --warmup 0 --repetitions 1
expect_error "excludes" -- forward --checkpoint "$ckpt/transformer.ckpt" --config tiny --input synthetic -o "$work/y"
# The other grid: the tiny model's O16 input does not fit a checkpoint whose data grid differs.
expect_ok forward --config tiny --set graph.data_grid=O8 --input synthetic --save-input "$work/o8.safetensors" -o "$work/o8out.safetensors"
expect_error "o8.safetensors' has 544 grid points, but checkpoint .*transformer.ckpt' runs on a data grid of 1600" -- forward --checkpoint "$ckpt/transformer.ckpt" --input "$work/o8.safetensors" -o "$work/y"
[[ ! -e $work/y ]] || { echo "FAIL: a failed forward left $work/y" >&2; failures=$((failures + 1)); }
# forecast: a rollout from a safetensors state; bad input and outputs refused before compute.
/usr/bin/python3 - "$ckpt/transformer.io.safetensors" "$work" <<'PY' || { echo "FAIL: making forecast inputs" >&2; failures=$((failures + 1)); }
import json, struct, sys
src, work = sys.argv[1], sys.argv[2]
raw = open(src, "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8:8 + n])
info = header["input"]
a, b = info["data_offsets"]
data = raw[8 + n + a:8 + n + b]
values = struct.unpack("<%df" % (len(data) // 4), data)  # [1, 2, 1600, 6]
names = ["z_500", "t_850", "2t", "sp", "lsm"]
def write(path, names, date="2024-06-01T06:00:00"):
    tensors, blobs, offset = {}, [], 0
    for name in names:
        col = names_all.index(name)
        field = [values[(t * 1600 + p) * 6 + col] for t in range(2) for p in range(1600)]
        blob = struct.pack("<%df" % len(field), *field)
        tensors[name] = {"dtype": "F32", "shape": [2, 1600], "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    tensors["__metadata__"] = {"date": date}
    head = json.dumps(tensors).encode()
    open(path, "wb").write(struct.pack("<Q", len(head)) + head + b"".join(blobs))
names_all = ["z_500", "t_850", "2t", "sp", "lsm", "cos_latitude"]
write(work + "/init.safetensors", names)
write(work + "/no-t850.safetensors", [n for n in names if n != "t_850"])
values = list(values)
values[(1 * 1600 + 17) * 6 + 4] = float("nan")  # lsm at point 17: the model's outputs turn NaN
write(work + "/nan-lsm.safetensors", names)
PY
expect_ok forecast --checkpoint "$ckpt/transformer.ckpt" --input "$work/init.safetensors" --lead-time 12h -o "$work/fc.nc" --json "$work/fc.json"
expect_ok forecast --checkpoint "$ckpt/transformer.ckpt" --input "$work/init.safetensors" --lead-time 12h --precision bf16 -o "$work/fc16.nc" --json "$work/fc16.json"
grep -q '"precision": "bf16"' "$work/fc16.json" || { echo "FAIL: bf16 forecast JSON lacks its precision" >&2; failures=$((failures + 1)); }
[[ -s $work/fc.nc && -s $work/fc.json ]] && grep -q '"schema": "boreas-forecast/1"' "$work/fc.json" ||
  { echo "FAIL: forecast wrote no NetCDF or JSON" >&2; failures=$((failures + 1)); }
expect_ok forecast --checkpoint "$ckpt/transformer.ckpt" --input "$work/init.safetensors" --lead-time 1d -o "$work/steps"
[[ -s $work/steps/step_024h.safetensors ]] || { echo "FAIL: forecast wrote no step_024h" >&2; failures=$((failures + 1)); }
expect_error "no-t850.safetensors: missing field\(s\) t_850" -- forecast --checkpoint "$ckpt/transformer.ckpt" --input "$work/no-t850.safetensors" --lead-time 6h -o "$work/x.nc"
expect_error "folder '/nonexistent' does not exist" -- forecast --checkpoint "$ckpt/transformer.ckpt" --input "$work/init.safetensors" --lead-time 6h -o /nonexistent/x.nc
expect_error "lead-time 'ten days' is not a positive number" -- forecast --checkpoint "$ckpt/transformer.ckpt" --input "$work/init.safetensors" --lead-time "ten days" -o "$work/x.nc"
expect_error "'2024-13-01' is not a valid date" -- forecast --checkpoint "$ckpt/transformer.ckpt" --input "$work/init.safetensors" --date 2024-13-01 -o "$work/x.nc"
[[ ! -e $work/x.nc ]] || { echo "FAIL: a failed forecast left $work/x.nc" >&2; failures=$((failures + 1)); }
# GRIB initial conditions: a forecast to GRIB; a truncated file is one line (ecCodes' own log kept off stderr).
grib=$(dirname "$0")/../data/forecast/o16_init.grib2
expect_ok forecast --checkpoint "$ckpt/transformer.ckpt" --input "$grib" --lead-time 12h -o "$work/fc.grib2"
[[ -s $work/fc.grib2 ]] || { echo "FAIL: forecast wrote no GRIB" >&2; failures=$((failures + 1)); }
head -c 3000 "$grib" >"$work/cut.grib2"
expect_error "cut.grib2': message 1 at byte 0 claims 6651 bytes: truncated or corrupt" -- forecast --checkpoint "$ckpt/transformer.ckpt" --input "$work/cut.grib2" -o "$work/x.nc"
[[ $(wc -l <"$work/err") -eq 1 ]] || { echo "FAIL: a bad GRIB gave more than one line: $(cat "$work/err")" >&2; failures=$((failures + 1)); }
# Initial conditions from an anemoi dataset at a date; a missing date and a date outside the store are named.
store=$(dirname "$0")/../data/datasets/o16.zarr
expect_ok forecast --checkpoint "$ckpt/transformer.ckpt" --input "$store@2024-01-01T06" --lead-time 12h -o "$work/fc-store.nc"
[[ -s $work/fc-store.nc ]] || { echo "FAIL: forecast from a dataset wrote no NetCDF" >&2; failures=$((failures + 1)); }
expect_error "o16.zarr': date 2024-01-02T00:00:00 \(index 4\) is a missing date" -- forecast --checkpoint "$ckpt/transformer.ckpt" --input "$store@2024-01-02T06" -o "$work/x.nc"
expect_error "o16.zarr' has no date 2030-01-01T00:00:00 \(its dates run from 2024-01-01T00:00:00 to 2024-01-03T06:00:00" -- forecast --checkpoint "$ckpt/transformer.ckpt" --input "$store@2030-01-01T06" -o "$work/x.nc"
expect_ok forward --checkpoint "$ckpt/transformer.ckpt" --input "$store@2024-01-01T06" -o "$work/fwd-store.safetensors"
[[ -s $work/fwd-store.safetensors ]] || { echo "FAIL: forward from a dataset wrote nothing" >&2; failures=$((failures + 1)); }
expect_error "input dataset '.*o16.zarr' needs a date" -- forward --checkpoint "$ckpt/transformer.ckpt" --input "$store" -o "$work/x.safetensors"
# bench data: stages timed on the dataset, its own JSON schema; no dataset: one line.
expect_ok bench data --dataset "$store" --data-threads 1 2 --batches 2 --chunks 2 --json "$work/bd.json"
grep -q '"schema": "boreas-bench-data/1"' "$work/bd.json" && grep -q '"samples_per_s"' "$work/bd.json" ||
  { echo "FAIL: bench data wrote no document" >&2; failures=$((failures + 1)); }
expect_error "bench data needs --dataset STORE" -- bench data
# Running out of memory is one line saying so (not "std::bad_alloc"), exit 1.
(ulimit -v 400000; "$boreas" bench train --config small --warmup 0 --repetitions 1 >"$work/oom.out" 2>"$work/oom.err")
rc=$?
if ((rc == 1)) && grep -q "error: out of memory: an allocation failed with" "$work/oom.err"; then passes=$((passes + 1)); else
  echo "FAIL: out of memory: rc=$rc $(tail -2 "$work/oom.err")" >&2; failures=$((failures + 1)); fi
# compare reads data documents: itself is SAME at every thread count; another store's shape is refused.
"$boreas" compare "$work/bd.json" "$work/bd.json" >"$work/bd.cmp" 2>&1 && [ "$(grep -c 'samples/s .* SAME' "$work/bd.cmp")" = 2 ] ||
  { echo "FAIL: bench data self-compare: $(cat "$work/bd.cmp")" >&2; failures=$((failures + 1)); }
sed 's/"points": 1600/"points": 40320/' "$work/bd.json" >"$work/bd-other.json"
expect_error "read stores of different shapes \(points: 1600 vs 40320\)" -- compare "$work/bd.json" "$work/bd-other.json"
# A NaN produced by the model stops the forecast naming step and variable; the steps before it
# (here step 0) stay in a complete, readable output.
expect_error "step 1 \(valid 2024-06-01T12:00:00\): output 'z_500' is not finite" -- forecast --checkpoint "$ckpt/transformer.ckpt" --input "$work/nan-lsm.safetensors" --allow-nan --lead-time 12h -o "$work/nan.nc"
/usr/bin/python3 - "$work/nan.nc" <<'PY' || { echo "FAIL: the output before the NaN is not complete" >&2; failures=$((failures + 1)); }
import sys
raw = open(sys.argv[1], "rb").read()
assert raw[:8] == b"\x89HDF\r\n\x1a\n", "not a NetCDF-4/HDF5 file"
PY
expect_error "" -- no-such-command

echo "cli: $passes passed, $failures failed"
((failures == 0))

#!/usr/bin/env python3
"""Reference forecast of the anemoi-models 0.3.1 checkpoints made by anemoi-inference 0.4.9 (the AIFS-single 1.0
era), an on-demand check next to forecast_reference.py (which does the same for the 0.18 checkpoint with
anemoi-inference 0.13.0).  Nothing is written into tests/data.

Run from the repository root with the 0.3.1 inference environment (tools/peer/requirements-inference-031.txt):

    .venv-inf-031/bin/python tools/peer/forecast_reference_031.py [--out /tmp/boreas-forecast-ref-031]

What it does
------------
For each run below it calls the anemoi-inference 0.4.9 CLI (``anemoi.inference.__main__``, a fresh process, CPU, one
thread, precision "32") on ``tests/data/forecast/o16_init.grib2`` (the committed initial conditions of
forecast_reference.py: 2024-06-01 00 and 06 UTC, O16) from base date 2024-06-01T06 for lead_time 24h (4 steps of
6h), with a tee output: NetCDF ``<out>/<run>/forecast.nc`` and GRIB ``<out>/<run>/forecast.grib2``.

  transformer         tests/data/checkpoint/anemoi-models-0.3.1-transformer.ckpt, exactly as anemoi-inference runs
                      it on a CPU: no flash-attn, so anemoi-models 0.3.1's MultiHeadSelfAttention falls back to
                      torch SDPA WITHOUT the sliding window (window_size 16 < 208 hidden nodes: global attention,
                      NOT the model that was trained).
  transformer_flash   the same checkpoint with flash-attn's window semantics emulated (|i - j| <= 16; the emulation
                      of tools/reference/make_checkpoint_fixtures_031.py), i.e. what the checkpoint computes where it
                      was meant to run (GPU + flash-attn).  Comparable with the 0.18 reference
                      tests/data/forecast/transformer_ref.safetensors (same weights; 0.18 applies the window on CPU).
  graphtransformer    tests/data/checkpoint/anemoi-models-0.3.1-graphtransformer.ckpt (no flash-attn involved).

The CLI is started through this script (``--launch``), which applies these patches in the child process before
anemoi-inference runs; they are recorded in each output's header:
  * always: earthkit-data 0.12.2 reads GRIB values as float32 with ecCodes' float API when available, and ecCodes
    2.40 cannot unpack grid_ieee as float ("Function not yet implemented"); the patch makes earthkit-data read
    doubles and cast to float32 (GribCodesFloatArrayAccessor.HAS_FLOAT_SUPPORT = False).  The inputs are float32
    IEEE values, so the result is bit-identical.  (anemoi-inference 0.13 / earthkit-data 0.20 does the same.)
  * always: Runner.predict_step is wrapped to save every input tensor it is given (``<run>/inputs.npy``,
    [steps, 1, 2, 1600, 6]) so the tensor assembly can be checked.
  * transformer_flash only: every MultiHeadSelfAttention gets the flash-attn emulation before predict_step.

Config deviations from anemoi-inference 0.4.9's defaults (recorded): ``post_processors: []`` (0.4.9 defaults to
accumulating tp/cp from the start of the forecast, clipping negatives: sum_k max(0, x_k); 0.13 does not accumulate, so
the stored values are the per-step model outputs like transformer_ref.safetensors.  A second run with the defaults
checks that relation).  The GRIB output's ``templates`` supply tp/cp templates (0.4.9 has builtin templates only for
0.25 deg, N320 and O96): the input file with ``sp`` renamed ``tp`` by a namer rule, ``reuse: true`` (catch-all, so
cp uses it too).  No ``patch_metadata`` is needed (0.4.9 does not look up the grid for GRIB templates).  GRIB keys
that differ from 0.13's: every message typeOfProcessedData fc (0.13: an) and typeOfGeneratingProcess 2 (0.13: 0); tp/cp
are always labelled accumulations from step 0 (startStep 0, lengthOfTimeRange = endStep), although with
``post_processors: []`` the values are per-step (0.13: startStep = endStep - 6).

Checks: NetCDF == GRIB bit for bit; step 0 = the 06 UTC inputs; an independent rollout (same torch model, the
documented tensor assembly) reproduces every step bit for bit and the recorded input tensors; step 1 vs the committed
predict_step outputs (anemoi-models-0.3.1.io.safetensors); transformer_flash vs the 0.18 reference.

Writes ``<out>/<run>_031_ref.safetensors`` (run = transformer, transformer_flash, graphtransformer): one float32
tensor [4, 1600] per output variable (z_500 t_850 2t sp tp cp; rows = steps 6, 12, 18, 24 h), header ``boreas`` (JSON)
with dates, config, versions, patches, GRIB keys and checks -- the layout of tests/data/forecast/transformer_ref.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

os.environ["CUDA_VISIBLE_DEVICES"] = ""
os.environ["OMP_NUM_THREADS"] = "1"

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
from forecast_reference import BASE_DATE  # noqa: E402
from forecast_reference import check_grib_against_netcdf  # noqa: E402
from forecast_reference import GRIB_FIELDS  # noqa: E402
from forecast_reference import GRIB_KEYS  # noqa: E402
from forecast_reference import INPUT_DATES  # noqa: E402
from forecast_reference import LEAD_TIME_H  # noqa: E402
from forecast_reference import OUTPUT_VARIABLES  # noqa: E402
from forecast_reference import REPO  # noqa: E402
from forecast_reference import STEP_H  # noqa: E402
from forecast_reference import grib_latlon  # noqa: E402
from forecast_reference import read_grib  # noqa: E402
from forecast_reference import read_netcdf  # noqa: E402
from forecast_reference import sha256  # noqa: E402

CKPT_DIR = REPO / "tests/data/checkpoint"
INIT = REPO / "tests/data/forecast/o16_init.grib2"
IO_018 = CKPT_DIR / "transformer.io.safetensors"
IO_031 = CKPT_DIR / "anemoi-models-0.3.1.io.safetensors"
REF_018 = REPO / "tests/data/forecast/transformer_ref.safetensors"
DEFAULT_OUT = Path("/tmp/boreas-forecast-ref-031")
WINDOW = 16  # processor window_size of the tiny transformer (checked against the loaded model)
# run -> (checkpoint, flash-attn emulated, committed predict_step output of anemoi-models-0.3.1.io)
RUNS = {
    "transformer": ("anemoi-models-0.3.1-transformer.ckpt", False, "output_transformer_sdpa_fallback"),
    "transformer_flash": ("anemoi-models-0.3.1-transformer.ckpt", True, "output_transformer"),
    "graphtransformer": ("anemoi-models-0.3.1-graphtransformer.ckpt", False, "output_graphtransformer"),
}
PATCHES = {
    "earthkit_float_read": "earthkit.data.readers.grib.codes.GribCodesFloatArrayAccessor.HAS_FLOAT_SUPPORT = False "
                           "(ecCodes 2.40 cannot unpack grid_ieee as float; doubles cast to float32 instead, exact)",
    "record_inputs": "anemoi.inference.runner.Runner.predict_step wrapped: saves each input tensor (no change)",
    "flash_attn_emulation": "before each predict_step every anemoi.models.layers.attention.MultiHeadSelfAttention "
                            "gets attention = flash_attn_func emulation (|i-j| <= window) and the module flag "
                            "_FLASH_ATTENTION_AVAILABLE = True (transformer_flash only)",
}


# ----------------------------------------------------------------------------------------------------------------
# child process: anemoi-inference's CLI with the patches
# ----------------------------------------------------------------------------------------------------------------
def flash_attn_emulated(q, k, v, causal=False, window_size=(-1, -1), dropout_p=0.0):
    """flash_attn_func for equal q/k lengths, non-causal, no dropout: [B, N, H, D] in and out; query i attends keys j
    with i - window_size[0] <= j <= i + window_size[1] (-1 = unbounded).  Same as make_checkpoint_fixtures_031.py."""
    import torch
    import torch.nn.functional as F

    assert not causal and dropout_p == 0.0 and q.shape[1] == k.shape[1]
    n = q.shape[1]
    i = torch.arange(n)
    left, right = window_size
    mask = torch.ones(n, n, dtype=torch.bool)
    if left >= 0:
        mask &= i[None, :] >= i[:, None] - left
    if right >= 0:
        mask &= i[None, :] <= i[:, None] + right
    out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=mask)
    return out.transpose(1, 2)


def set_flash_emulation(model, on: bool) -> int:
    import anemoi.models.layers.attention as attention_mod

    mods = [m for m in model.modules() if isinstance(m, attention_mod.MultiHeadSelfAttention)]
    if on:
        attention_mod._FLASH_ATTENTION_AVAILABLE = True
        for m in mods:
            assert m.window_size == (WINDOW, WINDOW), m.window_size
            m.attention = flash_attn_emulated
    return len(mods)


def launch(config: str, inputs_path: str, flash: bool) -> None:
    import earthkit.data.readers.grib.codes as codes
    import torch
    from anemoi.inference.__main__ import main as cli_main
    from anemoi.inference.runner import Runner

    codes.GribCodesFloatArrayAccessor.HAS_FLOAT_SUPPORT = False
    seen = []
    original = Runner.predict_step

    def predict_step(self, model, input_tensor_torch, fcstep, **kwargs):
        set_flash_emulation(model, flash)
        seen.append(input_tensor_torch.detach().cpu().numpy().copy())
        np.save(inputs_path, np.stack(seen))
        return original(self, model, input_tensor_torch, fcstep, **kwargs)

    Runner.predict_step = predict_step
    torch.set_num_threads(1)
    sys.argv = ["anemoi-inference", "run", config]
    cli_main()


# ----------------------------------------------------------------------------------------------------------------
# parent process
# ----------------------------------------------------------------------------------------------------------------
def inference_config(ckpt: Path, run_dir: Path, accumulate_default: bool = False) -> dict:
    config = {
        "checkpoint": str(ckpt),
        "date": BASE_DATE.isoformat(),
        "lead_time": f"{LEAD_TIME_H}h",
        "device": "cpu",
        "precision": "32",
        "input": {"grib": str(INIT)},
        "output": {
            "tee": {
                "outputs": [
                    {"netcdf": str(run_dir / "forecast.nc")},
                    {"grib": {"path": str(run_dir / "forecast.grib2"),
                              "templates": {"source": {"grib": {"path": str(INIT),
                                                                "namer": {"rules": [[{"shortName": "sp"}, "tp"]]}}},
                                            "reuse": True}}},
                ]
            }
        },
    }
    if not accumulate_default:
        config["post_processors"] = []
    return config


def run_inference(run_dir: Path, config: dict, flash: bool) -> None:
    import yaml

    run_dir.mkdir(parents=True, exist_ok=True)
    for name in ("forecast.nc", "forecast.grib2", "inputs.npy"):
        (run_dir / name).unlink(missing_ok=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANEMOI_")}
    env.update(CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1")
    cmd = [sys.executable, str(Path(__file__).resolve()), "--launch", str(run_dir / "config.yaml"),
           "--inputs", str(run_dir / "inputs.npy")] + (["--flash"] if flash else [])
    with open(run_dir / "inference.log", "w") as log:
        rc = subprocess.run(cmd, env=env, stdout=log, stderr=subprocess.STDOUT).returncode
    if rc != 0:
        sys.exit(f"anemoi-inference failed (rc {rc}); see {run_dir / 'inference.log'}")


def load_model(ckpt: Path, flash: bool):
    import torch

    model = torch.load(str(ckpt), map_location="cpu", weights_only=False)
    model.eval()
    n = set_flash_emulation(model, flash)
    return model, n


def independent_rollout(ckpt: Path, flash: bool) -> tuple[np.ndarray, np.ndarray, dict]:
    """The rollout anemoi-inference 0.4.9 performs, written out: (outputs [steps, N, 6], inputs [steps, 1, 2, N, 6],
    model facts).  anemoi-inference 0.4.9 rolls the whole input tensor by -1 along time and writes the prognostic
    outputs into the last row; here row 0 <- row 1, then row 1 prognostics <- output (the same thing for T = 2)."""
    import eccodes
    import torch

    fields = {}
    with open(INIT, "rb") as f:
        while (h := eccodes.codes_grib_new_from_file(f)) is not None:
            key = (eccodes.codes_get(h, "shortName"), eccodes.codes_get(h, "dataTime"))
            fields[key] = np.asarray(eccodes.codes_get_values(h)).astype(np.float32)
            eccodes.codes_release(h)
    lat, _ = grib_latlon(INIT)
    cos_lat = np.cos(np.deg2rad(lat)).astype(np.float32)
    x = np.empty((1, 2, 1600, 6), dtype=np.float32)
    for t, date in enumerate(INPUT_DATES):
        for _, short, _, _, col in GRIB_FIELDS:
            x[0, t, :, col] = fields[(short, date.hour * 100)]
        x[0, t, :, 5] = cos_lat
    model, n_attn = load_model(ckpt, flash)
    di = model.data_indices
    prog_in = di.model.input.prognostic.tolist()
    prog_out = di.model.output.prognostic.tolist()
    assert prog_in == [0, 1, 2, 3] and prog_out == [0, 1, 2, 3], (prog_in, prog_out)
    xt = torch.from_numpy(x)
    outs, ins = [], []
    with torch.no_grad():
        for _ in range(LEAD_TIME_H // STEP_H):
            ins.append(xt.numpy().copy())
            y = model.predict_step(xt)  # 0.3.1: tensor [1, T, N, V_in] -> [1, E=1, N, V_out], physical
            assert tuple(y.shape) == (1, 1, 1600, 6), y.shape
            outs.append(y[0, 0].numpy().copy())
            xt = xt.clone()
            xt[:, 0] = xt[:, 1]
            xt[:, 1, :, prog_in] = y[:, 0][..., prog_out]
    facts = {"multi_head_self_attention_modules": n_attn,
             "hidden_nodes": int(model.model._graph_data["hidden"].x.shape[0]),
             "processor": type(model.model.processor).__name__,
             "data_indices": {"input_prognostic": prog_in, "output_prognostic": prog_out}}
    return np.stack(outs), np.stack(ins), facts


def versions() -> dict:
    from importlib.metadata import version

    import eccodes

    out = {"python": ".".join(map(str, sys.version_info[:3]))}
    for dist in ("anemoi-inference", "anemoi-models", "anemoi-utils", "anemoi-transform", "earthkit-data", "eccodes",
                 "netCDF4", "torch", "numpy", "pandas", "xarray", "pydantic", "safetensors"):
        out[dist] = version(dist)
    out["eccodes_library"] = eccodes.codes_get_api_version()
    return out


def check_run(run: str, out: Path) -> tuple[dict, dict, dict]:
    """Runs anemoi-inference for one RUNS entry and checks it; returns (per-step outputs, checks, header parts)."""
    from safetensors.numpy import load_file

    ckpt_name, flash, io_key = RUNS[run]
    ckpt = CKPT_DIR / ckpt_name
    run_dir = out / run
    config = inference_config(ckpt, run_dir)
    run_inference(run_dir, config, flash)
    nc = read_netcdf(run_dir / "forecast.nc")
    msgs = read_grib(run_dir / "forecast.grib2")
    steps_h = [STEP_H * (s + 1) for s in range(LEAD_TIME_H // STEP_H)]
    checks: dict = {}

    # --- NetCDF: time axis, step 0 = the 06 UTC inputs
    d = nc["data"]
    assert d["time"].tolist() == [h * 3600 for h in [0] + steps_h], d["time"]
    assert nc["layout"]["variables"]["time"]["attributes"]["units"] == f"seconds since {BASE_DATE}"
    x = load_file(str(IO_018))["input"]
    for name, _, _, _, col in GRIB_FIELDS:
        assert np.array_equal(d[name][0], x[0, 1, :, col]), f"step 0 {name} is not the 06 UTC input"
    import netCDF4

    fill = np.float32(netCDF4.default_fillvals["f4"])  # no _FillValue attribute: unwritten entries hold the default
    fill_rows = {v: [int(i) for i in range(d[v].shape[0]) if (d[v][i] == fill).all()] for v in ["lsm", "tp", "cp"]}
    assert fill_rows == {"lsm": [1, 2, 3, 4], "tp": [0], "cp": [0]}, fill_rows
    ref = {v: d[v][1:].astype(np.float32) for v in OUTPUT_VARIABLES}
    assert all(np.isfinite(r).all() and not (r == fill).any() for r in ref.values())
    checks["netcdf"] = {"step0": "z_500 t_850 2t sp lsm at 06 UTC, bit-identical to the inputs",
                        "unwritten_time_rows": {"rows": fill_rows, "value": float(fill),
                                                "note": "netCDF4's default f4 fill 9.96921e36, no _FillValue / "
                                                        "missing_value attribute (0.13 writes NaN)"},
                        "time": "int64 seconds since the base date (units 'seconds since 2024-06-01 06:00:00'); "
                                "no forecast_reference_time / forecast_period variables (0.13 has them)"}

    # --- GRIB: message order, keys, values == NetCDF
    check_grib_against_netcdf(msgs, d, steps_h)
    checks["grib"] = f"{len(msgs)} messages, values bit-identical to the NetCDF"

    # --- independent rollout and the tensors anemoi-inference fed the model
    mine, my_inputs, facts = independent_rollout(ckpt, flash)
    seen = np.load(run_dir / "inputs.npy")
    assert seen.shape == my_inputs.shape, (seen.shape, my_inputs.shape)
    for j, v in enumerate(OUTPUT_VARIABLES):
        assert np.array_equal(mine[:, :, j], ref[v]), f"independent rollout differs for {v}"
    inputs_equal = bool(np.array_equal(seen, my_inputs))
    checks["independent_rollout"] = "bit-identical at every step"
    checks["input_tensors_equal_independent"] = inputs_equal
    if not inputs_equal:
        checks["input_tensors_max_abs_diff_per_column"] = np.abs(seen - my_inputs).max(axis=(0, 1, 2, 3)).tolist()
    assert inputs_equal, "anemoi-inference's input tensors differ from the independent assembly"
    checks["model"] = facts
    if run.startswith("transformer"):
        # flash-attn's window (w, w) covers every key iff N - 1 <= w; only then is the SDPA fallback exact
        checks["window"] = {"window_size": WINDOW, "hidden_nodes": facts["hidden_nodes"],
                            "covers_sequence": facts["hidden_nodes"] - 1 <= WINDOW}

    # --- cos_latitude vs the committed input, step 1 vs the committed predict_step output
    checks["cos_latitude_points_differing_from_transformer_io_input"] = int((seen[0, 0, 1, :, 5] != x[0, 1, :, 5]).sum())
    y = load_file(str(IO_031))[io_key][0, 0]
    checks[f"step1_vs_{io_key}_max_abs"] = {
        v: float(np.abs(ref[v][0].astype(np.float64) - y[:, j]).max()) for j, v in enumerate(OUTPUT_VARIABLES)}
    if flash:
        r018 = load_file(str(REF_018))
        checks["vs_018_transformer_ref_max_abs"] = {
            v: float(np.abs(ref[v].astype(np.float64) - r018[v]).max()) for v in OUTPUT_VARIABLES}
    if run == "transformer":
        r018 = load_file(str(REF_018))
        checks["global_attention_vs_018_windowed_ref_max_abs"] = {
            v: [float(a) for a in np.abs(ref[v].astype(np.float64) - r018[v]).max(axis=1)] for v in OUTPUT_VARIABLES}

    common = {k: msgs[0]["keys"][k] for k in GRIB_KEYS if all(m["keys"][k] == msgs[0]["keys"][k] for m in msgs)}
    varying = [k for k in GRIB_KEYS if k not in common]
    header = {
        "config": config,
        "grib_common_keys": common,
        "grib_varying_keys": varying,
        "grib_messages": [[m["keys"][k] for k in varying] for m in msgs],
        "netcdf_layout": nc["layout"],
    }
    return ref, checks, header


def check_default_accumulation(out: Path, ref: dict) -> dict:
    """anemoi-inference 0.4.9 with its default post-processing: tp/cp = cumulative sum of max(0, step value)."""
    run_dir = out / "graphtransformer_default_accumulation"
    ckpt = CKPT_DIR / RUNS["graphtransformer"][0]
    run_inference(run_dir, inference_config(ckpt, run_dir, accumulate_default=True), flash=False)
    d = read_netcdf(run_dir / "forecast.nc")["data"]
    result = {}
    for v in OUTPUT_VARIABLES:
        got = d[v][1:]
        want = np.cumsum(np.maximum(0, ref[v]), axis=0, dtype=np.float32) if v in ("tp", "cp") else ref[v]
        result[v] = bool(np.array_equal(got, want))
    assert all(result.values()), result
    return {"config": "post_processors unset (0.4.9 default: accumulate_from_start_of_forecast)",
            "tp_cp_equal_cumsum_of_max0_of_stored": True, "other_variables_identical": True,
            "negative_step_values_clipped": {v: int((ref[v] < 0).sum()) for v in ("tp", "cp")}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory (never inside tests/data)")
    ap.add_argument("--runs", nargs="+", choices=list(RUNS), default=list(RUNS))
    ap.add_argument("--launch", metavar="CONFIG", help=argparse.SUPPRESS)
    ap.add_argument("--inputs", help=argparse.SUPPRESS)
    ap.add_argument("--flash", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.launch:
        launch(args.launch, args.inputs, args.flash)
        return 0

    out = args.out.resolve()
    if out.is_relative_to(REPO / "tests"):
        sys.exit("refusing to write under tests/: the fixture budget is full; this is an on-demand check")
    from safetensors.numpy import save_file

    steps_h = [STEP_H * (s + 1) for s in range(LEAD_TIME_H // STEP_H)]
    summary = {}
    for run in args.runs:
        ref, checks, header = check_run(run, out)
        if run == "graphtransformer":
            checks["default_accumulation"] = check_default_accumulation(out, ref)
        ckpt = CKPT_DIR / RUNS[run][0]
        cfg = json.loads(json.dumps(header["config"]))
        cfg["checkpoint"] = str(ckpt.relative_to(REPO))
        cfg["input"]["grib"] = str(INIT.relative_to(REPO))
        cfg["output"]["tee"]["outputs"][0]["netcdf"] = "<out>/forecast.nc"
        grib_cfg = cfg["output"]["tee"]["outputs"][1]["grib"]
        grib_cfg["path"] = "<out>/forecast.grib2"
        grib_cfg["templates"]["source"]["grib"]["path"] = str(INIT.relative_to(REPO))
        meta = {
            "generator": "tools/peer/forecast_reference_031.py",
            "run": run,
            "checkpoint": {"path": str(ckpt.relative_to(REPO)), "sha256": sha256(ckpt)},
            "initial_conditions": {"path": str(INIT.relative_to(REPO)), "sha256": sha256(INIT),
                                   "dates": [t.isoformat() for t in INPUT_DATES]},
            "base_date": BASE_DATE.isoformat(),
            "lead_time_hours": LEAD_TIME_H,
            "steps_hours": steps_h,
            "valid_dates": [(BASE_DATE + datetime.timedelta(hours=h)).isoformat() for h in steps_h],
            "variables": OUTPUT_VARIABLES,
            "layout": "<variable>: float32 [steps=4, points=1600], rows = steps_hours (6, 12, 18, 24), model output "
                      "order; tp/cp are the per-step model outputs (post_processors: [], no accumulation).  Step 0 "
                      "(written by anemoi-inference: z_500 t_850 2t sp lsm) is the 06 UTC input and is not stored.",
            "attention": {
                "transformer": "anemoi-models 0.3.1 on CPU without flash-attn: torch SDPA, window ignored (global "
                               "attention over the 208 hidden nodes; window_size 16). What anemoi-inference produces "
                               "on a CPU, not what the checkpoint was trained to compute.",
                "transformer_flash": "flash-attn window emulated (|i-j| <= 16): what the checkpoint computes on "
                                     "GPU + flash-attn",
                "graphtransformer": "no self-attention module; no flash-attn dependency",
            }[run],
            "patches": {k: v for k, v in PATCHES.items() if k != "flash_attn_emulation" or RUNS[run][1]},
            "inference_config": cfg,
            "inference_defaults_relied_on": {"write_initial_state": True, "grib split_output": True,
                                             "grib check_encoding": True},
            "inference_defaults_overridden": {"post_processors": "[] (default: accumulate tp/cp from the start "
                                                                 "of the forecast, negatives clipped)"},
            "grib_common_keys": header["grib_common_keys"],
            "grib_varying_keys": header["grib_varying_keys"],
            "grib_messages": header["grib_messages"],
            "netcdf_layout": header["netcdf_layout"],
            "checks": checks,
            "versions": versions(),
        }
        target = out / f"{run}_031_ref.safetensors"
        save_file({v: np.ascontiguousarray(ref[v]) for v in OUTPUT_VARIABLES}, str(target),
                  metadata={"boreas": json.dumps(meta, sort_keys=True, separators=(",", ":"), default=str)})
        summary[run] = {"file": str(target), "checks": checks}
        print(f"wrote {target}")
    print(json.dumps(summary, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())

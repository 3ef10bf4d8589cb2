#!/usr/bin/env python3
"""Reference forecast made by anemoi-inference itself, for `boreas forecast` (checkpoint + GRIB initial conditions
-> GRIB2 / NetCDF).

Run from the repository root with the inference environment (tools/peer/requirements-inference.txt, see
tools/peer/README.md):

    .venv-inf/bin/python tools/peer/forecast_reference.py [--out /tmp/boreas-forecast-ref]
        [--fixtures tests/data/forecast] [--no-fixtures]

What it does
------------
1. Initial conditions.  Writes ``<fixtures>/o16_init.grib2``: GRIB2 (ecCodes sample ``reduced_gg_pl_32_grib2``,
   ECMWF local section, class od / type an / stream oper / expver 0001) on the octahedral O16 grid
   (gridType reduced_gg, N 16, pl 20, 24, ..., 80, 80, ..., 20; 1600 points), packingType grid_ieee with
   precision 1 (IEEE float32: the values are exactly the float32 inputs), 10 messages in this order:
   2024-06-01 00 UTC: z(pl 500) t(pl 850) 2t(heightAboveGround 2) sp(surface) lsm(surface), then the same at 06 UTC,
   step 0.  Values: ``tests/data/checkpoint/transformer.io.safetensors:input`` [1, 2, 1600, 6] (t = 0 -> 00 UTC,
   t = 1 -> 06 UTC; columns z_500 t_850 2t sp lsm cos_latitude; cos_latitude is not written, anemoi-inference
   computes it).  The GRIB grid points are checked against the checkpoint's supporting arrays
   (data/latitudes, data/longitudes).
2. Forecast.  Runs ``python -m anemoi.inference run <out>/config.yaml`` (the anemoi-inference CLI, a fresh
   process, CPU, one thread, precision "32") on ``tests/data/checkpoint/transformer.ckpt`` from base date
   2024-06-01T06 for lead_time 24h (4 steps of 6h), with a tee output: NetCDF ``<out>/forecast.nc`` and GRIB
   ``<out>/forecast.grib2``.  Two things the checkpoint (a synthetic tiny one) lacks are supplied by the config
   and recorded in the fixture: ``patch_metadata`` adds dataset.data.data_request {grid: O16, area: [90, 0, -90,
   360]} (anemoi-inference 0.13's GRIB template lookup evaluates metadata.grid eagerly and stops without it) and
   the GRIB output's ``templates: [{input: {tp: sp, cp: sp, lsm: sp}}]`` (the input-template fallback: without it
   there is no template for the diagnostics tp/cp, nor for lsm in the step-0 state, because the prognostic input
   state only carries the templates of the prognostic fields, and anemoi-inference's builtin templates exist only
   for O48/O96/N128/N320).
3. Checks.  NetCDF and GRIB values agree bit for bit; the step-0 fields are the 06 UTC inputs; an independent
   rollout (the same torch model, input tensor assembled and fed back as documented in the fixture) reproduces every
   step bit for bit; the first step is compared with the committed predict_step output.
4. Fixture.  ``<fixtures>/transformer_ref.safetensors``: one float32 tensor [4, 1600] per output variable
   (z_500 t_850 2t sp tp cp; rows = steps 6, 12, 18, 24 h) and a JSON header ``boreas`` with dates, steps, the
   config, versions, the keys anemoi-inference sets on each cloned template (grib_set_keys, steps 0 and 6, in
   ecCodes set order), every GRIB message's keys as read back (grib_common_keys: equal in all 29 messages;
   grib_messages: one row of grib_varying_keys per message, in file order), the NetCDF layout and the check results.  Deterministic: a
   second run writes byte-identical fixture files.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

os.environ["CUDA_VISIBLE_DEVICES"] = ""
os.environ["OMP_NUM_THREADS"] = "1"

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
CKPT = REPO / "tests/data/checkpoint/transformer.ckpt"
IO = REPO / "tests/data/checkpoint/transformer.io.safetensors"
DEFAULT_OUT = Path("/tmp/boreas-forecast-ref")
DEFAULT_FIXTURES = REPO / "tests/data/forecast"

INPUT_DATES = [datetime.datetime(2024, 6, 1, 0), datetime.datetime(2024, 6, 1, 6)]
BASE_DATE = INPUT_DATES[-1]
LEAD_TIME_H = 24
STEP_H = 6
# (checkpoint variable, shortName, typeOfLevel, level, column of transformer.io:input)
GRIB_FIELDS = [
    ("z_500", "z", "isobaricInhPa", 500, 0),
    ("t_850", "t", "isobaricInhPa", 850, 1),
    ("2t", "2t", "heightAboveGround", 2, 2),
    ("sp", "sp", "surface", 0, 3),
    ("lsm", "lsm", "surface", 0, 4),
]
OUTPUT_VARIABLES = ["z_500", "t_850", "2t", "sp", "tp", "cp"]  # model output order (data.output.full)
GRIB_KEYS = [
    "edition", "centre", "subCentre", "tablesVersion", "localTablesVersion", "significanceOfReferenceTime",
    "productionStatusOfProcessedData", "typeOfProcessedData", "localUsePresent", "class", "type", "stream", "expver",
    "discipline", "parameterCategory", "parameterNumber", "paramId", "shortName", "typeOfLevel", "level",
    "typeOfFirstFixedSurface", "scaleFactorOfFirstFixedSurface", "scaledValueOfFirstFixedSurface",
    "typeOfSecondFixedSurface", "productDefinitionTemplateNumber", "typeOfGeneratingProcess",
    "generatingProcessIdentifier", "dataDate", "dataTime", "stepUnits", "stepType", "startStep", "endStep",
    "forecastTime", "typeOfStatisticalProcessing", "lengthOfTimeRange", "validityDate", "validityTime",
    "gridType", "N", "numberOfValues", "numberOfDataPoints", "packingType", "precision", "bitmapPresent",
    "totalLength",
]


# ----------------------------------------------------------------------------------------------------------------
def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def octahedral_pl(n: int) -> np.ndarray:
    i = np.arange(1, n + 1)
    north = 4 * i + 16
    return np.concatenate([north, north[::-1]])


def checkpoint_grid() -> tuple[np.ndarray, np.ndarray]:
    from anemoi.utils.checkpoints import load_metadata

    _, arrays = load_metadata(str(CKPT), supporting_arrays=True)
    return np.asarray(arrays["data"]["latitudes"]), np.asarray(arrays["data"]["longitudes"])


def committed_io() -> dict:
    from safetensors.numpy import load_file

    return load_file(str(IO))


def write_init_grib(path: Path) -> dict:
    """Write the O16 initial conditions (see the module docstring); return what was checked."""
    import eccodes

    lats, lons = checkpoint_grid()
    x = committed_io()["input"]  # [1, 2, 1600, 6] float32
    assert x.shape == (1, 2, 1600, 6) and x.dtype == np.float32
    pl = octahedral_pl(16)
    dlat = dlon = 0.0
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        for t, date in enumerate(INPUT_DATES):
            for _, short, level_type, level, col in GRIB_FIELDS:
                h = eccodes.codes_grib_new_from_samples("reduced_gg_pl_32_grib2")
                try:
                    eccodes.codes_set(h, "N", 16)
                    eccodes.codes_set_array(h, "pl", pl.tolist())
                    eccodes.codes_set(h, "latitudeOfFirstGridPointInDegrees", float(lats[0]))
                    eccodes.codes_set(h, "latitudeOfLastGridPointInDegrees", float(lats[-1]))
                    eccodes.codes_set(h, "longitudeOfLastGridPointInDegrees", 360.0 - 360.0 / int(pl.max()))
                    eccodes.codes_set(h, "shortName", short)
                    eccodes.codes_set(h, "typeOfLevel", level_type)
                    eccodes.codes_set(h, "level", level)
                    eccodes.codes_set(h, "dataDate", int(date.strftime("%Y%m%d")))
                    eccodes.codes_set(h, "dataTime", date.hour * 100)
                    eccodes.codes_set(h, "packingType", "grid_ieee")
                    eccodes.codes_set(h, "precision", 1)  # 1 = IEEE 32-bit
                    values = x[0, t, :, col]
                    eccodes.codes_set_values(h, values.astype(np.float64))
                    assert eccodes.codes_get(h, "isOctahedral") == 1 and eccodes.codes_get(h, "gridName") == "O16"
                    assert eccodes.codes_get(h, "shortName") == short and eccodes.codes_get(h, "step") == 0
                    back = eccodes.codes_get_values(h)
                    assert np.array_equal(back.astype(np.float32), values) and np.array_equal(back, values), short
                    ela = np.asarray(eccodes.codes_get_array(h, "latitudes"), dtype=np.float64)
                    elo = np.asarray(eccodes.codes_get_array(h, "longitudes"), dtype=np.float64)
                    dlat, dlon = max(dlat, float(np.abs(ela - lats).max())), max(dlon, float(np.abs(elo - lons).max()))
                    eccodes.codes_write(h, f)
                finally:
                    eccodes.codes_release(h)
    assert dlat < 1e-10 and dlon == 0.0, (dlat, dlon)
    return {"max_abs_dlat_deg_vs_checkpoint": dlat, "max_abs_dlon_deg_vs_checkpoint": dlon,
            "packing": "grid_ieee precision 1 (float32), values bit-identical to transformer.io:input"}


def inference_config(out: Path, init: Path) -> dict:
    return {
        "checkpoint": str(CKPT),
        "date": BASE_DATE.isoformat(),
        "lead_time": f"{LEAD_TIME_H}h",
        "device": "cpu",
        "precision": "32",
        "input": {"grib": str(init)},
        "output": {
            "tee": {
                "outputs": [
                    {"netcdf": str(out / "forecast.nc")},
                    {"grib": {"path": str(out / "forecast.grib2"),
                              "templates": [{"input": {"tp": "sp", "cp": "sp", "lsm": "sp"}}]}},
                ]
            }
        },
        "patch_metadata": {"dataset": {"data": {"data_request": {"grid": "O16", "area": [90, 0, -90, 360]}}}},
    }


def run_inference(out: Path, init: Path) -> dict:
    import yaml

    out.mkdir(parents=True, exist_ok=True)
    for name in ("forecast.nc", "forecast.grib2"):
        (out / name).unlink(missing_ok=True)
    config = inference_config(out, init)
    (out / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANEMOI_")}
    env.update(CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "anemoi.inference", "run", str(out / "config.yaml")]
    with open(out / "inference.log", "w") as log:
        rc = subprocess.run(cmd, env=env, stdout=log, stderr=subprocess.STDOUT).returncode
    if rc != 0:
        sys.exit(f"anemoi-inference failed (rc {rc}); see {out / 'inference.log'}")
    return config


# ----------------------------------------------------------------------------------------------------------------
def read_netcdf(path: Path) -> dict:
    import netCDF4

    with netCDF4.Dataset(str(path)) as d:
        d.set_auto_mask(False)
        layout = {
            "format": d.file_format,
            "global_attributes": {a: str(d.getncattr(a)) for a in d.ncattrs()},
            "dimensions": {k: {"size": len(v), "unlimited": v.isunlimited()} for k, v in d.dimensions.items()},
            "variables": {},
        }
        data = {}
        for name, v in d.variables.items():
            attrs = {}
            for a in v.ncattrs():
                val = v.getncattr(a)
                attrs[a] = val.item() if isinstance(val, np.generic) else val
                if isinstance(attrs[a], float) and np.isnan(attrs[a]):
                    attrs[a] = f"NaN ({np.asarray(val).dtype})"
            layout["variables"][name] = {"dtype": str(v.dtype), "dimensions": list(v.dimensions),
                                         "chunking": v.chunking() if isinstance(v.chunking(), str)
                                         else list(v.chunking()),
                                         "attributes": attrs}
            data[name] = np.asarray(v[...])
    # file order of the variables; the data variables (time, values) share one description
    layout["variable_order"] = list(layout["variables"])
    fields = [n for n, v in layout["variables"].items() if v["dimensions"] == ["time", "values"]]
    assert all(layout["variables"][n] == layout["variables"][fields[0]] for n in fields)
    layout["data_variables"] = layout["variables"][fields[0]]
    layout["variables"] = {n: v for n, v in layout["variables"].items() if n not in fields}
    layout["variables"]["<each data variable>"] = layout.pop("data_variables")
    return {"layout": layout, "data": data}


def read_grib(path: Path) -> list[dict]:
    import eccodes

    messages = []
    with open(path, "rb") as f:
        while (h := eccodes.codes_grib_new_from_file(f)) is not None:
            try:
                keys = {}
                for k in GRIB_KEYS:
                    try:
                        keys[k] = eccodes.codes_get(h, k)
                    except eccodes.KeyValueNotFoundError:
                        keys[k] = None
                values = np.asarray(eccodes.codes_get_values(h))
            finally:
                eccodes.codes_release(h)
            messages.append({"keys": keys, "values": values})
    return messages



def check_grib_against_netcdf(msgs: list, d: dict, steps_h: list) -> None:
    """GRIB messages in anemoi-inference's order (step 0's fields, then every output per step), named as expected,
    with values bit-identical to the NetCDF rows `d` (step 0 first)."""
    expected = [(0, v) for v in ["z_500", "t_850", "2t", "sp", "lsm"]] + \
               [(h, v) for h in steps_h for v in OUTPUT_VARIABLES]
    short = {"z_500": "z", "t_850": "t", "2t": "2t", "sp": "sp", "lsm": "lsm", "tp": "tp", "cp": "cp"}
    assert len(msgs) == len(expected), len(msgs)
    for m, (h, v) in zip(msgs, expected):
        k = m["keys"]
        assert k["shortName"] == short[v] and k["endStep"] == h, (k["shortName"], k["endStep"], v, h)
        row = d[v][0 if h == 0 else steps_h.index(h) + 1]
        assert np.array_equal(m["values"].astype(np.float32), row) and np.array_equal(m["values"], row), v

def grib_latlon(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The coordinates anemoi-inference's GribInput puts in the state (earthkit-data's grid_points of field 0)."""
    import earthkit.data as ekd

    lat, lon = ekd.from_source("file", str(path))[0].grid_points()
    return np.asarray(lat), np.asarray(lon)


def independent_rollout(init: Path) -> tuple[np.ndarray, np.ndarray]:
    """The rollout anemoi-inference 0.13 performs, written out: returns (outputs [steps, 1600, 6], cos_latitude)."""
    import eccodes
    import torch

    fields = {}
    with open(init, "rb") as f:
        while (h := eccodes.codes_grib_new_from_file(f)) is not None:
            key = (eccodes.codes_get(h, "shortName"), eccodes.codes_get(h, "dataTime"))
            fields[key] = np.asarray(eccodes.codes_get_values(h)).astype(np.float32)
            eccodes.codes_release(h)
    lat, _ = grib_latlon(init)
    cos_lat = np.cos(np.deg2rad(lat)).astype(np.float32)  # computed forcing, float64 -> float32
    # input tensor [1, T=2, N, V_in=6]: rows = lagged dates (base - 6h, base), columns = model input order
    x = np.empty((1, 2, 1600, 6), dtype=np.float32)
    for t, date in enumerate(INPUT_DATES):
        for _, short, _, _, col in GRIB_FIELDS:
            x[0, t, :, col] = fields[(short, date.hour * 100)]
        x[0, t, :, 5] = cos_lat
    model = torch.load(str(CKPT), map_location="cpu", weights_only=False)
    model.eval()
    prog_in, prog_out = [0, 1, 2, 3], [0, 1, 2, 3]  # model.input.prognostic / model.output.prognostic
    xt = torch.from_numpy(x)
    outs = []
    with torch.inference_mode():
        for s in range(LEAD_TIME_H // STEP_H):
            y = model.predict_step({"data": xt})["data"]  # [1, 1, 1, N, 6] physical
            outs.append(y[0, 0, 0].numpy().copy())
            xt[:, 0] = xt[:, 1]  # inin: row 1 -> row 0 (every column: prognostics, lsm, cos_latitude)
            xt[:, 1, :, prog_in] = y[:, 0, 0][..., prog_out]  # outin: prediction -> row 1 (prognostics only)
            # no dynamic forcings in this checkpoint; constant forcings (lsm, cos_latitude) stay in place
    return np.stack(outs), cos_lat


def anemoi_set_keys(init: Path, config: dict) -> dict:
    """The keys anemoi-inference's GRIB output sets on the cloned template, per message (anemoi's own grib_keys() with
    the checkpoint's typed variables, plus encode_message's generatingProcessIdentifier default), in the order they
    are passed to ecCodes' grib_set_values (codes_set_key_vals).  Returned for step 0 and step 6; later steps differ
    only in step / startStep / endStep."""
    import earthkit.data as ekd
    from anemoi.inference.checkpoint import Checkpoint
    from anemoi.inference.grib.encoding import grib_keys

    checkpoint = Checkpoint(str(CKPT), patch_metadata=config["patch_metadata"])
    typed = checkpoint.multi_dataset_metadata["data"].typed_variables
    fields = {f.metadata("shortName"): f for f in ekd.from_source("file", str(init))}
    fallback = config["output"]["tee"]["outputs"][1]["grib"]["templates"][0]["input"]
    short = {"z_500": "z", "t_850": "t"}
    out = {}
    for h, names in ((0, [f[0] for f in GRIB_FIELDS]), (STEP_H, OUTPUT_VARIABLES)):
        for name in names:
            var = typed[name]
            template = fields[short.get(fallback.get(name, name), fallback.get(name, name))]
            keys = grib_keys(values=None, template=template, variable=var, ensemble=False,
                             param=var.grib_keys.get("param", name), date=BASE_DATE,
                             step=datetime.timedelta(hours=h),
                             previous_step=None if h == 0 else datetime.timedelta(hours=h - STEP_H),
                             start_steps={}, keys={})
            keys.setdefault("generatingProcessIdentifier", 255)
            out[f"{h}/{name}"] = {"template": f"input {fallback.get(name, name)}", "keys": list(keys.items())}
    return out


def versions() -> dict:
    from importlib.metadata import version

    import eccodes

    out = {"python": ".".join(map(str, sys.version_info[:3]))}
    for dist in ("anemoi-inference", "anemoi-models", "anemoi-utils", "anemoi-transform", "anemoi-datasets",
                 "earthkit-data", "earthkit-utils", "eccodes", "eccodeslib", "netCDF4", "torch", "numpy",
                 "safetensors"):
        out[dist] = version(dist)
    out["eccodes_library"] = eccodes.codes_get_api_version()
    return out


# ----------------------------------------------------------------------------------------------------------------
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="run directory (config, log, NetCDF, GRIB)")
    ap.add_argument("--fixtures", type=Path, default=DEFAULT_FIXTURES, help="where the fixture files go")
    ap.add_argument("--no-fixtures", action="store_true",
                    help="write the initial conditions to --out and do not touch the fixture directory")
    ap.add_argument("--budget", type=int, default=250_000, help="max bytes of the two forecast fixture files")
    args = ap.parse_args()

    fixtures = args.out if args.no_fixtures else args.fixtures
    init = fixtures / "o16_init.grib2"
    grib_check = write_init_grib(init)
    config = run_inference(args.out, init)

    nc = read_netcdf(args.out / "forecast.nc")
    msgs = read_grib(args.out / "forecast.grib2")
    n_steps = LEAD_TIME_H // STEP_H
    steps_h = [STEP_H * (s + 1) for s in range(n_steps)]
    checks: dict = {"init_grib": grib_check}

    # --- NetCDF: time axis, step 0 = the 06 UTC inputs, steps 1..4 = the outputs
    d = nc["data"]
    epoch = datetime.datetime(1970, 1, 1)
    base_s = int((BASE_DATE - epoch).total_seconds())
    assert int(d["forecast_reference_time"]) == base_s
    assert d["forecast_period"].tolist() == [0] + [h * 3600 for h in steps_h], d["forecast_period"]
    assert d["time"].tolist() == [base_s + p for p in d["forecast_period"].tolist()]
    x = committed_io()["input"]
    for name, _, _, _, col in GRIB_FIELDS:
        assert np.array_equal(d[name][0], x[0, 1, :, col]), f"step 0 {name} is not the 06 UTC input"
    assert np.isnan(d["lsm"][1:]).all() and np.isnan(d["tp"][0]).all() and np.isnan(d["cp"][0]).all()
    ref = {v: d[v][1:].astype(np.float32) for v in OUTPUT_VARIABLES}
    checks["netcdf"] = ("step 0 = prognostics + lsm at 06 UTC (bit-identical to the inputs); tp/cp NaN at step 0, "
                        "lsm NaN at steps 6..24 (fill value)")

    # --- GRIB: message order, keys, values = NetCDF bit for bit
    check_grib_against_netcdf(msgs, d, steps_h)
    checks["grib"] = "29 messages, values bit-identical to the NetCDF (grid_ieee float32 inherited from the input)"

    # --- independent rollout
    mine, cos_lat = independent_rollout(init)
    for j, v in enumerate(OUTPUT_VARIABLES):
        assert np.array_equal(mine[:, :, j], ref[v]), f"independent rollout differs for {v}"
    checks["independent_rollout"] = "bit-identical at every step (same torch model, tensor assembly as documented)"

    # --- cos_latitude and the committed predict_step output
    lats, _ = checkpoint_grid()
    glat, _ = grib_latlon(init)
    io = committed_io()
    cos_ckpt = np.cos(np.deg2rad(lats)).astype(np.float32)
    checks["cos_latitude"] = {
        "formula": "float32(cos(deg2rad(latitude_float64))), latitude = the GRIB grid's (earthkit grid_points)",
        "grib_lat_max_abs_diff_vs_checkpoint_deg": float(np.abs(glat - lats).max()),
        "points_differing_from_checkpoint_latitudes_version": int((cos_lat != cos_ckpt).sum()),
        "points_differing_from_transformer_io_input": int((cos_lat != io["input"][0, 1, :, 5]).sum()),
    }
    y_io = io["output"][0, 0, 0]
    checks["step1_vs_transformer_io_output_max_abs"] = {
        v: float(np.abs(ref[v][0].astype(np.float64) - y_io[:, j]).max()) for j, v in enumerate(OUTPUT_VARIABLES)}

    # --- fixture
    if not args.no_fixtures:
        from safetensors.numpy import save_file

        cfg = json.loads(json.dumps(config))
        cfg["checkpoint"] = str(CKPT.relative_to(REPO))
        cfg["input"]["grib"] = str(init.relative_to(REPO)) if init.is_relative_to(REPO) else str(init)
        cfg["output"]["tee"]["outputs"][0]["netcdf"] = "<out>/forecast.nc"
        cfg["output"]["tee"]["outputs"][1]["grib"]["path"] = "<out>/forecast.grib2"
        common = {k: msgs[0]["keys"][k] for k in GRIB_KEYS if all(m["keys"][k] == msgs[0]["keys"][k] for m in msgs)}
        varying = [k for k in GRIB_KEYS if k not in common]
        keys_table = [[m["keys"][k] for k in varying] for m in msgs]
        meta = {
            "generator": "tools/peer/forecast_reference.py",
            "checkpoint": {"path": str(CKPT.relative_to(REPO)), "sha256": sha256(CKPT)},
            "initial_conditions": {"path": str(init.relative_to(REPO)) if init.is_relative_to(REPO) else str(init),
                                   "sha256": sha256(init),
                                   "dates": [t.isoformat() for t in INPUT_DATES]},
            "base_date": BASE_DATE.isoformat(),
            "lead_time_hours": LEAD_TIME_H,
            "steps_hours": steps_h,
            "valid_dates": [(BASE_DATE + datetime.timedelta(hours=h)).isoformat() for h in steps_h],
            "variables": OUTPUT_VARIABLES,
            "layout": "<variable>: float32 [steps=4, points=1600], rows = steps_hours (6, 12, 18, 24), model "
                      "output order.  The computed forcing cos_latitude in the input tensor (both rows) is "
                      "float32(cos(deg2rad(lat))) of the float64 grid latitudes (checks.cos_latitude).  Step 0 "
                      "(written by anemoi-inference: z_500 t_850 2t sp lsm) is the 06 UTC initial condition itself "
                      "and is not stored.",
            "inference_config": cfg,
            "inference_defaults_relied_on": {"write_initial_state": True,
                                             "initial_state_categories": ["prognostics", "constant_forcings"],
                                             "grib.split_output": True, "grib.check_encoding": True,
                                             "netcdf.float_size": "f4", "netcdf.missing_value": "NaN"},
            "grib_set_keys": anemoi_set_keys(init, config),
            "grib_common_keys": common,
            "grib_varying_keys": varying,
            "grib_messages": keys_table,
            "netcdf_layout": nc["layout"],
            "checks": checks,
            "versions": versions(),
        }
        tensors = {v: np.ascontiguousarray(ref[v]) for v in OUTPUT_VARIABLES}
        target = fixtures / "transformer_ref.safetensors"
        save_file(tensors, str(target),
                  metadata={"boreas": json.dumps(meta, sort_keys=True, separators=(",", ":"), default=str)})
        total = init.stat().st_size + target.stat().st_size
        print(f"wrote {init} ({init.stat().st_size} bytes), {target} ({target.stat().st_size} bytes)")
        if args.budget and total > args.budget:
            print(f"fixtures are {total} bytes > budget {args.budget}", file=sys.stderr)
            return 1
    print(json.dumps(checks, indent=1))
    print(f"anemoi-inference run directory: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

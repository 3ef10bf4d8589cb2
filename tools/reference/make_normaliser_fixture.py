#!/usr/bin/env python3
"""Reference fixture for anemoi-models' InputNormalizer (anemoi-models 0.18.0), for Boreas' normaliser tests.

Run from the repository root with the reference environment (tools/reference/requirements.txt):

    .venv-ref/bin/python tools/reference/make_normaliser_fixture.py [--out tests/data/model/normaliser.safetensors]

The script sets CUDA_VISIBLE_DEVICES="" and OMP_NUM_THREADS=1 itself (before torch is imported).

What is built
-------------
The `tiny` dataset of make_model_fixtures.py: variables z_500 t_850 2t sp lsm cos_latitude tp cp (dataset order),
forcing lsm cos_latitude, diagnostic tp cp; data_indices = make_model_fixtures.make_data_indices()["data"]
(an anemoi IndexCollection).  The normaliser is instantiated with hydra exactly as anemoi-models'
AnemoiModelInterface._build_processor_pair does (instantiate(cfg, data_indices=..., statistics=...)) and wrapped in
anemoi's Processors (forward) / Processors(inverse=True) pair, i.e. what pre_processors["data"] /
post_processors["data"] are.  Normaliser config (NORMALISER_CONFIG below):

    default: mean-std, std: [tp, cp], min-max: [sp], max: [z_500], none: [lsm, cos_latitude], remap: {cp: tp}

Statistics: float64 [8] arrays (mean, stdev, minimum, maximum) in dataset order, realistic magnitudes with a seeded
relative perturbation so the values are not round numbers (STATS_SEED).  The file stores the statistics as given
to anemoi, *before* remapping (anemoi's remap overwrites entries of the arrays it is given in place; the script
passes copies).

anemoi 0.18.0 semantics (anemoi/models/preprocessing/normalizer.py), verified by the checks below
-----------------------------------------------------------------------------------------------
  * remap {cp: tp}: before anything else, (minimum, maximum, mean, stdev)[cp] := (..)[tp] -- all four statistics.
    Indices come from data_indices.data.input.name_to_index, which is the FULL dataset name_to_index (diagnostics
    included).
  * per variable i (all 8 dataset variables), computed with numpy float64 scalars, each result rounded once to
    float32 on assignment into the float32 buffers (_norm_mul init 1, _norm_add init 0):
        mean-std: mul = 1/stdev,          add = -mean/stdev
        std:      mul = 1/stdev,          add = 0
        min-max:  mul = 1/(max-min),      add = -min/(max-min)      ((max-min) in float64)
        max:      mul = 1/max,            add = 0
        none:     mul = 1,                add = 0
  * forward  (transform):         x = x * mul[idx];  x = x + add[idx]      two float32 ops (mul_ then add_)
  * inverse  (inverse_transform): x = x - add[idx];  x = x / mul[idx]      two float32 ops (subtract_ then div_),
                                  a true division by the float32 mul, not a multiplication by stdev.
  * column selection (idx), by the size of the last dimension unless data_index is given:
      forward: V == len(data.input.full) (6)  -> data.input.full  = [0 1 2 3 4 5]
               otherwise (the full batch, 8)  -> all 8 columns
      inverse: V == len(data.output.full) (6) -> data.output.full = [0 1 2 3 6 7]
               V == len(_model_output_idx)    -> _model_output_idx (= data.output.full here)
               otherwise                      -> all columns
    anemoi-training normalises the full batch (all dataset variables) in place; predict_step calls
    pre_processors(x, in_place=False) / post_processors(y_hat, in_place=False) without data_index; the
    tendency paths pass data_index=data.output.full explicitly for model outputs.  Both give the same result here
    (checked bit for bit).

Tensors (normaliser.safetensors)
--------------------------------
  statistics.{mean,stdev,minimum,maximum}  F64 [8]   dataset order, as passed to anemoi (before remap)
  norm_mul, norm_add                        F32 [8]   anemoi's _norm_mul / _norm_add buffers (after remap)
  x_physical    F32 [B=2, T=2, E=1, N=50, V=8]   physical values of all dataset variables
  x_normalised  F32 [2, 2, 1, 50, 8]             pre_processors(x_physical, in_place=False)  (all 8 columns)
  y_normalised  F32 [2, 1, 1, 50, 6]             model-output-like normalised tensor, columns = model output order
                                                 z_500 t_850 2t sp tp cp (= dataset columns 0 1 2 3 6 7)
  y_physical    F32 [2, 1, 1, 50, 6]             post_processors(y_normalised, in_place=False,
                                                 data_index=data.output.full)
Header metadata "boreas": JSON with the config, variable order, indices, versions and the checks.

Checks done on every run: a plain numpy re-implementation of the formulas above reproduces norm_mul / norm_add,
x_normalised and y_physical bit for bit; the forward of the 6-column model input equals the matching columns of the
full forward bit for bit; the inverse with and without data_index agree bit for bit; the round trip
inverse(forward(x)) is close to x; the file re-reads identically.
"""

from __future__ import annotations

import os

os.environ["CUDA_VISIBLE_DEVICES"] = ""
os.environ.setdefault("OMP_NUM_THREADS", "1")
for _k in list(os.environ):
    if _k.startswith("ANEMOI_INFERENCE_"):
        del os.environ[_k]

import argparse  # noqa: E402
import copy  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_model_fixtures import DIAGNOSTIC  # noqa: E402
from make_model_fixtures import FORCING  # noqa: E402
from make_model_fixtures import VARIABLES  # noqa: E402
from make_model_fixtures import make_data_indices  # noqa: E402
from make_model_fixtures import package_versions  # noqa: E402
from make_model_fixtures import read_safetensors  # noqa: E402
from make_model_fixtures import save_safetensors  # noqa: E402
from make_model_fixtures import tensor_equal  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "tests" / "data" / "model" / "normaliser.safetensors"
SIZE_LIMIT_BYTES = 100_000

STATS_SEED = 20240501
INPUT_SEED = 4321
OUTPUT_SEED = 8765
B, T, E, N = 2, 2, 1, 50

NORMALISER_TARGET = "anemoi.models.preprocessing.normalizer.InputNormalizer"
NORMALISER_CONFIG = {
    "default": "mean-std",
    "std": ["tp", "cp"],
    "min-max": ["sp"],
    "max": ["z_500"],
    "none": ["lsm", "cos_latitude"],
    "remap": {"cp": "tp"},
}

# realistic base statistics (mean, stdev, minimum, maximum) per dataset variable
BASE_STATS = {
    "z_500": (5.52e4, 3.4e3, 4.62e4, 5.94e4),  # m2/s2
    "t_850": (274.8, 14.6, 229.5, 311.2),  # K
    "2t": (284.6, 17.9, 208.3, 329.7),  # K
    "sp": (9.81e4, 5.6e3, 4.98e4, 1.0815e5),  # Pa
    "lsm": (0.331, 0.447, 0.0, 1.0),
    "cos_latitude": (0.637, 0.308, 0.0, 1.0),
    "tp": (7.3e-4, 1.9e-3, 0.0, 0.118),  # m
    "cp": (4.1e-4, 1.2e-3, 0.0, 0.081),  # m (gets tp's statistics through remap)
}


def make_statistics() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(STATS_SEED)
    base = np.array([BASE_STATS[v] for v in VARIABLES], dtype=np.float64)  # [8, 4]
    pert = 1.0 + 0.01 * rng.standard_normal(base.shape)
    s = base * pert  # exact zeros (lsm/cos_latitude/tp/cp minimum) stay 0
    s[VARIABLES.index("lsm"), 3] = 1.0  # bounded fields keep their natural maximum
    s[VARIABLES.index("cos_latitude"), 3] = 1.0
    stats = {
        "mean": np.ascontiguousarray(s[:, 0]),
        "stdev": np.ascontiguousarray(s[:, 1]),
        "minimum": np.ascontiguousarray(s[:, 2]),
        "maximum": np.ascontiguousarray(s[:, 3]),
    }
    assert all(a.dtype == np.float64 and a.shape == (len(VARIABLES),) for a in stats.values())
    assert (stats["stdev"] > 0).all() and (stats["maximum"] > stats["minimum"]).all()
    return stats


def make_x_physical(stats: dict) -> np.ndarray:
    """[B, T, E, N, 8] float32 physical values around the means (bounded fields kept in range)."""
    rng = np.random.default_rng(INPUT_SEED)
    z = rng.standard_normal((B, T, E, N, len(VARIABLES)))
    x = stats["mean"] + stats["stdev"] * z
    for v in ("lsm", "cos_latitude"):
        i = VARIABLES.index(v)
        x[..., i] = np.clip(x[..., i], 0.0, 1.0)
    lsm = VARIABLES.index("lsm")
    x[..., lsm] = np.where(rng.random(x[..., lsm].shape) < 0.3, np.round(x[..., lsm]), x[..., lsm])
    for v in ("tp", "cp"):
        i = VARIABLES.index(v)
        x[..., i] = np.abs(z[..., i]) * stats["stdev"][i]
    return x.astype(np.float32)


def make_y_normalised(n_out: int, out_names: list[str]) -> np.ndarray:
    """[B, 1, E, N, V_out] float32 normalised model-output-like values: N(0,1) for mean-std / std columns,
    around 0.92 for z_500 (max) and 0.8 for sp (min-max), tp, cp >= 0 as after bounding."""
    rng = np.random.default_rng(OUTPUT_SEED)
    y = rng.standard_normal((B, 1, E, N, n_out))
    y[..., out_names.index("z_500")] = 0.92 + 0.03 * y[..., out_names.index("z_500")]
    y[..., out_names.index("sp")] = 0.8 + 0.1 * y[..., out_names.index("sp")]
    for v in ("tp", "cp"):
        i = out_names.index(v)
        y[..., i] = np.abs(y[..., i])
    return y.astype(np.float32)


def numpy_mul_add(stats: dict, cfg: dict, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Independent re-implementation of InputNormalizer.__init__'s buffers (float64 maths, float32 storage)."""
    mn, mx, mean, sd = (stats[k].copy() for k in ("minimum", "maximum", "mean", "stdev"))
    n2i = {n: i for i, n in enumerate(names)}
    remapped = {
        n2i[dst]: (mn[n2i[src]], mx[n2i[src]], mean[n2i[src]], sd[n2i[src]]) for dst, src in cfg["remap"].items()
    }
    for i, (a, b, c, d) in remapped.items():
        mn[i], mx[i], mean[i], sd[i] = a, b, c, d
    method = {v: m for m, vs in cfg.items() if m not in ("default", "remap") for v in vs}
    mul = np.ones(len(names), np.float32)
    add = np.zeros(len(names), np.float32)
    for n, i in n2i.items():
        m = method.get(n, cfg["default"])
        if m == "mean-std":
            mul[i], add[i] = np.float32(1.0 / sd[i]), np.float32(-mean[i] / sd[i])
        elif m == "std":
            mul[i] = np.float32(1.0 / sd[i])
        elif m == "min-max":
            r = mx[i] - mn[i]
            mul[i], add[i] = np.float32(1.0 / r), np.float32(-mn[i] / r)
        elif m == "max":
            mul[i] = np.float32(1.0 / mx[i])
        elif m != "none":
            raise ValueError(m)
    return mul, add


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Build Boreas' normaliser fixture with anemoi-models' InputNormalizer.")
    p.add_argument("--out", default=str(DEFAULT_OUT))
    args = p.parse_args(argv)
    out = Path(args.out)

    import torch
    from hydra.utils import instantiate

    from anemoi.models.preprocessing import Processors

    torch.manual_seed(0)
    torch.set_num_threads(1)

    di = make_data_indices()["data"]
    assert list(di.name_to_index) == VARIABLES
    assert di.forcing == FORCING and di.diagnostic == DIAGNOSTIC
    in_idx = di.data.input.full  # forward's columns when given the 6-column model input
    out_idx = di.data.output.full  # model output columns in dataset numbering
    out_names = list(di.model.output.name_to_index)
    in_names = list(di.model.input.name_to_index)
    assert [VARIABLES[i] for i in out_idx.tolist()] == out_names

    stats = make_statistics()
    stats_given = {k: v.copy() for k, v in stats.items()}  # anemoi's remap writes into the arrays it is given

    proc_cfg = {"_target_": NORMALISER_TARGET, "config": copy.deepcopy(NORMALISER_CONFIG)}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        norm = instantiate(proc_cfg, data_indices=di, statistics=stats_given)
    anemoi_warnings = [str(w.message) for w in caught]
    remap_mutated_input = {k: bool(not np.array_equal(stats_given[k], stats[k])) for k in stats}
    pre = Processors([["normalizer", norm]])
    post = Processors([["normalizer", norm]], inverse=True)

    mul = norm._norm_mul.detach().clone()
    add = norm._norm_add.detach().clone()
    assert mul.dtype == torch.float32 and add.dtype == torch.float32

    x_phys = torch.from_numpy(make_x_physical(stats))
    y_norm = torch.from_numpy(make_y_normalised(len(out_idx), out_names))

    with torch.no_grad():
        # pre_processors on the full batch (all dataset variables), as anemoi-training / predict_step apply it
        x_norm = pre(x_phys, in_place=False)
        # the same on the 6-column model input (shape dispatch -> data.input.full)
        x_norm_in = pre(x_phys[..., in_idx].clone(), in_place=False)
        # post_processors on the model output, as the tendency paths call it (explicit data_index) ...
        y_phys = post(y_norm, in_place=False, data_index=out_idx)
        # ... and as predict_step calls it (no data_index; shape dispatch -> _output_idx)
        y_phys_nodi = post(y_norm, in_place=False)
        roundtrip = post(x_norm, in_place=False)
    assert tensor_equal(x_phys, torch.from_numpy(make_x_physical(stats))), "in_place=False must not modify input"

    # ---- checks
    ref_mul, ref_add = numpy_mul_add(stats, NORMALISER_CONFIG, VARIABLES)
    checks = {}
    def bits_equal(a: np.ndarray, b: np.ndarray) -> bool:
        return a.dtype == b.dtype == np.float32 and bool(np.array_equal(a.view(np.int32), b.view(np.int32)))

    checks["norm_mul_equals_numpy_f64_to_f32"] = bits_equal(mul.numpy(), ref_mul)
    checks["norm_add_equals_numpy_f64_to_f32"] = bits_equal(add.numpy(), ref_add)
    xf = x_phys.numpy()
    ref_x = (xf * ref_mul) + ref_add  # float32 * float32 -> float32, then + float32
    assert ref_x.dtype == np.float32
    checks["x_normalised_equals_numpy_mul_then_add"] = bits_equal(ref_x, x_norm.numpy())
    oi = out_idx.numpy()
    ref_y = (y_norm.numpy() - ref_add[oi]) / ref_mul[oi]
    assert ref_y.dtype == np.float32
    checks["y_physical_equals_numpy_sub_then_div"] = bits_equal(ref_y, y_phys.numpy())
    checks["forward_model_input_6col_equals_full_columns"] = tensor_equal(x_norm_in, x_norm[..., in_idx].contiguous())
    checks["inverse_without_data_index_equals_with"] = tensor_equal(y_phys_nodi, y_phys)
    rt = roundtrip.numpy().astype(np.float64)
    scale = np.maximum(np.abs(xf.astype(np.float64)), np.abs(ref_add / ref_mul).astype(np.float64))
    checks["roundtrip_max_rel_err"] = float(np.max(np.abs(rt - xf) / np.maximum(scale, 1e-30)))
    checks["roundtrip_rel_err_below_1e-6"] = checks["roundtrip_max_rel_err"] < 1e-6
    checks["cp_statistics_equal_tp_after_remap_all_four"] = all(
        stats_given[k][VARIABLES.index("cp")] == stats[k][VARIABLES.index("tp")] for k in stats
    )
    checks["x_normalised_finite"] = bool(torch.isfinite(x_norm).all())
    failed = [k for k, v in checks.items() if isinstance(v, bool) and not v]
    if failed:
        print(f"error: checks failed: {failed}", file=sys.stderr)
        return 1

    # ---- file
    methods = {v: norm.methods.get(v, norm.default) for v in VARIABLES}
    import importlib.metadata as md

    meta = {
        "kind": "normaliser_reference",
        "generator": "tools/reference/make_normaliser_fixture.py",
        "anemoi_models_version": md.version("anemoi-models"),
        "processor": {"_target_": NORMALISER_TARGET, "config": NORMALISER_CONFIG},
        "variables": VARIABLES,
        "forcing": FORCING,
        "diagnostic": DIAGNOSTIC,
        "methods": methods,
        "model_input_names": in_names,
        "model_output_names": out_names,
        "data_input_full": in_idx.tolist(),
        "data_output_full": out_idx.tolist(),
        "formulas": {
            "mean-std": "mul=f32(1/stdev) add=f32(-mean/stdev)",
            "std": "mul=f32(1/stdev) add=0",
            "min-max": "mul=f32(1/(max-min)) add=f32(-min/(max-min))",
            "max": "mul=f32(1/max) add=0",
            "none": "mul=1 add=0",
            "note": "float64 arithmetic on the (remapped) statistics, one rounding to float32 per buffer entry",
            "forward": "x = f32(x*mul[c]); x = f32(x+add[c])",
            "inverse": "x = f32(x-add[c]); x = f32(x/mul[c])",
            "remap": "before computing: (minimum,maximum,mean,stdev)[dst] = (..)[src] for every remap dst: src",
        },
        "layouts": {
            "statistics.*": "F64 [8] dataset order, as given to anemoi (before remap)",
            "norm_mul/norm_add": "F32 [8] anemoi _norm_mul/_norm_add (dataset order, after remap)",
            "x_physical": "[B,T,E,N,V=8] all dataset variables",
            "x_normalised": "pre_processors(x_physical, in_place=False): all 8 columns",
            "y_normalised": "[B,1,E,N,6] columns = model_output_names",
            "y_physical": "post_processors(y_normalised, in_place=False, data_index=data_output_full)",
        },
        "seeds": {"statistics": STATS_SEED, "x_physical": INPUT_SEED, "y_normalised": OUTPUT_SEED},
        "anemoi_warnings": anemoi_warnings,
        "remap_overwrites_given_statistics_in_place": remap_mutated_input,
        "checks": checks,
        "versions": package_versions(),
    }
    tensors = {
        "statistics.mean": torch.from_numpy(stats["mean"].copy()),
        "statistics.stdev": torch.from_numpy(stats["stdev"].copy()),
        "statistics.minimum": torch.from_numpy(stats["minimum"].copy()),
        "statistics.maximum": torch.from_numpy(stats["maximum"].copy()),
        "norm_mul": mul.contiguous(),
        "norm_add": add.contiguous(),
        "x_physical": x_phys.contiguous(),
        "x_normalised": x_norm.contiguous(),
        "y_normalised": y_norm.contiguous(),
        "y_physical": y_phys.contiguous(),
    }
    save_safetensors(out, tensors, meta)

    back, back_meta = read_safetensors(out)
    assert set(back) == set(tensors) and back_meta["variables"] == VARIABLES
    for k, v in tensors.items():
        assert tensor_equal(back[k], v), k
    size = out.stat().st_size
    for k, v in tensors.items():
        print(f"  {k:20s} {str(v.dtype):15s} {list(v.shape)}")
    print(f"methods: {methods}")
    print(f"norm_mul: {mul.tolist()}")
    print(f"norm_add: {add.tolist()}")
    print(f"checks: {json.dumps(checks)}")
    if anemoi_warnings:
        print(f"anemoi warnings: {anemoi_warnings}")
    print(f"wrote {out} ({size} bytes)")
    if size > SIZE_LIMIT_BYTES:
        print(f"error: {out} is {size} bytes > {SIZE_LIMIT_BYTES}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

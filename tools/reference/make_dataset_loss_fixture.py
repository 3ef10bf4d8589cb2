#!/usr/bin/env python3
"""anemoi-training's loss on the first training batch drawn from tests/data/datasets/o16.zarr, with the tiny
model's committed `transformer` weights: the reference for the first-step loss of `boreas train --config tiny
--data o16.zarr --batch 2 --seed 42` (rollout 1 and 2).

Run from the repository root with the reference environment and the unpacked anemoi-training 0.16.0 and Lightning
wheels (as for make_sample_fixtures.py; nothing of anemoi-training is installed):

    .venv-ref/bin/python tools/reference/make_dataset_loss_fixture.py [--out tests/data/datasets/first_step.json] \
        [--anemoi-training /tmp/atw/src] [--lightning /tmp/atw/pl/src] [--check-rerun]   # about a minute of CPU

The script hides any GPU, uses one thread and removes ANEMOI_BASE_SEED / SLURM_JOB_ID (anemoi-training's base
seed is then its default 42).  Output is deterministic (--check-rerun writes it again in a fresh process and
compares the bytes).

Code path (anemoi's own code wherever it exists)
------------------------------------------------
For R = 1 and 2:
  1. batch: make_sample_fixtures.make_datamodule(store, R) -- anemoi-training's config composed with Hydra and
     validated by BaseSchema, Forecaster task, AnemoiDatasetsDataModule -> MultiDataset over a NativeGridDataset
     (multistep 2, rollout R, batch size 2, 1 worker, 1 replica, epoch 0) -- with the normaliser config of the
     tiny model (TINY_NORMALISER below, incl. min-max [sp] and remap {cp: tp}); set_comm_group_info as
     DDPGroupStrategy does for 1 GPU; the FIRST batch of the real torch DataLoader (datamodule._get_dataloader,
     worker process, worker_init_func).  Its rows are identified by an in-process worker run (torch WorkerInfo +
     worker_init_func + iter(dataset)): anchors (date index of the last input step) [6, 2] for R = 1 and [6, 1]
     for R = 2, the first batch of configuration "a" in samples.json.
  2. normalisation: anemoi-models' AnemoiModelInterface._build_processor_pair(data.datasets.data.processors,
     datamodule.data_indices["data"], datamodule.statistics["data"]) -- exactly how anemoi-training builds the
     model's pre_processors -- applied in place to the collated float32 batch [B, T+R, 1, 1600, 8] (dataset
     column order 2t cos_latitude cp lsm sp t_850 tp z_500), as BaseTrainingModule._normalize_batch does.
  3. column order: the normalised batch's columns are permuted to the tiny model's variable order
     z_500 t_850 2t sp lsm cos_latitude tp cp (the order of tests/data/model/transformer.yaml, for which the
     fixture weights were made; Boreas' batches use it).  The normaliser works per column (remap by name), so
     normalising then permuting equals permuting the statistics and normalising (checked bit for bit with a second
     InputNormalizer built on the model's IndexCollection and the store's statistics in model order).
  4. loss: make_training_fixtures.build_variant("transformer") (anemoi-models' AnemoiModelEncProcDec on
     tests/data/graphs/o16_o4.safetensors, weights tests/data/model/transformer.weights.safetensors, train mode,
     fp32, CPU) and make_training_fixtures.rollout_loss / loss_scalers: anemoi-training 0.16.0's MSE with
     area weights (unit-sum), pressure-level scaling (z_500 0.5, t_850 0.85), general-variable weights 1, mean over
     the 6 output variables, sum over the grid, mean over batch; rollout loss = mean over the R steps (prediction
     fed back, forcings refreshed from the batch).  Cross-checked with make_training_fixtures.anemoi_training_check
     (anemoi-training's own create_scalers / get_loss_function / Forecaster task, SingleTraining._step line by line):
     the loss must be bitwise equal.  An fp64 evaluation of the same code gives the fp32 rounding level.

Checks on every run: DataLoader batch == collate of the in-process worker's first two samples (bitwise); the anchors
equal samples.json's configuration a (epoch 0) first batch; the raw batch equals zarr-python's read of
data[p-1 : p+R+1] transposed to (dates, ensemble, grid, variables); _norm_mul/_norm_add equal an independent float64
numpy formula with the remap (make_normaliser_fixture.numpy_mul_add) on the zarr statistics; the normalised batch
equals numpy's float32 x * mul + add on the zarr read in model column order (bitwise); the loss is deterministic
(two evaluations bitwise equal) and equals anemoi-training's own loss code bitwise.

first_step.json (floats as float.hex() of the value, decimal as repr() of the same double; the loss is a float32
tensor, so its double is exactly the float32 value)
------------------------------------------------------------------------------------------------------------------
  store           path, dataset variables, model variables, the column permutation (model column j = dataset
                  column perm[j])
  config          command it mirrors, multistep, batch, seed, worker/replica setup, normaliser config
  normaliser      config, per model variable: method, statistics used (the store's, after remap) as hex,
                  _norm_mul/_norm_add (hex, model order); remap_effect: the store's own cp statistics and the mul cp
                  would get without the remap
  rollouts.R      anchors, positions (date indices read per row), dates, batch_shape, batch_sha256 (SHA-256 of the
                  normalised batch float32 little-endian C order [B, T+R, 1, 1600, 8], model column order),
                  raw_batch_sha256 (the same before normalisation), loss {hex, decimal, f32_hex}, loss_steps
                  [{hex, decimal}], loss_fp64 {hex, decimal, rel_diff_fp32, steps}, checks, anemoi_training_crosscheck
                  (loss, bitwise flags, scaler values), datamodule_statistics_changed_in_place_by_remap
  loss            definition, weights file, graph file
  loss            definition and code path
  checks          all_passed, count (the checks themselves: rollouts.R.checks)
  notes, versions
"""

from __future__ import annotations

import os
import sys

os.environ["CUDA_VISIBLE_DEVICES"] = ""
os.environ.setdefault("OMP_NUM_THREADS", "1")
for _k in ("ANEMOI_BASE_SEED", "SLURM_JOB_ID"):  # anemoi-training's base seed: its default 42
    os.environ.pop(_k, None)
for _k in list(os.environ):
    if _k.startswith("ANEMOI_INFERENCE_"):
        del os.environ[_k]

import argparse  # noqa: E402
import copy  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_sample_fixtures as msf  # noqa: E402
import make_training_fixtures as mtf  # noqa: E402
from make_dataset_fixtures import dump_json  # noqa: E402
from make_model_fixtures import GRAPH_DIR  # noqa: E402
from make_model_fixtures import MULTISTEP  # noqa: E402
from make_model_fixtures import VARIABLES  # noqa: E402
from make_model_fixtures import make_data_indices  # noqa: E402
from make_model_fixtures import package_versions  # noqa: E402
from make_model_fixtures import tensor_equal  # noqa: E402
from make_normaliser_fixture import numpy_mul_add  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "tests/data/datasets/first_step.json"
DEFAULT_STORE = REPO / "tests/data/datasets/o16.zarr"
SAMPLES_JSON = REPO / "tests/data/datasets/samples.json"
BUDGET = 12_000  # bytes
VARIANT = "transformer"
ROLLOUTS = (1, 2)
BATCH_SIZE = msf.BATCH_SIZE  # 2
# the tiny model's normaliser (src/model/builtin_configs.cpp `tiny`, make_normaliser_fixture.NORMALISER_CONFIG)
TINY_NORMALISER = {
    "default": "mean-std",
    "std": ["tp", "cp"],
    "min-max": ["sp"],
    "max": ["z_500"],
    "none": ["lsm", "cos_latitude"],
    "remap": {"cp": "tp"},
}
EXPECTED_ANCHORS = {1: [6, 2], 2: [6, 1]}  # samples.json configuration a, epoch 0, first DataLoader batch
STAT_NAMES = ("mean", "stdev", "minimum", "maximum")

NOTES = [
    "The batch columns are the tiny model's variable order (transformer.yaml data.variables), not the store's: the "
    "fixture weights were made for that order.  anemoi-training itself would build its IndexCollection from the "
    "store's order (2t cos_latitude cp lsm sp t_850 tp z_500), i.e. a model whose input columns are permuted; "
    "the batch here is anemoi's normalised batch with its columns permuted afterwards (equal bit for bit to "
    "normalising in model order, see checks).",
    "remap {cp: tp} replaces all four statistics of cp (minimum, maximum, mean, stdev) by tp's before the "
    "methods are applied; cp is 'std', so only stdev matters: cp is divided by tp's stdev, not its own.  anemoi "
    "writes the remapped values INTO the statistics arrays it is given (normalizer.py: minimum[idx], ... = ...): "
    "the datamodule's statistics dict is modified in place (rollouts.R.datamodule_statistics_changed_in_place_by_remap; minimum is unchanged only because cp's and tp's "
    "minimum are both 0).",
    "sp is min-max: mul = 1/(max-min), add = -min/(max-min) with the store's minimum/maximum (float64, rounded "
    "once to float32); z_500 is max: mul = 1/max, add = 0.",
    "The normaliser is applied to all 8 columns of the batch (x.mul_(_norm_mul).add_(_norm_add), two float32 "
    "roundings, no FMA), including the diagnostics tp/cp which are loss targets.",
    "The loss is computed on the normalised batch in fp32 with model.train() (the tiny model has no dropout); "
    "the loss's decimal string is repr() of the float32 value widened to double.",
]


def hx(v) -> str:
    return float(np.float64(v)).hex()


def sha_f32(a: np.ndarray) -> str:
    assert a.dtype == np.float32
    return hashlib.sha256(np.ascontiguousarray(a).astype("<f4").tobytes()).hexdigest()


def bits_equal(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype == np.float32 and a.shape == b.shape and bool(
        np.array_equal(a.view(np.uint32), b.view(np.uint32)))


def num(v) -> dict:
    f = float(v)
    return {"hex": f.hex(), "decimal": repr(f)}


def first_batches_from_samples_json() -> dict[int, list[int]]:
    doc = json.loads(SAMPLES_JSON.read_text())
    out = {}
    for c in doc["configurations"]:
        if c["name"] == "a" and c["epoch"] == 0:
            out[int(c["rollout"])] = [int(p) for p in c["ranks"][0]["dataloader_batches"][0]]
    return out


def build(args) -> dict:
    import torch

    torch.manual_seed(0)
    torch.set_num_threads(1)
    import numcodecs.blosc

    numcodecs.blosc.use_threads = False
    at = msf.import_anemoi_training([args.anemoi_training, args.lightning])
    import zarr
    from hydra.utils import instantiate
    from torch.utils.data import default_collate

    from anemoi.models.interface import AnemoiModelInterface

    os.chdir(REPO)
    store = os.path.relpath(Path(args.store).resolve(), REPO)
    # make_sample_fixtures.training_config reads its module's NORMALISER_CONFIG: the tiny model's config here
    msf.NORMALISER_CONFIG = copy.deepcopy(TINY_NORMALISER)

    checks: dict = {}
    raw_root = zarr.open(store, mode="r")
    raw = raw_root["data"]
    zstats = {k: np.asarray(raw_root[k][:], dtype=np.float64) for k in STAT_NAMES}
    expected_from_samples = first_batches_from_samples_json()

    # ---- the model (once): anemoi-models with the committed fixture weights, train mode
    model, graph, gtensors, _gmeta, _cfg = mtf.build_variant(VARIANT)
    di_model = make_data_indices()["data"]
    assert list(di_model.name_to_index) == VARIABLES
    out_names = list(di_model.model.output.name_to_index)
    area_weight = torch.from_numpy(np.array(gtensors["nodes/data/area_weight"], dtype=np.float32))
    scalers = mtf.loss_scalers(area_weight, out_names)

    doc: dict = {"notes": NOTES}
    rollouts: dict = {}
    normaliser_doc = None
    for rollout in ROLLOUTS:
        n_t = MULTISTEP + rollout
        dm, config = msf.make_datamodule(store, rollout)
        ds = dm.ds_train
        assert type(ds).__name__ == "MultiDataset" and type(ds.data_readers["data"]).__name__ == "NativeGridDataset"
        reader = ds.data_readers["data"]
        ds_vars = list(reader.variables)
        perm = [ds_vars.index(v) for v in VARIABLES]  # model column j = dataset column perm[j]
        dates = [str(d) for d in reader.dates.astype("datetime64[s]")]
        msf.comm_info(ds, 0, 1, 1, 1)

        # in-process worker: which anchors the first batch holds
        stream, info = msf.run_worker(ds, 0, 1)
        flat = info["permutation"][:BATCH_SIZE]
        anchors = [int(ds.anchors[i][1]) for i in flat]
        # the real thing: the first batch of the torch DataLoader with a worker process
        loader = dm._get_dataloader(ds, "training")
        assert loader.num_workers == 1 and loader.batch_size == BATCH_SIZE
        batches = [b["data"].clone() for b in loader]
        del loader
        batch = batches[0]
        c: dict = {}
        c["dataloader_first_batch_equals_in_process_worker"] = bool(
            torch.equal(batch, default_collate([s for s in stream[:BATCH_SIZE]])["data"]))
        c["anchors_equal_samples_json_configuration_a"] = anchors == expected_from_samples[rollout]
        c["anchors_equal_expected"] = anchors == EXPECTED_ANCHORS[rollout]
        positions = [list(range(p - 1, p - 1 + n_t)) for p in anchors]
        direct = np.stack([np.transpose(raw[ps[0]:ps[-1] + 1], (0, 2, 3, 1)) for ps in positions])
        c["raw_batch_equals_zarr_read"] = bits_equal(batch.numpy(), direct)
        assert batch.dtype == torch.float32 and list(batch.shape) == [BATCH_SIZE, n_t, 1, raw.shape[3], len(ds_vars)]

        # normaliser as anemoi-training builds the model's pre_processors
        stats = dm.statistics["data"]
        stats_before = {k: np.array(stats[k], dtype=np.float64, copy=True) for k in STAT_NAMES}
        c["datamodule_statistics_equal_zarr_statistics"] = all(
            np.array_equal(stats_before[k], zstats[k]) for k in STAT_NAMES)
        processors_cfg = msf.get_processors_cfg(config)
        assert msf.to_plain(processors_cfg)["normalizer"]["config"] == TINY_NORMALISER, processors_cfg
        pre, _post = AnemoiModelInterface._build_processor_pair(processors_cfg, dm.data_indices["data"], stats)
        stats_after = dm.statistics["data"]
        mutated = {k: bool(not np.array_equal(stats_after[k], stats_before[k])) for k in STAT_NAMES}
        norm = pre.processors["normalizer"]
        mul_ds = norm._norm_mul.numpy().copy()
        add_ds = norm._norm_add.numpy().copy()
        xb = batch.clone()
        ptr = xb.data_ptr()
        with torch.no_grad():
            xn_ds = pre(xb)  # in place, all 8 columns (BaseTrainingModule._normalize_batch)
        assert xn_ds.data_ptr() == ptr
        xn = xn_ds[..., perm].contiguous()  # model column order
        mul, add = mul_ds[perm], add_ds[perm]

        # cross-checks of the normalisation
        stats_model = {k: zstats[k][perm].copy() for k in STAT_NAMES}
        ref_mul, ref_add = numpy_mul_add({k: v.copy() for k, v in stats_model.items()}, TINY_NORMALISER, VARIABLES)
        c["norm_mul_add_equal_numpy_float64_formula_with_remap"] = bits_equal(mul, ref_mul) and bits_equal(add, ref_add)
        norm_m = instantiate({"_target_": "anemoi.models.preprocessing.normalizer.InputNormalizer",
                              "config": copy.deepcopy(TINY_NORMALISER)},
                             data_indices=di_model, statistics={k: v.copy() for k, v in stats_model.items()})
        c["normaliser_on_model_order_equals_permuted_dataset_order"] = (
            bits_equal(norm_m._norm_mul.numpy(), mul) and bits_equal(norm_m._norm_add.numpy(), add))
        raw_model = np.ascontiguousarray(direct[..., perm])
        ref_xn = (raw_model * ref_mul).astype(np.float32) + ref_add
        c["normalised_batch_equals_numpy_zarr_read_mul_then_add_float32"] = bits_equal(ref_xn, xn.numpy())
        with torch.no_grad():
            xn_m = norm_m(torch.from_numpy(raw_model.copy()), in_place=False)
        c["model_order_normaliser_forward_equals_batch"] = bits_equal(xn_m.numpy(), xn.numpy())
        c["normalised_batch_finite"] = bool(torch.isfinite(xn).all())

        # loss (make_training_fixtures' explicit anemoi-training 0.16 loss/rollout) and its cross-checks
        loss, steps = mtf.rollout_loss(mtf.anemoi_forward(model), xn, rollout, di_model, scalers)
        grads = mtf.grads_of(model, loss)
        loss2, steps2 = mtf.rollout_loss(mtf.anemoi_forward(model), xn, rollout, di_model, scalers)
        model.zero_grad(set_to_none=True)
        c["loss_deterministic_bitwise"] = bool(tensor_equal(loss.detach(), loss2.detach()) and all(
            tensor_equal(a.detach(), b.detach()) for a, b in zip(steps, steps2)))
        m64 = copy.deepcopy(model).double()
        sc64 = {k: (d, s.double()) for k, (d, s) in scalers.items()}
        with torch.no_grad():
            l64, steps64 = mtf.rollout_loss(mtf.anemoi_forward(m64), xn.double(), rollout, di_model, sc64)
        del m64
        cross = mtf.anemoi_training_check(args.anemoi_training, model, graph, xn, rollout, loss, grads)
        model.zero_grad(set_to_none=True)
        c["anemoi_training_loss_bitwise_equal"] = cross["loss_bitwise_equal"]
        c["anemoi_training_grads_bitwise_equal"] = cross["grads_bitwise_equal"]
        assert loss.dtype == torch.float32
        lf = float(loss)
        print(f"R={rollout}: anchors {anchors} loss {lf!r} ({lf.hex()}) steps {[float(s) for s in steps]} "
              f"fp64 {float(l64)!r}; anemoi-training {cross['loss']!r}")

        rollouts[str(rollout)] = {
            "anchors": anchors,
            "flat_indices": [int(i) for i in flat],
            "positions": positions,
            "dates": [[dates[p] for p in ps] for ps in positions],
            "batch_shape": list(xn.shape),
            "batch_sha256": sha_f32(xn.numpy()),
            "raw_batch_sha256": sha_f32(raw_model),
            "loss": {**num(lf), "f32_hex": np.float32(lf).view(np.uint32).item().to_bytes(4, "big").hex()},
            "loss_steps": [num(s) for s in steps],
            "loss_fp64": {**num(l64), "rel_diff_fp32": abs(lf - float(l64)) / abs(float(l64)),
                          "steps": [num(s) for s in steps64]},
            "anemoi_training_crosscheck": {
                "loss": num(cross["loss"]), "loss_bitwise_equal": cross["loss_bitwise_equal"],
                "grads_bitwise_equal": cross["grads_bitwise_equal"],
                "grads_max_rel_to_tensor_max": cross["grads_vs_fixture"]["max_rel_to_tensor_max"],
                "scaler_values": cross["scaler_values"],
            },
            "checks": c,
            "datamodule_statistics_changed_in_place_by_remap": mutated,
        }
        checks.update({f"r{rollout}.{k}": v for k, v in c.items() if isinstance(v, bool)})

        if normaliser_doc is None:
            stats_used = {k: np.asarray(stats_after[k], dtype=np.float64)[perm] for k in STAT_NAMES}
            methods = {v: norm.methods.get(v, norm.default) for v in VARIABLES}
            cp, tp = VARIABLES.index("cp"), VARIABLES.index("tp")
            normaliser_doc = {
                "config": copy.deepcopy(TINY_NORMALISER),
                "built_by": "anemoi.models.interface.AnemoiModelInterface._build_processor_pair(config.data.datasets."
                            "data.processors, datamodule.data_indices['data'], datamodule.statistics['data']); "
                            "values reordered from dataset to model order",
                "variables": list(VARIABLES),
                "methods": [methods[v] for v in VARIABLES],
                "norm_mul": [hx(v) for v in mul],
                "norm_add": [hx(v) for v in add],
                "statistics_used": {k: [hx(v) for v in stats_used[k]] for k in STAT_NAMES},
                "remap_effect": {
                    "cp_store_statistics": {k: hx(stats_model[k][cp]) for k in STAT_NAMES},
                    "cp_stdev_used_equals_tp_stdev": hx(stats_used["stdev"][cp]),
                    "cp_mul_used": hx(mul[cp]),
                    "cp_mul_without_remap": hx(np.float32(1.0 / stats_model["stdev"][cp])),
                    "all_four_statistics_of_cp_replaced_by_tp": all(
                        stats_used[k][cp] == stats_model[k][tp] for k in STAT_NAMES),
                },
                "applied_as": "x = f32(x * mul[c]); x = f32(x + add[c]) over all 8 columns, on the physical float32 "
                              "batch (two roundings, no FMA)",
            }
            doc["store"] = {"path": store, "dataset_variables": ds_vars, "model_variables": list(VARIABLES),
                            "model_column_from_dataset_column": perm, "grid_size": int(reader.grid_size),
                            "dates": len(dates), "missing": sorted(int(i) for i in reader.missing)}

    doc["rollouts"] = rollouts
    doc["normaliser"] = normaliser_doc
    doc["config"] = {
        "mirrors": "boreas train --config tiny --data tests/data/datasets/o16.zarr --batch 2 --seed 42 (first step)",
        "multistep_input": MULTISTEP, "batch_size": BATCH_SIZE, "base_seed": 42, "epoch": 0, "replicas": 1,
        "workers": 1, "rollouts": list(ROLLOUTS),
        "sampler": "anemoi-training 0.16.0 MultiDataset (see samples.json configuration a); anchors = date index of "
                   "the last input step; rows read positions p-1 .. p+R",
        "model": f"tiny {VARIANT}: tests/data/model/{VARIANT}.yaml, tests/data/model/{VARIANT}.weights.safetensors, "
                 f"graph {os.path.relpath(GRAPH_DIR / 'o16_o4.safetensors', REPO)}; model.train(), fp32, CPU, 1 thread",
    }
    doc["loss"] = {
        "definition": "anemoi-training 0.16.0 MSE (tests/data/train/recipe.json 'loss'): l_r = 1/B * sum_{b,n} w[n] "
                      "* (1/6) * sum_v s[v] (p - y)^2, w = area_weight / sum(area_weight) of the graph's data nodes, "
                      "s = [0.5, 0.85, 1, 1, 1, 1] for z_500 t_850 2t sp tp cp; loss = (sum_r l_r) / R; inputs "
                      "batch[:, 0:2] (6 input columns), target of step r batch[:, 2+r] (6 output columns), "
                      "rollout feeds the prediction back and refreshes lsm/cos_latitude from batch[:, 2+r]",
        "code": "make_training_fixtures.rollout_loss / loss_step / loss_scalers (explicit) with the anemoi-models "
                "model; cross-checked by make_training_fixtures.anemoi_training_check: anemoi-training's own "
                "losses.scalers.create_scalers, losses.get_loss_function, tasks.forecaster.Forecaster (get_inputs, "
                "steps, get_targets, advance_input) as SingleTraining._step (rollouts.R.anemoi_training_crosscheck)",
    }
    doc["checks"] = {"all_passed": all(v is True for v in checks.values()), "count": len(checks),
                     "details": "rollouts.R.checks"}
    doc["versions"] = {**msf.versions(at), **{k: v for k, v in package_versions().items()
                                               if k in ("torch-geometric", "safetensors", "machine",
                                                        "torch_num_threads", "CUDA_VISIBLE_DEVICES")}}
    bad = [k for k, v in checks.items() if v is not True]
    if bad:
        raise AssertionError(f"checks failed: {bad}")
    return doc


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--store", type=Path, default=DEFAULT_STORE)
    ap.add_argument("--anemoi-training", default="/tmp/atw/src", help="unpacked anemoi-training 0.16.0 wheel")
    ap.add_argument("--lightning", default="/tmp/atw/pl/src", help="unpacked pytorch-lightning & co. wheels")
    ap.add_argument("--budget", type=int, default=BUDGET, help="maximum bytes of --out (0 = no check)")
    ap.add_argument("--check-rerun", action="store_true", help="also write into a temporary file and compare")
    args = ap.parse_args()
    args.out = args.out.resolve()
    args.store = args.store.resolve()

    import logging

    logging.disable(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        doc = build(args)
    text = dump_json(doc) + "\n"
    json.loads(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    size = len(text.encode())
    print(f"wrote {args.out} ({size} bytes)")
    status = 0
    if args.budget and size > args.budget:
        print(f"{args.out} is {size} bytes > budget {args.budget}", file=sys.stderr)
        status = 1
    if args.check_rerun:
        with tempfile.TemporaryDirectory() as tmp:
            other = Path(tmp) / "first_step.json"
            subprocess.run([sys.executable, __file__, "--out", str(other), "--store", str(args.store),
                            "--anemoi-training", args.anemoi_training, "--lightning", args.lightning, "--budget", "0"],
                           check=True, stdout=subprocess.DEVNULL)
            same = other.read_bytes() == args.out.read_bytes()
        print("rerun: byte-identical" if same else "rerun differs")
        status = status or (0 if same else 1)
    return status


if __name__ == "__main__":
    sys.exit(main())

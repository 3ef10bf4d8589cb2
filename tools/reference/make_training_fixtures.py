#!/usr/bin/env python3
"""Reference fixtures for Boreas' training step (loss, rollout, backward, AdamW) on the `tiny` model.

Run from the repository root with the reference environment (tools/reference/requirements.txt), after
make_model_fixtures.py (this script reads tests/data/graphs and tests/data/model):

    .venv-ref/bin/python tools/reference/make_training_fixtures.py [--out tests/data/train]
        [--anemoi-training DIR]     # optional cross-check against anemoi-training's own loss/rollout code

The script sets CUDA_VISIBLE_DEVICES="" and OMP_NUM_THREADS=1 itself (before torch is imported).  Everything is
fp32 on the CPU and deterministic (a second run writes byte-identical files).

What is computed
----------------
The model is anemoi-models' AnemoiModelEncProcDec built exactly as make_model_fixtures.py builds it (same graph
files, same config, weights loaded from tests/data/model/NAME.weights.safetensors -- checked bit for bit against
make_model_fixtures.init_weights), in train() mode.  The training step is anemoi-training 0.16.0's
(anemoi-core @ training-0.16.0 / models-0.18.0: train/methods/single.py SingleTraining._step, tasks/forecaster.py,
losses/base.py FunctionalLoss + BaseLoss.reduce, losses/mse.py, losses/scalers/*), re-implemented explicitly below:

Loss for one rollout step, prediction p and target y in normalised space, shape [B, 1, E, N, V] (V = the 6 model
outputs z_500 t_850 2t sp tp cp; y = batch[:, T+r:T+r+1][..., data.output.full]):

    d   = (p - y)^2
    d   = d * s_pl[v] * s_gv[v] * w[n] * s_t[t]        scalers in this order (training_loss/single.yaml)
    l_r = mean_{b,t,e} ( sum_{t,n} ( mean_v d ) )      BaseLoss.reduce: mean over variables, sum over time and
                                                       grid, mean over batch/time/ensemble
        = 1/(B*E) * sum_{b,e,n} w[n] * (1/V) * sum_v s_v (p - y)^2        (n_step_output = 1, s_t = 1)

  w[n]    = area_weight[n] / sum(area_weight)            GraphNodeAttributeScaler(area_weight, norm "unit-sum"):
            float32 division by the float32 torch.sum; "unit-sum" and "divide by the sum" are the same thing, and
            the graph file's unit-max normalisation cancels.  Stored as batch.safetensors:node_weights.
  s_pl[v] = max(0.2, 0.001 * level)  if v is in group "pl" (name "<param>_<level>" with a digit level and param in
            [q, t, u, v, w, z]), else 1      ReluVariableLevelScaler(group pl, y_intercept 0.2, slope 0.001);
            variable_groups {default: sfc, pl: {param: [q,t,u,v,w,z]}} (config/training/single.yaml)
  s_gv[v] = general_variable weight of the param = 1 for every variable here (GENERAL_VARIABLE_WEIGHTS; anemoi's
            shipped global.yaml would give z 12, t 6, sp 10, tp 0.025, cp 0.0025 -- deliberately not used)
  s_t     = 1 (UniformTimeStepScaler, unit-sum over n_step_output = 1)
  => s_v = s_pl * s_gv = [0.5, 0.85, 1, 1, 1, 1] for [z_500, t_850, 2t, sp, tp, cp]

Rollout (R steps, SingleTraining._step + Forecaster.advance_input):

    x = batch[:, 0:T][..., data.input.full]                    # [B, T=2, E, N, 6], diagnostics dropped
    loss = zeros(1)
    for r in 0..R-1:
        p   = model(x)                                         # [B, 1, E, N, 6]
        l_r = loss_step(p, batch[:, T+r:T+r+1][..., data.output.full])
        if r < R-1:
            x = x.roll(-1, dims=1)                             # oldest step moves to the end ...
            x[:, -1, ..., model.input.prognostic] = p[:, -1, ..., model.output.prognostic]   # no detach
            x[:, -1, ..., model.input.forcing]    = batch[:, T+r, ..., data.input.forcing]   # ... and is overwritten
        loss = loss + l_r
    loss = loss * (1 / R)                                      # mean over rollout steps

Gradients: loss.backward() through the whole rollout; the gradient of every parameter (model.named_parameters(),
anemoi's names; a parameter registered under two names, X.proc.layer_norm_attention / _dest, appears once).

AdamW (torch.optim.AdamW, anemoi's optimization/optimizer/adamw.yaml: betas (0.9, 0.95), torch defaults eps 1e-8,
weight_decay 0.01; one param group with every parameter, so weight decay applies to ALL parameters incl. biases,
LayerNorm and trainable tensors), lr from timm's CosineLRScheduler (warmup_lr_init 0) stepped per optimiser step by
Lightning (scheduler.step_update(global_step) after each step): step k uses lr(k-1), so step 1 uses lr = 0 and
leaves the weights unchanged (spec/model-audit.md 1.6).  The fixture therefore runs TWO steps on the same batch
(grad clipping by value 32 before each step, as Lightning does): step 1 (lr 0: weights unchanged, bit for bit; Adam
state m, v, step advance), step 2 (lr = base/warmup_t, gradient = step 1's gradient bit for bit because the weights
did not change) and stores the weights after step 2.

Files (tests/data/train/)
-------------------------
batch.safetensors            targets [B, R_MAX, E, N, 6] (loss target of step r = batch[:, T+r, ..., data.output.full]),
                             forcings [B, R_MAX-1, E, N, 2] (batch[:, T+r, ..., data.input.forcing]), node_weights [N],
                             scaler.* [6]/[1]; the first T steps are tests/data/model/transformer.io.safetensors:input
                             (header boreas.refs); every other batch entry is never read.
NAME.grads.safetensors       grad.<param> (F32, param shape), loss [1], loss_steps [R]; header metadata: variant,
                             rollout, loss, weights file, batch, completeness.  transformer (R=1),
                             transformer.rollout2 (R=2): every parameter; to fit the size budget graphtransformer (R=1):
                             processor.proc.0.*, processor_graph_provider.* and SUBSET_EXTRA; gnn (R=1): processor.*,
                             processor_graph_provider.* and SUBSET_EXTRA.
adamw.safetensors            param.<name> after the two AdamW steps (full tensors); header: lrs, hyper-parameters.
recipe.json                  everything above in words and numbers, checks, versions, sizes.

Checks on every run: weights file == seeded init; first-step output (train mode) == transformer.io output bit for
bit; NaN in never-read batch entries do not reach the loss; gradients finite, non-zero, deterministic (two runs bit
for bit); an independent plain-torch re-implementation of the forward (make_model_fixtures.spec_forward) gives the
same loss and gradients (so anemoi does not stop gradients anywhere the spec does not); fp32 vs fp64 gradients
(the fp32 noise level, for choosing test tolerances); torch.autograd.gradcheck in float64 of the loss and of the
rollout loss w.r.t. two small parameters; AdamW reproduced by an explicit float32 op sequence bit for bit and by
a float64 formula; optionally anemoi-training's own loss/task code (--anemoi-training) gives the same loss and
gradients.
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
import hashlib  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import types  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from convert_anemoi_graph import read_boreas_graph  # noqa: E402
from make_model_fixtures import BATCH  # noqa: E402
from make_model_fixtures import ENSEMBLE  # noqa: E402
from make_model_fixtures import FORCING  # noqa: E402
from make_model_fixtures import DIAGNOSTIC  # noqa: E402
from make_model_fixtures import GRAPH_DIR  # noqa: E402
from make_model_fixtures import MULTISTEP  # noqa: E402
from make_model_fixtures import VARIABLES  # noqa: E402
from make_model_fixtures import VARIANTS  # noqa: E402
from make_model_fixtures import _json_text  # noqa: E402
from make_model_fixtures import anemoi_config  # noqa: E402
from make_model_fixtures import build_model  # noqa: E402
from make_model_fixtures import heterodata_from_boreas  # noqa: E402
from make_model_fixtures import init_weights  # noqa: E402
from make_model_fixtures import load_weights  # noqa: E402
from make_model_fixtures import make_data_indices  # noqa: E402
from make_model_fixtures import make_input  # noqa: E402
from make_model_fixtures import package_versions  # noqa: E402
from make_model_fixtures import read_safetensors  # noqa: E402
from make_model_fixtures import save_safetensors  # noqa: E402
from make_model_fixtures import spec_forward  # noqa: E402
from make_model_fixtures import state_dict_tensors  # noqa: E402
from make_model_fixtures import tensor_equal  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
MODEL_DIR = REPO / "tests" / "data" / "model"
SIZE_BUDGET_BYTES = 1_300_000  # everything under tests/data/train

T = MULTISTEP  # input steps
R_MAX = 2  # longest rollout in the fixtures; the batch holds T + R_MAX steps
BATCH_SEED = 5678

# ---- loss configuration (anemoi-training 0.16.0 config/training/{single,scalers/global,training_loss/single}.yaml)
VARIABLE_GROUPS = {"default": "sfc", "pl": {"param": ["q", "t", "u", "v", "w", "z"]}}
PRESSURE_LEVEL = {"group": "pl", "y_intercept": 0.2, "slope": 0.001}  # ReluVariableLevelScaler
GENERAL_VARIABLE_WEIGHTS = {"default": 1}  # GeneralVariableLossScaler weights (all 1, see the docstring)
LOSS_SCALERS = ["pressure_level", "general_variable", "node_weights", "time_steps"]  # order of application

# ---- optimiser (anemoi optimizer/adamw.yaml + torch defaults) and schedule (timm CosineLRScheduler semantics)
ADAMW = {"lr": 1e-3, "betas": (0.9, 0.95), "eps": 1e-8, "weight_decay": 0.01}
SCHEDULE = {"t_initial": 10, "lr_min": 3e-7, "warmup_t": 2, "warmup_lr_init": 0.0}
ADAMW_STEPS = 2
GRAD_CLIP_VALUE = 32.0  # training/single.yaml gradient_clip {val: 32, algorithm: value}
# anemoi's shipped schedule, tabulated for a scheduler test (single GPU: effective lr = local lr)
ANEMOI_DEFAULT_SCHEDULE = {"base_lr": 0.625e-4, "t_initial": 150000, "lr_min": 3e-7, "warmup_t": 1000, "warmup_lr_init": 0.0}
SCHEDULE_TABLE_T = [0, 1, 2, 500, 999, 1000, 1001, 37500, 75000, 149999, 150000, 150001, 300000]

# ---- what is written
CASES = {
    # file stem: variant, rollout, which gradients are stored
    "transformer": {"variant": "transformer", "rollout": 1, "select": "all"},
    "transformer.rollout2": {"variant": "transformer", "rollout": 2, "select": "all"},
    # size budget: the GT processor's layer 1 is left out (its parameter gradients use the same GraphTransformerConv
    # code as layer 0 and the mappers; layer 0's gradients already need the backward through layer 1); the GNN
    # processor, whose code no other variant uses, is stored completely
    "graphtransformer": {"variant": "graphtransformer", "rollout": 1, "select": ["processor.proc.0.", "processor_graph_provider."]},
    "gnn": {"variant": "gnn", "rollout": 1, "select": ["processor.", "processor_graph_provider."]},
}
ADAMW_CASE = "transformer"  # R = 1
SUBSET_EXTRA = [
    "node_attributes.trainable_tensors.hidden.trainable",
    "encoder.data.emb_nodes_src.weight",
    "decoder.data.node_data_extractor.1.weight",
    "decoder.data.node_data_extractor.1.bias",
]


# ----------------------------------------------------------------------------------------------------------------
# batch
# ----------------------------------------------------------------------------------------------------------------
def _smooth(rng, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Standardised smooth field on the data nodes (same recipe as make_model_fixtures.make_input)."""
    f = np.zeros(lat.size)
    for _ in range(6):
        m, k = rng.integers(0, 5), rng.integers(0, 5)
        f += rng.normal() * np.cos(m * lon + rng.uniform(0, 2 * np.pi)) * np.cos(k * lat + rng.uniform(0, 2 * np.pi))
    f += 0.1 * rng.normal(size=lat.size)
    return (f - f.mean()) / f.std()


def make_batch(coords: np.ndarray, x_in: np.ndarray) -> np.ndarray:
    """Full normalised batch [B, T + R_MAX, E, N, 8] in dataset order.

    t < T: the model input x_in (= transformer.io input) in the input columns, NaN in the diagnostic columns
    (never read).  t >= T: prognostic = previous step + 0.4 * smooth tendency; tp = 0.8 * relu(smooth + 0.3)
    (>= 0, zero over part of the globe), cp = tp * sigmoid(1.5 * smooth) (0 <= cp <= tp); forcings at t = T are
    deliberately different from t < T (lsm + 0.4 smooth clipped to [0, 1], cos_latitude + 0.25 smooth) so that a
    missing or wrong forcing refresh in the rollout changes the result; forcings at t = T + R_MAX - 1 are NaN
    (never read: the last step does not advance the input)."""
    rng = np.random.default_rng(BATCH_SEED)
    lat = coords[:, 0].astype(np.float64)
    lon = coords[:, 1].astype(np.float64)
    n = lat.size
    n2i = {v: i for i, v in enumerate(VARIABLES)}
    in_names = [v for v in VARIABLES if v not in DIAGNOSTIC]
    b_ = np.full((BATCH, T + R_MAX, ENSEMBLE, n, len(VARIABLES)), np.nan)
    for j, v in enumerate(in_names):
        b_[:, :T, :, :, n2i[v]] = x_in[..., j]
    for b in range(BATCH):
        for t in range(T, T + R_MAX):
            for v in VARIABLES:
                i = n2i[v]
                if v in FORCING:
                    if t == T + R_MAX - 1:
                        continue  # stays NaN
                    base = b_[b, T - 1, 0, :, i]
                    if v == "lsm":
                        b_[b, t, 0, :, i] = np.clip(base + 0.4 * _smooth(rng, lat, lon), 0.0, 1.0)
                    else:
                        b_[b, t, 0, :, i] = base + 0.25 * _smooth(rng, lat, lon)
                elif v == "tp":
                    b_[b, t, 0, :, i] = 0.8 * np.maximum(_smooth(rng, lat, lon) + 0.3, 0.0)
                elif v == "cp":
                    b_[b, t, 0, :, i] = b_[b, t, 0, :, n2i["tp"]] / (1.0 + np.exp(-1.5 * _smooth(rng, lat, lon)))
                else:
                    b_[b, t, 0, :, i] = b_[b, t - 1, 0, :, i] + 0.4 * _smooth(rng, lat, lon)
    return b_.astype(np.float32)


# ----------------------------------------------------------------------------------------------------------------
# loss, rollout
# ----------------------------------------------------------------------------------------------------------------
def split_name(name: str) -> tuple[str, int | None]:
    """anemoi-training utils/variables_metadata: '<param>_<level>' when the last '_' part is all digits."""
    parts = name.split("_")
    if len(parts) > 1 and parts[-1].isdigit():
        return name[: -len(parts[-1]) - 1], int(parts[-1])
    return name, None


def variable_scalers(out_names: list[str]) -> dict:
    """pressure_level and general_variable scalers [V_out] float32 (model output order)."""
    import torch

    pl = torch.ones(len(out_names), dtype=torch.float32)
    gv = torch.empty(len(out_names), dtype=torch.float32)
    for idx, name in enumerate(out_names):
        param, level = split_name(name)
        group = "pl" if param in VARIABLE_GROUPS["pl"]["param"] else VARIABLE_GROUPS["default"]
        if group == PRESSURE_LEVEL["group"]:
            pl[idx] = max(PRESSURE_LEVEL["y_intercept"], float(level) * PRESSURE_LEVEL["slope"])
        gv[idx] = GENERAL_VARIABLE_WEIGHTS.get(param, GENERAL_VARIABLE_WEIGHTS.get("default", 1.0))
    return {"pressure_level": pl, "general_variable": gv}


def loss_scalers(area_weight, out_names: list[str]) -> dict:
    """{name: (dims, float32 tensor)} in the order they are applied; dims index [B, T, E, N, V]."""
    import torch

    aw = area_weight.reshape(-1).to(torch.float32)
    vs = variable_scalers(out_names)
    t_w = torch.ones(1, dtype=torch.float32)
    return {
        "pressure_level": ((4,), vs["pressure_level"]),
        "general_variable": ((4,), vs["general_variable"]),
        "node_weights": ((3,), aw / torch.sum(aw)),
        "time_steps": ((1,), t_w / torch.sum(t_w)),
    }


def loss_step(pred, target, scalers: dict):
    """anemoi-training MSELoss (FunctionalLoss.forward + BaseLoss.reduce), pred/target [B, 1, E, N, V]."""
    import torch

    out = torch.square(pred - target)
    for name in LOSS_SCALERS:
        dims, s = scalers[name]
        shape = [1] * out.ndim
        for d, n in zip(dims, s.shape):
            shape[d] = n
        out = out * s.reshape(shape).to(out.dtype)
    out = torch.mean(out, dim=4, keepdim=True)  # variables
    out = torch.sum(out, dim=(1, 3), keepdim=True)  # time, grid
    out = torch.mean(out, dim=(0, 1, 2))  # batch, time, ensemble
    return out.squeeze(0).squeeze(-1)


def rollout_loss(forward, batch, rollout: int, di, scalers: dict, *, refresh_forcing: bool = True, detach: bool = False):
    """SingleTraining._step for one dataset; forward(x) -> [B, 1, E, N, V_out].  Returns (loss [1], [l_r]).
    refresh_forcing=False / detach=True are deliberate bugs, only used to measure how much the fixture notices them."""
    import torch

    x = batch[:, 0:T][..., di.data.input.full]
    loss = torch.zeros(1, dtype=batch.dtype)
    steps = []
    for r in range(rollout):
        y_pred = forward(x)
        y = batch[:, T + r : T + r + 1][..., di.data.output.full]
        l_r = loss_step(y_pred, y, scalers)
        steps.append(l_r)
        if r < rollout - 1:
            x = x.roll(-1, dims=1)
            prog = y_pred[:, -1, ..., di.model.output.prognostic]
            x[:, -1, ..., di.model.input.prognostic] = prog.detach() if detach else prog
            if refresh_forcing:
                x[:, -1, ..., di.model.input.forcing] = batch[:, T + r, ..., di.data.input.forcing]
        loss = loss + l_r
    loss = loss * (1.0 / rollout)
    return loss, steps


def anemoi_forward(model):
    return lambda x: model({"data": x})["data"]


def grads_of(model, loss) -> dict:
    model.zero_grad(set_to_none=True)
    loss.backward()
    return {k: p.grad.detach().clone() for k, p in model.named_parameters()}


# ----------------------------------------------------------------------------------------------------------------
# optimiser
# ----------------------------------------------------------------------------------------------------------------
def timm_cosine_lr(t: int, base: float, t_initial: int, lr_min: float, warmup_t: int, warmup_lr_init: float) -> float:
    """timm CosineLRScheduler._get_lr (cycle_mul 1, cycle_decay 1, cycle_limit 1, k_decay 1, warmup_prefix False,
    no noise) for one param group."""
    if t < warmup_t:
        return warmup_lr_init + t * ((base - warmup_lr_init) / warmup_t)
    i = t // t_initial
    t_curr = t - t_initial * i
    if i < 1:
        return lr_min + 0.5 * (base - lr_min) * (1 + math.cos(math.pi * t_curr / t_initial))
    return lr_min


def adamw_explicit_f32(p0: dict, g: dict, lrs: list[float]) -> dict:
    """torch 2.10 _single_tensor_adam (decoupled weight decay, amsgrad False, foreach False) as explicit float32
    ops, one gradient `g` for every step."""
    import torch

    b1, b2 = ADAMW["betas"]
    out = {}
    for k, p in p0.items():
        p = p.clone()
        m = torch.zeros_like(p)
        v = torch.zeros_like(p)
        for step, lr in enumerate(lrs, start=1):
            p.mul_(1 - lr * ADAMW["weight_decay"])
            m.lerp_(g[k], 1 - b1)
            v.mul_(b2).addcmul_(g[k], g[k], value=1 - b2)
            bc1 = 1 - b1**step
            bc2 = 1 - b2**step
            denom = (v.sqrt() / (bc2**0.5)).add_(ADAMW["eps"])
            p.addcdiv_(m, denom, value=-(lr / bc1))
        out[k] = p
    return out


def adamw_f64(p0: dict, g: dict, lrs: list[float]) -> dict:
    """AdamW (Loshchilov & Hutter, decoupled decay) textbook formula in float64."""
    b1, b2 = ADAMW["betas"]
    out = {}
    for k, p in p0.items():
        p = p.double()
        gd = g[k].double()
        m = 0 * p
        v = 0 * p
        for step, lr in enumerate(lrs, start=1):
            p = p * (1 - lr * ADAMW["weight_decay"])
            m = b1 * m + (1 - b1) * gd
            v = b2 * v + (1 - b2) * gd * gd
            p = p - lr * (m / (1 - b1**step)) / ((v / (1 - b2**step)).sqrt() + ADAMW["eps"])
        out[k] = p
    return out


# ----------------------------------------------------------------------------------------------------------------
# comparisons
# ----------------------------------------------------------------------------------------------------------------
def grad_diff(ref: dict, got: dict) -> dict:
    """Worst per-tensor max|got - ref| / max|ref| over the tensors whose gradient is not ~0, the worst element-wise
    relative error over elements above 1e-3 of their tensor's max, and the tensors whose reference gradient is below
    1e-6 of the largest |gradient| of the model (zero in exact arithmetic: only rounding noise; given as
    max|got| / global max)."""
    gmax = max(float(r.abs().max()) for r in ref.values())
    worst, worst_name, worst_el, tiny = 0.0, None, 0.0, {}
    for k, r in ref.items():
        r64, g64 = r.double(), got[k].double()
        d = (g64 - r64).abs()
        scale = float(r64.abs().max())
        if scale < 1e-6 * gmax:
            tiny[k] = max(scale, float(g64.abs().max())) / gmax
            continue
        rel = float(d.max()) / scale
        if rel > worst:
            worst, worst_name = rel, k
        big = r64.abs() > 1e-3 * scale
        worst_el = max(worst_el, float((d[big] / r64.abs()[big]).max()))
    return {
        "max_rel_to_tensor_max": worst,
        "worst_tensor": worst_name,
        "max_rel_elementwise_above_1e-3_of_max": worst_el,
        "near_zero_tensors_max_over_global_max": tiny,
    }


def loss_diff(a, b) -> float:
    return abs(float(a) - float(b)) / abs(float(b))


# ----------------------------------------------------------------------------------------------------------------
# optional: anemoi-training's own loss / task code
# ----------------------------------------------------------------------------------------------------------------
def import_anemoi_training(path: str | None):
    """Import anemoi.training (installed, or an unpacked anemoi-training wheel at `path`).  Without
    pytorch-lightning, the Lightning-only plot-adapter module imported by anemoi.training.tasks is stubbed."""
    if path:
        sys.path.append(str(Path(path).resolve()))
    try:
        import pytorch_lightning  # noqa: F401
    except ImportError:
        cb = types.ModuleType("anemoi.training.diagnostics.callbacks")
        cb.__path__ = []
        pa = types.ModuleType("anemoi.training.diagnostics.callbacks.plot_adapter")
        pa.__getattr__ = lambda name: type(name, (), {"__init__": lambda self, *a, **k: None})
        sys.modules.setdefault("anemoi.training.diagnostics.callbacks", cb)
        sys.modules.setdefault("anemoi.training.diagnostics.callbacks.plot_adapter", pa)
    import anemoi.training

    return anemoi.training


def anemoi_training_check(path: str | None, model, graph, batch, rollout: int, ref_loss, ref_grads) -> dict:
    """Loss and gradients with anemoi-training's create_scalers / get_loss_function / Forecaster task, following
    SingleTraining._step line by line (the Lightning module itself needs a full config and a dataset)."""
    import importlib.metadata as md

    import torch
    import yaml

    at = import_anemoi_training(path)
    from anemoi.training.losses import get_loss_function
    from anemoi.training.losses.scalers import create_scalers
    from anemoi.training.tasks.forecaster import Forecaster
    from anemoi.training.utils.index_space import IndexSpace
    from anemoi.training.utils.masks import NoOutputMask
    from anemoi.training.utils.variables_metadata import ExtractVariableGroupAndLevel
    from omegaconf import OmegaConf

    cfg_dir = Path(at.__file__).parent / "config" / "training"
    global_scalers = yaml.safe_load((cfg_dir / "scalers" / "global.yaml").read_text())["datasets"]["data"]
    loss_cfg = yaml.safe_load((cfg_dir / "training_loss" / "single.yaml").read_text())["datasets"]["data"]
    groups = yaml.safe_load((cfg_dir / "single.yaml").read_text())["variable_groups"]["datasets"]["data"]
    assert loss_cfg["scalers"] == LOSS_SCALERS, loss_cfg["scalers"]
    assert groups == VARIABLE_GROUPS, groups
    scalers_cfg = {k: copy.deepcopy(global_scalers[k]) for k in LOSS_SCALERS}
    assert {k: scalers_cfg["pressure_level"][k] for k in ("group", "y_intercept", "slope")} == PRESSURE_LEVEL
    scalers_cfg["general_variable"]["weights"] = dict(GENERAL_VARIABLE_WEIGHTS)

    di = make_data_indices()
    task = Forecaster(multistep_input=T, multistep_output=1, timestep="6h", rollout={"start": rollout, "maximum": rollout})
    scalers, _ = create_scalers(
        OmegaConf.create(scalers_cfg),
        data_indices=di["data"],
        task=task,
        graph_data=graph,
        statistics=None,
        statistics_tendencies=None,
        metadata_extractor=ExtractVariableGroupAndLevel(variable_groups=groups, metadata_variables=None),
        nodes_name="data",
        output_mask=NoOutputMask(),
    )
    loss_fn = get_loss_function(OmegaConf.create(loss_cfg), scalers, di["data"], graph_data=graph, data_node_name="data")

    b = {"data": batch[:, : T + rollout]}
    model.zero_grad(set_to_none=True)
    loss = torch.zeros(1, dtype=batch.dtype, requires_grad=False)
    x = task.get_inputs(b, data_indices=di)
    steps = task.steps("training")
    for i, kw in enumerate(steps):
        y_pred = model(x)
        y = task.get_targets(b, **kw)
        loss_next = loss_fn(
            y_pred["data"], y["data"], pred_layout=IndexSpace.MODEL_OUTPUT, target_layout=IndexSpace.DATA_FULL
        )
        if i < len(steps) - 1:
            x = task.advance_input(x, y_pred, b, **kw, data_indices=di, output_mask={"data": NoOutputMask()})
        loss = loss + loss_next
    loss *= 1.0 / len(steps)
    loss.backward()
    grads = {k: p.grad.detach().clone() for k, p in model.named_parameters()}
    try:
        version = md.version("anemoi-training")
    except md.PackageNotFoundError:
        version = getattr(at, "__version__", None)
    return {
        "anemoi_training_version": version,
        "scaler_values": {k: v[1].reshape(-1)[:8].tolist() for k, v in scalers.items() if k != "node_weights"},
        "loss": float(loss),
        "loss_bitwise_equal": bool(tensor_equal(loss.detach(), ref_loss.detach())),
        "grads_bitwise_equal": all(tensor_equal(grads[k], ref_grads[k]) for k in ref_grads),
        "grads_vs_fixture": grad_diff(ref_grads, grads),
    }


def timm_check(path: str | None) -> dict:
    """timm's CosineLRScheduler (scheduler/{scheduler,cosine_lr}.py only; importing the timm package needs
    torchvision) against timm_cosine_lr on the fixture's and anemoi's default schedules."""
    import importlib.util

    import torch

    root = None
    for cand in ([Path(path)] if path else []) + [Path(p) for p in sys.path if p]:
        if (cand / "timm" / "scheduler" / "cosine_lr.py").exists():
            root = cand / "timm"
            break
    if root is None:
        return {"run": False, "reason": "timm not found"}
    for name, sub in (("_boreas_timm", root), ("_boreas_timm.scheduler", root / "scheduler")):
        mod = types.ModuleType(name)
        mod.__path__ = [str(sub)]
        sys.modules.setdefault(name, mod)
    spec_s = importlib.util.spec_from_file_location("_boreas_timm.scheduler.scheduler", root / "scheduler" / "scheduler.py")
    ms = importlib.util.module_from_spec(spec_s)
    sys.modules[spec_s.name] = ms
    spec_s.loader.exec_module(ms)
    spec_c = importlib.util.spec_from_file_location("_boreas_timm.scheduler.cosine_lr", root / "scheduler" / "cosine_lr.py")
    mc = importlib.util.module_from_spec(spec_c)
    sys.modules[spec_c.name] = mc
    spec_c.loader.exec_module(mc)

    import importlib.metadata as md

    try:
        version = md.version("timm")
    except md.PackageNotFoundError:
        version = None
    out = {"run": True, "timm_version": version}
    for label, base, sch, ts in (
        ("fixture", ADAMW["lr"], SCHEDULE, range(0, 14)),
        ("anemoi_default", ANEMOI_DEFAULT_SCHEDULE["base_lr"], ANEMOI_DEFAULT_SCHEDULE, SCHEDULE_TABLE_T),
    ):
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=base)
        s = mc.CosineLRScheduler(
            opt, t_initial=sch["t_initial"], lr_min=sch["lr_min"], warmup_t=sch["warmup_t"],
            warmup_lr_init=sch["warmup_lr_init"], t_in_epochs=False,
        )
        first = opt.param_groups[0]["lr"]  # what the first optimizer step uses
        same = first == timm_cosine_lr(0, base, sch["t_initial"], sch["lr_min"], sch["warmup_t"], sch["warmup_lr_init"])
        for t in ts:
            s.step_update(t)
            same = same and opt.param_groups[0]["lr"] == timm_cosine_lr(
                t, base, sch["t_initial"], sch["lr_min"], sch["warmup_t"], sch["warmup_lr_init"]
            )
        out[label] = {"lr_before_first_step": first, "all_equal_bitwise": bool(same)}
    return out


# ----------------------------------------------------------------------------------------------------------------
def sha256_tensor(t) -> str:
    return hashlib.sha256(t.contiguous().numpy().tobytes()).hexdigest()


def build_variant(variant: str):
    """anemoi model of a variant with the weights of tests/data/model (checked against the seeded init)."""
    import torch

    var = VARIANTS[variant]
    gtensors, gmeta = read_boreas_graph(GRAPH_DIR / f"{var['graph']}.safetensors")
    graph = heterodata_from_boreas(gtensors, gmeta)
    cfg = anemoi_config(var["processor"])
    model = build_model(graph, cfg)
    init_weights(model)
    seeded = state_dict_tensors(model)
    stored = load_weights(MODEL_DIR / f"{variant}.weights.safetensors")
    if sorted(stored) != sorted(seeded) or not all(tensor_equal(stored[k], seeded[k]) for k in seeded):
        raise SystemExit(f"tests/data/model/{variant}.weights.safetensors differs from the seeded init: regenerate it")
    model.load_state_dict(stored, strict=True)
    model.train()
    names = [k for k, _ in model.named_parameters()]
    assert all(k in stored for k in names)
    assert all(p.requires_grad for p in model.parameters())
    return model, graph, gtensors, gmeta, cfg


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Build Boreas training-step fixtures (tiny model, anemoi reference).")
    p.add_argument("--out", default=str(REPO / "tests" / "data" / "train"))
    p.add_argument("--budget", type=int, default=SIZE_BUDGET_BYTES, help="size budget in bytes (0: no check)")
    p.add_argument(
        "--anemoi-training",
        default=None,
        metavar="DIR",
        help="directory holding an unpacked anemoi-training 0.16.0 wheel (and timm); if not given, an installed "
        "anemoi-training is used when importable, else the cross-check is skipped",
    )
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")
    t_start = time.time()

    import torch
    from safetensors.torch import save_file  # noqa: F401  (fail early without safetensors)

    torch.manual_seed(0)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)

    di = make_data_indices()["data"]
    out_names = list(di.model.output.name_to_index)
    assert out_names == ["z_500", "t_850", "2t", "sp", "tp", "cp"], out_names
    checks: dict = {}

    # ---- batch: the first T steps are the model fixtures' input
    tio, _ = read_safetensors(MODEL_DIR / "transformer.io.safetensors")
    gt0, _ = read_boreas_graph(GRAPH_DIR / "o16_o4.safetensors")
    coords = gt0["nodes/data/coords"]
    x_in = make_input(coords)
    assert tensor_equal(torch.from_numpy(x_in), tio["input"]), "transformer.io input is not make_input(): regenerate"
    batch = torch.from_numpy(make_batch(coords, x_in))
    assert torch.equal(batch[:, :T][..., di.data.input.full], tio["input"])
    area_weight = torch.from_numpy(np.array(gt0["nodes/data/area_weight"], dtype=np.float32))
    for gname in {v["graph"] for v in VARIANTS.values()}:
        gt_, _ = read_boreas_graph(GRAPH_DIR / f"{gname}.safetensors")
        assert tensor_equal(torch.from_numpy(np.array(gt_["nodes/data/area_weight"])), area_weight), gname
    scalers = loss_scalers(area_weight, out_names)
    s_v = scalers["pressure_level"][1] * scalers["general_variable"][1]
    expected_sv = torch.tensor([0.5, 0.85, 1, 1, 1, 1], dtype=torch.float32)
    assert torch.equal(s_v, expected_sv), s_v
    nan_mask = torch.isnan(batch)
    checks["batch_nan_entries"] = {
        "count": int(nan_mask.sum()),
        "where": "t < T: tp, cp (diagnostics are not model inputs); t = T+R_MAX-1: lsm, cos_latitude (the last step "
        "does not advance the input)",
    }

    # ---- gradients for every case
    results: dict = {}
    models: dict = {}
    for stem, case in CASES.items():
        t0 = time.time()
        variant, rollout = case["variant"], case["rollout"]
        if variant not in models:
            models[variant] = build_variant(variant)
        model, graph, gtensors, gmeta, cfg = models[variant]
        b = batch[:, : T + rollout]
        loss, steps = rollout_loss(anemoi_forward(model), b, rollout, di, scalers)
        assert torch.isfinite(loss).all(), (stem, loss)
        grads = grads_of(model, loss)
        loss2, _ = rollout_loss(anemoi_forward(model), b, rollout, di, scalers)
        grads2 = grads_of(model, loss2)
        det = tensor_equal(loss.detach(), loss2.detach()) and all(tensor_equal(grads[k], grads2[k]) for k in grads)
        assert det, f"{stem}: not deterministic"
        for k, g in grads.items():
            assert bool(torch.isfinite(g).all()), (stem, k)
            assert bool((g != 0).any()), f"{stem}: gradient of {k} is all zero"
        c: dict = {"deterministic_bitwise": det}
        if variant == "transformer" and rollout == 1:
            with torch.no_grad():
                y_train = model({"data": b[:, :T][..., di.data.input.full]})["data"]
            c["first_step_output_equals_transformer_io_output_bitwise"] = tensor_equal(y_train, tio["output"])
            assert c["first_step_output_equals_transformer_io_output_bitwise"]

        # independent plain-torch forward (spec re-implementation) -> same loss and gradients?
        sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
        pnames = [k for k, _ in model.named_parameters()]
        for k in pnames:
            sd[k].requires_grad_(True)

        def spec_fwd(x, sd=sd, gtensors=gtensors, proc=VARIANTS[variant]["processor"]):
            return spec_forward(sd, gtensors, x, proc)["output"]

        sl, _ = rollout_loss(spec_fwd, b, rollout, di, scalers)
        sl.backward()
        sg = {k: sd[k].grad for k in pnames}
        c["spec_reimplementation"] = {"loss_rel_diff": loss_diff(sl, loss), **grad_diff(grads, sg)}

        # fp64 reference (same anemoi code, model and batch in float64)
        m64 = copy.deepcopy(model).double()
        sc64 = {k: (d, s.double()) for k, (d, s) in scalers.items()}
        l64, steps64 = rollout_loss(anemoi_forward(m64), b.double(), rollout, di, sc64)
        g64 = grads_of(m64, l64)
        c["fp32_vs_fp64"] = {
            "loss_rel_diff": loss_diff(loss, l64),
            "loss_fp64": float(l64),
            **grad_diff(g64, grads),
        }
        if rollout > 1:  # how strongly would two plausible rollout bugs show?
            lb, _ = rollout_loss(anemoi_forward(model), b, rollout, di, scalers, refresh_forcing=False)
            gb = grads_of(model, lb)
            c["bug_sensitivity"] = {
                "loss_rel_change_without_forcing_refresh": loss_diff(lb, loss),
                "grads_without_forcing_refresh": {
                    k: v for k, v in grad_diff(grads, gb).items() if k in ("max_rel_to_tensor_max", "worst_tensor")
                },
            }
            lb, _ = rollout_loss(anemoi_forward(model), b, rollout, di, scalers, detach=True)
            gb = grads_of(model, lb)
            c["bug_sensitivity"]["grads_with_prediction_detached"] = {
                k: v for k, v in grad_diff(grads, gb).items() if k in ("max_rel_to_tensor_max", "worst_tensor")
            }
            model.zero_grad(set_to_none=True)
        # gradients that vanish in exact arithmetic: the key bias of graph attention (q.b_k is the same for every
        # edge into a destination, and the softmax over those edges cancels it)
        c["zero_in_exact_arithmetic"] = sorted(c["fp32_vs_fp64"]["near_zero_tensors_max_over_global_max"])
        assert all(k.endswith("lin_key.bias") for k in c["zero_in_exact_arithmetic"]), c["zero_in_exact_arithmetic"]
        # gradcheck (float64) of the rollout loss w.r.t. two small parameters
        if stem in ("transformer", "transformer.rollout2"):
            from torch.func import functional_call

            gc = {}
            for pname in ("decoder.data.node_data_extractor.1.bias", "processor.proc.1.attention.projection.bias"):
                p0 = dict(m64.named_parameters())[pname].detach().clone().requires_grad_(True)

                def f(pv, pname=pname):
                    fwd = lambda x: functional_call(m64, {pname: pv}, ({"data": x},))["data"]  # noqa: E731
                    return rollout_loss(fwd, b.double(), rollout, di, sc64)[0]

                gc[pname] = bool(torch.autograd.gradcheck(f, (p0,), eps=1e-6, atol=1e-7, rtol=1e-4))
            c["gradcheck_fp64_rollout_loss"] = gc
        del m64

        results[stem] = {"loss": loss.detach().clone(), "steps": [s.detach().clone() for s in steps], "grads": grads, "checks": c}
        print(
            f"{stem}: loss {float(loss):.9g} steps {[float(s) for s in steps]} ({time.time() - t0:.1f} s); "
            f"spec re-impl grads {c['spec_reimplementation']['max_rel_to_tensor_max']:.1e}, "
            f"fp32 vs fp64 grads {c['fp32_vs_fp64']['max_rel_to_tensor_max']:.1e} "
            f"({c['fp32_vs_fp64']['worst_tensor']})"
        )
        assert c["spec_reimplementation"]["max_rel_to_tensor_max"] < 1e-4, c
        assert c["fp32_vs_fp64"]["max_rel_to_tensor_max"] < 1e-4, c
        if "gradcheck_fp64_rollout_loss" in c:
            assert all(c["gradcheck_fp64_rollout_loss"].values()), c

    # the NaN in never-read entries really are never read (above: losses finite); R=2 != R=1
    assert not tensor_equal(results["transformer"]["grads"]["encoder.data.emb_nodes_src.weight"],
                            results["transformer.rollout2"]["grads"]["encoder.data.emb_nodes_src.weight"])
    assert tensor_equal(results["transformer.rollout2"]["steps"][0], results["transformer"]["steps"][0])

    # ---- gradcheck of the loss on small random float64 tensors
    g = torch.Generator().manual_seed(7)
    pred = torch.randn(2, 1, 1, 7, 6, generator=g, dtype=torch.float64, requires_grad=True)
    targ = torch.randn(2, 1, 1, 7, 6, generator=g, dtype=torch.float64, requires_grad=True)
    aw = torch.rand(7, generator=g, dtype=torch.float64) + 0.5
    sc_small = {k: (d, s.double()) for k, (d, s) in loss_scalers(aw, out_names).items()}
    checks["gradcheck_fp64_loss_step"] = bool(
        torch.autograd.gradcheck(lambda a, b_: loss_step(a, b_, sc_small), (pred, targ), eps=1e-6, atol=1e-8)
    )
    with torch.no_grad():  # the closed form of spec/model.md 9.2
        w = sc_small["node_weights"][1]  # float32 a/sum(a), as anemoi stores it
        sv = sc_small["pressure_level"][1] * sc_small["general_variable"][1]
        closed = ((pred - targ) ** 2 * sv).mean(-1).mul(w).sum() / (2 * 1)
        checks["loss_equals_spec_closed_form_fp64_rel"] = loss_diff(loss_step(pred, targ, sc_small), closed)
    assert checks["gradcheck_fp64_loss_step"] and checks["loss_equals_spec_closed_form_fp64_rel"] < 1e-14

    # ---- AdamW: two steps with the warm-up schedule on the transformer R=1 case
    model = copy.deepcopy(models[ADAMW_CASE][0])
    params = dict(model.named_parameters())
    p0 = {k: v.detach().clone() for k, v in params.items()}
    opt = torch.optim.AdamW(
        list(params.values()), lr=ADAMW["lr"], betas=ADAMW["betas"], eps=ADAMW["eps"],
        weight_decay=ADAMW["weight_decay"], foreach=False,
    )
    lr_of = lambda t: timm_cosine_lr(t, ADAMW["lr"], **SCHEDULE)  # noqa: E731
    for group in opt.param_groups:
        group["lr"] = lr_of(0)  # timm: update_groups(warmup_lr_init) at construction
    lrs, adam_checks, snapshots, step_grads = [], {}, [], []
    clip_max = []
    for step in range(1, ADAMW_STEPS + 1):
        opt.zero_grad(set_to_none=True)
        loss, _ = rollout_loss(anemoi_forward(model), batch[:, : T + 1], 1, di, scalers)
        loss.backward()
        step_grads.append({k: v.grad.detach().clone() for k, v in params.items()})
        clip_max.append(max(float(v.grad.abs().max()) for v in params.values()))
        torch.nn.utils.clip_grad_value_(list(params.values()), GRAD_CLIP_VALUE)
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        snapshots.append({k: v.detach().clone() for k, v in params.items()})
        for group in opt.param_groups:  # Lightning: scheduler.step_update(global_step) after the optimizer step
            group["lr"] = lr_of(step)
    ref_grads = results[ADAMW_CASE]["grads"]
    adam_checks["step_grads_equal_fixture_grads_bitwise"] = all(
        tensor_equal(sg[k], ref_grads[k]) for sg in step_grads for k in ref_grads
    )
    adam_checks["max_abs_grad_before_clipping"] = max(clip_max)
    adam_checks["clipping_changed_nothing"] = max(clip_max) <= GRAD_CLIP_VALUE
    adam_checks["step1_weights_unchanged_bitwise"] = all(tensor_equal(snapshots[0][k], p0[k]) for k in p0)
    final = snapshots[-1]
    adam_checks["explicit_f32_op_sequence_equals_torch_bitwise"] = all(
        tensor_equal(v, final[k]) for k, v in adamw_explicit_f32(p0, ref_grads, lrs).items()
    )
    f64 = adamw_f64(p0, ref_grads, lrs)
    dd = {k: (final[k].double() - p0[k].double()) for k in p0}
    d64 = {k: (f64[k] - p0[k].double()) for k in p0}
    adam_checks["f64_formula_vs_torch_max_abs_over_lr"] = max(float((dd[k] - d64[k]).abs().max()) for k in p0) / lrs[-1]
    ulp = {k: torch.finfo(torch.float32).eps * p0[k].double().abs() for k in p0}
    wd = {k: lrs[-1] * ADAMW["weight_decay"] * p0[k].double().abs() for k in p0}
    adam_checks["weight_decay_term_median_in_ulps_of_weight"] = float(
        torch.cat([(wd[k] / ulp[k]).reshape(-1) for k in p0]).median()
    )
    adam_checks["max_abs_update_over_lr"] = max(float(dd[k].abs().max()) for k in p0) / lrs[-1]
    assert adam_checks["step_grads_equal_fixture_grads_bitwise"] and adam_checks["step1_weights_unchanged_bitwise"]
    assert adam_checks["explicit_f32_op_sequence_equals_torch_bitwise"] and adam_checks["clipping_changed_nothing"]
    assert lrs[0] == 0.0 and lrs[1] > 0
    print(f"adamw: lrs {lrs}; checks {json.dumps(adam_checks)}")

    # ---- optional cross-checks with anemoi-training's and timm's own code
    cross: dict = {}
    try:
        for stem in ("transformer", "transformer.rollout2"):
            model, graph = models["transformer"][0], models["transformer"][1]
            cross[stem] = anemoi_training_check(
                args.anemoi_training, model, graph, batch, CASES[stem]["rollout"], results[stem]["loss"],
                results[stem]["grads"],
            )
            print(f"anemoi-training {stem}: {json.dumps(cross[stem])}")
            assert cross[stem]["grads_vs_fixture"]["max_rel_to_tensor_max"] < 1e-6, cross[stem]
    except ImportError as exc:
        cross = {"run": False, "reason": f"anemoi-training not importable ({exc}); pass --anemoi-training DIR"}
        print(f"anemoi-training cross-check skipped: {exc}")
    timm_cross = timm_check(args.anemoi_training)
    print(f"timm scheduler cross-check: {json.dumps(timm_cross)}")

    # ---- write files
    written: dict[str, Path] = {}
    input_ref = {
        "file": "tests/data/model/transformer.io.safetensors",
        "tensor": "input",
        "sha256_of_f32_bytes": sha256_tensor(tio["input"]),
    }
    loss_definition = (
        "l_r = 1/(B*E) * sum_{b,e,n} w[n] * (1/V) * sum_v s[v] * (p - y)^2 (anemoi-training 0.16.0 MSELoss: square, "
        "scalers pressure_level, general_variable, node_weights, time_steps multiplied in that order, mean over "
        "variables, sum over time and grid, mean over batch/time/ensemble); w = area_weight / sum(area_weight) "
        "(batch.safetensors:node_weights); s = scaler.pressure_level * scaler.general_variable = [0.5, 0.85, 1, 1, 1, 1]; "
        "loss = (sum_r l_r) / R"
    )
    batch_meta = {
        "kind": "training_batch",
        "generator": "tools/reference/make_training_fixtures.py",
        "layouts": {
            "targets": f"[B={BATCH}, R_MAX={R_MAX}, E={ENSEMBLE}, N, 6] = batch[:, T+r, ..., data_output_full]: the "
            f"loss target of rollout step r, model output order {out_names}",
            "forcings": f"[B, R_MAX-1, E, N, 2] = batch[:, T+r, ..., data_input_forcing]: the forcings written into the "
            "input after rollout step r (lsm, cos_latitude); the last step's forcings are never read",
            "node_weights": "[N] float32 = area_weight / torch.sum(area_weight) (data nodes of the graph file)",
            "scaler.pressure_level": "[6] model output order z_500 t_850 2t sp tp cp: max(0.2, 0.001*level) for pl vars",
            "scaler.general_variable": "[6] all 1",
            "scaler.time_steps": "[1] = 1 (unit-sum over n_step_output = 1)",
        },
        "assemble": f"full batch [B, T+R, E, N, 8] (dataset order {VARIABLES}) for rollout R <= {R_MAX}: "
        "batch[:, 0:T, ..., data_input_full] = input (refs); batch[:, T+r, ..., data_output_full] = targets[:, r]; "
        "batch[:, T+r, ..., data_input_forcing] = forcings[:, r] for r < R-1; every other entry (diagnostics at t < T, "
        "forcings at t = T+R-1) is never read: fill it with NaN and the loss must stay finite",
        "refs": {"input": input_ref},
        "T": T,
        "data_input_full": di.data.input.full.tolist(),
        "data_output_full": di.data.output.full.tolist(),
        "data_input_forcing": di.data.input.forcing.tolist(),
        "model_output_names": out_names,
        "seed": BATCH_SEED,
    }
    bt = {
        "targets": batch[:, T:][..., di.data.output.full].contiguous(),
        "forcings": batch[:, T : T + R_MAX - 1][..., di.data.input.forcing].contiguous(),
        "node_weights": scalers["node_weights"][1].contiguous(),
        "scaler.pressure_level": scalers["pressure_level"][1].contiguous(),
        "scaler.general_variable": scalers["general_variable"][1].contiguous(),
        "scaler.time_steps": scalers["time_steps"][1].contiguous(),
    }
    path = out_dir / "batch.safetensors"
    save_safetensors(path, bt, batch_meta)
    written[path.name] = path
    back, _ = read_safetensors(path)  # the documented assembly gives back the batch used (NaN where never read)
    re = torch.full_like(batch, float("nan"))
    re[:, :T, ..., di.data.input.full] = tio["input"]
    for r in range(R_MAX):
        re[:, T + r, ..., di.data.output.full] = back["targets"][:, r]
        if r < R_MAX - 1:
            re[:, T + r, ..., di.data.input.forcing] = back["forcings"][:, r]
    assert torch.equal(re.nan_to_num(123.0), batch.nan_to_num(123.0)) and torch.equal(re.isnan(), batch.isnan())

    case_docs = {}
    for stem, case in CASES.items():
        r = results[stem]
        names = list(r["grads"])
        if case["select"] == "all":
            keep = names
        else:
            keep = [k for k in names if any(k.startswith(p) for p in case["select"]) or k in SUBSET_EXTRA]
            assert all(k in names for k in SUBSET_EXTRA)
        tensors = {f"grad.{k}": r["grads"][k].contiguous() for k in keep}
        tensors["loss"] = r["loss"].reshape(1).contiguous()
        tensors["loss_steps"] = torch.stack([s.reshape(()) for s in r["steps"]]).contiguous()
        meta = {
            "kind": "training_grads",
            "variant": case["variant"],
            "rollout": case["rollout"],
            "loss": float(r["loss"]),
            "loss_steps": [float(s) for s in r["steps"]],
            "weights": f"tests/data/model/{case['variant']}.weights.safetensors",
            "config": f"tests/data/model/{case['variant']}.yaml",
            "batch": f"tests/data/train/batch.safetensors (batch[:, 0:{T + case['rollout']}])",
            "complete": case["select"] == "all",
            "selection": "every parameter" if case["select"] == "all" else
            f"parameters starting with {case['select']} plus {SUBSET_EXTRA} (size budget)",
            "names": "grad.<name of model.named_parameters()>; X.proc.layer_norm_attention_dest.* is the same parameter "
            "as X.proc.layer_norm_attention.* (stored once, under the latter)",
            "loss_definition": "see tests/data/train/recipe.json (loss)",
            "mode": "model.train(), fp32, CPU, 1 thread",
        }
        zero = [k for k in r["checks"]["zero_in_exact_arithmetic"] if k in keep]
        if zero:
            meta["zero_in_exact_arithmetic"] = (
                f"the gradients of {', '.join(zero)} are 0 in exact arithmetic (the softmax over a destination's edges "
                "cancels the key bias); the stored values are fp32 rounding noise (about 1e-10 of the largest "
                "gradient): compare them with an absolute tolerance"
            )
        path = out_dir / f"{stem}.grads.safetensors"
        save_safetensors(path, tensors, meta)
        written[path.name] = path
        back, _ = read_safetensors(path)
        assert all(tensor_equal(back[f"grad.{k}"], r["grads"][k]) for k in keep)
        case_docs[stem] = {
            "file": path.name,
            **{k: meta[k] for k in ("variant", "rollout", "loss", "loss_steps", "weights", "complete", "selection")},
            "loss_f32_hex": r["loss"].reshape(1).numpy().view(np.uint32)[0].item().to_bytes(4, "big").hex(),
            "stored_params": len(keep),
            "all_params": len(names),
            "checks": r["checks"],
        }

    ameta = {
        "kind": "adamw_reference",
        "variant": ADAMW_CASE,
        "weights_before": f"tests/data/model/{ADAMW_CASE}.weights.safetensors",
        "grads": f"tests/data/train/{ADAMW_CASE}.grads.safetensors (the same gradient at both steps)",
        "steps": ADAMW_STEPS,
        "lrs": lrs,
        "adamw": {"betas": list(ADAMW["betas"]), "eps": ADAMW["eps"], "weight_decay": ADAMW["weight_decay"],
                  "amsgrad": False, "maximize": False, "param_groups": "one group, every parameter (weight decay on all)"},
        "schedule": {"base_lr": ADAMW["lr"], **SCHEDULE, "semantics": "timm CosineLRScheduler(t_in_epochs=False); "
                     "optimizer step k uses lr(k-1): lr(t) = warmup_lr_init + t*(base-warmup_lr_init)/warmup_t for "
                     "t < warmup_t, else lr_min + 0.5*(base-lr_min)*(1+cos(pi*t/t_initial)) (t < t_initial)"},
        "grad_clip": f"clip_grad_value_({GRAD_CLIP_VALUE}) before each step (no effect here)",
        "names": "param.<name of model.named_parameters()>; full float32 tensors after the last step",
    }
    path = out_dir / "adamw.safetensors"
    save_safetensors(path, {f"param.{k}": v.contiguous() for k, v in final.items()}, ameta)
    written[path.name] = path

    # ---- recipe.json
    schedule_table = {
        str(t): timm_cosine_lr(t, ANEMOI_DEFAULT_SCHEDULE["base_lr"], **{k: v for k, v in ANEMOI_DEFAULT_SCHEDULE.items() if k != "base_lr"})
        for t in SCHEDULE_TABLE_T
    }
    doc = {
        "generator": "tools/reference/make_training_fixtures.py",
        "reference": "anemoi-training 0.16.0 (anemoi-core tag training-0.16.0) with anemoi-models 0.18.0; loss, "
        "rollout and optimiser re-implemented explicitly in the script (see its docstring)",
        "environment": package_versions(),
        "config": {
            "variables": VARIABLES, "forcing": FORCING, "diagnostic": DIAGNOSTIC, "multistep_input": T,
            "n_step_output": 1, "batch": BATCH, "ensemble": ENSEMBLE, "rollouts": sorted({c["rollout"] for c in CASES.values()}),
            "precision": "fp32 (anemoi trains with 16-mixed; the reference is fp32)",
        },
        "batch": {"file": "batch.safetensors", **{k: batch_meta[k] for k in ("layouts", "assemble", "refs", "seed")},
                  "recipe": make_batch.__doc__.strip()},
        "loss": {
            "definition": loss_definition,
            "node_weights": "GraphNodeAttributeScaler(nodes data, attribute area_weight, norm unit-sum): "
            "w = a / torch.sum(a) in float32 (a = graph file nodes/data/area_weight, itself unit-max normalised; the "
            "normalisation cancels).  sum(w) = 1.",
            "variable_scaling": {
                "formula": "s_v = s_pl(v) * s_gv(v); s_pl = max(y_intercept 0.2, slope 0.001 * level) for a variable "
                "whose name splits as '<param>_<level>' (last part all digits) with param in group pl [q,t,u,v,w,z], "
                "else 1 (also a '<param>_<level>' name whose param is not in pl keeps 1, no level scaling); "
                "s_gv = general_variable weight of param (here default 1 for all)",
                "values": dict(zip(out_names, s_v.tolist())),
                "source": "spec/model.md 9.2 + spec/model-audit.md 1.6; anemoi-training losses/scalers/"
                "variable_level.py ReluVariableLevelScaler, variable.py GeneralVariableLossScaler, "
                "utils/variables_metadata.py",
                "anemoi_shipped_general_variable_weights_not_used": {"z": 12, "t": 6, "sp": 10, "tp": 0.025, "cp": 0.0025, "default": 1},
            },
            "reductions": "mean over variables (V = 6 model outputs, diagnostics included), sum over output time "
            "(1) and grid, mean over batch, time and ensemble; rollout: loss = (sum_r l_r) / R",
            "space": "normalised (the batch is taken as already normalised; the normaliser has no parameters)",
        },
        "rollout": {
            "semantics": "x = batch[:, 0:T][..., data.input.full]; for r < R: p = model(x); l_r = loss(p, "
            "batch[:, T+r:T+r+1][..., data.output.full]); if r < R-1: x = x.roll(-1, dims=1); x[:, -1, ..., "
            "model.input.prognostic] = p[:, -1, ..., model.output.prognostic] (no detach: gradients flow through the "
            "whole rollout, also via the residual connection); x[:, -1, ..., model.input.forcing] = batch[:, T+r, ..., "
            "data.input.forcing].  With T = 2 the roll moves the oldest step to the end, where every column is then "
            "overwritten (prognostic from p, forcing from the batch).",
            "source": "anemoi-training train/methods/single.py SingleTraining._step, tasks/forecaster.py "
            "Forecaster._advance_dataset_input (keep_steps = min(T, n_step_output) = 1), tasks/base.py",
        },
        "optimizer": {**ameta, "file": "adamw.safetensors", "checks": adam_checks,
                      "torch_op_sequence_per_param_and_step": "step += 1; p *= 1 - lr*wd; m.lerp_(g, 1-b1); "
                      "v = v*b2 + (1-b2)*g*g (mul_, addcmul_); bc1 = 1-b1^step; bc2 = 1-b2^step (python floats); "
                      "denom = sqrt(v)/sqrt(bc2) + eps; p += -(lr/bc1) * m/denom (addcdiv_)",
                      "anemoi_default_schedule_table": {"config": ANEMOI_DEFAULT_SCHEDULE, "lr_at_t": schedule_table,
                                                        "note": "optimizer step k uses lr_at_t[k-1]; step 1 uses 0"}},
        "cases": case_docs,
        "checks": {**checks, "anemoi_training_crosscheck": cross, "timm_crosscheck": timm_cross},
        "tolerance_advice": "compare gradients per tensor relative to the tensor's max |g| (see fp32_vs_fp64 in each "
        "case: the fp32 evaluation-order noise); compare AdamW results as (p_new - p_old) against the stored "
        "values with an absolute tolerance of a few float32 ulps of p (weight decay is lr*wd*|p|, "
        "about weight_decay_term_median_in_ulps_of_weight ulps)",
    }
    sizes = {n: p_.stat().st_size for n, p_ in sorted(written.items())}
    doc["sizes"] = sizes
    json.dumps(doc, allow_nan=False)  # no NaN / inf anywhere
    text = _json_text(doc)
    path = out_dir / "recipe.json"
    path.write_text(text)
    path.chmod(0o644)
    sizes["recipe.json"] = path.stat().st_size
    total = sum(p_.stat().st_size for p_ in out_dir.iterdir() if p_.is_file())
    for n, s in sizes.items():
        print(f"  {n:40s} {s:>9d}")
    print(f"total {total} bytes under {out_dir} ({time.time() - t_start:.1f} s)")
    if args.budget and total > args.budget:
        print(f"error: {total} bytes > budget {args.budget}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Time anemoi-models' own forward step (or, with --train, one training step) on the model Boreas runs: the peer
baseline for `boreas compare`.

    .venv-ref/bin/python tools/peer/run_anemoi.py --config C.yaml --graph G.safetensors --weights W.safetensors \
        --input X.safetensors [--warmup 1] [--repetitions 5] [--min-time 0] [--timeout 600] [--threads T] \
        [--compile [phases|whole]] [--roof-from BOREAS.json] [--verify BOREAS_OUT.safetensors] \
        [--output-tensor Y.safetensors] [--train [--no-activation-checkpointing] [--lr 1e-12] \
        [--adamw-impl default|for-loop|foreach|fused] [--reference-loss L [--loss-rtol 1e-5]]] --json OUT.json

The four input files are what `boreas forward ... --save-config C.yaml --save-graph G.safetensors
--save-weights W.safetensors --save-input X.safetensors` writes, so both sides run exactly the same model, graph,
weights and input (tools/peer/side_by_side.sh does that).  The result document follows docs/bench-schema.json.

Model
-----
anemoi-models' AnemoiModelEncProcDec, built on the CPU in fp32 the way tools/reference/make_model_fixtures.py builds
the reference fixtures (its anemoi_config() supplies every anemoi-only key: layer kernels torch.nn Linear / LayerNorm
/ GELU, graph_attention_backend pyg, attention_implementation scaled_dot_product_attention, edge attributes
edge_length + edge_dirs, no dropout / checkpointing / offload), with the values of the Boreas YAML put in (every key
of the YAML's model / data / training sections is consumed or the script stops; data.normalizer is ignored: the
input is already normalised; the graph section is ignored: the graph is --graph).  The graph file becomes anemoi's
HeteroData with make_model_fixtures.heterodata_from_boreas.

Weights: the file must hold every parameter of the model and nothing the model does not have.  Only anemoi's buffers
may be absent (Boreas does not write them): node_attributes.latlons_* (anemoi computes them from the graph),
*.layer_norm_attention_dest.* (aliases of *.layer_norm_attention.*, filled from those) and
*.trainable_layout_version (1 = trainable edge rows in destination order = the graph file's CSR order).  When the
file has them they must agree with what anemoi computed.  The state dict is then loaded with strict=True.

Timing (the method of `boreas bench`)
-------------------------------------
Under torch.inference_mode, --warmup steps (excluded), then repetitions until at least --repetitions steps and at
least --min-time seconds of steps (stopping after --timeout seconds).  One step = model({"data": x}) timed as a
whole with time.perf_counter.  Phases come from forward pre/post hooks that read time.perf_counter:
    input      step start              -> encoder pre-hook      (_assemble_input, node attributes, encoder edges)
    encoder    model.encoder["data"]   pre -> post
    processor  model.processor         pre -> post
    processor/chunkK   model.processor.proc[K*chunk_size] pre -> proc[(K+1)*chunk_size-1] post
    decoder    model.decoder["data"]   pre -> post
    output     decoder post-hook        -> step end            (residual, boundings)
The two gaps left (processor graph provider before the processor; latent skip + decoder edges before the decoder)
are not in any phase; their median is recorded in the total's params as unattributed_median_s.
Every sample of every phase is kept.  With --compile phases (the default for --compile) the forward of each of the
three blocks is wrapped in torch.compile and the block hooks stay outside the compiled code (no chunk phases then:
their hooks would sit inside the compiled processor and break its graph); with --compile whole the whole model is
wrapped and only the total is timed.  anemoi's mappers call .item() (build_graph_partition), so dynamo breaks the
graph there in either mode.

FLOPs, bytes, roof
------------------
With --roof-from BOREAS.json (a `boreas bench forward` document of the same config and batch), the roof object is
copied and so are the flops and bytes of every result of the same name: both sides are then measured against the
same work (Boreas' cost model, src/bench/cost_model.cpp: model FLOPs, MLPerf convention), and fraction_of_roof /
bound follow Boreas' rule (docs/bench.md): attainable = min(roof.sgemm_gflops, flops/bytes * roof.triad_gbs.all),
fraction = achieved / attainable (achieved GB/s / triad for phases without FLOPs), bound = compute if
intensity * bandwidth >= sgemm rate else memory, latency when the fraction is below 15 %.

Without it (or for a result the document lacks), flops are what anemoi itself executes, counted on one extra,
untimed step, and bytes are 0 (not modelled):
    flops = sum over every nn.Linear call            2 * rows * in_features * out_features
          + sum over graph-transformer convolutions  4 * B * E * C          (q.(k+e) and alpha*(v+e): 2 d per head
                                                                             per edge)
          + sum over window-attention layers         4 * B * C * sum_i K_i  (q k^T and a v; K_i = keys within
                                                                             +-window_size of query i, clipped)
with B the batch, E the edges of that graph, C = num_channels (= heads * head dim), rows read from the actual call.
This count always goes into params.anemoi_flops.  It differs from Boreas' model where anemoi executes different
work: anemoi's mappers run emb_nodes_src / lin_key / lin_value only on the source nodes that have an edge (the
edge-sharded subgraph), and lin_edge on every edge (Boreas folds the edge projection into per-destination terms).
The total also records executed_flops_torch_counter: what torch.utils.flop_counter counts for anemoi's calls (its
SDPA computes the full N_hidden x N_hidden scores, masked; the graph attention's elementwise products are not
counted by it).

Statistics as `boreas bench`: median, min, max, mean, sample stddev, n, warmup and every sample; noisy when
(max - min) / median > 20 % or (n >= 3 and stddev / mean > 10 %); share_of_step = median / the step's median.

Verification (--verify BOREAS_OUT.safetensors): the output of the last step against the file's `output`, with the
rule of `boreas bench --verify`: passed when |anemoi - boreas| <= atol + rtol * |boreas| everywhere (rtol 1e-4,
atol 1e-5; the outputs are normalised, O(1), and fp32 rounding of O(1) sums leaves ~2e-6 absolute on values near 0);
"worst relative" = max |anemoi - boreas| / (|boreas| + 1e-2).  The detail also gives the largest error relative to
each variable's rms and the normwise relative error.

Training step (--train)
-----------------------
What `boreas bench train` times (src/bench/bench.cpp), on the same model, weights and input, in model.train() (no
dropout: dropout_p 0).  x = the input file's 'input'; the target is the bench's: its training batch repeats the
input's last step as step T and sets dataset variables that are not inputs (diagnostics) to 0, so
target[..., o] = x[:, T-1, ..., o's input column] (0 for a diagnostic), [B, 1, 1, N, V_out].  One step:
    forward    y = model({"data": x})["data"]
    loss       Boreas' weighted MSE (src/train/loss.cpp, docs/training.md): mean over the batch of
               sum_n w_n (1/V) sum_v s_v (y - target)^2, w = data area_weight / its sum, s_v = max(0.2, 0.001 level)
               for '<param>_<level>' names, else 1 (fp32 torch, anemoi-training's MSELoss order of operations)
    backward   loss.backward()
    optimizer  torch.optim.AdamW(lr 1e-12 (--lr), betas (0.9, 0.95), eps 1e-8, weight_decay 0.01 on every
               parameter: Boreas' AdamWOptions and the bench's lr), .step(), then .zero_grad(set_to_none=True);
               no gradient clipping (the bench has none)
each timed with time.perf_counter; train = the whole step.  Results: train, train/forward, train/loss, train/backward,
train/optimizer.  --activation-checkpointing (default on, as the bench) sets anemoi's gradient_checkpointing on the
encoder, the processor (per chunk) and the decoder: both sides then keep only the inputs of the encoder, of each
processor chunk and of the decoder and recompute them in backward; --no-activation-checkpointing turns it off on
both.  Checks: the forward output of training step 1 against --verify (the rule above), step 1's loss against
Boreas' formula in float64 on the same output and on Boreas' exported output, and against --reference-loss (Boreas'
own step-1 loss) within --loss-rtol when given.  FLOPs with --roof-from as above (the names match `boreas bench
train`); without it forward = the count above, backward = 2 x forward, optimizer = 12 per parameter, loss 0.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import re
import resource
import shlex
import socket
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCHEMA_VERSION = "1.0.0"
PHASE_MODULES = ("encoder", "processor", "decoder")

# anemoi buffers Boreas does not write (docs/model.md "Weights")
BUFFER_PATTERNS = (
    re.compile(r"^node_attributes\.latlons_[A-Za-z0-9_]+$"),
    re.compile(r"\.layer_norm_attention_dest\.(weight|bias)$"),
    re.compile(r"(^|\.)trainable_layout_version$"),
)

# Boreas' defaults (include/boreas/model/config.hpp) for keys a YAML may leave out
DEFAULTS = {
    "num_channels": 1024,
    "latent_skip": True,
    "processor": {"num_layers": 16, "num_chunks": 2, "num_heads": 16, "window_size": 512, "mlp_hidden_ratio": 4,
                  "mlp_extra_layers": 0},
    "mapper": {"num_heads": 16, "mlp_hidden_ratio": 4, "num_chunks": 1},
    "trainable_parameters": {"data": 8, "hidden": 8, "data2hidden": 8, "hidden2data": 8, "hidden2hidden": 8},
    "multistep_input": 2,
}
MAPPER_TARGETS = {
    "encoder": "anemoi.models.layers.mapper.GraphTransformerForwardMapper",
    "decoder": "anemoi.models.layers.mapper.GraphTransformerBackwardMapper",
}


class UsageError(Exception):
    pass


# ----------------------------------------------------------------------------------------------------------------
# arguments and environment
# ----------------------------------------------------------------------------------------------------------------
def parse_args(argv):
    p = argparse.ArgumentParser(description="Time anemoi-models' forward step on a model exported by Boreas.")
    p.add_argument("--config", required=True, help="Boreas YAML (boreas forward --save-config)")
    p.add_argument("--graph", required=True, help="Boreas graph file (boreas forward --save-graph)")
    p.add_argument("--weights", required=True, help="weights with anemoi names (boreas forward --save-weights)")
    p.add_argument("--input", required=True, help="safetensors with 'input' [B, T, 1, N, V_in] (--save-input)")
    p.add_argument("--json", required=True, help="where to write the result document (docs/bench-schema.json)")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps first (default 1, as boreas bench)")
    p.add_argument("--repetitions", type=int, default=5, help="timed steps, at least (default 5)")
    p.add_argument("--min-time", type=float, default=0.0, help="repeat until the timed steps add up to S seconds")
    p.add_argument("--timeout", type=float, default=600.0, help="stop repeating after S seconds (default 600)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: OMP_NUM_THREADS, else all CPUs)")
    p.add_argument("--compile", nargs="?", const="phases", choices=["phases", "whole"], default=None,
                   help="torch.compile the encoder/processor/decoder forwards (phases, default) or the whole model")
    p.add_argument("--roof-from", help="a boreas bench JSON: its roof is copied, and the flops/bytes of its results")
    p.add_argument("--verify", help="Boreas' output (safetensors with 'output') to compare with")
    p.add_argument("--rtol", type=float, default=1e-4)
    p.add_argument("--atol", type=float, default=1e-5,
                   help="absolute tolerance (default 1e-5: outputs are normalised, O(1); fp32 rounding of O(1) sums "
                   "leaves ~1e-6 absolute on values near 0)")
    p.add_argument("--output-tensor", help="also write anemoi's output ('output') to this safetensors file")
    p.add_argument("--config-name", help="config name to record (default: the YAML's file name without .yaml)")
    p.add_argument("--seed", type=int, default=1, help="the seed the exported model/input came from (recorded only)")
    p.add_argument("--no-validate", action="store_true", help="skip the jsonschema check of the written document")
    t = p.add_argument_group("training step (--train; see 'Training step' in the module docstring)")
    t.add_argument("--train", action="store_true",
                   help="time one training step (forward, loss, backward, AdamW) instead of the forward step")
    t.add_argument("--activation-checkpointing", action=argparse.BooleanOptionalAction, default=True,
                   help="--train: anemoi's gradient_checkpointing on encoder, processor chunks and decoder "
                   "(default on, as boreas bench train)")
    t.add_argument("--lr", type=float, default=1e-12,
                   help="--train: AdamW learning rate (default 1e-12, boreas bench train's: it times the update, "
                   "it does not train)")
    t.add_argument("--adamw-impl", choices=["default", "for-loop", "foreach", "fused"], default="default",
                   help="--train: torch.optim.AdamW implementation (default: torch's own choice, the for-loop one "
                   "on the CPU)")
    t.add_argument("--reference-loss", type=float, default=None,
                   help="--train: Boreas' loss of the first training step; the step is failed unless anemoi's "
                   "agrees within --loss-rtol")
    t.add_argument("--loss-rtol", type=float, default=1e-5, help="--train: relative tolerance of the loss check")
    a = p.parse_args(argv)
    if a.threads is None:
        env = os.environ.get("OMP_NUM_THREADS", "")
        a.threads = int(env) if env.isdigit() and int(env) > 0 else len(os.sched_getaffinity(0))
    if a.threads < 1 or a.repetitions < 1 or a.warmup < 0 or a.min_time < 0:
        p.error("need --threads >= 1, --repetitions >= 1, --warmup >= 0, --min-time >= 0")
    if a.compile and a.warmup < 1:
        p.error("--compile needs --warmup >= 1 (the first step compiles)")
    return a


def set_environment(threads: int) -> None:
    """Before torch/anemoi are imported: one CPU, T threads, no anemoi inference overrides."""
    os.environ["CUDA_VISIBLE_DEVICES"] = ""
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["MKL_NUM_THREADS"] = str(threads)
    sys.path.insert(0, str(REPO / "tools" / "reference"))  # make_model_fixtures, convert_anemoi_graph


# ----------------------------------------------------------------------------------------------------------------
# config: Boreas YAML -> anemoi config
# ----------------------------------------------------------------------------------------------------------------
def _take(d: dict, key: str, default, where: str, used: set):
    used.add(f"{where}.{key}")
    return d.get(key, default)


def _check_consumed(d: dict, where: str, used: set, ignored=()) -> None:
    for k in d:
        if f"{where}.{k}" not in used and k not in ignored:
            raise UsageError(f"config key {where}.{k} is not understood by run_anemoi.py (refusing to ignore it)")


def anemoi_config_from_boreas(y: dict) -> tuple[dict, dict]:
    """(anemoi model config, plain facts) from a Boreas YAML: make_model_fixtures.anemoi_config() for the structure
    and the anemoi-only keys, the YAML's values put in."""
    import copy

    import make_model_fixtures as mmf

    for top in y:
        if top not in ("model", "data", "training", "graph"):
            raise UsageError(f"config section {top!r} is not understood")
    used: set = set()
    m = y.get("model") or {}
    proc_y = _take(m, "processor", {}, "model", used) or {}
    target = proc_y.get("_target_", mmf.PROCESSOR_TARGETS["transformer"])
    kinds = {v: k for k, v in mmf.PROCESSOR_TARGETS.items()}
    if target not in kinds:
        raise UsageError(f"model.processor._target_ {target!r}: supported {sorted(kinds)}")
    kind = kinds[target]
    enc_y = _take(m, "encoder", {}, "model", used) or {}
    dec_y = _take(m, "decoder", {}, "model", used) or {}
    cfg = mmf.anemoi_config(kind, mapper_chunks=1)
    am = cfg["model"]

    am["num_channels"] = int(_take(m, "num_channels", DEFAULTS["num_channels"], "model", used))
    am["model"]["latent_skip"] = bool(_take(m, "latent_skip", DEFAULTS["latent_skip"], "model", used))
    tp = dict(DEFAULTS["trainable_parameters"])
    tp_y = _take(m, "trainable_parameters", {}, "model", used) or {}
    for k, v in tp_y.items():
        if k not in tp:
            raise UsageError(f"model.trainable_parameters.{k} is not understood")
        tp[k] = int(v)
    am["trainable_parameters"] = tp

    pu: set = {"model.processor._target_"}
    pd = DEFAULTS["processor"]
    proc = am["processor"]
    proc["num_layers"] = int(_take(proc_y, "num_layers", pd["num_layers"], "model.processor", pu))
    proc["num_chunks"] = int(_take(proc_y, "num_chunks", pd["num_chunks"], "model.processor", pu))
    proc["mlp_hidden_ratio"] = _take(proc_y, "mlp_hidden_ratio", pd["mlp_hidden_ratio"], "model.processor", pu)
    if kind in ("transformer", "graphtransformer"):
        proc["num_heads"] = int(_take(proc_y, "num_heads", pd["num_heads"], "model.processor", pu))
    if kind == "transformer":
        proc["window_size"] = int(_take(proc_y, "window_size", pd["window_size"], "model.processor", pu))
    else:
        proc["trainable_size"] = tp["hidden2hidden"]
    if kind == "gnn":
        proc["mlp_extra_layers"] = int(_take(proc_y, "mlp_extra_layers", pd["mlp_extra_layers"], "model.processor", pu))
    # keys that do not apply to this processor are accepted only with Boreas' default value (as Boreas resolves them)
    for k in ("num_heads", "window_size", "mlp_extra_layers"):
        if k in proc_y and f"model.processor.{k}" not in pu:
            pu.add(f"model.processor.{k}")
    _check_consumed(proc_y, "model.processor", pu)

    for part, src, trainable in (("encoder", enc_y, "data2hidden"), ("decoder", dec_y, "hidden2data")):
        mu: set = {f"model.{part}._target_"}
        if src.get("_target_", MAPPER_TARGETS[part]) != MAPPER_TARGETS[part]:
            raise UsageError(f"model.{part}._target_ {src['_target_']!r}: only {MAPPER_TARGETS[part]}")
        md = DEFAULTS["mapper"]
        am[part]["num_heads"] = int(_take(src, "num_heads", md["num_heads"], f"model.{part}", mu))
        am[part]["mlp_hidden_ratio"] = _take(src, "mlp_hidden_ratio", md["mlp_hidden_ratio"], f"model.{part}", mu)
        am[part]["num_chunks"] = int(_take(src, "num_chunks", md["num_chunks"], f"model.{part}", mu))
        am[part]["trainable_size"] = tp[trainable]
        _check_consumed(src, f"model.{part}", mu)
    am["bounding"] = copy.deepcopy(_take(m, "bounding", [], "model", used) or [])
    _check_consumed(m, "model", used)

    data = y.get("data") or {}
    du: set = set()
    variables = list(_take(data, "variables", None, "data", du) or [])
    forcing = list(_take(data, "forcing", [], "data", du) or [])
    diagnostic = list(_take(data, "diagnostic", [], "data", du) or [])
    if not variables:
        raise UsageError("data.variables is missing")
    _check_consumed(data, "data", du, ignored=("normalizer",))
    training = y.get("training") or {}
    tu: set = set()
    multistep = int(_take(training, "multistep_input", DEFAULTS["multistep_input"], "training", tu))
    _check_consumed(training, "training", tu)
    facts = {
        "processor": kind,
        "variables": variables,
        "forcing": forcing,
        "diagnostic": diagnostic,
        "multistep_input": multistep,
        "num_channels": am["num_channels"],
        "window_size": proc.get("window_size"),
        "num_layers": proc["num_layers"],
        "num_chunks": proc["num_chunks"],
    }
    return cfg, facts


def build_model(graph, cfg: dict, facts: dict):
    """AnemoiModelEncProcDec as make_model_fixtures.build_model, with the config's variables and steps."""
    import copy

    from anemoi.models.data_indices.collection import IndexCollection
    from anemoi.models.models import AnemoiModelEncProcDec
    from omegaconf import OmegaConf

    name_to_index = {n: i for i, n in enumerate(facts["variables"])}
    groups = OmegaConf.create({"forcing": facts["forcing"], "diagnostic": facts["diagnostic"]})
    di = IndexCollection(groups, name_to_index)
    model = AnemoiModelEncProcDec(
        model_config=OmegaConf.create(cfg),
        data_indices={"data": di},
        statistics={"data": None},
        n_step_input=facts["multistep_input"],
        n_step_output=1,
        graph_data=copy.deepcopy(graph),
    )
    return model.eval()


# ----------------------------------------------------------------------------------------------------------------
# weights
# ----------------------------------------------------------------------------------------------------------------
def load_boreas_weights(model, path: Path) -> dict:
    """Load W into the model with strict=True after filling anemoi's buffers; refuse anything else missing or extra."""
    import torch

    import make_model_fixtures as mmf

    w = mmf.load_weights(path)  # resolves the fixtures' delta files too
    sd = model.state_dict()
    unexpected = sorted(set(w) - set(sd))
    missing = sorted(set(sd) - set(w))
    bad_missing = [k for k in missing if not any(p.search(k) for p in BUFFER_PATTERNS)]
    problems = []
    if unexpected:
        problems.append(f"{len(unexpected)} tensor(s) the anemoi model does not have: {unexpected[:8]}")
    if bad_missing:
        problems.append(f"{len(bad_missing)} tensor(s) missing that are not anemoi buffers: {bad_missing[:8]}")
    for k in sorted(set(w) & set(sd)):
        if tuple(w[k].shape) != tuple(sd[k].shape) or w[k].dtype != sd[k].dtype:
            problems.append(f"{k}: file {w[k].dtype} {list(w[k].shape)}, anemoi {sd[k].dtype} {list(sd[k].shape)}")
    if problems:
        raise UsageError(f"weights {path} do not fit the anemoi model:\n  " + "\n  ".join(problems))

    full = {}
    filled = {"latlons": 0, "layer_norm_attention_dest": 0, "trainable_layout_version": 0}
    for k, v in sd.items():
        if k in w:
            full[k] = w[k]
        elif "layer_norm_attention_dest" in k:
            alias = k.replace("layer_norm_attention_dest", "layer_norm_attention")
            if alias not in w:
                raise UsageError(f"{k} is missing and so is {alias}, which it aliases")
            full[k] = w[alias]
            filled["layer_norm_attention_dest"] += 1
        else:  # latlons (computed from the graph) and trainable_layout_version (1): anemoi's own values
            full[k] = v.clone()
            filled["latlons" if "latlons" in k else "trainable_layout_version"] += 1
    # buffers present in the file must agree with what anemoi computed / aliases
    for k in w:
        if "latlons" in k and not torch.allclose(w[k], sd[k], rtol=0, atol=1e-6):
            raise UsageError(f"{k} in the weights does not match the graph's coordinates")
        if k.endswith("trainable_layout_version") and int(w[k]) != int(sd[k]):
            raise UsageError(f"{k} = {int(w[k])}, anemoi expects {int(sd[k])}")
        if "layer_norm_attention_dest" in k:
            alias = k.replace("layer_norm_attention_dest", "layer_norm_attention")
            if not torch.equal(w[k], w[alias]):
                raise UsageError(f"{k} differs from {alias}, which it aliases")
    model.load_state_dict(full, strict=True)
    for k, v in model.state_dict().items():  # what was loaded is what the file says
        if k in w and not torch.equal(v, w[k]):
            raise UsageError(f"{k} did not load as written")
    return {"tensors_in_file": len(w), "state_dict_tensors": len(sd), "filled_buffers": filled}


# ----------------------------------------------------------------------------------------------------------------
# FLOPs
# ----------------------------------------------------------------------------------------------------------------
def window_keys(n: int, w: int) -> int:
    """sum_i K_i: keys j with |i - j| <= w, 0 <= j < n, over all queries i."""
    if w >= n - 1:
        return n * n
    # full rows: every i has 2w+1 keys minus the clipping at both ends (w(w+1)/2 each side)
    return n * (2 * w + 1) - w * (w + 1)


def count_flops(model, x, facts: dict, gmeta: dict, chunk_size: int) -> tuple[dict, int | None]:
    """Model FLOPs per phase (see the module docstring) from one untimed step with hooks on every nn.Linear, and
    torch.utils.flop_counter's count of what anemoi executes."""
    import torch
    from torch import nn

    B = int(x.shape[0])
    C = facts["num_channels"]
    flops = {p: 0 for p in ("input", "encoder", "processor", "decoder", "output")}
    n_chunks = facts["num_layers"] // chunk_size
    for c in range(n_chunks):
        flops[f"processor/chunk{c}"] = 0
    handles = []

    def phase_of(name: str) -> list[str]:
        if name.startswith("encoder."):
            return ["encoder"]
        if name.startswith("decoder."):
            return ["decoder"]
        if name.startswith("processor."):
            mm = re.match(r"processor\.proc\.(\d+)\.", name)
            return ["processor"] + ([f"processor/chunk{int(mm.group(1)) // chunk_size}"] if mm else [])
        return ["input"]  # no Linear lives outside the three blocks in 0.18; kept for safety

    for name, mod in model.named_modules():
        if isinstance(mod, nn.Linear):
            targets = phase_of(name)

            def hook(m, args, out, targets=targets):
                rows = args[0].numel() // m.in_features
                for t in targets:
                    flops[t] += 2 * rows * m.in_features * m.out_features

            handles.append(mod.register_forward_hook(hook))
    executed = None
    try:
        from torch.utils.flop_counter import FlopCounterMode

        counter = FlopCounterMode(display=False)
        # no_grad, not inference_mode: a tensor anemoi caches during this pass (graph edge
        # attributes) must stay usable by a compiled training step, which saves it for backward
        with torch.no_grad(), counter:
            model({"data": x})
        executed = int(counter.get_total_flops())
    except Exception as exc:  # the counter is a cross-check only
        print(f"run_anemoi: torch flop counter unavailable ({type(exc).__name__}: {exc}); counting Linear only",
              file=sys.stderr)
        with torch.no_grad():
            model({"data": x})
    for h in handles:
        h.remove()

    # attention products
    e = {k: v["count"] for k, v in gmeta["edges"].items()}
    flops["encoder"] += 4 * B * e["data_to_hidden"] * C
    flops["decoder"] += 4 * B * e["hidden_to_data"] * C
    n_hidden = gmeta["nodes"]["hidden"]["count"]
    for layer in range(facts["num_layers"]):
        if facts["processor"] == "transformer":
            f = 4 * B * C * window_keys(n_hidden, facts["window_size"])
        elif facts["processor"] == "graphtransformer":
            f = 4 * B * e["hidden_to_hidden"] * C
        else:
            f = 0  # GNN: Linear layers only
        flops["processor"] += f
        flops[f"processor/chunk{layer // chunk_size}"] += f
    flops["total"] = sum(flops[p] for p in ("input", "encoder", "processor", "decoder", "output"))
    return flops, executed


# ----------------------------------------------------------------------------------------------------------------
# context
# ----------------------------------------------------------------------------------------------------------------
def system_context() -> dict:
    info = {
        "hostname": socket.gethostname(),
        "os": platform.platform(),
        "kernel": platform.release(),
        "arch": platform.machine(),
        "cpu_model": platform.processor() or "",
        "logical_cpus": os.cpu_count(),
        "online_cpus": len(os.sched_getaffinity(0)),
    }
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                info["os"] = line.split("=", 1)[1].strip('"')
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["memory_total_bytes"] = int(line.split()[1]) * 1024
    except OSError:
        pass
    return info


def build_context(versions: dict, implementation: str) -> dict:
    import torch

    return {
        "implementation": implementation,
        "python": platform.python_version(),
        "packages": {k: v for k, v in versions.items() if k not in ("python", "machine", "torch_num_threads")},
        "torch_parallel_info": torch.__config__.parallel_info(),
        "torch_config": torch.__config__.show(),
    }


# ----------------------------------------------------------------------------------------------------------------
# statistics and the document
# ----------------------------------------------------------------------------------------------------------------
def stats_of(samples: list[float], warmup: int) -> dict:
    return {
        "median": statistics.median(samples),
        "min": min(samples),
        "max": max(samples),
        "mean": statistics.fmean(samples),
        "stddev": statistics.stdev(samples) if len(samples) > 1 else 0.0,
        "n": len(samples),
        "warmup": warmup,
    }


def roofline(flops: float, nbytes: float, median: float, roof: dict | None) -> tuple[float, float, float, str]:
    """(achieved GFLOP/s, GB/s, fraction_of_roof, bound) with Boreas' rule (src/bench/bench.cpp phase_result)."""
    gflops = flops / median / 1e9 if median > 0 else 0.0
    gbs = nbytes / median / 1e9 if median > 0 else 0.0
    compute_roof = float((roof or {}).get("sgemm_gflops", 0.0) or 0.0)
    bandwidth = float(((roof or {}).get("triad_gbs") or {}).get("all", 0.0) or 0.0)
    intensity = flops / nbytes if nbytes > 0 else 0.0
    fraction, bound = 0.0, "memory"
    if flops > 0 and compute_roof > 0:
        attainable = min(compute_roof, intensity * bandwidth)
        fraction = gflops / attainable if attainable > 0 else 0.0
        bound = "compute" if intensity * bandwidth >= compute_roof else "memory"
    elif bandwidth > 0:
        fraction = gbs / bandwidth
    if fraction < 0.15:
        bound = "latency"
    return gflops, gbs, fraction, bound


def is_noisy(st: dict) -> bool:
    """boreas bench's rule: (max - min) / median > 20 %, or n >= 3 and stddev / mean > 10 %."""
    spread = (st["max"] - st["min"]) / st["median"] if st["median"] > 0 else 0.0
    return bool(spread > 0.2 or (st["n"] >= 3 and st["mean"] > 0 and st["stddev"] / st["mean"] > 0.1))


def result_entry(name, phase, samples, warmup, flops, nbytes, params, roof, verification, rss, total_median):
    st = stats_of(samples, warmup)
    med = st["median"]
    gflops, gbs, frac, bound = roofline(flops, nbytes, med, roof)
    return {
        "name": name,
        "phase": phase,
        "params": params,
        "metric": "time",
        "unit": "s",
        "stats": st,
        "samples": samples,
        "noisy": is_noisy(st),
        "flops": float(flops),
        "bytes": float(nbytes),
        "achieved": {"gflops": gflops, "gbs": gbs},
        "fraction_of_roof": frac,
        "bound": bound,
        "share_of_step": med / total_median if total_median > 0 else 0.0,
        "peak_rss_bytes": rss,
        "verification": verification,
    }


def verify(y, ref_path: Path, rtol: float, atol: float) -> dict:
    import torch
    from safetensors.torch import load_file

    ref = load_file(str(ref_path))
    if "output" not in ref:
        return {"status": "failed", "detail": f"{ref_path} has no 'output' tensor"}
    r = ref["output"]
    if tuple(r.shape) != tuple(y.shape):
        return {"status": "failed", "detail": f"shape: anemoi {list(y.shape)}, {ref_path.name} {list(r.shape)}"}
    a, b = y.double(), r.double()
    if not bool(torch.isfinite(a).all()) or not bool(torch.isfinite(b).all()):
        return {"status": "failed", "detail": "non-finite values in the output"}
    d = (a - b).abs()
    rel = d / (b.abs() + 1e-2)  # boreas bench's "worst relative"
    bad = int((d > atol + rtol * b.abs()).sum())
    worst = int(torch.argmax(rel))
    idx = list(torch.unravel_index(torch.tensor(worst), tuple(y.shape)))
    col_rms = b.pow(2).mean(dim=tuple(range(b.dim() - 1))).sqrt().clamp_min(1e-30)
    detail = (
        f"anemoi output vs {ref_path.name} 'output' {list(y.shape)}: max_abs {float(d.max()):.3e}, "
        f"worst relative {float(rel.max()):.3e} (err / (|ref| + 1e-2)) at {[int(i) for i in idx]}, "
        f"max_abs/variable rms {float((d / col_rms).max()):.3e}, "
        f"normwise {float((a - b).norm() / b.norm().clamp_min(1e-30)):.3e}; "
        f"{bad} of {d.numel()} outside rtol {rtol:g} atol {atol:g}"
    )
    return {"status": "passed" if bad == 0 else "failed", "detail": detail, "max_abs": float(d.max()),
            "max_rel": float(rel.max())}


# ----------------------------------------------------------------------------------------------------------------
# training step (--train)
# ----------------------------------------------------------------------------------------------------------------
TRAIN_PHASES = ("forward", "loss", "backward", "optimizer")
ADAMW = {"betas": (0.9, 0.95), "eps": 1e-8, "weight_decay": 0.01}  # Boreas' AdamWOptions (optimizer.hpp)


def input_names(facts: dict) -> list[str]:
    """Model inputs in dataset order (Boreas' ModelConfig::input_variables: diagnostics dropped)."""
    return [v for v in facts["variables"] if v not in facts["diagnostic"]]


def output_names(facts: dict) -> list[str]:
    """Model outputs in dataset order (Boreas' ModelConfig::output_variables: forcings dropped)."""
    return [v for v in facts["variables"] if v not in facts["forcing"]]


def boreas_variable_scaling(names: list[str]) -> list[float]:
    """s_v of Boreas' default LossConfig (src/train/loss.cpp variable_scaling): max(0.2, 0.001 * level) for a name
    '<param>_<level>' whose part after the last '_' is all digits, else 1."""
    out = []
    for name in names:
        level = name.rsplit("_", 1)[1] if "_" in name else ""
        out.append(max(0.2, 0.001 * float(level)) if re.fullmatch(r"[0-9]+", level) else 1.0)
    return out


def bench_train_target(x, facts: dict):
    """The target of `boreas bench train` (src/bench/bench.cpp): its training batch repeats the input's last step
    as step T, and a dataset variable that is not an input (a diagnostic) is 0, so the loss target is
    target[..., o] = x[:, T-1, ..., index of output o among the inputs], or 0 for a diagnostic.  [B, 1, 1, N, V_out]"""
    import torch

    ins, outs = input_names(facts), output_names(facts)
    t_last = facts["multistep_input"] - 1
    target = torch.zeros((*x.shape[:1], 1, *x.shape[2:4], len(outs)), dtype=x.dtype)
    for o, name in enumerate(outs):
        if name in ins:
            target[:, 0, ..., o] = x[:, t_last, ..., ins.index(name)]
    return target.contiguous()


class BoreasLoss:
    """Boreas' training loss (src/train/loss.cpp weighted_mse, docs/training.md), in torch on fp32 tensors:
    mean over the batch of sum_n w_n (1/V) sum_v s_v (y_hat - y)^2, w = the data nodes' area_weight / its sum,
    s_v = boreas_variable_scaling.  The order of operations is anemoi-training's MSELoss (scale, mean over variables,
    sum over the grid, mean over batch/time/ensemble); `exact` is Boreas' own formula in float64."""

    def __init__(self, area_weight, out_names: list[str]):
        import torch

        aw = torch.as_tensor(area_weight).to(torch.float32).reshape(-1)
        self.node_weights = aw / torch.sum(aw)
        self.node_weights64 = aw.double() / aw.double().sum()
        self.scaling = torch.tensor(boreas_variable_scaling(out_names), dtype=torch.float32)

    def __call__(self, pred, target):
        import torch

        d = torch.square(pred - target) * self.scaling  # [B, 1, E, N, V]
        d = torch.mean(d, dim=-1)  # variables
        d = torch.sum(d * self.node_weights, dim=-1)  # grid
        return torch.mean(d)  # batch, time, ensemble

    def exact(self, pred, target) -> float:
        d = (pred.double() - target.double()).pow(2) * self.scaling.double()
        return float((d.mean(dim=-1) * self.node_weights64).sum(dim=-1).mean())


def rel_diff(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-30)


def train_main(args, *, model, x, facts, gtensors, flops, executed, versions, start_utc, config_text, cfg, setup_s,
               weights_info) -> int:
    """--train: warm-ups + repetitions of one training step; writes train, train/forward, train/loss,
    train/backward and train/optimizer as `boreas bench train` does."""
    import torch
    from safetensors.torch import load_file
    from safetensors.torch import save_file

    batch = int(x.shape[0])
    target = bench_train_target(x, facts)
    loss_fn = BoreasLoss(gtensors["nodes/data/area_weight"], output_names(facts))
    model.train()  # no dropout in this config (dropout_p 0); gradient_checkpointing as --activation-checkpointing
    params_list = [p for p in model.parameters() if p.requires_grad]
    n_params = sum(int(p.numel()) for p in params_list)
    impl_kw = {"default": {}, "for-loop": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}
    opt = torch.optim.AdamW(params_list, lr=args.lr, **ADAMW, **impl_kw[args.adamw_impl])
    torch_v = torch.__version__.split("+")[0]
    # --compile: the forward of the encoder, processor and decoder (phases) or of the whole model
    # compiled by torch.compile; AOTAutograd compiles their backward from it. The first warm-up
    # step compiles.
    step_model = model
    if args.compile == "whole":
        step_model = torch.compile(model)
    elif args.compile:
        for mod in (model.encoder["data"], model.processor, model.decoder["data"]):
            mod.forward = torch.compile(mod.forward)
    mode = "compiled" if args.compile else "eager"
    implementation = f"anemoi-models {versions['anemoi-models']} (PyTorch {torch_v} {mode})"
    optimizer_desc = (f"torch.optim.AdamW(lr={args.lr:g}, betas={ADAMW['betas']}, eps={ADAMW['eps']:g}, "
                      f"weight_decay={ADAMW['weight_decay']:g}, {args.adamw_impl}), one group of {len(params_list)} "
                      f"tensors / {n_params} values, no gradient clipping; zero_grad(set_to_none=True) after step")

    xin = {"data": x}
    clock = time.perf_counter
    samples = {"total": [], **{p: [] for p in TRAIN_PHASES}}
    losses: list[float] = []
    first = {}

    def step(record: bool):
        t0 = clock()
        y = step_model(xin)["data"]
        t1 = clock()
        loss = loss_fn(y, target)
        t2 = clock()
        loss.backward()
        t3 = clock()
        opt.step()
        opt.zero_grad(set_to_none=True)
        t4 = clock()
        losses.append(float(loss.detach()))
        if not first:
            first["output"] = y.detach().clone()
            first["exact"] = loss_fn.exact(first["output"], target)
        if record:
            for p, v in (("total", t4 - t0), ("forward", t1 - t0), ("loss", t2 - t1), ("backward", t3 - t2),
                         ("optimizer", t4 - t3)):
                samples[p].append(v)
        return t4 - t0

    for _ in range(args.warmup):
        step(False)
    spent = 0.0
    t_loop = clock()
    while (len(samples["total"]) < args.repetitions or spent < args.min_time) and (
        not samples["total"] or clock() - t_loop < args.timeout
    ):
        spent += step(True)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    # ---- checks: step 1's forward output against Boreas' export, the loss against Boreas' formula / value
    loss1 = losses[0]
    checks = [f"step-1 loss {loss1:.9g} (torch fp32; Boreas' formula in float64 on the same output "
              f"{first['exact']:.9g}, rel {rel_diff(loss1, first['exact']):.1e})"]
    status = "not-checked"
    ver = None
    loss_of_boreas_output = None
    if args.verify:
        ver = verify(first["output"], Path(args.verify), args.rtol, args.atol)
        checks.insert(0, f"step-1 forward output (train mode): {ver['detail']}")
        status = ver["status"]
        ref = load_file(args.verify).get("output")
        if ref is not None and tuple(ref.shape) == tuple(first["output"].shape):
            loss_of_boreas_output = loss_fn.exact(ref, target)
            checks.append(f"loss of Boreas' exported output on the same target {loss_of_boreas_output:.9g} "
                          f"(rel {rel_diff(loss1, loss_of_boreas_output):.1e})")
    if args.reference_loss is not None:
        r = rel_diff(loss1, args.reference_loss)
        ok = r <= args.loss_rtol
        checks.append(f"Boreas' step-1 loss {args.reference_loss:.9g}: rel {r:.1e} "
                      f"{'within' if ok else 'OUTSIDE'} rtol {args.loss_rtol:g}")
        status = "failed" if not ok or status == "failed" else "passed"
    if not all(math.isfinite(v) for v in losses):
        status = "failed"
        checks.append("non-finite loss")
    vobj = {"status": status, "detail": "; ".join(checks)}
    if args.output_tensor:
        Path(args.output_tensor).parent.mkdir(parents=True, exist_ok=True)
        save_file({"output": first["output"].contiguous()}, args.output_tensor,
                  metadata={"boreas": json.dumps({"implementation": implementation, "units": "normalised",
                                                  "what": "forward output of training step 1 (train mode)"})})

    # ---- the document
    config_name = args.config_name or Path(args.config).name.removesuffix(".yaml")
    roof, costs, cost_source = roof_and_costs(args, config_text, config_name, batch)
    own = {"forward": float(flops["total"]), "loss": 0.0, "backward": 2.0 * flops["total"],
           "optimizer": 12.0 * n_params}
    own["total"] = sum(own.values())
    params = {"config": config_name, "batch": batch, "threads": args.threads, "precision": "fp32",
              "implementation": implementation, "activation_checkpointing": bool(args.activation_checkpointing)}
    total_params = dict(
        params,
        phase_timing="time.perf_counter around model(x), the loss, loss.backward(), optimizer.step() + zero_grad()",
        loss_definition="Boreas' weighted MSE (src/train/loss.cpp) on boreas bench train's target "
                        "(the input's last step; 0 for diagnostics)",
        optimizer=optimizer_desc,
        first_step_loss=loss1,
        first_step_loss_float64=first["exact"],
        **({"loss_of_boreas_output": loss_of_boreas_output} if loss_of_boreas_output is not None else {}),
        **({"reference_loss": args.reference_loss} if args.reference_loss is not None else {}),
        losses=losses,
        parameters=n_params,
        anemoi_gradient_checkpointing={k: cfg["model"][k]["gradient_checkpointing"]
                                       for k in ("encoder", "processor", "decoder")},
        executed_flops_torch_counter_forward=executed,
        flops_bytes_source=cost_source,
        setup_s=setup_s,
        weights=weights_info,
        **({"verification_worst_relative": ver["max_rel"], "verification_max_abs": ver["max_abs"]}
           if ver and "max_rel" in ver else {}),
    )
    total_median = statistics.median(samples["total"])
    results = []
    for name, phase, prm in [("train", "total", total_params),
                             *[(f"train/{p}", p, dict(params)) for p in TRAIN_PHASES]]:
        prm["anemoi_flops"] = own[phase]
        fl, nb = costs.get(name, (own[phase], 0.0))
        results.append(result_entry(name, phase, samples[phase], args.warmup, fl, nb, prm, roof, vobj, rss,
                                    total_median))
    write_document(args, start_utc=start_utc, versions=versions, implementation=implementation,
                   config_name=config_name, config_text=config_text, batch=batch, cfg=cfg, roof=roof, results=results,
                   run_extra={"activation_checkpointing": bool(args.activation_checkpointing)})

    print(f"{implementation}, {config_name}, training step, batch {batch}, {args.threads} thread(s), "
          f"activation checkpointing {'on' if args.activation_checkpointing else 'off'}, "
          f"{len(samples['total'])} reps after {args.warmup} warm-up(s):")
    for r in results:
        st = r["stats"]
        gf = f"  {r['achieved']['gflops']:8.2f} GFLOP/s" if r["flops"] else ""
        print(f"  {r['name']:28s} median {st['median'] * 1e3:10.3f} ms  min {st['min'] * 1e3:10.3f}  "
              f"max {st['max'] * 1e3:10.3f}{gf}")
    print(f"  loss: step 1 {loss1:.9g}, last {losses[-1]:.9g}")
    print(f"  verification: {vobj['status']}: {vobj['detail']}")
    print(f"  -> {args.json}")
    return 0 if vobj["status"] != "failed" else 1


# ----------------------------------------------------------------------------------------------------------------
# roof, costs and the document (forward and --train)
# ----------------------------------------------------------------------------------------------------------------
def roof_and_costs(args, config_text: str, config_name: str, batch: int) -> tuple[dict, dict, str]:
    """(roof, {result name: (flops, bytes)}, where the costs come from): copied from --roof-from when it is a
    document of the same config and batch, else no roof and anemoi's own count (the caller's fallback)."""
    costs: dict = {}
    cost_source = "anemoi's own count (run_anemoi.py count_flops), bytes not modelled"
    if args.roof_from:
        bdoc = json.loads(Path(args.roof_from).read_text())
        roof = dict(bdoc["roof"], copied_from=str(args.roof_from))
        brun = bdoc.get("context", {}).get("run", {})
        same = brun.get("batch", 1) == batch and (
            brun.get("resolved_config", "").strip() == config_text.strip() or brun.get("config") == config_name)
        if same:
            costs = {r["name"]: (float(r["flops"]), float(r["bytes"])) for r in bdoc.get("results", [])}
            cost_source = f"copied from {args.roof_from} (Boreas' cost model)"
        else:
            print(f"run_anemoi: warning: {args.roof_from} is for config {brun.get('config')!r} batch "
                  f"{brun.get('batch')}; roof copied, flops/bytes not", file=sys.stderr)
    else:
        roof = {"fp32_fma_gflops": {"1": 0, "all": 0}, "sgemm": [], "triad_gbs": {"1": 0, "all": 0},
                "not_measured": "run_anemoi.py measures no roof; give --roof-from BOREAS.json"}
    return roof, costs, cost_source


def write_document(args, *, start_utc, versions, implementation, config_name, config_text, batch, cfg, roof,
                   results, run_extra=None) -> dict:
    """The boreas-bench document (docs/bench-schema.json) to --json, validated when jsonschema is there."""
    cmd = " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv])
    doc = {
        "schema": "boreas-bench",
        "schema_version": SCHEMA_VERSION,
        "context": {
            "build": build_context(versions, implementation),
            "system": system_context(),
            "run": {
                "start_utc": start_utc,
                "command_line": cmd,
                "implementation": implementation,
                "config": config_name,
                "resolved_config": config_text,
                "threads": args.threads,
                "seed": args.seed,
                "batch": batch,
                **(run_extra or {}),
                "anemoi_config": cfg,
                "files": {"config": args.config, "graph": args.graph, "weights": args.weights, "input": args.input},
            },
        },
        "roof": roof,
        "results": results,
        "repro": f"cd {shlex.quote(str(REPO))} && {cmd}",
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(doc, indent=1) + "\n")
    if not args.no_validate:
        try:
            import jsonschema

            jsonschema.validate(doc, json.loads((REPO / "docs" / "bench-schema.json").read_text()))
        except ImportError:
            print("run_anemoi: jsonschema not installed; document not validated", file=sys.stderr)
    return doc


# ----------------------------------------------------------------------------------------------------------------
def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    set_environment(args.threads)
    start_utc = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    import torch
    import yaml
    from safetensors.torch import load_file
    from safetensors.torch import save_file

    import make_model_fixtures as mmf
    from convert_anemoi_graph import read_boreas_graph

    torch.set_num_threads(args.threads)
    versions = mmf.package_versions()
    t_setup = time.perf_counter()

    config_text = Path(args.config).read_text()
    y = yaml.safe_load(config_text) or {}
    cfg, facts = anemoi_config_from_boreas(y)
    if args.train:
        for part in ("encoder", "processor", "decoder"):
            cfg["model"][part]["gradient_checkpointing"] = bool(args.activation_checkpointing)
    gtensors, gmeta = read_boreas_graph(args.graph)
    graph = mmf.heterodata_from_boreas(gtensors, gmeta)
    model = build_model(graph, cfg, facts)
    weights_info = load_boreas_weights(model, Path(args.weights))

    inp = load_file(args.input)
    if "input" not in inp:
        raise UsageError(f"{args.input} has no 'input' tensor")
    x = inp["input"].float().contiguous()
    v_in = len([v for v in facts["variables"] if v not in facts["diagnostic"]])
    n_data = gmeta["nodes"]["data"]["count"]
    want = (facts["multistep_input"], 1, n_data, v_in)
    if x.dim() != 5 or tuple(x.shape[1:]) != want:
        raise UsageError(f"input shape {list(x.shape)}, expected [B, {', '.join(map(str, want))}]")
    batch = int(x.shape[0])
    setup_s = time.perf_counter() - t_setup

    proc = model.processor
    chunk_size = int(getattr(proc, "chunk_size", facts["num_layers"] // facts["num_chunks"]))
    n_chunks = facts["num_layers"] // chunk_size
    flops, executed = count_flops(model, x, facts, gmeta, chunk_size)
    if args.train:
        return train_main(args, model=model, x=x, facts=facts, gtensors=gtensors, flops=flops, executed=executed,
                          versions=versions, start_utc=start_utc, config_text=config_text, cfg=cfg,
                          setup_s=setup_s, weights_info=weights_info)

    # ---- phase hooks (eager, outside any compiled code)
    marks: dict[str, float] = {}
    blocks = {"encoder": model.encoder["data"], "processor": proc, "decoder": model.decoder["data"]}
    handles = []
    clock = time.perf_counter

    def pre(key):
        def fn(m, a):
            marks[key + ".pre"] = clock()
        return fn

    def post(key):
        def fn(m, a, o):
            marks[key + ".post"] = clock()
        return fn

    timed_phases = args.compile != "whole"
    if timed_phases:
        for key, mod in blocks.items():
            handles.append(mod.register_forward_pre_hook(pre(key)))
            handles.append(mod.register_forward_hook(post(key)))
    # chunk hooks sit inside the processor's forward: with --compile they would break its graph, so none then
    n_chunks_timed = 0 if args.compile else n_chunks
    if timed_phases:
        for c in range(n_chunks_timed):
            handles.append(proc.proc[c * chunk_size].register_forward_pre_hook(pre(f"chunk{c}")))
            handles.append(proc.proc[(c + 1) * chunk_size - 1].register_forward_hook(post(f"chunk{c}")))

    torch_v = torch.__version__.split("+")[0]
    mode = "eager"
    step_fn = model
    compile_info = {}
    if args.compile:
        mode = "compiled"
        if args.compile == "whole":
            step_fn = torch.compile(model)
        else:
            for mod in blocks.values():
                mod.forward = torch.compile(mod.forward)
    implementation = f"anemoi-models {versions['anemoi-models']} (PyTorch {torch_v} {mode})"

    xin = {"data": x}
    out = None
    with torch.inference_mode():
        for i in range(args.warmup):
            t0 = clock()
            try:
                out = step_fn(xin)["data"]
            except Exception as exc:
                if args.compile:
                    print(f"run_anemoi: torch.compile ({args.compile}) FAILED on the CPU: {type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''}", file=sys.stderr)
                    return 3
                raise
            if i == 0 and args.compile:
                compile_info["first_step_s"] = clock() - t0
        samples = {"total": [], "unattributed": []}
        for p in ("input", "encoder", "processor", "decoder", "output"):
            samples[p] = []
        for c in range(n_chunks_timed):
            samples[f"processor/chunk{c}"] = []
        first_out = None
        spent = 0.0
        t_loop = clock()
        while (len(samples["total"]) < args.repetitions or spent < args.min_time) and (
            not samples["total"] or clock() - t_loop < args.timeout
        ):
            marks.clear()
            t0 = clock()
            out = step_fn(xin)["data"]
            t1 = clock()
            total = t1 - t0
            spent += total
            samples["total"].append(total)
            if timed_phases:
                mk = marks
                ph = {
                    "input": mk["encoder.pre"] - t0,
                    "encoder": mk["encoder.post"] - mk["encoder.pre"],
                    "processor": mk["processor.post"] - mk["processor.pre"],
                    "decoder": mk["decoder.post"] - mk["decoder.pre"],
                    "output": t1 - mk["decoder.post"],
                }
                for c in range(n_chunks_timed):
                    ph[f"processor/chunk{c}"] = mk[f"chunk{c}.post"] - mk[f"chunk{c}.pre"]
                for p, v in ph.items():
                    samples[p].append(v)
                samples["unattributed"].append(
                    total - sum(ph[p] for p in ("input", "encoder", "processor", "decoder", "output")))
            if first_out is None:
                first_out = out.clone()
    for h in handles:
        h.remove()
    deterministic = bool(torch.equal(first_out, out))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    # ---- roof and costs, verification
    config_name = args.config_name or Path(args.config).name.removesuffix(".yaml")
    roof, costs, cost_source = roof_and_costs(args, config_text, config_name, batch)
    if args.verify:
        ver = verify(out, Path(args.verify), args.rtol, args.atol)
        vobj = {"status": ver["status"], "detail": ver["detail"]}
    else:
        ver = None
        vobj = {"status": "not-checked",
                "detail": f"no reference given (--verify); output sum {float(out.double().sum()):.9e}, "
                          f"mean |y| {float(out.double().abs().mean()):.9e}"}
    if args.output_tensor:
        Path(args.output_tensor).parent.mkdir(parents=True, exist_ok=True)
        save_file({"output": out.contiguous()}, args.output_tensor,
                  metadata={"boreas": json.dumps({"implementation": implementation, "units": "normalised"})})

    params = {"config": config_name, "batch": batch, "threads": args.threads, "precision": "fp32",
              "implementation": implementation, **({"compile": args.compile} if args.compile else {})}
    total_median = statistics.median(samples["total"])
    results = []
    total_params = dict(
        params,
        phase_timing="forward pre/post hooks" if timed_phases else "none (--compile whole)",
        unattributed_median_s=statistics.median(samples["unattributed"]) if timed_phases else None,
        executed_flops_torch_counter=executed,
        flops_bytes_source=cost_source,
        deterministic_first_vs_last=deterministic,
        setup_s=setup_s,
        weights=weights_info,
        **({"verification_worst_relative": ver["max_rel"], "verification_max_abs": ver["max_abs"]}
           if ver and "max_rel" in ver else {}),
        **({"compile_first_step_s": compile_info.get("first_step_s")} if args.compile else {}),
    )
    phases = [("forward", "total", total_params)]
    if timed_phases:
        chunks = [f"processor/chunk{c}" for c in range(n_chunks_timed)]
        order = ["input", "encoder", "processor", *chunks, "decoder", "output"]
        phases += [(f"forward/{p}", p, dict(params)) for p in order]
    for name, phase, prm in phases:
        prm["anemoi_flops"] = flops[phase]
        fl, nb = costs.get(name, (flops[phase], 0.0))
        results.append(result_entry(name, phase, samples[phase], args.warmup, fl, nb, prm, roof, vobj, rss,
                                    total_median))

    write_document(args, start_utc=start_utc, versions=versions, implementation=implementation,
                   config_name=config_name, config_text=config_text, batch=batch, cfg=cfg, roof=roof, results=results)

    # ---- summary
    print(f"{implementation}, {config_name}, batch {batch}, {args.threads} thread(s), "
          f"{len(samples['total'])} reps after {args.warmup} warm-up(s):")
    for r in results:
        st = r["stats"]
        gf = f"  {r['achieved']['gflops']:8.2f} GFLOP/s" if r["flops"] else ""
        print(f"  {r['name']:28s} median {st['median'] * 1e3:10.3f} ms  min {st['min'] * 1e3:10.3f}  "
              f"max {st['max'] * 1e3:10.3f}{gf}")
    if timed_phases:
        print(f"  (unattributed between phases: median {statistics.median(samples['unattributed']) * 1e3:.3f} ms)")
    print(f"  verification: {vobj['status']}: {vobj['detail']}")
    print(f"  -> {args.json}")
    return 0 if vobj["status"] != "failed" else 1


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except UsageError as exc:
        print(f"run_anemoi: error: {exc}", file=sys.stderr)
        raise SystemExit(2)

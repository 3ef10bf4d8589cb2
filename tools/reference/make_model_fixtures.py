#!/usr/bin/env python3
"""Build the `tiny` test model (spec/model.md section 12) with anemoi-models itself, run it in fp32 on the CPU and
write reference fixtures for Boreas' model tests.

Run from the repository root with the reference environment (tools/reference/requirements.txt):

    .venv-ref/bin/python tools/reference/make_model_fixtures.py [--out tests/data/model] [--full-weights]
        [--only VARIANT[,VARIANT]]

--only writes just the named variants: the others are still built and run, but their existing files must match
(weights and YAML exactly, io within rtol/atol 1e-5) and are kept with their VERSIONS.json records.  The io tensors
depend on the CPU in the last bits (torch's CPU kernels: e.g. an AMD EPYC with AVX512 does not reproduce the files
written for transformer..transformer_isolated, max abs diff 2.3e-6); gnn_mappers was added that way.

The script sets CUDA_VISIBLE_DEVICES="" and OMP_NUM_THREADS=1 itself (before torch is imported) and removes the
ANEMOI_INFERENCE_* environment overrides (spec/model-audit.md 2.1).

How the model is built
----------------------
AnemoiModelEncProcDec (anemoi-models 0.18.0) is constructed directly, as in spec/model-audit.md section 2 -- not
through anemoi-training (whose configs torch.compile parts of the model).  The config is `anemoi_config()` below;
besides the values of the Boreas YAML it needs: model.model.{_target_, hidden_nodes_name: hidden, latent_skip},
encoder/decoder/processor.layer_kernels (torch.nn Linear / LayerNorm / GELU), trainable_size and
sub_graph_edge_attributes on every graph-using block (anemoi-training fills these from trainable_parameters and the
graph config), graph_attention_backend: pyg (Triton is CUDA-only), attention_implementation:
scaled_dot_product_attention (flash_attention is the default and needs flash-attn + CUDA), gradient_checkpointing
False, dropout_p 0, residual SkipConnection(step=-1), data_indices = {"data": IndexCollection(...)},
statistics = {"data": None}.  The graph is a HeteroData with node sets `data` and `hidden` and edge sets
("data","to","hidden"), ("hidden","to","data") [and ("hidden","to","hidden") for the graph processors].
Every variant uses GraphTransformerForward/BackwardMapper (heads, ratio 4) except gnn_mappers:
GNNForwardMapper (mlp_extra_layers 1, mlp_hidden_ratio 1) / GNNBackwardMapper (mlp_extra_layers 0, mlp_hidden_ratio
1.5) around the gnn variant's GNNProcessor on o16_tri2 (keys as anemoi-training 0.16's config/model/gnn.yaml:
trainable_size, sub_graph_edge_attributes, num_chunks, mlp_extra_layers, mlp_hidden_ratio, mlp_implementation "mlp",
cpu_offload, gradient_checkpointing, layer_kernels; no num_heads).

Graphs
------
The model is built on exactly the graph of the Boreas graph file named in the variant's YAML: the file is converted
back into anemoi's HeteroData (anemoi's own edge order is restored from the file's perm, attributes bit-identical),
and the same graph is rebuilt from scratch with make_graph_fixtures.py's anemoi-graphs recipe and compared tensor
by tensor (recorded in VERSIONS.json).  Variant transformer_isolated uses o16_o4 with every data->hidden edge into
hidden node 0 removed (attributes of the remaining edges unchanged, i.e. still normalised with the full graph's
std); its graph is written next to the fixtures with convert_anemoi_graph.py's converter.

Weights
-------
Every parameter is set non-zero from a generator seeded with crc32("boreas-tiny/0/<parameter name>") (torch
Generator), so modules with the same name and shape get the same values in every variant:
  nn.Linear weight ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), bias ~ U(-0.1, 0.1)
  nn.LayerNorm weight ~ 1 + N(0, 0.1), bias ~ N(0, 0.1)
  TrainableTensor (node and edge trainables) ~ N(0, 0.5)
transformer_isolated's encoder edge trainables are the transformer variant's rows of the edges that remain (matched
by (src, dst)), so the two variants differ only by the removed edges.  gnn_mappers' processor, node/edge trainables
and node attributes are therefore the gnn variant's exactly (asserted); only encoder.* / decoder.* differ.  torch.manual_seed(0) is set as well.

Files (tests/data/model/)
-------------------------
NAME.weights.safetensors  model.state_dict() with anemoi's names (tensors that share storage, e.g.
                          X.proc.layer_norm_attention / X.proc.layer_norm_attention_dest, are stored twice);
                          float32 except the int64 scalars *_graph_provider*.trainable_layout_version (= 1: trainable
                          edge rows are in anemoi's dst-sorted order = the graph file's CSR order).
                          To stay inside the size budget, gnn, gnn_mappers (on gnn, dropping encoder./decoder.) and
                          transformer_isolated are written as deltas (unless
                          --full-weights): header metadata boreas.kind = "delta", boreas.base = the file to start
                          from, boreas.drop_prefixes = key prefixes to remove from the base first; then add/replace
                          the delta's tensors.  `load_weights()` below does exactly that.
NAME.io.safetensors       reference tensors (IO_KEEP / IO_DESCRIPTIONS below; the header metadata boreas.layouts
                          describes each).  boreas.refs names tensors stored in another io file instead of being
                          repeated (bit-identical, checked): `input` lives in transformer.io.safetensors only.
NAME.yaml                 the model config in Boreas' config format (include/boreas/model/config.hpp).
transformer_isolated.graph.safetensors   the edited graph (Boreas graph format v1, no *_exact tensors).
VERSIONS.json             versions, recipes, data_indices, edge-order checks, clamp fractions, sizes.

Checks done on every run: the graph files round-trip into HeteroData and match an anemoi rebuild; every parameter
is non-zero; row k of every trainable edge tensor is the edge at CSR position k of the graph file; the forward is
deterministic; the written weights (deltas resolved) reload into a fresh model that reproduces `output` bit for
bit; the YAML parses back to the values used; an independent plain-torch re-implementation of spec/model.md
(spec_forward, GNN mappers included) matches every stored block output (rtol 1e-5, atol 1e-6); every bounding
clamps some points.
"""

from __future__ import annotations

import os

# --- environment first: before torch / anemoi are imported (anemoi reads these at import time)
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
import platform  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
import zlib  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from convert_anemoi_graph import EDGE_ATTRIBUTES  # noqa: E402
from convert_anemoi_graph import check_boreas_graph  # noqa: E402
from convert_anemoi_graph import convert_heterodata  # noqa: E402
from convert_anemoi_graph import edge_perm  # noqa: E402
from convert_anemoi_graph import read_boreas_graph  # noqa: E402
from convert_anemoi_graph import write_boreas_graph  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
GRAPH_DIR = REPO / "tests" / "data" / "graphs"

SEED = 0
INPUT_SEED = 1234
SIZE_BUDGET_BYTES = 2_350_000  # all files under tests/data/model together

# ---- the tiny configuration (spec/model.md section 12)
VARIABLES = ["z_500", "t_850", "2t", "sp", "lsm", "cos_latitude", "tp", "cp"]
FORCING = ["lsm", "cos_latitude"]
DIAGNOSTIC = ["tp", "cp"]
MULTISTEP = 2
N_STEP_OUTPUT = 1
BATCH = 2
ENSEMBLE = 1
CHANNELS = 32
HEADS = 4
MLP_RATIO = 4
TRAINABLE = {"data": 2, "hidden": 2, "data2hidden": 2, "hidden2data": 2, "hidden2hidden": 2}
EDGE_ATTRS = ["edge_length", "edge_dirs"]
BOUNDING = [
    {"_target_": "anemoi.models.layers.bounding.ReluBounding", "variables": ["tp"]},
    {
        "_target_": "anemoi.models.layers.bounding.FractionBounding",
        "variables": ["cp"],
        "min_val": 0.0,
        "max_val": 1.0,
        "total_var": "tp",
    },
    {"_target_": "anemoi.models.layers.bounding.HardtanhBounding", "variables": ["sp"], "min_val": -1.0, "max_val": 1.0},
]
LAYER_KERNELS = {
    "Linear": {"_target_": "torch.nn.Linear"},
    "LayerNorm": {"_target_": "torch.nn.LayerNorm"},
    "Activation": {"_target_": "torch.nn.GELU"},
}

# name -> processor, graph (graph file under tests/data/graphs, or an edit of one), mapper chunks, delta base
VARIANTS = {
    "transformer": {
        "processor": "transformer",
        "graph": "o16_o4",
        "edit": None,
        "base": None,
    },
    "graphtransformer": {
        "processor": "graphtransformer",
        "graph": "o16_tri2",
        "edit": None,
        "base": None,
    },
    "gnn": {
        "processor": "gnn",
        "graph": "o16_tri2",
        "edit": None,
        "base": ("graphtransformer", ["processor."]),
    },
    "transformer_isolated": {
        "processor": "transformer",
        "graph": "o16_o4",
        "edit": {"remove_edges_into": {"edges": "data_to_hidden", "dst": [0]}},
        "base": ("transformer", []),
    },
    "gnn_mappers": {
        "processor": "gnn",
        "mappers": "gnn",  # absent: "graphtransformer"
        "graph": "o16_tri2",
        "edit": None,
        "base": ("gnn", ["encoder.", "decoder."]),
    },
}
PROCESSOR_TARGETS = {
    "transformer": "anemoi.models.layers.processor.TransformerProcessor",
    "graphtransformer": "anemoi.models.layers.processor.GraphTransformerProcessor",
    "gnn": "anemoi.models.layers.processor.GNNProcessor",
}
# GNN: anemoi's own default (gnn.yaml / spec/model-audit.md 2.3) and what fits the size budget; with 4 the GNN
# weights alone would be ~0.6 MB.  Note GraphConv.edge_mlp always uses hidden width C whatever the ratio.
GNN_MLP_RATIO = 1
NUM_LAYERS = 2
PROC_CHUNKS = 2
WINDOW = 16
# GNN mappers (variant gnn_mappers): different extra layers / hidden ratios in encoder and decoder to exercise both
GNN_ENCODER = {"mlp_extra_layers": 1, "mlp_hidden_ratio": 1}
GNN_DECODER = {"mlp_extra_layers": 0, "mlp_hidden_ratio": 1.5}
MAPPER_TARGETS = {
    "graphtransformer": (
        "anemoi.models.layers.mapper.GraphTransformerForwardMapper",
        "anemoi.models.layers.mapper.GraphTransformerBackwardMapper",
    ),
    "gnn": ("anemoi.models.layers.mapper.GNNForwardMapper", "anemoi.models.layers.mapper.GNNBackwardMapper"),
}

# gnn_mappers: the GNN decoder's extractor (an MLP without LayerNorm) has small outputs: tp < 0 at every point (ReLU
# zeroes all of it, so cp = clamp(cp) * 0) and cp stays inside (0, 1); the FractionBounding clamps cannot act there
CLAMP_CHECK_EXEMPT = {"gnn_mappers": ("fraction_cp_below_0", "fraction_cp_above_1")}

# what each io file holds (size budget: decoder.out only where the decoder is localised, variant transformer)
IO_KEEP = {
    "transformer": [
        "input",
        "encoder.out",
        "encoder.alpha",
        "processor.layer0.out",
        "processor.out",
        "decoder.out",
        "output",
        "output_chunks3",
    ],
    "graphtransformer": ["encoder.out", "processor.layer0.alpha", "processor.out", "output"],
    "gnn": ["encoder.out", "processor.out", "output"],
    "transformer_isolated": ["encoder.out", "processor.out", "output"],
    "gnn_mappers": ["encoder.out", "output"],
}
IO_DESCRIPTIONS = {
    "input": "[B, T, E, N_data, V_in] normalised model input (dataset order minus diagnostics: "
    "z_500 t_850 2t sp lsm cos_latitude); t = 0 is the older step, the residual uses t = T-1",
    "encoder.out": "[B*N_hidden, C] hidden latent returned by the encoder (rows b*N_hidden + n); "
    "= processor input and the latent-skip term",
    "processor.layer0.out": "[B*N_hidden, C] after processor layer 0 (model.processor.proc[0])",
    "processor.out": "[B*N_hidden, C] processor output before the latent skip (add encoder.out to get the decoder's src)",
    "decoder.out": "[B*N_data, V_out] decoder return value = node_data_extractor output (LayerNorm + Linear), before "
    "residual and boundings; columns = internal model output order z_500 t_850 2t sp tp cp; rows b*N_data + n",
    "output": "[B, n_step_output, E, N_data, V_out] model return value model({'data': input})['data'] "
    "(residual on prognostic columns from input[:, -1], then boundings Relu(tp), Fraction(cp; tp), Hardtanh(sp))",
    "encoder.alpha": "[E_data_to_hidden, H] encoder attention weights (softmax over each destination's incoming edges, "
    "per head) of batch element 0; row k = edge at CSR position k of the graph file",
    "processor.layer0.alpha": "[E_hidden_to_hidden, H] attention weights of GraphTransformer processor layer 0, batch "
    "element 0; row k = edge at CSR position k of the graph file",
    "output_chunks3": "[B, n_step_output, E, N_data, V_out] same weights and input, encoder and decoder num_chunks = 3",
}


# ----------------------------------------------------------------------------------------------------------------
# graphs
# ----------------------------------------------------------------------------------------------------------------
def heterodata_from_boreas(tensors: dict, meta: dict):
    """A Boreas graph file back into anemoi's HeteroData, in anemoi's original edge order (undoing perm)."""
    import torch
    from torch_geometric.data import HeteroData

    g = HeteroData()
    for s, m in meta["nodes"].items():
        g[s].x = torch.from_numpy(np.array(tensors[f"nodes/{s}/coords"], dtype=np.float32))
        g[s].area_weight = torch.from_numpy(np.array(tensors[f"nodes/{s}/area_weight"], dtype=np.float32)[:, None])
    for key, m in meta["edges"].items():
        e = m["count"]
        src, off = tensors[f"edges/{key}/src"], tensors[f"edges/{key}/dst_offsets"]
        perm = edge_perm(tensors, key, e)
        dst = np.repeat(np.arange(len(off) - 1, dtype=np.int64), np.diff(off))
        ei = np.empty((2, e), dtype=np.int32)  # anemoi-graphs stores int32
        ei[0, perm] = src
        ei[1, perm] = dst
        store = g[(m["source"], "to", m["target"])]
        store.edge_index = torch.from_numpy(ei)
        for attr in EDGE_ATTRIBUTES:
            a = tensors[f"edges/{key}/{attr}"]
            orig = np.empty_like(a)
            orig[perm] = a
            store[attr] = torch.from_numpy(orig)
    return g


def attribute_diffs(tensors: dict, meta: dict, graph) -> dict:
    """{edge set: {attribute: [values differing, max abs diff]}} of `graph` against a graph file with the same edges."""
    out = {}
    for key, m in meta["edges"].items():
        (et,) = [t for t in graph.edge_types if "_".join(t) == key]
        perm = edge_perm(tensors, key, m["count"])
        for attr in EDGE_ATTRIBUTES:
            a = graph[et][attr].numpy().reshape(m["count"], -1)[perm]
            b = tensors[f"edges/{key}/{attr}"]
            d = np.abs(a.astype(np.float64) - b.astype(np.float64))
            if int((d > 0).sum()):
                out.setdefault(key, {})[attr] = [int((d > 0).sum()), float(d.max())]
    return out


def graphs_equal(a, b) -> bool:
    import torch

    if sorted(a.node_types) != sorted(b.node_types) or sorted(a.edge_types) != sorted(b.edge_types):
        return False
    for s in a.node_types:
        if not (a[s].x.dtype == b[s].x.dtype and torch.equal(a[s].x, b[s].x)):
            return False
    for et in a.edge_types:
        if not (a[et].edge_index.dtype == b[et].edge_index.dtype and torch.equal(a[et].edge_index, b[et].edge_index)):
            return False
        for attr in EDGE_ATTRIBUTES:
            x, y = a[et][attr], b[et][attr]
            if not (x.dtype == y.dtype and torch.equal(x.view(torch.int32), y.view(torch.int32))):
                return False
    return True


def rebuild_anemoi_graph(name: str, tmpdir: Path):
    """The same graph rebuilt with anemoi-graphs from make_graph_fixtures.py's recipe."""
    import torch
    from anemoi.graphs.create import GraphCreator
    from anemoi.utils.config import DotDict
    from make_graph_fixtures import FIXTURES
    from make_graph_fixtures import graph_config

    cfg, _ = graph_config(*FIXTURES[name], tmpdir, {})
    pt = tmpdir / f"{name}.pt"
    GraphCreator(DotDict(cfg)).create(save_path=pt, overwrite=True)
    return torch.load(pt, map_location="cpu", weights_only=False)


def load_graph(name: str, tmpdir: Path, checks: dict):
    """HeteroData of tests/data/graphs/<name>.safetensors, verified against an anemoi rebuild."""
    path = GRAPH_DIR / f"{name}.safetensors"
    tensors, meta = read_boreas_graph(path)
    g = heterodata_from_boreas(tensors, meta)
    check_boreas_graph(tensors, meta, g)  # the round trip reproduces the file exactly
    info = {"file": str(path.relative_to(REPO)), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    try:
        rebuilt = rebuild_anemoi_graph(name, tmpdir)
        check_boreas_graph(tensors, meta, rebuilt)
        info["anemoi_rebuild_identical"] = graphs_equal(g, rebuilt)
    except Exception as exc:  # the file is authoritative; record why the rebuild did not match
        info["anemoi_rebuild_identical"] = False
        info["anemoi_rebuild_error"] = f"{type(exc).__name__}: {exc}"
        try:  # same edges, float attributes off in the last bits? (torch's CPU kernels differ between CPUs)
            info["anemoi_rebuild_attribute_diffs"] = attribute_diffs(tensors, meta, rebuilt)
        except Exception:
            pass
    if not info["anemoi_rebuild_identical"]:
        print(f"warning: anemoi rebuild of {name} differs from the file; using the file ({info})", file=sys.stderr)
    checks[name] = info
    return g, tensors, meta


def remove_edges_into(graph, edges: str, dsts: list[int]):
    """Copy of `graph` without the edges of edge set `edges` ("data_to_hidden") whose destination is in dsts."""
    import torch

    g = copy.deepcopy(graph)
    (et,) = [t for t in g.edge_types if "_".join(t) == edges]
    store = g[et]
    keep = ~torch.isin(store.edge_index[1].long(), torch.tensor(dsts))
    removed = int((~keep).sum())
    store.edge_index = store.edge_index[:, keep].contiguous()
    for attr in EDGE_ATTRIBUTES:
        store[attr] = store[attr][keep].contiguous()
    return g, removed


def write_edited_graph(graph, base_name: str, base_meta: dict, edit: dict, removed: int, path: Path) -> dict:
    spec = edit["remove_edges_into"]
    builders = {k: dict(v["builder"]) for k, v in base_meta["edges"].items()}
    builders[spec["edges"]]["removed_edges_into"] = spec["dst"]
    norms = {a: base_meta["attributes"][a]["norm"] for a in ("edge_length", "edge_dirs", "area_weight")}
    tensors, meta = convert_heterodata(
        graph,
        grids={s: m["grid"] for s, m in base_meta["nodes"].items()},
        builders=builders,
        norms=norms,
        created_by="tools/reference/make_model_fixtures.py (convert_anemoi_graph.convert_heterodata)",
        extra_source={
            "derived_from": f"tests/data/graphs/{base_name}.safetensors",
            "edit": f"{spec['edges']}: removed the {removed} edges into destination(s) {spec['dst']}; the remaining "
            f"edges keep their order and their float32 attributes (normalised over the full {base_name} edge set)",
        },
        exact=False,
    )
    write_boreas_graph(path, tensors, meta)
    path.chmod(0o644)
    t2, m2 = read_boreas_graph(path)
    check_boreas_graph(t2, m2, graph)
    assert m2 == meta
    g2 = heterodata_from_boreas(t2, m2)
    assert graphs_equal(g2, graph)
    return {"tensors": t2, "meta": m2}


# ----------------------------------------------------------------------------------------------------------------
# configs
# ----------------------------------------------------------------------------------------------------------------
def anemoi_config(processor: str, mapper_chunks: int = 1, mappers: str = "graphtransformer") -> dict:
    gt_mapper = {
        "num_chunks": mapper_chunks,
        "num_heads": HEADS,
        "mlp_hidden_ratio": MLP_RATIO,
        "sub_graph_edge_attributes": EDGE_ATTRS,
        "qk_norm": False,
        "edge_pre_mlp": False,
        "shard_strategy": "edges",
        "graph_attention_backend": "pyg",
        "cpu_offload": False,
        "gradient_checkpointing": False,
        "layer_kernels": LAYER_KERNELS,
    }
    common = {"cpu_offload": False, "gradient_checkpointing": False, "layer_kernels": LAYER_KERNELS}
    if processor == "transformer":
        proc = {
            "num_layers": NUM_LAYERS,
            "num_chunks": PROC_CHUNKS,
            "num_heads": HEADS,
            "window_size": WINDOW,
            "mlp_hidden_ratio": MLP_RATIO,
            "dropout_p": 0.0,
            "attention_implementation": "scaled_dot_product_attention",
            "qk_norm": False,
            "softcap": None,
            "use_alibi_slopes": False,
        }
    elif processor == "graphtransformer":
        proc = {
            "num_layers": NUM_LAYERS,
            "num_chunks": PROC_CHUNKS,
            "num_heads": HEADS,
            "mlp_hidden_ratio": MLP_RATIO,
            "trainable_size": TRAINABLE["hidden2hidden"],
            "sub_graph_edge_attributes": EDGE_ATTRS,
            "qk_norm": False,
            "edge_pre_mlp": False,
            "shard_strategy": "edges",
            "graph_attention_backend": "pyg",
        }
    elif processor == "gnn":
        proc = {
            "num_layers": NUM_LAYERS,
            "num_chunks": PROC_CHUNKS,
            "mlp_extra_layers": 0,
            "mlp_hidden_ratio": GNN_MLP_RATIO,
            "trainable_size": TRAINABLE["hidden2hidden"],
            "sub_graph_edge_attributes": EDGE_ATTRS,
        }
    else:
        raise ValueError(processor)
    if mappers == "graphtransformer":
        encoder = {"trainable_size": TRAINABLE["data2hidden"], **gt_mapper}
        decoder = {"trainable_size": TRAINABLE["hidden2data"], "initialise_data_extractor_zero": False, **gt_mapper}
    elif mappers == "gnn":  # the keys of anemoi-training 0.16's config/model/gnn.yaml (no num_heads)
        gnn_mapper = {
            "sub_graph_edge_attributes": EDGE_ATTRS,
            "num_chunks": mapper_chunks,
            "mlp_implementation": "mlp",
            "cpu_offload": False,
            "gradient_checkpointing": False,
            "layer_kernels": LAYER_KERNELS,
        }
        encoder = {"trainable_size": TRAINABLE["data2hidden"], **GNN_ENCODER, **gnn_mapper}
        decoder = {"trainable_size": TRAINABLE["hidden2data"], **GNN_DECODER, **gnn_mapper}
    else:
        raise ValueError(mappers)
    return {
        "model": {
            "num_channels": CHANNELS,
            "model": {
                "_target_": "anemoi.models.models.AnemoiModelEncProcDec",
                "hidden_nodes_name": "hidden",
                "latent_skip": True,
            },
            "trainable_parameters": dict(TRAINABLE),
            "processor": {"_target_": PROCESSOR_TARGETS[processor], **proc, **common},
            "encoder": {"_target_": MAPPER_TARGETS[mappers][0], **encoder},
            "decoder": {"_target_": MAPPER_TARGETS[mappers][1], **decoder},
            "residual": {"_target_": "anemoi.models.layers.residual.SkipConnection", "step": -1},
            "bounding": copy.deepcopy(BOUNDING),
        }
    }


def _flow(v) -> str:
    """A value in YAML flow style (plain scalars; enough for these configs)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return "[" + ", ".join(_flow(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_flow(x)}" for k, x in v.items()) + "}"
    return str(v)


def boreas_yaml(processor: str, graph_file: str, mappers: str = "graphtransformer") -> str:
    """The config in Boreas' format (anemoi key names); see include/boreas/model/config.hpp."""
    lines = [
        "model:",
        f"  num_channels: {CHANNELS}",
        "  latent_skip: true",
        "  processor:",
        f"    _target_: {PROCESSOR_TARGETS[processor]}",
        f"    num_layers: {NUM_LAYERS}",
        f"    num_chunks: {PROC_CHUNKS}",
    ]
    if processor in ("transformer", "graphtransformer"):
        lines.append(f"    num_heads: {HEADS}")
    if processor == "transformer":
        lines.append(f"    window_size: {WINDOW}")
    lines.append(f"    mlp_hidden_ratio: {GNN_MLP_RATIO if processor == 'gnn' else MLP_RATIO}")
    if processor == "gnn":
        lines.append("    mlp_extra_layers: 0")
    if mappers == "graphtransformer":
        enc = dec = {"num_heads": HEADS, "mlp_hidden_ratio": MLP_RATIO, "num_chunks": 1}
    else:
        enc = {"mlp_hidden_ratio": GNN_ENCODER["mlp_hidden_ratio"], "mlp_extra_layers": GNN_ENCODER["mlp_extra_layers"], "num_chunks": 1}
        dec = {"mlp_hidden_ratio": GNN_DECODER["mlp_hidden_ratio"], "mlp_extra_layers": GNN_DECODER["mlp_extra_layers"], "num_chunks": 1}
    lines += [
        "  encoder: " + _flow({"_target_": MAPPER_TARGETS[mappers][0], **enc}),
        "  decoder: " + _flow({"_target_": MAPPER_TARGETS[mappers][1], **dec}),
        "  trainable_parameters: " + _flow(TRAINABLE),
        "  bounding:",
        *[f"    - {_flow(b)}" for b in BOUNDING],
        "data:",
        f"  variables: {_flow(VARIABLES)}",
        f"  forcing: {_flow(FORCING)}",
        f"  diagnostic: {_flow(DIAGNOSTIC)}",
        "training:",
        f"  multistep_input: {MULTISTEP}",
        "graph:",
        f"  file: {graph_file}",
    ]
    return "\n".join(lines) + "\n"


def check_yaml(text: str, cfg: dict, graph_file: str) -> None:
    """The YAML says exactly what the anemoi config used."""
    import yaml

    y = yaml.safe_load(text)
    m, am = y["model"], cfg["model"]
    assert m["num_channels"] == am["num_channels"] and m["latent_skip"] == am["model"]["latent_skip"]
    for k, v in m["processor"].items():
        assert am["processor"][k] == v, (k, v, am["processor"][k])
    for part in ("encoder", "decoder"):
        for k, v in m[part].items():
            assert am[part][k] == v, (part, k)
        gnn = am[part]["_target_"].endswith(("GNNForwardMapper", "GNNBackwardMapper"))
        shape_keys = {"_target_", "mlp_hidden_ratio", "num_chunks", "mlp_extra_layers" if gnn else "num_heads"}
        assert set(m[part]) == shape_keys, (part, sorted(m[part]))
    assert m["trainable_parameters"] == am["trainable_parameters"]
    assert m["bounding"] == am["bounding"]
    assert y["data"] == {"variables": VARIABLES, "forcing": FORCING, "diagnostic": DIAGNOSTIC}
    assert y["training"] == {"multistep_input": MULTISTEP} and y["graph"] == {"file": graph_file}


# ----------------------------------------------------------------------------------------------------------------
# model
# ----------------------------------------------------------------------------------------------------------------
def make_data_indices():
    from anemoi.models.data_indices.collection import IndexCollection
    from omegaconf import OmegaConf

    name_to_index = {n: i for i, n in enumerate(VARIABLES)}
    return {"data": IndexCollection(OmegaConf.create({"forcing": FORCING, "diagnostic": DIAGNOSTIC}), name_to_index)}


def build_model(graph, cfg: dict):
    from anemoi.models.models import AnemoiModelEncProcDec
    from omegaconf import OmegaConf

    model = AnemoiModelEncProcDec(
        model_config=OmegaConf.create(cfg),
        data_indices=make_data_indices(),
        statistics={"data": None},
        n_step_input=MULTISTEP,
        n_step_output=N_STEP_OUTPUT,
        graph_data=copy.deepcopy(graph),  # indexing a missing edge set adds an empty one to the HeteroData
    )
    return model.eval()


def _generator(name: str):
    import torch

    return torch.Generator().manual_seed(zlib.crc32(f"boreas-tiny/{SEED}/{name}".encode()))


def init_weights(model) -> dict:
    """Set every parameter from a per-name seeded generator; returns {kind: count}."""
    import torch
    from anemoi.models.layers.graph import TrainableTensor
    from torch import nn

    done: set[int] = set()
    kinds: dict[str, int] = {}
    with torch.no_grad():
        for mname, mod in model.named_modules():
            if isinstance(mod, nn.Linear):
                bound = 1.0 / float(np.sqrt(mod.in_features))
                w = mod.weight
                w.copy_((torch.rand(w.shape, generator=_generator(f"{mname}.weight")) * 2 - 1) * bound)
                done.add(id(w))
                if mod.bias is not None:
                    b = mod.bias
                    b.copy_((torch.rand(b.shape, generator=_generator(f"{mname}.bias")) * 2 - 1) * 0.1)
                    done.add(id(b))
                kinds["Linear"] = kinds.get("Linear", 0) + 1
            elif isinstance(mod, nn.LayerNorm):
                mod.weight.copy_(1 + 0.1 * torch.randn(mod.weight.shape, generator=_generator(f"{mname}.weight")))
                mod.bias.copy_(0.1 * torch.randn(mod.bias.shape, generator=_generator(f"{mname}.bias")))
                done.update((id(mod.weight), id(mod.bias)))
                kinds["LayerNorm"] = kinds.get("LayerNorm", 0) + 1
            elif isinstance(mod, TrainableTensor) and mod.trainable is not None:
                t = mod.trainable
                t.copy_(0.5 * torch.randn(t.shape, generator=_generator(f"{mname}.trainable")))
                done.add(id(t))
                kinds["TrainableTensor"] = kinds.get("TrainableTensor", 0) + 1
        for name, p in model.named_parameters():
            assert id(p) in done, f"parameter {name} not initialised"
            assert bool((p != 0).all()), f"parameter {name} has exact zeros"
    return kinds


def make_input(coords: np.ndarray) -> np.ndarray:
    """Smooth, varied, roughly N(0,1) normalised input [B, T, E, N, V_in] from the data nodes' (lat, lon)."""
    rng = np.random.default_rng(INPUT_SEED)
    lat = coords[:, 0].astype(np.float64)
    lon = coords[:, 1].astype(np.float64)
    n = lat.size

    def smooth():
        f = np.zeros(n)
        for _ in range(6):
            m, k = rng.integers(0, 5), rng.integers(0, 5)
            f += rng.normal() * np.cos(m * lon + rng.uniform(0, 2 * np.pi)) * np.cos(k * lat + rng.uniform(0, 2 * np.pi))
        f += 0.1 * rng.normal(size=n)  # a little small-scale variation
        return (f - f.mean()) / f.std()

    v_in = [v for v in VARIABLES if v not in DIAGNOSTIC]
    x = np.zeros((BATCH, MULTISTEP, ENSEMBLE, n, len(v_in)))
    lsm = 1.0 / (1.0 + np.exp(-2.5 * smooth()))  # land-sea mask in [0, 1], static
    for b in range(BATCH):
        for j, v in enumerate(v_in):
            if v == "lsm":
                x[b, :, 0, :, j] = lsm
            elif v == "cos_latitude":
                x[b, :, 0, :, j] = np.cos(lat)
            else:
                f0 = smooth() * rng.uniform(0.8, 1.3) + rng.normal(0, 0.3)
                x[b, 0, 0, :, j] = f0
                for t in range(1, MULTISTEP):  # later steps: the previous one plus a smooth tendency
                    x[b, t, 0, :, j] = x[b, t - 1, 0, :, j] + 0.4 * smooth()
    return x.astype(np.float32)


class Capture:
    """Forward hooks that keep (clones of) block outputs and bounding inputs, and the attention weights of every
    GraphTransformerConv call (anemoi.models.layers.conv.softmax wrapped while capturing)."""

    def __init__(self, model):
        import anemoi.models.layers.conv as conv_module

        self.out: dict = {}
        self.alphas: list = []
        self.handles = []
        self._conv_module = conv_module
        self._softmax = conv_module.softmax

        def softmax(*args, **kwargs):
            a = self._softmax(*args, **kwargs)
            self.alphas.append(a.detach().clone())
            return a

        conv_module.softmax = softmax
        from anemoi.models.layers.mapper import GNNForwardMapper

        enc, dec = model.encoder["data"], model.decoder["data"]
        self._hook(enc, "encoder.out", lambda o: o[1])  # every forward mapper returns (x_src, x_dst)
        if isinstance(enc, GNNForwardMapper):  # its updated x_src is the decoder's destination input
            self._hook(enc, "encoder.src_out", lambda o: o[0])
        self._hook(model.processor, "processor.out", lambda o: o)
        self._hook(model.processor.proc[0], "processor.layer0.out", lambda o: o[0])
        self._hook(dec, "decoder.out", lambda o: o)
        for i, bnd in enumerate(model.boundings["data"]):
            self.handles.append(
                bnd.register_forward_pre_hook(lambda m, args, i=i: self.out.__setitem__(f"bounding{i}.in", args[0].clone()))
            )

    def _hook(self, mod, key, pick):
        def fn(m, args, output):
            assert key not in self.out, f"{key} called twice"
            self.out[key] = pick(output).detach().clone()

        self.handles.append(mod.register_forward_hook(fn))

    def remove(self):
        for h in self.handles:
            h.remove()
        self._conv_module.softmax = self._softmax


def run(model, x):
    import torch

    with torch.no_grad():
        return model({"data": torch.from_numpy(x)})["data"]


def provider_order_checks(model, tensors: dict, meta: dict) -> dict:
    """Is row k of each trainable edge tensor the edge at CSR position k of the graph file?"""
    import torch

    providers = {"data_to_hidden": model.encoder_graph_provider["data"], "hidden_to_data": model.decoder_graph_provider["data"]}
    if "hidden_to_hidden" in meta["edges"]:
        providers["hidden_to_hidden"] = model.processor_graph_provider
    out = {}
    for key, prov in providers.items():
        e = meta["edges"][key]["count"]
        off = tensors[f"edges/{key}/dst_offsets"]
        src = torch.from_numpy(tensors[f"edges/{key}/src"].astype(np.int64))
        dst = torch.from_numpy(np.repeat(np.arange(len(off) - 1), np.diff(off)))
        attrs = torch.from_numpy(np.concatenate([tensors[f"edges/{key}/{a}"] for a in EDGE_ATTRS], axis=1))
        ei = prov.edge_index_base.long()
        perm_file = torch.from_numpy(edge_perm(tensors, key, e))
        same_index = bool(torch.equal(ei[0], src) and torch.equal(ei[1], dst))
        same_attr = bool(torch.equal(prov.edge_attr.view(torch.int32), attrs.view(torch.int32)))
        same_perm = bool(torch.equal(prov.perm.long(), perm_file))
        out[key] = {
            "edges": e,
            "trainable_rows": int(prov.trainable.trainable.shape[0]),
            "anemoi_perm_equals_file_perm": same_perm,
            "anemoi_perm_is_identity": bool(torch.equal(prov.perm.long(), torch.arange(e))),
            "edge_index_base_equals_file_csr": same_index,
            "edge_attr_equals_file_csr_bitwise": same_attr,
            "trainable_row_k_is_csr_position_k": same_index and same_attr and same_perm,
            "layout_version": int(prov.trainable_layout_version),
        }
        assert out[key]["trainable_row_k_is_csr_position_k"], (key, out[key])
    return out


def clamp_fractions(cap: dict, data_indices) -> dict:
    """Fractions of points where each bounding changed the value (from the bounding inputs)."""
    n2i = data_indices["data"].model.output.name_to_index
    tp, cp, sp = n2i["tp"], n2i["cp"], n2i["sp"]
    b0, b1, b2 = cap["bounding0.in"], cap["bounding1.in"], cap["bounding2.in"]
    f = lambda m: float(m.float().mean())  # noqa: E731
    return {
        "relu_tp_below_0": f(b0[..., tp] < 0),
        "fraction_cp_below_0": f(b1[..., cp] < 0),
        "fraction_cp_above_1": f(b1[..., cp] > 1),
        "hardtanh_sp_below_-1": f(b2[..., sp] < -1),
        "hardtanh_sp_above_1": f(b2[..., sp] > 1),
        "tp_pre_bounding_min": float(b0[..., tp].min()),
        "cp_pre_bounding_range": [float(b1[..., cp].min()), float(b1[..., cp].max())],
        "sp_pre_bounding_range": [float(b2[..., sp].min()), float(b2[..., sp].max())],
    }


# ----------------------------------------------------------------------------------------------------------------
# an independent re-implementation of the forward pass from spec/model.md (plain torch ops on the state dict and
# the graph file's CSR arrays; no anemoi module), as a cross-check of the spec against anemoi's numbers
# ----------------------------------------------------------------------------------------------------------------
def spec_forward(sd: dict, gt: dict, x, processor: str, mappers: str = "graphtransformer") -> dict:
    import torch
    import torch.nn.functional as F

    def lin(t, p, bias=True):
        return F.linear(t, sd[f"{p}.weight"], sd[f"{p}.bias"] if bias else None)

    def ln(t, p):
        return F.layer_norm(t, (t.shape[-1],), sd[f"{p}.weight"], sd[f"{p}.bias"], eps=1e-5)

    def mlp(t, p, n_linear, layer_norm):  # Linear (GELU Linear)*; optional LN at the end
        for i in range(n_linear):
            t = lin(t, f"{p}.mlp.{2 * i}")
            if i < n_linear - 1:
                t = F.gelu(t)
        return ln(t, f"{p}.layer_norm") if layer_norm else t

    def edges(key, trainable, n_src, n_dst):
        off = gt[f"edges/{key}/dst_offsets"]
        src = torch.from_numpy(gt[f"edges/{key}/src"].astype(np.int64))
        dst = torch.from_numpy(np.repeat(np.arange(len(off) - 1), np.diff(off)))
        attr = torch.from_numpy(np.concatenate([gt[f"edges/{key}/{a}"] for a in EDGE_ATTRS], 1))
        e0 = torch.cat([attr, sd[trainable]], 1)
        b = torch.arange(BATCH).repeat_interleave(len(src))
        return src.repeat(BATCH) + b * n_src, dst.repeat(BATCH) + b * n_dst, e0.repeat(BATCH, 1)

    def gt_attention(p, q_in, kv_in, e0, src, dst, n_dst):
        h, d = HEADS, CHANNELS // HEADS
        q = lin(q_in, f"{p}.lin_query").view(-1, h, d)
        k = lin(kv_in, f"{p}.lin_key").view(-1, h, d)
        v = lin(kv_in, f"{p}.lin_value").view(-1, h, d)
        eps = lin(e0, f"{p}.lin_edge").view(-1, h, d)
        s = (q[dst] * (k[src] + eps)).sum(-1) / d**0.5  # [E, H]
        m = torch.full((n_dst, h), -torch.inf).index_reduce_(0, dst, s, "amax")
        w = torch.exp(s - m[dst])
        den = torch.zeros(n_dst, h).index_add_(0, dst, w)
        alpha = w / (den[dst] + 1e-16)
        o = torch.zeros(n_dst, h, d).index_add_(0, dst, alpha[..., None] * (v[src] + eps))
        return o.reshape(n_dst, h * d), alpha

    def gt_block(p, h_src, g_dst, e0, src, dst, mapper):
        y = ln(g_dst, f"{p}.layer_norm_attention")
        xs = ln(h_src, f"{p}.layer_norm_attention_src") if mapper else y
        o, alpha = gt_attention(p, y, xs, e0, src, dst, g_dst.shape[0])
        u = lin(o + lin(y, f"{p}.lin_self"), f"{p}.projection") + g_dst
        return u + mlp(ln(u, f"{p}.layer_norm_mlp_dst"), f"{p}.node_dst_mlp", 2, False), alpha

    out = {}
    x = torch.as_tensor(x)
    nd, nh = sd["node_attributes.latlons_data"].shape[0], sd["node_attributes.latlons_hidden"].shape[0]
    attrs_d = torch.cat([sd["node_attributes.latlons_data"], sd["node_attributes.trainable_tensors.data.trainable"]], 1)
    attrs_h = torch.cat([sd["node_attributes.latlons_hidden"], sd["node_attributes.trainable_tensors.hidden.trainable"]], 1)
    xd = torch.cat([x.permute(0, 2, 3, 1, 4).reshape(BATCH * ENSEMBLE * nd, -1), attrs_d.repeat(BATCH, 1)], 1)
    xh = attrs_h.repeat(BATCH, 1)

    def gnn_conv(p, x_src, x_dst, e, src, dst, n_linear):  # GraphConv + node MLP on the destination
        msg = mlp(torch.cat([x_dst[dst], x_src[src], e], 1), f"{p}.conv.edge_mlp", n_linear, True) + e
        agg = torch.zeros_like(x_dst).index_add_(0, dst, msg)
        return mlp(torch.cat([x_dst, agg], 1), f"{p}.node_mlp", n_linear, True) + x_dst

    # encoder
    src, dst, e0 = edges("data_to_hidden", "encoder_graph_provider.data.trainable.trainable", nd, nh)
    if mappers == "graphtransformer":
        h_src, g_dst = lin(xd, "encoder.data.emb_nodes_src"), lin(xh, "encoder.data.emb_nodes_dst")
        lat, alpha = gt_block("encoder.data.proc", h_src, g_dst, e0, src, dst, mapper=True)
        out["encoder.out"], out["encoder.alpha"] = lat, alpha[: len(src) // BATCH]
    else:  # GNN: MLPs with mlp_extra_layers + 3 Linears (+ LayerNorm); the source nodes are updated as well
        n_enc = GNN_ENCODER["mlp_extra_layers"] + 3
        e = mlp(e0, "encoder.data.emb_edges", n_enc, True)
        h_src = mlp(xd, "encoder.data.emb_nodes_src", n_enc, True)
        h_dst = mlp(xh, "encoder.data.emb_nodes_dst", n_enc, True)
        lat = gnn_conv("encoder.data.proc", h_src, h_dst, e, src, dst, n_enc)
        h_src = mlp(torch.cat([h_src, h_src], 1), "encoder.data.proc.node_mlp", n_enc, True) + h_src
        out["encoder.out"], out["encoder.src_out"] = lat, h_src

    # processor
    p = lat
    if processor == "transformer":
        h, d = HEADS, CHANNELS // HEADS
        i = torch.arange(nh)
        mask = (i[:, None] - i[None, :]).abs() <= WINDOW
        for layer in range(NUM_LAYERS):
            pre = f"processor.proc.{layer}"
            t = ln(p, f"{pre}.layer_norm_attention")
            q, k, v = (
                F.linear(t, sd[f"{pre}.attention.lin_{c}.weight"]).view(BATCH, nh, h, d).transpose(1, 2) for c in "qkv"
            )
            s = (q @ k.transpose(-1, -2)) / d**0.5
            a = torch.softmax(s.masked_fill(~mask, -torch.inf), -1)
            o = (a @ v).transpose(1, 2).reshape(BATCH * nh, h * d)
            p = p + lin(o, f"{pre}.attention.projection")
            p = p + mlp(ln(p, f"{pre}.layer_norm_mlp"), f"{pre}.mlp", 2, False)
            if layer == 0:
                out["processor.layer0.out"] = p
    else:
        src, dst, e0 = edges("hidden_to_hidden", "processor_graph_provider.trainable.trainable", nh, nh)
        e = e0
        for layer in range(NUM_LAYERS):
            pre = f"processor.proc.{layer}"
            if processor == "graphtransformer":
                p, alpha = gt_block(pre, p, p, e0, src, dst, mapper=False)
                if layer == 0:
                    out["processor.layer0.alpha"] = alpha[: len(src) // BATCH]
            else:  # gnn: message [x_dst, x_src, e] -> edge MLP + e; scatter-sum; node MLP on [x, agg] + x
                if layer == 0:
                    e = mlp(e, f"{pre}.emb_edges", 3, True)
                msg = mlp(torch.cat([p[dst], p[src], e], 1), f"{pre}.conv.edge_mlp", 3, True) + e
                agg = torch.zeros_like(p).index_add_(0, dst, msg)
                p = mlp(torch.cat([p, agg], 1), f"{pre}.node_mlp", 3, True) + p
                e = msg
            if layer == 0:
                out["processor.layer0.out"] = p
    out["processor.out"] = p

    # decoder (src = processor output + latent skip, dst = raw data features re-embedded)
    src, dst, e0 = edges("hidden_to_data", "decoder_graph_provider.data.trainable.trainable", nh, nd)
    if mappers == "graphtransformer":
        y, _ = gt_block("decoder.data.proc", p + lat, lin(xd, "decoder.data.emb_nodes_dst"), e0, src, dst, mapper=True)
        dec = lin(ln(y, "decoder.data.node_data_extractor.0"), "decoder.data.node_data_extractor.1")
    else:  # GNN: dst = the encoder's updated data-node embedding (no re-embedding); extractor MLP without LayerNorm
        n_dec = GNN_DECODER["mlp_extra_layers"] + 3
        e = mlp(e0, "decoder.data.emb_edges", n_dec, True)
        y = gnn_conv("decoder.data.proc", p + lat, h_src, e, src, dst, n_dec)
        dec = mlp(y, "decoder.data.node_data_extractor", n_dec, False)
    out["decoder.out"] = dec

    # residual (prognostic: internal output 0..3 <- last input step, internal input 0..3) and boundings
    y = dec.view(BATCH, 1, ENSEMBLE, nd, -1).clone()
    y[..., 0:4] += x[:, -1:, :, :, 0:4]
    tp, cp, sp = 4, 5, 3
    # (the .clone()s only keep autograd happy with the in-place column writes; make_training_fixtures differentiates this)
    y[..., tp] = torch.relu(y[..., tp].clone())
    y[..., cp] = torch.clamp(y[..., cp].clone(), 0.0, 1.0) * y[..., tp].clone()
    y[..., sp] = torch.clamp(y[..., sp].clone(), -1.0, 1.0)
    out["output"] = y
    return out


def compare(ref, got) -> dict:
    d = (got.double() - ref.double()).abs()
    scale = ref.double().abs()
    return {
        "max_abs": float(d.max()),
        "max_rel": float((d / scale.clamp_min(1e-6)).max()),
        "allclose_rtol1e-5_atol1e-6": bool(torch_allclose(got, ref)),
    }


def torch_allclose(a, b) -> bool:
    import torch

    return bool(torch.allclose(a.double(), b.double(), rtol=1e-5, atol=1e-6))


# ----------------------------------------------------------------------------------------------------------------
# files
# ----------------------------------------------------------------------------------------------------------------
def state_dict_tensors(model) -> dict:
    """state_dict with every tensor cloned (aliases such as layer_norm_attention_dest become separate copies)."""
    return {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}


def save_safetensors(path: Path, tensors: dict, meta: dict) -> None:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata={"boreas": json.dumps(meta, separators=(",", ":"))})
    path.chmod(0o644)


def read_safetensors(path: Path) -> tuple[dict, dict]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = json.loads((f.metadata() or {}).get("boreas", "{}"))
        return {k: f.get_tensor(k) for k in f.keys()}, meta


def load_weights(path: Path) -> dict:
    """Full state dict of a weights file, resolving delta files (kind = "delta": base, drop_prefixes)."""
    tensors, meta = read_safetensors(path)
    if meta.get("kind") != "delta":
        return tensors
    base = load_weights(path.parent / meta["base"])
    base = {k: v for k, v in base.items() if not any(k.startswith(p) for p in meta["drop_prefixes"])}
    base.update(tensors)
    return base


def tensor_equal(a, b) -> bool:
    import torch

    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.dtype == torch.float32:
        return bool(torch.equal(a.view(torch.int32), b.view(torch.int32)))
    return bool(torch.equal(a, b))


def package_versions() -> dict:
    import importlib.metadata as md

    out = {"python": platform.python_version(), "machine": platform.machine()}
    for dist in (
        "anemoi-models",
        "anemoi-graphs",
        "anemoi-utils",
        "torch",
        "torch-geometric",
        "numpy",
        "scipy",
        "scikit-learn",
        "trimesh",
        "einops",
        "hydra-core",
        "omegaconf",
        "safetensors",
        "PyYAML",
    ):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            out[dist] = None
    import torch

    out["torch_num_threads"] = torch.get_num_threads()
    out["CUDA_VISIBLE_DEVICES"] = os.environ.get("CUDA_VISIBLE_DEVICES")
    return out


def _index_lists(di) -> dict:
    def conv(v):
        if hasattr(v, "tolist"):
            return v.tolist()
        if isinstance(v, dict):
            return {k: conv(x) for k, x in v.items()}
        return v

    return {
        "name_to_index": dict(di.name_to_index),
        "data": conv(di.data.todict()),
        "internal_model": conv(di.model.todict()),
        "internal_model_input_names": list(di.model.input.name_to_index),
        "internal_model_output_names": list(di.model.output.name_to_index),
        "residual": {
            "output_prognostic_index": conv(di.model.output.prognostic),
            "input_prognostic_index": conv(di.model.input.prognostic),
            "note": "output[..., output_prognostic_index] += input[:, -1, ..., input_prognostic_index]",
        },
    }


# ----------------------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Build Boreas model fixtures with anemoi-models (tiny config).")
    p.add_argument("--out", default=str(REPO / "tests" / "data" / "model"))
    p.add_argument("--full-weights", action="store_true", help="write complete weights files for every variant")
    p.add_argument(
        "--self-contained",
        action="store_true",
        help="every io file holds its own input and every tensor it lists (no refs); implies --full-weights. "
        "About 2.9 MB: needs --budget 0 or a larger budget",
    )
    p.add_argument("--budget", type=int, default=SIZE_BUDGET_BYTES, help="size budget in bytes (0: no check)")
    p.add_argument(
        "--only",
        default="",
        help="comma-separated variants to (re)write; the other variants are still built and run, their existing "
        "files are checked (weights and yaml exactly, io within rtol 1e-5 / atol 1e-5: the float rounding of "
        "torch's CPU kernels differs between CPUs) and kept, and their VERSIONS.json entries are kept",
    )
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    if args.self_contained:
        args.full_weights = True
    only = set(args.only.split(",")) if args.only else None
    if only is not None and not only <= set(VARIANTS):
        p.error(f"--only: unknown variant(s) {sorted(only - set(VARIANTS))}")
    logging.basicConfig(level=logging.INFO if args.verbose else logging.ERROR)
    warnings.filterwarnings("ignore")
    t_start = time.time()

    import torch

    torch.manual_seed(SEED)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    graph_checks: dict = {}
    doc_variants: dict = {}
    models: dict = {}
    results: dict = {}
    sd_full: dict = {}

    with tempfile.TemporaryDirectory() as tmp:
        graphs = {name: load_graph(name, Path(tmp), graph_checks) for name in sorted({v["graph"] for v in VARIANTS.values()})}

    # the data nodes (and so the input) are the same O16 grid in every graph
    coords = graphs["o16_o4"][0]["data"].x.numpy()
    for g, _, _ in graphs.values():
        assert np.array_equal(g["data"].x.numpy().view(np.uint32), coords.view(np.uint32))
    x = make_input(coords)
    data_indices = make_data_indices()

    for name, var in VARIANTS.items():
        t0 = time.time()
        graph, gtensors, gmeta = graphs[var["graph"]]
        graph_file = f"tests/data/graphs/{var['graph']}.safetensors"
        edit_info = None
        if var["edit"]:
            spec = var["edit"]["remove_edges_into"]
            graph, removed = remove_edges_into(graph, spec["edges"], spec["dst"])
            gpath = out_dir / f"{name}.graph.safetensors"
            edited = write_edited_graph(graph, var["graph"], gmeta, var["edit"], removed, gpath)
            gtensors, gmeta = edited["tensors"], edited["meta"]
            graph = heterodata_from_boreas(gtensors, gmeta)
            graph_file = str(gpath.relative_to(REPO)) if gpath.is_relative_to(REPO) else str(gpath)
            indeg = np.diff(gtensors[f"edges/{spec['edges']}/dst_offsets"])
            edit_info = {
                "removed_edges": removed,
                "destinations_without_incoming_edge": np.flatnonzero(indeg == 0).tolist(),
            }

        mappers = var.get("mappers", "graphtransformer")
        cfg = anemoi_config(var["processor"], mappers=mappers)
        model = build_model(graph, cfg)
        kinds = init_weights(model)
        if name == "transformer_isolated":  # the transformer's trainables for the edges that remain
            base_prov = models["transformer"].encoder_graph_provider["data"]
            prov = model.encoder_graph_provider["data"]
            key = lambda ei: (ei[0].long() * 1_000_000 + ei[1].long()).tolist()  # noqa: E731
            row = {k: i for i, k in enumerate(key(base_prov.edge_index_base))}
            assert len(row) == base_prov.edge_index_base.shape[1]
            idx = torch.tensor([row[k] for k in key(prov.edge_index_base)])
            with torch.no_grad():
                prov.trainable.trainable.copy_(base_prov.trainable.trainable[idx])
        models[name] = model
        order = provider_order_checks(model, gtensors, gmeta)

        cap = Capture(model)
        y = run(model, x)
        cap.remove()
        y2 = run(model, x)
        assert tensor_equal(y, y2), "forward is not deterministic"
        out = {k: v for k, v in cap.out.items() if not k.startswith("bounding")}
        out["output"] = y.clone()
        # attention weights: calls in forward order = encoder, [GT processor layers], decoder (none for GNN mappers)
        gt_mappers = mappers == "graphtransformer"
        n_gt = (2 if gt_mappers else 0) + (NUM_LAYERS if var["processor"] == "graphtransformer" else 0)
        assert len(cap.alphas) == n_gt, len(cap.alphas)
        if gt_mappers:
            e_enc = gmeta["edges"]["data_to_hidden"]["count"]
            assert cap.alphas[0].shape == (BATCH * e_enc, HEADS)
            out["encoder.alpha"] = cap.alphas[0][:e_enc].contiguous()
        if var["processor"] == "graphtransformer":
            e_h = gmeta["edges"]["hidden_to_hidden"]["count"]
            a = cap.alphas[1 if gt_mappers else 0]
            assert a.shape == (BATCH * e_h, HEADS)
            out["processor.layer0.alpha"] = a[:e_h].contiguous()
        for key, a in (("data_to_hidden", out.get("encoder.alpha")), ("hidden_to_hidden", out.get("processor.layer0.alpha"))):
            if a is None:
                continue
            off = gtensors[f"edges/{key}/dst_offsets"]
            sums = torch.zeros(len(off) - 1, HEADS, dtype=torch.float64)
            sums.index_add_(0, torch.from_numpy(np.repeat(np.arange(len(off) - 1), np.diff(off))), a.double())
            has = torch.from_numpy(np.diff(off) > 0)
            assert float((sums[has] - 1).abs().max()) < 1e-5 and float(sums[~has].abs().sum()) == 0
        clamps = clamp_fractions(cap.out, data_indices)

        # shapes
        n_d, n_h = graph["data"].num_nodes, graph["hidden"].num_nodes
        v_out = len(data_indices["data"].model.output.full)
        assert out["encoder.out"].shape == (BATCH * n_h, CHANNELS)
        assert out["processor.out"].shape == (BATCH * n_h, CHANNELS)
        assert out["decoder.out"].shape == (BATCH * n_d, v_out)
        assert y.shape == (BATCH, N_STEP_OUTPUT, ENSEMBLE, n_d, v_out)

        extra = {}
        if name == "transformer":
            cfg3 = anemoi_config(var["processor"], mapper_chunks=3)
            m3 = build_model(graph, cfg3)
            m3.load_state_dict(model.state_dict(), strict=True)
            y3 = run(m3, x)
            out["output_chunks3"] = y3.clone()
            d = (y3 - y).abs()
            extra["mapper_num_chunks_3_vs_1"] = {
                "max_abs_diff": float(d.max()),
                "max_rel_diff": float((d / y.abs().clamp_min(1e-30)).max()),
                "bitwise_identical": tensor_equal(y3, y),
                "points_differing": int((d > 0).sum()),
            }
            extra["mapper_num_chunks_3_vs_1"]["encoder_partition"] = chunk_partition(graph, "data", "hidden", 3)
            extra["mapper_num_chunks_3_vs_1"]["decoder_partition"] = chunk_partition(graph, "hidden", "data", 3)
        with torch.no_grad():
            sf = spec_forward(
                {k: v for k, v in model.state_dict().items()}, gtensors, torch.from_numpy(x), var["processor"], mappers
            )
        spec_check = {k: compare(out[k], sf[k]) for k in sf if k in out}
        bad = [k for k, v in spec_check.items() if not v["allclose_rtol1e-5_atol1e-6"]]
        assert not bad, f"{name}: spec re-implementation differs from anemoi in {bad}: {spec_check}"
        results[name] = {"out": out, "clamps": clamps}
        sd_full[name] = state_dict_tensors(model)
        doc_variants[name] = {
            "processor": var["processor"],
            **({"mappers": mappers} if mappers != "graphtransformer" else {}),
            "graph_file": graph_file,
            "graph_edit": edit_info,
            "anemoi_config": cfg,
            "nodes": {"data": n_d, "hidden": n_h},
            "initialised_modules": kinds,
            "edge_order": order,
            "clamp_fractions": clamps,
            "spec_reimplementation_vs_anemoi": spec_check,
            **extra,
        }
        print(f"{name}: built and ran in {time.time() - t0:.1f} s; clamps {json.dumps(_short(clamps))}")
        print("  spec re-implementation vs anemoi: " + ", ".join(f"{k} {v['max_abs']:.2e}/{v['max_rel']:.1e}" for k, v in spec_check.items()))
        if extra:
            print(f"  mapper num_chunks 3 vs 1: {extra['mapper_num_chunks_3_vs_1']}")

    # ---- checks on the inputs/weights across variants
    assert bool((results["transformer"]["clamps"]["relu_tp_below_0"]) > 0), "ReLU never acts on tp"
    for name, r in results.items():
        c = r["clamps"]
        for k in ("relu_tp_below_0", "fraction_cp_below_0", "fraction_cp_above_1", "hardtanh_sp_below_-1", "hardtanh_sp_above_1"):
            assert c[k] > 0 or k in CLAMP_CHECK_EXEMPT.get(name, ()), (name, k, c)

    # ---- write files
    written: dict[str, Path] = {}
    io_refs: dict[str, dict] = {}
    kept: dict[str, dict] = {}  # --only: the existing io tensors of the variants that are kept

    def kept_variant(name: str) -> bool:
        return only is not None and name not in only

    for name, var in VARIANTS.items():
        r = results[name]
        # io: store each tensor once; refer to an identical earlier one instead of repeating it
        io = {}
        refs = {}
        keep = IO_KEEP[name] if "input" in IO_KEEP[name] or not args.self_contained else ["input", *IO_KEEP[name]]
        for k in keep:
            if k == "input":
                io[k] = torch.from_numpy(x)
                continue
            t = r["out"][k]
            same = [
                n
                for n in io_refs
                if k in io_refs[n]["stored"]
                and tensor_equal(kept[n][k] if n in kept and not kept_variant(name) else results[n]["out"][k], t)
            ]
            same = [] if args.self_contained else same
            if same:
                refs[k] = f"{same[0]}.io.safetensors"
            else:
                io[k] = t.contiguous()
        if "input" not in io:
            refs["input"] = "transformer.io.safetensors"
            if "transformer" in kept:  # the input is bit-identical on every CPU; a reference must be exact
                assert tensor_equal(kept["transformer"]["input"], torch.from_numpy(x)), "stored input differs"
        io_refs[name] = {"stored": list(io), "refs": refs}
        meta = {
            "variant": name,
            "layouts": {k: IO_DESCRIPTIONS[k] for k in list(io) + list(refs)},
            "refs": refs,
            "output_shape_note": "output keeps anemoi's time axis: [B, n_step_output=1, E=1, N_data, V_out]",
            "weights": f"{name}.weights.safetensors",
            "config": f"{name}.yaml",
        }
        path = out_dir / f"{name}.io.safetensors"
        if kept_variant(name):
            old_io, old_meta = read_safetensors(path)
            assert sorted(old_io) == sorted(io) and old_meta == meta, (name, sorted(old_io), old_meta)
            diffs = {k: compare(old_io[k], io[k]) for k in io}
            assert all(torch.allclose(io[k].double(), old_io[k].double(), rtol=1e-5, atol=1e-5) for k in io), diffs
            kept[name] = old_io
            print(f"  {name}: kept {path.name}; this run vs file max abs diff "
                  + ", ".join(f"{k} {v['max_abs']:.1e}" for k, v in diffs.items()))
        else:
            save_safetensors(path, io, meta)
        written[path.name] = path

        # weights
        sd = sd_full[name]
        base = None if args.full_weights else var["base"]
        if base is None:
            wt, wmeta = sd, {"kind": "full"}
        else:
            bname, drop = base
            bsd = {k: v for k, v in sd_full[bname].items() if not any(k.startswith(p) for p in drop)}
            wt = {k: v for k, v in sd.items() if k not in bsd or not tensor_equal(bsd[k], v)}
            removed_keys = [k for k in bsd if k not in sd]
            assert not removed_keys, removed_keys
            wmeta = {"kind": "delta", "base": f"{bname}.weights.safetensors", "drop_prefixes": drop}
            if name == "gnn_mappers":  # processor, trainables and node attributes are the gnn variant's exactly
                assert all(k.startswith(tuple(drop)) for k in wt), sorted(k for k in wt if not k.startswith(tuple(drop)))
                assert sorted(wt) == sorted(k for k in sd if k.startswith(tuple(drop))), name
        wmeta.update(
            {
                "variant": name,
                "anemoi_models_version": package_versions()["anemoi-models"],
                "aliases": "X.proc.layer_norm_attention_dest.* is the same module as X.proc.layer_norm_attention.* "
                "(GraphTransformerMapperBlock); both names are stored",
                "trainable_edge_rows": "dst-sorted (anemoi StaticGraphProvider, trainable_layout_version 1) "
                "= CSR position in the graph file",
                "latlons": "node_attributes.latlons_<nodes> = [sin lat, sin lon, cos lat, cos lon] of the graph coords",
            }
        )
        path = out_dir / f"{name}.weights.safetensors"
        if kept_variant(name):  # weights do not depend on the CPU: the kept file must be exactly what we would write
            old_wt, old_wmeta = read_safetensors(path)
            assert old_wmeta == wmeta and sorted(old_wt) == sorted(wt), name
            assert all(tensor_equal(old_wt[k], wt[k]) for k in wt), name
        else:
            save_safetensors(path, wt, wmeta)
        written[path.name] = path
        # the file (resolved) must give back exactly the model's state dict
        loaded = load_weights(path)
        assert sorted(loaded) == sorted(sd), (name, set(loaded) ^ set(sd))
        assert all(tensor_equal(loaded[k], sd[k]) for k in sd), name
        # ... and a fresh model loaded from it reproduces the output bit for bit
        graph = heterodata_from_boreas(*read_boreas_graph(REPO / doc_variants[name]["graph_file"]))
        fresh = build_model(graph, doc_variants[name]["anemoi_config"])
        fresh.load_state_dict(loaded, strict=True)
        stored_io, _ = read_safetensors(out_dir / f"{name}.io.safetensors")
        assert tensor_equal(run(fresh, x), r["out"]["output"]), name
        assert kept_variant(name) or tensor_equal(stored_io["output"], r["out"]["output"]), name

        # yaml
        text = boreas_yaml(var["processor"], doc_variants[name]["graph_file"], var.get("mappers", "graphtransformer"))
        check_yaml(text, doc_variants[name]["anemoi_config"], doc_variants[name]["graph_file"])
        path = out_dir / f"{name}.yaml"
        if kept_variant(name):
            assert path.read_text() == text, name
        else:
            path.write_text(text)
        written[path.name] = path
        if var["edit"]:
            gp = out_dir / f"{name}.graph.safetensors"
            written[gp.name] = gp

        doc_variants[name]["files"] = {
            "weights": {"file": f"{name}.weights.safetensors", **{k: v for k, v in wmeta.items() if k in ("kind", "base", "drop_prefixes")}},
            "io": {"file": f"{name}.io.safetensors", "stored": io_refs[name]["stored"], "refs": io_refs[name]["refs"]},
            "config": f"{name}.yaml",
        }
        doc_variants[name]["captured_shapes"] = {k: list(r["out"][k].shape) for k in r["out"]}
        doc_variants[name]["captured_shapes"]["input"] = list(x.shape)
        # names and shapes: see the safetensors header of the weights file (resolved with load_weights)
        doc_variants[name]["state_dict_tensors"] = len(sd)
        doc_variants[name]["weights_file_tensors"] = sorted(wt) if len(wt) < len(sd) else len(wt)
        doc_variants[name]["state_dict_numel"] = int(sum(v.numel() for v in sd.values()))

    # ---- VERSIONS.json
    sizes = {n: p.stat().st_size for n, p in sorted(written.items())}
    doc = {
        "generator": "tools/reference/make_model_fixtures.py",
        "environment": package_versions(),
        "config": {
            "variables": VARIABLES,
            "forcing": FORCING,
            "diagnostic": DIAGNOSTIC,
            "multistep_input": MULTISTEP,
            "n_step_output": N_STEP_OUTPUT,
            "batch": BATCH,
            "ensemble": ENSEMBLE,
            "num_channels": CHANNELS,
            "num_heads": HEADS,
            "mlp_hidden_ratio": MLP_RATIO,
            "gnn_mlp_hidden_ratio": GNN_MLP_RATIO,
            "trainable_parameters": TRAINABLE,
            "bounding": BOUNDING,
        },
        "data_indices": _index_lists(data_indices["data"]),
        "weights_init": {
            "seed": SEED,
            "generator": "torch.Generator().manual_seed(zlib.crc32(f'boreas-tiny/{seed}/{module_name}.{param}'))",
            "Linear": "weight ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), bias ~ U(-0.1, 0.1)",
            "LayerNorm": "weight ~ 1 + N(0, 0.1), bias ~ N(0, 0.1)",
            "TrainableTensor": "~ N(0, 0.5) (node and edge trainables)",
            "transformer_isolated": "encoder edge trainables = the transformer variant's rows of the remaining edges",
        },
        "input": {
            "seed": INPUT_SEED,
            "recipe": "make_input(): per (batch, prognostic variable) a standardised sum of 6 random "
            "cos(m*lon+a)*cos(k*lat+b) terms (m, k in 0..4) + 0.1 white noise, scaled by U(0.8,1.3) plus N(0,0.3) "
            "offset; t=1 = t=0 + 0.4 * another such field; lsm = sigmoid(2.5*field) (static), cos_latitude = cos(lat)",
            "shape": list(x.shape),
        },
        "graphs": graph_checks,
        "notes": [
            "Built with AnemoiModelEncProcDec directly (spec/model-audit.md 2); CPU, fp32, model.eval(), no_grad, "
            "CUDA_VISIBLE_DEVICES='', ANEMOI_INFERENCE_* unset.",
            "Trainable edge tensors: row k = edge at CSR position k of the graph file (anemoi sorts edges by "
            "destination with a stable sort, which is how the file's CSR order is defined); see edge_order.",
            "Delta weights files: start from boreas.base, remove keys starting with boreas.drop_prefixes, then "
            "add/replace the delta's tensors (load_weights() in the generator).",
            "io refs: a tensor listed in boreas.refs is bit-identical to the one in the named file.",
            "gnn: mlp_hidden_ratio 1 (anemoi's GNN default); GraphConv.edge_mlp always uses hidden width C.",
            "gnn_mappers: anemoi's GNNForwardMapper (mlp_extra_layers 1, ratio 1) / GNNBackwardMapper (extra 0, ratio "
            "1.5) around the gnn processor; weights = delta on gnn (encoder./decoder. replaced, the rest identical, "
            "asserted). No attention weights (no alpha). The encoder also updates the data nodes "
            "(proc.node_mlp(cat(x_src, x_src)) + x_src, captured as encoder.src_out, not stored) and that is the "
            "decoder's destination input (GNNBackwardMapper does not re-embed it). spec_forward covers it. Its extractor "
            "(MLP, no LayerNorm) gives tp < 0 at every point and cp inside (0, 1): output tp and cp are all 0 and "
            "the FractionBounding clamps never act (exempt from the clamp check); io holds encoder.out and output only.",
        ],
        "variants": doc_variants,
        "sizes": sizes,
    }
    vpath = out_dir / "VERSIONS.json"
    if only is not None:  # keep the kept variants' records (and the graph checks they were made with)
        old = json.loads(vpath.read_text())
        for k in ("generator", "environment", "data_indices", "input"):
            assert old[k] == doc[k], f"--only: VERSIONS.json {k} differs from this run; regenerate every variant"
        for name in only:
            doc_variants[name]["written_alone"] = {
                "cpu": _cpu_model(),
                "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
                "graph_rebuild_here": {k: v for k, v in graph_checks[VARIANTS[name]["graph"]].items() if k.startswith("anemoi_")},
                "note": "written with --only: the other variants' files and records are from an earlier run (their "
                "io reproduced here within rtol/atol 1e-5; torch's CPU kernels round differently between CPUs)",
            }
        doc["graphs"] = old["graphs"]
        doc["variants"] = {n: doc_variants[n] if n in only else old["variants"][n] for n in VARIANTS}
    vpath.write_text(_json_text(doc))
    sizes["VERSIONS.json"] = vpath.stat().st_size
    doc["sizes"] = sizes
    for _ in range(3):  # total includes VERSIONS.json itself
        doc["total_bytes"] = sum(sizes.values())
        vpath.write_text(_json_text(doc))
        sizes["VERSIONS.json"] = vpath.stat().st_size
    total = sum(p.stat().st_size for p in list(written.values()) + [vpath])

    for n, s in sorted(sizes.items()):
        print(f"  {n:45s} {s:9d}")
    print(f"total {total} bytes ({total / 2**20:.3f} MiB) in {out_dir}; {time.time() - t_start:.1f} s")
    stray = sorted(p.name for p in out_dir.iterdir() if p.name not in written and p.name != "VERSIONS.json")
    if stray:
        print(f"warning: other files in {out_dir}: {stray}", file=sys.stderr)
    if args.budget and total > args.budget:
        print(f"error: fixtures total {total} bytes > budget {args.budget}", file=sys.stderr)
        return 1
    return 0


def _json_text(doc) -> str:
    """Indented JSON with lists of scalars kept on one line."""
    text = json.dumps(doc, indent=1)
    text = re.sub(r"\[\s*\n\s*([^\[\]{}]*?)\s*\n\s*\]", lambda m: "[" + re.sub(r",\s*\n\s*", ", ", m.group(1)) + "]", text)
    return text + "\n"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _short(c: dict) -> dict:
    return {k: round(v, 4) for k, v in c.items() if isinstance(v, float)}


def chunk_partition(graph, src: str, dst: str, parts: int) -> dict:
    """anemoi's destination partition of a mapper with `parts` chunks, for the batch-expanded graph."""
    import torch
    from anemoi.models.distributed.khop_edges import build_graph_partition
    from anemoi.models.distributed.khop_edges import sort_edge_index_by_dst

    n_src, n_dst = graph[src].num_nodes, graph[dst].num_nodes
    ei, _ = sort_edge_index_by_dst(graph[(src, "to", dst)].edge_index.long(), max_value=n_dst)
    ei = torch.cat([ei + b * torch.tensor([[n_src], [n_dst]]) for b in range(BATCH)], 1)
    part = build_graph_partition(ei, num_parts=parts, num_nodes=(BATCH * n_src, BATCH * n_dst))
    return {"dst_rows_per_chunk": list(part.dst_splits), "edges_per_chunk": list(part.edge_splits)}


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python3
"""Real anemoi inference checkpoints of the `tiny` model in the *anemoi-models 0.3.1 layout* (the AIFS-single 1.0
era), for Boreas' native reader of that older layout.

Run from the repository root with its own environment (anemoi-models 0.3.1 cannot share .venv-ref):

    python3 -m venv .venv-ref-031
    .venv-ref-031/bin/pip install torch==2.4.1 torch-geometric==2.4.0 numpy==1.26.4 anemoi-models==0.3.1 \
        anemoi-utils==0.4.9 pytorch-lightning==2.4.0 torchinfo==1.8.0 torchvision==0.19.1 timm==1.0.11 \
        safetensors pyyaml
    .venv-ref-031/bin/pip install --no-deps anemoi-training==0.3.1
    .venv-ref-031/bin/python tools/reference/make_checkpoint_fixtures_031.py [--out tests/data/checkpoint] \
        [--check-rerun]

Versions: anemoi-models 0.3.1 is what the official AIFS-single 1.0 notebook pins (spec/model.md section 0);
anemoi-training 0.3.1 (tag 3bed56e, TR031 in the spec) is its training code; torch-geometric < 2.5 is required by
both; torch 2.4.1 / pytorch-lightning 2.4.0 / timm 1.0.11 / anemoi-utils 0.4.9 are releases of autumn 2024 (the
metadata member is still called ai-models.json there).  PyPI's torch wheel pulls the CUDA packages; nothing uses
them (CUDA_VISIBLE_DEVICES="").  anemoi-training is installed with --no-deps: of its dependencies only Lightning,
torchinfo and timm are needed for the code run here; its one import of anemoi-datasets (data/datamodule.py:
`from anemoi.datasets.data import open_dataset`) is satisfied by a stub module that refuses to open anything (no
dataset is read: see below).

The script sets CUDA_VISIBLE_DEVICES="" and OMP_NUM_THREADS=1, removes ANEMOI_INFERENCE_* (0.3.1 reads
ANEMOI_INFERENCE_NUM_CHUNKS at import) and SLURM_JOB_ID, sets ANEMOI_BASE_SEED=42 (0.3.1's get_base_seed asserts one
is set; anemoi multiplies seeds below 1000 by 1000, so the recorded seed is 42000) and re-executes itself with
PYTHONHASHSEED=0 (every nn.Module pickles a set of names).

What is built (for each variant: transformer on o16_o4, graphtransformer on o16_tri2)
------------------------------------------------------------------------------------
Everything that ends up in the file is made by anemoi-training 0.3.1's own code, in the order AnemoiTrainer does it:
  * config: anemoi-training 0.3.1's config/config.yaml composed with Hydra (model=<processor>,
    graph=encoder_decoder_only for the transformer, multi_scale for the graph transformer), then the tiny settings:
    data.forcing [lsm, cos_latitude], data.diagnostic [tp, cp], data.normalizer = make_checkpoint_fixtures.NORMALISER
    (mean-std default, std [tp, cp] with remap cp <- tp, min-max [lsm], max [z_500], none [cos_latitude]),
    data.resolution o16, training.multistep_input 2, training.precision "32", training.metrics [z_500, t_850],
    model.num_channels 32, processor num_layers 2 / num_chunks 2 / num_heads 4 / mlp_hidden_ratio 4 /
    dropout_p 0 (+ window_size 16 for the transformer), encoder and decoder num_heads 4 / mlp_hidden_ratio 4 /
    num_chunks 1, every model.trainable_parameters entry 2, model.bounding = make_model_fixtures.BOUNDING (ReluBounding
    tp, FractionBounding cp of tp, HardtanhBounding sp; all three exist in 0.3.1), hardware paths/files filled in.
    In 0.3.1 multistep_input lives under config.training, forcing/diagnostic/normalizer under config.data, the
    normaliser processor under config.data.processors.normalizer (config: ${data.normalizer}, resolved).
    Then OmegaConf.resolve, run_id (a fixed uuid5) and AnemoiTrainer._update_paths, as AnemoiTrainer.__init__.
  * data_indices: AnemoiDatasetsDataModule.data_indices = IndexCollection(config, name_to_index) (0.3.1: a single
    IndexCollection, not a dict per dataset; it keeps OmegaConf.to_container(config) as its `.config`, so the whole
    training config is pickled inside the model although the callback sets model.config = None).
    statistics: make_normaliser_fixture.make_statistics() (the same float64 arrays as the 0.18 fixtures); the
    normaliser's remap writes tp's statistics into cp's entries *of the arrays it is given*, and the interface keeps
    that dict, so the pickled statistics are the remapped ones.
  * metadata: AnemoiTrainer.metadata (version "1.0", config, seed, run_id, dataset, data_indices,
    provenance_training = anemoi.utils.provenance.gather_provenance_info(), timestamp) run on a stand-in trainer
    whose initial_seed is AnemoiTrainer.initial_seed (pl.seed_everything(42000), as in training), then
    AnemoiCheckpoint._save_checkpoint adds uuid, model (torchinfo summary), tracker ({}), training.
    The one hand-made part is metadata["dataset"] (what anemoi-datasets' Dataset.metadata() returns for a real zarr;
    there is none): make_checkpoint_fixtures.dataset_metadata.  0.3.1 writes no supporting arrays
    (supporting_arrays_paths {}) and no metadata_inference.
  * the model: GraphForecaster (anemoi-training 0.3.1) constructed with exactly those objects; it builds the
    AnemoiModelInterface (anemoi-models 0.3.1: pre/post processors = InputNormalizer, AnemoiModelEncProcDec on the
    graph of the Boreas graph file converted back with make_model_fixtures.heterodata_from_boreas, i.e. anemoi's own
    edge order; the same graph as the 0.18 fixtures).
    Weights: the *same values* as the 0.18 fixtures: tests/data/model/<variant>.weights.safetensors (made by
    make_model_fixtures.init_weights, seeded per 0.18 name) mapped to the 0.3.1 names (to_031_state_dict below:
    the inverse of src/model/legacy_weights.cpp, plus the graph-transformer processor): q/k/v weights concatenated
    into lin_qkv, trainable edge rows moved from CSR order (0.18) to the graph's edge order (0.3.1: row perm[p] =
    CSR row p, perm from the graph file), layer norms and MLPs renamed.  So the 0.3.1 and 0.18 checkpoints hold one
    model, and their outputs agree up to rounding (recorded: compare_to_018).
  * saving: AnemoiCheckpoint._save_checkpoint (anemoi-training 0.3.1, diagnostics/callbacks/checkpoint.py) with a
    minimal stand-in trainer: model.config and model.metadata set to None, torch.save(model, path), then
    anemoi.utils.checkpoints.save_metadata(path, metadata) (anemoi-utils 0.4.9: anemoi-metadata/ai-models.json),
    config/metadata restored.  The file is written as inference-<variant>.ckpt (archive folder
    `inference-<variant>`) and copied to anemoi-models-0.3.1-<variant>.ckpt; the Lightning checkpoint is discarded.

predict_step and the transformer's window
-----------------------------------------
0.3.1's AnemoiModelInterface.predict_step(batch) takes a *tensor* [B, T, N, V] (not a dict): pre_processors(batch,
in_place=False) (columns data.input.full when V = 6), x = batch[:, 0:T, None] -> forward -> post_processors; it
returns [B, E=1, N, V_out] (no time axis: 0.18 returns [B, 1, E, N, V_out]).  So the 0.18 fixtures' physical
`input` [1, 2, N, 6] (tests/data/checkpoint/transformer.io.safetensors) is passed unchanged.

0.3.1's MultiHeadSelfAttention calls flash_attn_func(q, k, v, causal=False, window_size=(w, w)) when flash-attn is
importable and otherwise falls back to torch's scaled_dot_product_attention WITHOUT a window (spec/model-audit.md
4.1).  flash-attn needs CUDA, so on a CPU 0.3.1 computes global attention.  Both are stored:
  output_transformer                 flash-attn semantics emulated on the CPU (window_size 16: query i attends keys
                                     j with |i - j| <= 16, SDPA with that boolean mask, scale 1/sqrt(d)) -- what
                                     the checkpoint computes where it was meant to run (AIFS-1.0: flash-attn, 512)
  output_transformer_sdpa_fallback   what 0.3.1 computes when flash-attn is missing (the window silently ignored)
The emulation is applied to loaded copies only (attention._FLASH_ATTENTION_AVAILABLE = True and each
MultiHeadSelfAttention.attention replaced); the pickled module keeps torch._C._nn.scaled_dot_product_attention.

Determinism: uuid4 (AnemoiModelInterface.id, the checkpoint uuid), run_id, datetime.now/utcnow (metadata
timestamp, provenance time), time.time (elapsed_time 0.0) and the dates of the zip entries appended by save_metadata
(1980-01-01) are fixed while anemoi code runs; provenance_training.git_versions is {} (anemoi.utils.provenance.
_check_for_git replaced: it would look up the git state of the Boreas checkout that holds these scripts, and needs
gitpython).  A second run writes byte-identical files (--check-rerun).

Files (tests/data/checkpoint/)
------------------------------
anemoi-models-0.3.1-<variant>.ckpt     inference checkpoints (torch zip, data.pkl protocol 2, plus
                                       anemoi-metadata/ai-models.json)
anemoi-models-0.3.1.io.safetensors     output_transformer, output_transformer_sdpa_fallback,
                                       output_graphtransformer: float32 [1, 1, N=1600, 6] physical
                                       (predict_step); the input is transformer.io.safetensors:input (header refs)
VERSIONS-0.3.1.json                    versions, sha256, zip members, pickle GLOBALs, state-dict and non-persistent
                                       buffers, metadata keys and config locations, edge order, comparison with 0.18

Checks on every run: the graph round-trips the graph file; the mapped state dict loads strictly and every
parameter is non-zero; the trainable edge rows of each edge set are the 0.18 rows permuted by the graph file's perm;
torch.load(weights_only=False) of each checkpoint reproduces the stored outputs bit for bit (plain and with the
flash-attn emulation); load_metadata returns the saved metadata; the outputs are close to the 0.18 fixtures'.
"""

from __future__ import annotations

import os
import sys

os.environ["CUDA_VISIBLE_DEVICES"] = ""
os.environ.setdefault("OMP_NUM_THREADS", "1")
for _k in list(os.environ):
    if _k.startswith("ANEMOI_INFERENCE_"):
        del os.environ[_k]
os.environ.pop("SLURM_JOB_ID", None)
if os.environ.get("PYTHONHASHSEED") != "0":  # sets of names are pickled: their order follows the hash seed
    os.environ["PYTHONHASHSEED"] = "0"
    os.execv(sys.executable, [sys.executable, *sys.argv])

import argparse  # noqa: E402
import contextlib  # noqa: E402
import copy  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import types  # noqa: E402
import uuid  # noqa: E402
import warnings  # noqa: E402
import zipfile  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from convert_anemoi_graph import EDGE_ATTRIBUTES  # noqa: E402
from convert_anemoi_graph import check_boreas_graph  # noqa: E402
from convert_anemoi_graph import edge_perm  # noqa: E402
from convert_anemoi_graph import read_boreas_graph  # noqa: E402
from make_checkpoint_fixtures import DATASET_NAME  # noqa: E402
from make_checkpoint_fixtures import FIXED_TIME  # noqa: E402
from make_checkpoint_fixtures import NORMALISER  # noqa: E402
from make_checkpoint_fixtures import VARIANTS  # noqa: E402
from make_checkpoint_fixtures import ZIP_DATE  # noqa: E402
from make_checkpoint_fixtures import _FixedDatetime  # noqa: E402
from make_checkpoint_fixtures import _Shim  # noqa: E402
from make_checkpoint_fixtures import _uuid_factory  # noqa: E402
from make_checkpoint_fixtures import dataset_metadata  # noqa: E402
from make_checkpoint_fixtures import grid_latlons  # noqa: E402
from make_checkpoint_fixtures import tiny_spec  # noqa: E402
from make_checkpoint_fixtures import pickle_globals  # noqa: E402
from make_checkpoint_fixtures import sha256  # noqa: E402
from make_checkpoint_fixtures import tensor_list  # noqa: E402
from make_checkpoint_fixtures import zip_members  # noqa: E402
from make_model_fixtures import BOUNDING  # noqa: E402
from make_model_fixtures import CHANNELS  # noqa: E402
from make_model_fixtures import DIAGNOSTIC  # noqa: E402
from make_model_fixtures import FORCING  # noqa: E402
from make_model_fixtures import HEADS  # noqa: E402
from make_model_fixtures import MLP_RATIO  # noqa: E402
from make_model_fixtures import MULTISTEP  # noqa: E402
from make_model_fixtures import NUM_LAYERS  # noqa: E402
from make_model_fixtures import PROC_CHUNKS  # noqa: E402
from make_model_fixtures import SEED  # noqa: E402
from make_model_fixtures import TRAINABLE  # noqa: E402
from make_model_fixtures import VARIABLES  # noqa: E402
from make_model_fixtures import WINDOW  # noqa: E402
from make_model_fixtures import _json_text  # noqa: E402
from make_model_fixtures import heterodata_from_boreas  # noqa: E402
from make_model_fixtures import load_weights  # noqa: E402
from make_model_fixtures import package_versions  # noqa: E402
from make_model_fixtures import read_safetensors  # noqa: E402
from make_model_fixtures import save_safetensors  # noqa: E402
from make_model_fixtures import tensor_equal  # noqa: E402
from make_normaliser_fixture import make_statistics  # noqa: E402

# make_checkpoint_fixtures pops ANEMOI_BASE_SEED when imported; anemoi-training 0.3.1 needs one
BASE_SEED_ENV = "42"
os.environ["ANEMOI_BASE_SEED"] = BASE_SEED_ENV

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "tests" / "data" / "checkpoint"
SIZE_BUDGET_BYTES = 1_800_000
PREFIX = "anemoi-models-0.3.1"
IO_NAME = f"{PREFIX}.io.safetensors"
VERSIONS_NAME = "VERSIONS-0.3.1.json"
ANEMOI_MODELS_VERSION = "0.3.1"
ANEMOI_TRAINING_VERSION = "0.3.1"
GRAPH_CONFIG = {"transformer": "encoder_decoder_only", "graphtransformer": "multi_scale"}
HIDDEN_GRID = {"transformer": ("NPZFileNodes", "o4"), "graphtransformer": ("TriNodes", 2)}
REF_INPUT = "transformer.io.safetensors"  # the 0.18 fixtures' physical input [1, 2, N, 6]

NOTES = [
    "predict_step(batch) takes a tensor [B, T, N, V_in] (0.18: a dict {'data': ...}) and returns [B, E=1, N, V_out] "
    "(0.18: [B, n_step_output=1, E=1, N, V_out]); variables in = data.input.full, out = data.output.full.",
    "0.3.1 MultiHeadSelfAttention: flash_attn_func(window_size=(w, w)) if flash-attn imports, else torch SDPA with no "
    "window: on a CPU the window is ignored. output_transformer emulates flash-attn (|i-j| <= 16); "
    "output_transformer_sdpa_fallback is the plain CPU result.",
    "Trainable edge tensors (encoder.trainable.trainable, decoder.trainable.trainable, processor.trainable.trainable) "
    "have one row per edge in the graph's (anemoi-graphs') edge order = edge_index_base order, NOT the graph file's "
    "CSR order: 0.3.1 row perm[p] = CSR row p (perm = edges/<set>/perm of the graph file).",
    "Non-persistent buffers (in data.pkl, not in state_dict): <mapper>.edge_attr float32 [E, 3] and "
    "<mapper>.edge_index_base int32 [2, E] (the graph's own edge_index tensor, shared storage with graph_data) for "
    "the encoder, decoder and graph-transformer processor. edge_inc int64 [2, 1] IS persistent in 0.3.1.",
    "The whole HeteroData graph is pickled twice by reference: AnemoiModelInterface.graph_data and "
    "AnemoiModelEncProcDec._graph_data are the same object (stored once); for the transformer, indexing the missing "
    "('hidden','to','hidden') edge set added an empty edge store to it.",
    "The training config survives in the pickle although the callback sets model.config = None: IndexCollection "
    "keeps OmegaConf.to_container(config) as data_indices.config (interface.data_indices and model.data_indices).",
    "AnemoiModelInterface.statistics (numpy float64 arrays, after the normaliser's cp <- tp remap), "
    "AnemoiModelInterface.forward (bound method of the inner model), MultiHeadSelfAttention.attention "
    "(torch._C._nn.scaled_dot_product_attention) and the boundings' name_to_index dicts are pickled too.",
    "Normaliser buffers are persistent in 0.3.1: pre_processors.processors.normalizer._norm_mul/_norm_add "
    "float32 [8], _input_idx/_output_idx int32 [6] (data.input.full / data.output.full); pre_ and post_processors "
    "share them (post_processors.* are aliases in the state dict).",
    "Other pickled objects: the boundings keep name_to_index as an omegaconf DictConfig and variables as a "
    "ListConfig (hydra instantiate); data_indices.config holds pathlib.PosixPath values "
    "(hardware.paths.checkpoints/plots, set by AnemoiTrainer._update_paths); torch_geometric's Inspector keeps "
    "inspect/typing objects; numpy arrays use numpy.core.multiarray._reconstruct (numpy 1.26).",
    "With the same weights, graph, normaliser and input, anemoi-models 0.3.1 (flash-attn window emulated) and 0.18.0 "
    "give bit-identical predict_step outputs for both variants (compare_to_018).",
    "For o16_o4 and o16_tri2 the encoder and decoder edge sets are already sorted by destination in anemoi's order "
    "(perm identity), so only the graph-transformer processor's trainable rows are actually reordered.",
]


# ----------------------------------------------------------------------------------------------------------------
# importing anemoi-training 0.3.1 without anemoi-datasets
# ----------------------------------------------------------------------------------------------------------------
def stub_anemoi_datasets() -> None:
    """anemoi.training.data.datamodule imports anemoi.datasets.data.open_dataset at module level; no dataset is
    opened here, so a stub that refuses is enough (anemoi-datasets is not installed)."""
    try:
        import anemoi.datasets.data  # noqa: F401

        return
    except ImportError:
        pass

    def open_dataset(*args, **kwargs):
        raise RuntimeError("anemoi-datasets is stubbed in make_checkpoint_fixtures_031.py")

    pkg = types.ModuleType("anemoi.datasets")
    pkg.__path__ = []
    sub = types.ModuleType("anemoi.datasets.data")
    sub.open_dataset = open_dataset
    pkg.data = sub
    sys.modules["anemoi.datasets"] = pkg
    sys.modules["anemoi.datasets.data"] = sub


# ----------------------------------------------------------------------------------------------------------------
# determinism
# ----------------------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def fixed_clock(label: str):
    import anemoi.models.interface as interface_mod
    import anemoi.training.diagnostics.callbacks.checkpoint as ckpt_mod
    import anemoi.training.train.train as train_mod
    import anemoi.utils.provenance as prov_mod

    dt_shim = _Shim(datetime, datetime=_FixedDatetime)
    time_shim = _Shim(time, time=lambda: FIXED_TIME, localtime=lambda *a: time.struct_time(ZIP_DATE + (0, 1, 0)))
    patches = [
        (train_mod, "datetime", dt_shim),
        (prov_mod, "datetime", dt_shim),
        # git_versions {}: the generator's own modules live in the Boreas repository, whose state (head, modified
        # files) must not make the fixture depend on the working tree; gitpython is not installed either
        (prov_mod, "_check_for_git", lambda paths, full: {}),
        (ckpt_mod, "time", time_shim),
        (ckpt_mod, "uuid", _Shim(uuid, uuid4=_uuid_factory(f"0.3.1/{label}/checkpoint"))),
        (interface_mod, "uuid", _Shim(uuid, uuid4=_uuid_factory(f"0.3.1/{label}/model"))),
        (zipfile, "time", time_shim),
    ]
    saved = [(m, a, getattr(m, a)) for m, a, _ in patches]
    try:
        for m, a, v in patches:
            setattr(m, a, v)
        yield
    finally:
        for m, a, v in saved:
            setattr(m, a, v)


def run_id_for(variant: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"boreas-checkpoint-fixture/0.3.1/{variant}/run_id"))


# ----------------------------------------------------------------------------------------------------------------
# config
# ----------------------------------------------------------------------------------------------------------------
def training_config(variant: str, graph_name: str):
    """anemoi-training 0.3.1's config composed with Hydra, with the tiny settings, as AnemoiTrainer.__init__."""
    import anemoi.training
    from hydra import compose
    from hydra import initialize_config_dir
    from omegaconf import OmegaConf

    processor = VARIANTS[variant]["processor"]
    config_dir = Path(anemoi.training.__file__).parent / "config"
    with initialize_config_dir(config_dir=str(config_dir), version_base=None):
        cfg = compose("config", overrides=[f"model={processor}", f"graph={GRAPH_CONFIG[variant]}"])

    cfg.data.resolution = "o16"
    cfg.data.frequency = "6h"
    cfg.data.timestep = "6h"
    cfg.data.forcing = list(FORCING)
    cfg.data.diagnostic = list(DIAGNOSTIC)
    cfg.data.normalizer = copy.deepcopy(NORMALISER)

    m = cfg.model
    m.num_channels = CHANNELS
    for k in list(m.trainable_parameters):
        m.trainable_parameters[k] = TRAINABLE[k]
    m.processor.num_layers = NUM_LAYERS
    m.processor.num_chunks = PROC_CHUNKS
    m.processor.num_heads = HEADS
    m.processor.mlp_hidden_ratio = MLP_RATIO
    m.processor.dropout_p = 0.0
    if processor == "transformer":
        m.processor.window_size = WINDOW
    for part in (m.encoder, m.decoder):
        part.num_heads = HEADS
        part.mlp_hidden_ratio = MLP_RATIO
        part.num_chunks = 1
    m.bounding = copy.deepcopy(BOUNDING)

    cfg.training.multistep_input = MULTISTEP
    cfg.training.precision = "32"
    cfg.training.metrics = ["z_500", "t_850"]

    builder, resolution = HIDDEN_GRID[variant]
    cfg.graph.nodes.hidden.node_builder._target_ = f"anemoi.graphs.nodes.{builder}"
    cfg.graph.nodes.hidden.node_builder.resolution = resolution

    cfg.hardware.accelerator = "cpu"
    cfg.hardware.paths.data = "data"
    cfg.hardware.paths.grids = "grids"
    cfg.hardware.paths.output = "output/"
    cfg.hardware.paths.graph = "tests/data/graphs/"
    cfg.hardware.files.dataset = f"{DATASET_NAME}.zarr"
    cfg.hardware.files.graph = f"{graph_name}.safetensors"
    cfg.diagnostics.log.mlflow.tracking_uri = "http://localhost:5000"  # mlflow is disabled
    cfg.diagnostics.log.wandb.entity = "boreas"  # wandb is disabled

    # AnemoiTrainer.__init__: resolve, run id, paths
    from anemoi.training.train.train import AnemoiTrainer

    OmegaConf.resolve(cfg)
    run_id = run_id_for(variant)
    cfg.training.run_id = run_id
    AnemoiTrainer._update_paths(types.SimpleNamespace(config=cfg, run_id=run_id, parent_run_server2server=None))
    return cfg


# ----------------------------------------------------------------------------------------------------------------
# graph
# ----------------------------------------------------------------------------------------------------------------
def load_graph_031(name: str) -> tuple:
    """HeteroData of tests/data/graphs/<name>.safetensors in anemoi's edge order (as make_model_fixtures does),
    checked to round-trip the file (without anemoi-graphs: the *_exact re-computation is left to the 0.18 tools)."""
    path = REPO / "tests" / "data" / "graphs" / f"{name}.safetensors"
    tensors, meta = read_boreas_graph(path)
    g = heterodata_from_boreas(tensors, meta)
    stripped = {k: v for k, v in tensors.items() if not k.endswith("_exact")}
    meta_s = copy.deepcopy(meta)
    for m in meta_s["edges"].values():
        m.pop("float32_error", None)
    check_boreas_graph(stripped, meta_s, g)
    info = {"file": str(path.relative_to(REPO)), "sha256": sha256(path)}
    return g, tensors, meta, info


# ----------------------------------------------------------------------------------------------------------------
# weights: the 0.18 fixtures' state dict in the 0.3.1 layout
# ----------------------------------------------------------------------------------------------------------------
EDGE_TRAINABLES = {  # 0.18 name -> (0.3.1 name, edge set)
    "encoder_graph_provider.data.trainable.trainable": ("encoder.trainable.trainable", "data_to_hidden"),
    "decoder_graph_provider.data.trainable.trainable": ("decoder.trainable.trainable", "hidden_to_data"),
    "processor_graph_provider.trainable.trainable": ("processor.trainable.trainable", "hidden_to_hidden"),
}
GT_BLOCK_RENAMES = [  # GraphTransformer{Mapper,Processor}Block, 0.18 -> 0.3.1
    ("layer_norm_attention_src.", "layer_norm1."),
    ("layer_norm_attention.", None),  # mapper: layer_norm2 (dst); processor: layer_norm1 (its only attention LN)
    ("layer_norm_mlp_dst.", "node_dst_mlp.0."),
    ("node_dst_mlp.mlp.0.", "node_dst_mlp.1."),
    ("node_dst_mlp.mlp.2.", "node_dst_mlp.3."),
]


def _gt_block(leaf: str, mapper: bool) -> str:
    for old, new in GT_BLOCK_RENAMES:
        if leaf.startswith(old):
            if new is None:
                new = "layer_norm2." if mapper else "layer_norm1."
            return new + leaf[len(old):]
    return leaf


def to_031_state_dict(sd18: dict, processor: str, graph_tensors: dict) -> tuple[dict, list]:
    """0.18 state dict (make_model_fixtures names) -> 0.3.1 names; returns (state dict, [[0.18 name(s), 0.3.1 name,
    how]])."""
    import torch

    out, table = {}, []
    per_chunk = NUM_LAYERS // PROC_CHUNKS
    qkv: dict = {}
    for name, t in sd18.items():
        how = "copy"
        if name.endswith("trainable_layout_version") or name.startswith("node_attributes.latlons_"):
            continue  # 0.18-only scalar / recomputed buffer (0.3.1's latlons_* are compared below)
        if ".proc.layer_norm_attention_dest." in name:
            continue  # 0.18 alias of the mapper's layer_norm_attention (0.3.1: layer_norm2)
        if name == "node_attributes.trainable_tensors.data.trainable":
            new = "trainable_data.trainable"
        elif name == "node_attributes.trainable_tensors.hidden.trainable":
            new = "trainable_hidden.trainable"
        elif name in EDGE_TRAINABLES:
            new, key = EDGE_TRAINABLES[name]
            perm = torch.from_numpy(edge_perm(graph_tensors, key, t.shape[0]))
            reordered = torch.empty_like(t)
            reordered[perm] = t  # CSR row p -> graph edge perm[p]
            t, how = reordered, f"rows reordered: row perm[p] = CSR row p ({key} perm of the graph file)"
        elif name.startswith(("encoder.data.", "decoder.data.")):
            part, rest = name.split(".data.", 1)
            if rest.startswith("proc."):
                rest = "proc." + _gt_block(rest[len("proc."):], mapper=True)
            new = f"{part}.{rest}"
        elif name.startswith("processor.proc."):
            rest = name[len("processor.proc."):]
            layer, leaf = rest.split(".", 1)
            layer = int(layer)
            prefix = f"processor.proc.{layer // per_chunk}.blocks.{layer % per_chunk}."
            if processor == "transformer":
                if leaf in ("attention.lin_q.weight", "attention.lin_k.weight", "attention.lin_v.weight"):
                    qkv.setdefault(prefix, {})[leaf.split(".")[1][-1]] = (name, t)
                    continue
                for old, new_leaf in (("layer_norm_attention.", "layer_norm1."), ("layer_norm_mlp.", "layer_norm2."),
                                      ("mlp.mlp.", "mlp.")):
                    if leaf.startswith(old):
                        leaf = new_leaf + leaf[len(old):]
                        break
            else:
                leaf = _gt_block(leaf, mapper=False)
            new = prefix + leaf
        else:
            raise KeyError(f"no 0.3.1 name for {name}")
        assert new not in out, (name, new)
        out[new] = t
        table.append([name, new, how])
    for prefix, parts in qkv.items():
        names = [parts[c][0] for c in "qkv"]
        out[prefix + "attention.lin_qkv.weight"] = torch.cat([parts[c][1] for c in "qkv"], 0)
        table.append([names, prefix + "attention.lin_qkv.weight", "cat([q, k, v], dim 0)"])
    return out, table


# ----------------------------------------------------------------------------------------------------------------
# flash-attn emulation (applied to loaded copies only)
# ----------------------------------------------------------------------------------------------------------------
def flash_attn_emulated(q, k, v, causal=False, window_size=(-1, -1), dropout_p=0.0):
    """flash_attn_func's semantics for equal q/k lengths, non-causal, no dropout: [B, N, H, D] in and out; query i
    attends keys j with i - window_size[0] <= j <= i + window_size[1] (-1 = unbounded); scale 1/sqrt(D)."""
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


@contextlib.contextmanager
def flash_emulation(model):
    import anemoi.models.layers.attention as attention_mod

    mods = [m for m in model.modules() if isinstance(m, attention_mod.MultiHeadSelfAttention)]
    saved = (attention_mod._FLASH_ATTENTION_AVAILABLE, [m.attention for m in mods])
    try:
        attention_mod._FLASH_ATTENTION_AVAILABLE = True
        for m in mods:
            m.attention = flash_attn_emulated
        yield len(mods)
    finally:
        attention_mod._FLASH_ATTENTION_AVAILABLE = saved[0]
        for m, f in zip(mods, saved[1]):
            m.attention = f


def predict(interface, x, flash: bool):
    import torch

    with torch.no_grad():
        if flash:
            with flash_emulation(interface):
                return interface.predict_step(x.clone())
        return interface.predict_step(x.clone())


# ----------------------------------------------------------------------------------------------------------------
# building and saving with anemoi-training 0.3.1's code
# ----------------------------------------------------------------------------------------------------------------
class _StandInTrainer:
    """The parts of a pytorch_lightning.Trainer that AnemoiCheckpoint._save_checkpoint (0.3.1) touches."""

    def __init__(self, module):
        self.model = module  # _torch_drop_down: trainer.model.model = the AnemoiModelInterface
        self.lightning_module = module
        self.is_global_zero = True
        self.current_epoch = 0
        self.global_step = 0
        self.loggers = []
        self.strategy = types.SimpleNamespace(barrier=lambda *a, **k: None, remove_checkpoint=lambda *a, **k: None)

    def save_checkpoint(self, filepath, weights_only=False):  # the Lightning checkpoint (discarded)
        import torch

        torch.save({"state_dict": {}, "stand_in": True}, filepath)


def build_variant(variant: str, graph, gtensors: dict, graph_name: str, stats: dict, tmp: Path) -> dict:
    import torch
    from anemoi.training.data.datamodule import AnemoiDatasetsDataModule
    from anemoi.training.diagnostics.callbacks.checkpoint import AnemoiCheckpoint
    from anemoi.training.train.forecaster import GraphForecaster
    from anemoi.training.train.train import AnemoiTrainer

    config = training_config(variant, graph_name)
    spec = tiny_spec(variant)
    lats, lons = grid_latlons(graph, spec)

    # the datamodule's parts that AnemoiTrainer uses
    dm = types.SimpleNamespace(
        config=config,
        ds_train=types.SimpleNamespace(name_to_index={v: i for i, v in enumerate(VARIABLES)}),
        statistics=stats,
        metadata=dataset_metadata(lats.size, [], spec),
    )
    dm.metadata.pop("supporting_arrays")  # not in the anemoi-datasets of that era
    dm.data_indices = AnemoiDatasetsDataModule.__dict__["data_indices"].func(dm)

    trainer = types.SimpleNamespace(
        config=config,
        datamodule=dm,
        run_id=config.training.run_id,
        strategy=types.SimpleNamespace(global_rank=0),
    )
    trainer.initial_seed = AnemoiTrainer.__dict__["initial_seed"].func(trainer)  # pl.seed_everything(42000)
    with fixed_clock(variant):
        metadata = AnemoiTrainer.__dict__["metadata"].func(trainer)
        # AnemoiTrainer.model
        module = GraphForecaster(
            config=config,
            data_indices=dm.data_indices,
            graph_data=graph,
            metadata=metadata,
            statistics=dm.statistics,
        )
    interface = module.model
    assert interface.metadata is module._hparams["metadata"]

    # weights: the 0.18 fixtures' values in the 0.3.1 layout
    sd18 = load_weights(REPO / "tests" / "data" / "model" / f"{variant}.weights.safetensors")
    sd31, rename_table = to_031_state_dict(sd18, VARIANTS[variant]["processor"], gtensors)
    own = interface.model.state_dict()
    params = dict(interface.model.named_parameters())
    missing = sorted(set(params) - set(sd31))
    unexpected = sorted(set(sd31) - set(own))
    assert not missing and not unexpected, (missing, unexpected)
    with torch.no_grad():
        for k, v in sd31.items():
            assert own[k].shape == v.shape and own[k].dtype == v.dtype, (k, own[k].shape, v.shape)
            own[k].copy_(v)
    for k, p in interface.model.named_parameters():
        assert bool((p != 0).all()), f"parameter {k} has exact zeros"
    # 0.3.1's own buffers equal the 0.18 ones (latlons recomputed from the same graph)
    for which in ("data", "hidden"):
        assert tensor_equal(getattr(interface.model, f"latlons_{which}"), sd18[f"node_attributes.latlons_{which}"])
    interface.eval()
    module.eval()

    # AnemoiCheckpoint._save_checkpoint
    lightning_path = tmp / f"{variant}.ckpt"
    with fixed_clock(variant):
        callback = AnemoiCheckpoint(config=config, dirpath=str(tmp), save_last=False)
        callback._save_checkpoint(_StandInTrainer(module), str(lightning_path))
    inference_path = tmp / f"inference-{variant}.ckpt"
    assert inference_path.exists()
    assert interface.config is not None and interface.metadata is metadata  # restored by the callback
    return {
        "config": config,
        "interface": interface,
        "metadata": metadata,
        "inference_path": inference_path,
        "rename_table": rename_table,
        "state_dict_031": sd31,
        "state_dict_018": sd18,
    }


def edge_order_checks(interface, processor: str, gtensors: dict, gmeta: dict, sd18: dict) -> dict:
    """Row r of a 0.3.1 trainable edge tensor is edge r of edge_index_base = the graph's (anemoi's) edge order."""
    import torch

    model = interface.model
    mods = {"data_to_hidden": ("encoder", model.encoder), "hidden_to_data": ("decoder", model.decoder)}
    if processor == "graphtransformer":
        mods["hidden_to_hidden"] = ("processor", model.processor)
    out = {}
    for key, (label, mod) in mods.items():
        e = gmeta["edges"][key]["count"]
        perm = torch.from_numpy(edge_perm(gtensors, key, e))
        off = gtensors[f"edges/{key}/dst_offsets"]
        src = torch.from_numpy(gtensors[f"edges/{key}/src"].astype(np.int64))
        dst = torch.from_numpy(np.repeat(np.arange(len(off) - 1), np.diff(off)))
        ei = mod.edge_index_base.long()
        attrs = torch.from_numpy(np.concatenate([gtensors[f"edges/{key}/{a}"] for a in EDGE_ATTRIBUTES], axis=1))
        csr_index = bool(torch.equal(ei[0, perm], src) and torch.equal(ei[1, perm], dst))
        csr_attr = bool(torch.equal(mod.edge_attr[perm].contiguous().view(torch.int32), attrs.view(torch.int32)))
        rows = mod.trainable.trainable.detach()
        name18 = [k for k, v in EDGE_TRAINABLES.items() if v[1] == key][0]
        rows_ok = bool(torch.equal(rows[perm], sd18[name18]))
        out[key] = {
            "module": label,
            "edges": e,
            "trainable": f"{label}.trainable.trainable",
            "edge_index_base_dtype": str(mod.edge_index_base.dtype).replace("torch.", ""),
            "perm_is_identity": bool(torch.equal(perm, torch.arange(e))),
            "edge_index_base[:, perm] == file CSR (src, dst)": csr_index,
            "edge_attr[perm] == file CSR attributes (bitwise)": csr_attr,
            "trainable[perm] == 0.18 trainable (CSR rows)": rows_ok,
            "edge_inc": mod.edge_inc.reshape(-1).tolist(),
        }
        assert csr_index and csr_attr and rows_ok, (key, out[key])
    return out


def config_locations(md: dict) -> dict:
    c = md["config"]
    return {
        "multistep_input": ["config", "training", "multistep_input", c["training"]["multistep_input"]],
        "forcing": ["config", "data", "forcing", c["data"]["forcing"]],
        "diagnostic": ["config", "data", "diagnostic", c["data"]["diagnostic"]],
        "normalizer": ["config", "data", "normalizer", c["data"]["normalizer"]],
        "normalizer_processor": ["config", "data", "processors", "normalizer", c["data"]["processors"]["normalizer"]],
        "timestep": ["config", "data", "timestep", c["data"]["timestep"]],
        "frequency": ["config", "data", "frequency", c["data"]["frequency"]],
        "model": ["config", "model", {k: c["model"][k] for k in ("num_channels", "trainable_parameters", "bounding")}],
        "processor": ["config", "model", "processor", c["model"]["processor"]],
        "encoder": ["config", "model", "encoder", c["model"]["encoder"]],
        "decoder": ["config", "model", "decoder", c["model"]["decoder"]],
        "graph_names": ["config", "graph", {"data": c["graph"]["data"], "hidden": c["graph"]["hidden"]}],
        "precision": ["config", "training", "precision", c["training"]["precision"]],
        "variables": ["dataset", "variables", md["dataset"]["variables"]],
        "data_indices": ["data_indices", sorted(md["data_indices"])],
    }


def versions() -> dict:
    import importlib.metadata as md

    out = package_versions()
    for dist in ("anemoi-training", "pytorch-lightning", "torchinfo", "timm", "torchvision"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            out[dist] = None
    out["anemoi-datasets"] = "not installed (stub module for anemoi.training.data.datamodule's import)"
    return out


def compare(a, b) -> dict:
    d = (a.double() - b.double()).abs()
    return {
        "max_abs": float(d.max()),
        "max_rel": float((d / b.double().abs().clamp_min(1e-30)).max()),
        "bitwise_identical": tensor_equal(a, b),
    }


# ----------------------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Build anemoi-models 0.3.1 inference checkpoints of the tiny model.")
    p.add_argument("--out", default=str(DEFAULT_OUT))
    p.add_argument("--ref", default=str(DEFAULT_OUT), help="folder of the 0.18 checkpoint fixtures (input, outputs)")
    p.add_argument("--budget", type=int, default=SIZE_BUDGET_BYTES, help="size budget in bytes (0: no check)")
    p.add_argument("--check-rerun", action="store_true", help="run a second time into a temporary folder and "
                   "compare every file byte for byte")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.ERROR)
    warnings.filterwarnings("ignore")
    t_start = time.time()

    stub_anemoi_datasets()
    import anemoi.models
    import anemoi.training
    import torch
    from anemoi.utils.checkpoints import load_metadata

    for mod, want in ((anemoi.models, ANEMOI_MODELS_VERSION), (anemoi.training, ANEMOI_TRAINING_VERSION)):
        if getattr(mod, "__version__", None) != want:
            print(f"warning: {mod.__name__} {getattr(mod, '__version__', None)} (fixtures are made with {want})",
                  file=sys.stderr)
    torch.manual_seed(SEED)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    out_dir, ref_dir = Path(args.out), Path(args.ref)
    out_dir.mkdir(parents=True, exist_ok=True)

    ref_io, _ = read_safetensors(ref_dir / REF_INPUT)
    x = ref_io["input"]
    assert x.dtype == torch.float32 and x.shape[:2] == (1, MULTISTEP) and x.dim() == 4
    stats = make_statistics()
    written: dict[str, Path] = {}
    outputs: dict[str, torch.Tensor] = {}
    doc_models: dict = {}
    graph_checks: dict = {}
    with tempfile.TemporaryDirectory() as tmpd:
        tmp = Path(tmpd)
        for variant, var in VARIANTS.items():
            t0 = time.time()
            graph, gtensors, gmeta, ginfo = load_graph_031(var["graph"])
            graph_checks[var["graph"]] = ginfo
            r = build_variant(variant, graph, gtensors, var["graph"], {k: v.copy() for k, v in stats.items()}, tmp)
            interface = r["interface"]
            ckpt = out_dir / f"{PREFIX}-{variant}.ckpt"
            shutil.copyfile(r["inference_path"], ckpt)
            ckpt.chmod(0o644)
            written[ckpt.name] = ckpt

            # ---- outputs
            di = interface.data_indices
            v_in = [VARIABLES[i] for i in di.data.input.full.tolist()]
            v_out = [VARIABLES[i] for i in di.data.output.full.tolist()]
            assert x.shape[-1] == len(v_in)
            flash = variant == "transformer"
            y = predict(interface, x, flash=flash)
            assert tensor_equal(y, predict(interface, x, flash=flash)), "predict_step is not deterministic"
            n = x.shape[2]
            assert y.shape == (1, 1, n, len(v_out)) and y.dtype == torch.float32 and bool(torch.isfinite(y).all())
            outputs[f"output_{variant}"] = y.contiguous()
            if flash:
                y_fb = predict(interface, x, flash=False)
                outputs[f"output_{variant}_sdpa_fallback"] = y_fb.contiguous()
                assert not tensor_equal(y, y_fb), "the window made no difference"

            # ---- reload checks (fresh unpickle of the file)
            loaded = torch.load(ckpt, map_location="cpu", weights_only=False)
            assert type(loaded).__name__ == "AnemoiModelInterface"
            assert loaded.config is None and loaded.metadata is None
            loaded.eval()
            assert tensor_equal(predict(loaded, x, flash=flash), y), "reloaded checkpoint differs"
            if flash:
                assert tensor_equal(predict(loaded, x, flash=False), y_fb), "reloaded checkpoint differs (fallback)"
            md = load_metadata(str(ckpt))
            expect = json.loads(json.dumps(r["metadata"]))
            md_wo = {k: v for k, v in md.items() if k != "supporting_arrays_paths"}
            if md_wo != expect:
                bad = sorted(k for k in set(md_wo) | set(expect) if md_wo.get(k) != expect.get(k))
                raise AssertionError(f"load_metadata differs from the metadata saved in {bad}")
            assert md["supporting_arrays_paths"] == {}

            # ---- comparison with the 0.18 checkpoint fixture (same weights, graph, normaliser, input)
            ref_out, _ = read_safetensors(ref_dir / f"{variant}.io.safetensors")
            y18 = ref_out["output"].reshape(y.shape)
            norm = interface.pre_processors.processors.normalizer
            idx = di.data.output.full
            yn, yn18 = y * norm._norm_mul[idx] + norm._norm_add[idx], y18 * norm._norm_mul[idx] + norm._norm_add[idx]
            cmp = compare(y, y18)
            close = torch.allclose(yn.double(), yn18.double(), rtol=1e-5, atol=1e-6)
            cmp["allclose_rtol1e-5_atol1e-6_normalised_units"] = bool(close)
            cmp["max_abs_normalised_units"] = float((yn.double() - yn18.double()).abs().max())
            compare_018 = {"output": cmp}
            if flash:
                c2 = compare(y_fb, y18)
                c2["max_abs_normalised_units"] = float(
                    ((y_fb * norm._norm_mul[idx] + norm._norm_add[idx]).double() - yn18.double()).abs().max())
                compare_018["output_sdpa_fallback"] = c2
            assert cmp["allclose_rtol1e-5_atol1e-6_normalised_units"], (variant, compare_018)

            members = zip_members(ckpt)
            archive = members[0][0].split("/")[0]
            lists = tensor_list(interface)
            order = edge_order_checks(interface, var["processor"], gtensors, gmeta, r["state_dict_018"])
            doc_models[variant] = {
                "file": ckpt.name,
                "graph_file": ginfo["file"],
                "archive": archive,
                "written_by": f"anemoi-training {ANEMOI_TRAINING_VERSION} AnemoiCheckpoint._save_checkpoint "
                f"(as {r['inference_path'].name}), copied",
                "pickle": pickle_globals(ckpt),
                "zip_members": members,
                "metadata_member": f"{archive}/anemoi-metadata/ai-models.json",
                "metadata_keys": sorted(md),
                "metadata_config_keys": sorted(md["config"]),
                "metadata_locations": config_locations(md),
                "data_indices": md["data_indices"],
                "predict_step": {
                    "signature": "AnemoiModelInterface.predict_step(batch: Tensor) -> Tensor",
                    "input_shape": list(x.shape),
                    "output_shape": list(y.shape),
                    "variables_in": v_in,
                    "variables_out": v_out,
                    "steps": "batch = pre_processors(batch, in_place=False); x = batch[:, 0:multi_step, None]; "
                    "y = model.forward(x) -> [B, E, N, V_out]; y = post_processors(y, in_place=False)",
                    "output": f"output_{variant}" + (" (flash-attn emulated; see output_transformer_sdpa_fallback)"
                                                      if flash else ""),
                },
                "normaliser": {
                    "norm_mul": norm._norm_mul.tolist(),
                    "norm_add": norm._norm_add.tolist(),
                    "input_idx": norm._input_idx.tolist(),
                    "output_idx": norm._output_idx.tolist(),
                },
                "pickled_statistics_after_remap": {k: np.asarray(v).tolist() for k, v in interface.statistics.items()},
                "weights": "tests/data/model/" + f"{variant}.weights.safetensors mapped to 0.3.1 names "
                "(to_031_state_dict); state dict prefix under the interface: 'model.'",
                "rename_0.18_to_0.3.1": r["rename_table"],
                "edge_order": order,
                "compare_to_018": compare_018,
                **lists,
            }
            print(f"{variant}: {ckpt.stat().st_size} bytes, {len(lists['state_dict'])} state-dict tensors, "
                  f"{len(lists['non_persistent_buffers'])} non-persistent buffers; vs 0.18: "
                  f"{json.dumps(compare_018)}; {time.time() - t0:.1f} s")

    # ---- io file
    io_meta = {
        "generator": "tools/reference/make_checkpoint_fixtures_031.py",
        "refs": {"input": REF_INPUT},
        "layouts": {
            "input": f"not stored: {REF_INPUT}:input [1, 2, N, 6] float32 physical, variables data.input.full; passed "
            "unchanged as predict_step's batch tensor",
            **{k: "[B=1, E=1, N=1600, V_out=6] float32 physical = predict_step(input) of "
               f"{PREFIX}-{k.split('_')[1]}.ckpt; variables data.output.full (z_500 t_850 2t sp tp cp)"
               for k in outputs},
        },
        "window": "output_transformer: flash-attn semantics emulated (window 16: |i-j| <= 16); "
        "output_transformer_sdpa_fallback: anemoi-models 0.3.1 without flash-attn (no window)",
        "equal_to_018": {
            f"output_{v}": f"bit-identical to {v}.io.safetensors:output reshaped [1, 1, 1, N, 6] -> [1, 1, N, 6]"
            for v, m in doc_models.items()
            if m["compare_to_018"]["output"]["bitwise_identical"]
        },
        "versions": {k: v for k, v in versions().items() if k in ("torch", "anemoi-models", "anemoi-utils",
                                                                   "anemoi-training", "python")},
    }
    io_path = out_dir / IO_NAME
    save_safetensors(io_path, outputs, io_meta)
    written[io_path.name] = io_path
    stored, _ = read_safetensors(io_path)
    assert all(tensor_equal(stored[k], v) for k, v in outputs.items())

    # ---- VERSIONS-0.3.1.json
    sizes = {n: q.stat().st_size for n, q in sorted(written.items())}
    doc = {
        "generator": "tools/reference/make_checkpoint_fixtures_031.py",
        "environment": versions(),
        "anemoi_training_code_followed": f"anemoi-training {ANEMOI_TRAINING_VERSION}: config/config.yaml (Hydra), "
        "train/train.py AnemoiTrainer.initial_seed + metadata + _update_paths (run), data/datamodule.py data_indices "
        "(run), train/forecaster.py GraphForecaster.__init__ (run), diagnostics/callbacks/checkpoint.py "
        "AnemoiCheckpoint._save_checkpoint (run)",
        "config": {
            "variables": VARIABLES,
            "forcing": FORCING,
            "diagnostic": DIAGNOSTIC,
            "normaliser": NORMALISER,
            "statistics": {k: v.tolist() for k, v in stats.items()},
            "statistics_note": "make_normaliser_fixture.make_statistics(): float64, dataset order, before remap",
            "ANEMOI_BASE_SEED": BASE_SEED_ENV,
        },
        "determinism": "uuid4, datetime.now, time.time fixed inside the anemoi modules while they run; "
        "save_metadata's zip entries dated 1980-01-01 00:00:00; PYTHONHASHSEED=0",
        "graphs": graph_checks,
        "notes": NOTES,
        "models": doc_models,
        "io": {"file": IO_NAME, **io_meta, "tensors": {k: [list(v.shape), "float32"] for k, v in outputs.items()}},
        "sha256": {n: sha256(q) for n, q in sorted(written.items())},
        "sizes": sizes,
    }
    vpath = out_dir / VERSIONS_NAME
    vpath.write_text(_json_text(doc))
    for _ in range(3):
        sizes[VERSIONS_NAME] = vpath.stat().st_size
        doc["total_bytes"] = sum(sizes.values())
        vpath.write_text(_json_text(doc))
    total = sum(q.stat().st_size for q in written.values()) + vpath.stat().st_size
    for n, s in sorted(sizes.items()):
        print(f"  {n:45s} {s:9d}")
    print(f"total {total} bytes ({total / 2**20:.3f} MiB) in {out_dir}; {time.time() - t_start:.1f} s")
    if args.budget and total > args.budget:
        print(f"error: fixtures total {total} bytes > budget {args.budget}", file=sys.stderr)
        return 1

    if args.check_rerun:
        with tempfile.TemporaryDirectory() as t2:
            cmd = [sys.executable, __file__, "--out", t2, "--ref", str(ref_dir), "--budget", "0"]
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            names = [*written, VERSIONS_NAME]
            diff = [n for n in names if (Path(t2) / n).read_bytes() != (out_dir / n).read_bytes()]
            if diff:
                print(f"error: a second run differs in {diff}", file=sys.stderr)
                return 1
            print("second run: every file byte-identical")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python3
"""Real anemoi inference checkpoints of the `tiny` model in the *anemoi-models 0.7-0.10 layout* (written here with
anemoi-models 0.9.3 + anemoi-training 0.6.3, August 2025), for Boreas' native reader of that intermediate layout.

Run from the repository root with its own environment (git-ignored, see README.md):

    python3 -m venv .venv-ref-mid
    .venv-ref-mid/bin/pip install torch==2.7.1 torch-geometric==2.6.1 numpy==1.26.4
    .venv-ref-mid/bin/pip install anemoi-models==0.9.3 anemoi-utils==0.4.35 hydra-core==1.3.2 omegaconf==2.3.0 \
        pytorch-lightning==2.5.3 torchinfo==1.8.0 torchvision==0.22.1 timm==1.0.19 scipy==1.16.1 pydantic==2.11.7 \
        typeguard safetensors pyyaml numpy==1.26.4
    .venv-ref-mid/bin/pip install --no-deps anemoi-training==0.6.3 anemoi-graphs==0.6.4 anemoi-transform==0.1.16
    .venv-ref-mid/bin/python tools/reference/make_checkpoint_fixtures_mid.py [--out tests/data/checkpoint] \
        [--variants graphtransformer] [--check-rerun]

Why this release (tools/reference/ANEMOI_LAYOUTS.md has the table of every layout from 0.3.1 to 0.18): the
anemoi-models 0.7.0-0.10.0 layout (June-November 2025; anemoi-training 0.5.0-0.7.0) is the longest-lived layout
between the AIFS-single 1.0 one (0.3.1) and the current one: 14 anemoi-models releases over ~6 months, the whole
anemoi-training 0.6.x series.  The official AIFS-single 2.0 checkpoint (May 2026) is run with anemoi-models 0.9.3
(its published runtime pins), user set-ups of that period pin 0.9.1-0.9.3 with anemoi-training 0.6.1-0.6.3.  0.9.3
and 0.6.3 were released together (2025-08-22).  torch 2.7.1 / torch-geometric 2.6.1 / anemoi-utils 0.4.35 /
anemoi-graphs 0.6.4 / anemoi-transform 0.1.16 are what those runtimes pin; pytorch-lightning 2.5.3, timm 1.0.19,
torchvision 0.22.1 are releases of that summer.  Pinned because they change data.pkl: numpy 1.26.4 (anemoi-training
0.6.3 requires numpy < 2: the pickle says numpy.core.multiarray, not numpy._core), hydra-core 1.3.2 (the release of
that time: the mapper's layer kernels pickle as functools.partial; hydra-core >= 1.3.6 would pickle
hydra._internal.target_policy._DeferredTarget, a class no checkpoint of that era can contain) and omegaconf 2.3.0.
PyPI's torch wheel pulls the CUDA packages; nothing uses them.

anemoi-training is installed with --no-deps (as for 0.3.1): only Lightning, torchinfo, timm, pydantic, scipy,
anemoi-graphs (its schemas validate the config) and anemoi-transform (variables metadata) are needed for the code run
here; its one import of anemoi-datasets (data/datamodule/singledatamodule.py: `from anemoi.datasets.data import
open_dataset`) is satisfied by a stub module that refuses to open anything (no dataset is read).

The script sets CUDA_VISIBLE_DEVICES="" and OMP_NUM_THREADS=1, removes ANEMOI_INFERENCE_* and SLURM_JOB_ID, sets
ANEMOI_BASE_SEED=42 (anemoi-training 0.6's get_base_seed asserts one is set; seeds below 1000 are multiplied by 1000:
the recorded seed is 42000) and re-executes itself with PYTHONHASHSEED=0 (every nn.Module pickles a set of names).

What is built (for each variant: transformer on o16_o4, graphtransformer on o16_tri2)
------------------------------------------------------------------------------------
Everything that ends up in the file is made by anemoi-training 0.6.3's own code, in the order AnemoiTrainer does it:
  * config: anemoi-training 0.6.3's config/config.yaml composed with Hydra (model=<processor>,
    graph=encoder_decoder_only for the transformer, multi_scale for the graph transformer; hidden nodes
    NPZFileNodes grids/o4.npz (the schema's ReducedGaussianGridNodes stops at o16) / TriNodes 2), then the tiny
    settings: data.forcing [lsm, cos_latitude], data.diagnostic [tp, cp],
    data.normalizer = make_checkpoint_fixtures.NORMALISER, training.multistep_input 2, training.precision "32",
    model.num_channels 32, processor num_layers 2 / num_chunks 2 / num_heads 4 / mlp_hidden_ratio 4 (+ window_size 16,
    dropout_p 0, attention_implementation scaled_dot_product_attention for the transformer: flash-attn needs CUDA),
    encoder/decoder num_heads 4 / mlp_hidden_ratio 4 / num_chunks 1, every model.trainable_parameters entry 2,
    model.bounding = make_model_fixtures.BOUNDING; hardware paths/files filled in.  Then, as AnemoiTrainer.__init__
    with config_validation: True (the default): OmegaConf.resolve, BaseSchema(**config) (pydantic), run_id (a fixed
    uuid5), AnemoiTrainer._update_paths.  In 0.6.x multistep_input lives under config.training, forcing / diagnostic /
    normalizer under config.data (as in 0.3.1; 0.16 moved them to config.task / config.data.datasets.<name>).
  * data_indices: AnemoiDatasetsDataModule.data_indices = IndexCollection(config, name_to_index) (one collection, not a
    dict per dataset; it keeps OmegaConf.to_container(config) as .config, so the training config is pickled inside the
    model although the callback sets model.config = None).  statistics: make_normaliser_fixture.make_statistics();
    the normaliser's cp <- tp remap edits the dict it is given, so the pickled statistics are the remapped ones.
  * metadata: AnemoiTrainer.metadata (version "1.0", config, seed, run_id, dataset, data_indices,
    provenance_training, timestamp), then AnemoiCheckpoint._save_checkpoint adds uuid, model (torchinfo summary),
    tracker ({}), training.  metadata["dataset"] is hand-made (make_checkpoint_fixtures.dataset_metadata: what
    anemoi-datasets' Dataset.metadata() returns; there is no zarr).  supporting arrays: latitudes / longitudes (what
    anemoi-datasets' supporting_arrays() returns for a gridded dataset; FullGrid and NoOutputMask add none), saved
    by anemoi-utils 0.4.35 save_metadata as anemoi-metadata/{latitudes,longitudes}.numpy + ai-models.json.
  * the model: GraphForecaster (anemoi-training 0.6.3) with exactly those objects; it builds the
    AnemoiModelInterface (anemoi-models 0.9.3: pre/post processors = InputNormalizer, AnemoiModelEncProcDec on the
    graph of the Boreas graph file converted back with make_model_fixtures.heterodata_from_boreas, i.e. anemoi's own
    edge order; the same graph as the 0.18 fixtures), truncation_data {}.
    Weights: the *same values* as the 0.18 fixtures: tests/data/model/<variant>.weights.safetensors mapped to the
    0.9.3 names (to_mid_state_dict below): node trainables keep their 0.18 names; mapper modules lose the per-dataset
    `.data` level; node_dst_mlp.mlp.<k> -> node_dst_mlp.<k>; the processor's flat proc.<layer> -> proc.<chunk>.blocks.
    <i>; transformer mlp.mlp.<k> -> mlp.<k>; trainable edge tensors move from the graph providers to the mappers /
    processor (<part>.trainable.trainable) and their rows from CSR order (0.18) to the graph's edge order (row perm[p]
    = CSR row p, perm from the graph file); trainable_layout_version and the layer_norm_attention_dest alias have no
    0.9.3 counterpart (the latter is the same module as layer_norm_attention in 0.9.3 too).  q/k/v stay split.
  * saving: AnemoiCheckpoint._save_checkpoint (anemoi-training 0.6.3, diagnostics/callbacks/checkpoint.py) with a
    minimal stand-in trainer: config / metadata / supporting_arrays set to None, torch.save(model, path), then
    anemoi.utils.checkpoints.save_metadata(path, metadata, supporting_arrays=...) (anemoi-metadata/ai-models.json:
    anemoi-utils < 0.4.43), restored.  The file is written as inference-<variant>.ckpt (archive folder `inference-<variant>`) and copied to
    anemoi-models-0.9.3-<variant>.ckpt; the Lightning checkpoint is discarded.

Size: the graph-transformer files (checkpoint 0.77 MB + io + VERSIONS) fit the 1.4 MB budget for this layout; with
the transformer checkpoint (0.67 MB) too they do not (1.6 MB), so only the graph transformer is made by default
(--variants transformer graphtransformer --budget 0 makes both, e.g. into a temporary folder).  The graph transformer
covers every renamed mapper / processor leaf except the split attention.lin_q/lin_k/lin_v under
processor.proc.<chunk>.blocks.<i> (the transformer processor), which is listed in VERSIONS-0.9.3.json's notes.

predict_step
------------
0.9.3's AnemoiModelInterface.predict_step(batch) takes a *tensor* [B, T, N, V_in] (not a dict): x = batch[:, 0:T,
None] (adds E), pre_processors(x, in_place=False) on the data.input.full columns, forward, post_processors; it
returns [B, E=1, N, V_out] (no time axis, as 0.3.1; 0.18 returns [B, 1, E, N, V_out]).  The 0.18 fixtures' physical
input [1, 2, N, 6] (tests/data/checkpoint/transformer.io.safetensors) is passed unchanged.  0.9.3's
SDPAAttentionWrapper applies the sliding window as a boolean mask |i - j| <= window_size (the same window as
flash-attn and as 0.18), so the CPU result is the real one (unlike 0.3.1, whose SDPA fallback drops the window).

Determinism: uuid4 (AnemoiModelInterface.id, the checkpoint uuids), run_id, datetime.now (metadata timestamp,
provenance time), time.time (elapsed_time 0.0) and the dates of the zip entries appended by save_metadata
(1980-01-01) are fixed while anemoi code runs; provenance_training.git_versions is {} (anemoi.utils.provenance.
_check_for_git replaced: it would record the git state of the Boreas checkout).  A second run writes byte-identical
files (--check-rerun).

Files (tests/data/checkpoint/)
------------------------------
anemoi-models-0.9.3-<variant>.ckpt     inference checkpoints (torch zip, data.pkl protocol 2, plus
                                       anemoi-metadata/ai-models.json and anemoi-metadata/*.numpy)
anemoi-models-0.9.3.io.safetensors     output_<variant>: float32 [1, 1, N=1600, 6] physical (predict_step); the
                                       input is transformer.io.safetensors:input (header refs)
VERSIONS-0.9.3.json                    versions, sha256, zip members, pickle GLOBALs, state-dict and non-persistent
                                       buffers, rename table, metadata keys and config locations, edge order,
                                       comparison with 0.18

Checks on every run: the graph round-trips the graph file; the mapped state dict loads strictly and every parameter
is non-zero; the trainable edge rows are the 0.18 rows permuted by the graph file's perm and edge_index_base /
edge_attr are the graph's own order; torch.load(weights_only=False) of each checkpoint reproduces the stored outputs
bit for bit; load_metadata / load_supporting_arrays return what was saved; the outputs equal the 0.18 fixtures'.
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
import inspect  # noqa: E402
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
import make_checkpoint_fixtures as mcf  # noqa: E402
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
from make_checkpoint_fixtures import pickle_globals  # noqa: E402
from make_checkpoint_fixtures import sha256  # noqa: E402
from make_checkpoint_fixtures import tensor_list  # noqa: E402
from make_checkpoint_fixtures import zip_members  # noqa: E402
from make_graph_fixtures import octahedral_grid  # noqa: E402
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

# make_checkpoint_fixtures pops ANEMOI_BASE_SEED when imported; anemoi-training 0.6 needs one
BASE_SEED_ENV = "42"
os.environ["ANEMOI_BASE_SEED"] = BASE_SEED_ENV

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "tests" / "data" / "checkpoint"
SIZE_BUDGET_BYTES = 1_400_000  # everything this script adds under tests/data/checkpoint
ANEMOI_MODELS_VERSION = "0.9.3"
ANEMOI_TRAINING_VERSION = "0.6.3"
PREFIX = f"anemoi-models-{ANEMOI_MODELS_VERSION}"
IO_NAME = f"{PREFIX}.io.safetensors"
VERSIONS_NAME = f"VERSIONS-{ANEMOI_MODELS_VERSION}.json"
DEFAULT_VARIANTS = ["graphtransformer"]  # both checkpoints exceed the size budget (see README.md)
GRAPH_CONFIG = {"transformer": "encoder_decoder_only", "graphtransformer": "multi_scale"}
REF_INPUT = "transformer.io.safetensors"  # the 0.18 fixtures' physical input [1, 2, N, 6]
DATASETS_VERSION = "0.5.26"  # anemoi-datasets of that summer: the "version" recorded in metadata["dataset"]

NOTES = [
    "predict_step(batch) takes a tensor [B, T, N, V_in] (0.18: a dict {'data': ...}) and returns [B, E=1, N, V_out] "
    "(0.18: [B, n_step_output=1, E=1, N, V_out]); variables in = data.input.full, out = data.output.full.",
    "State-dict names that differ from BOTH 0.18 and 0.3.1: mapper GraphTransformer blocks "
    "<part>.proc.node_dst_mlp.{0,2}.* (0.18: node_dst_mlp.mlp.{0,2}; 0.3.1: node_dst_mlp.{1,3} with the LayerNorm as "
    "node_dst_mlp.0), processor blocks processor.proc.<chunk>.blocks.<i>.{layer_norm_attention, layer_norm_mlp, "
    "attention.lin_q, attention.lin_k, attention.lin_v, attention.projection, mlp.0, mlp.2} (0.18 leaf names under the "
    "0.3.1 chunk/block numbering) and processor.proc.<chunk>.blocks.<i>.{layer_norm_attention, layer_norm_mlp_dst, "
    "node_dst_mlp.{0,2}, ...} for the graph transformer. Node trainables / latlons use the 0.18 names "
    "(node_attributes.trainable_tensors.<nodes>.trainable, node_attributes.latlons_<nodes>); edge trainables the 0.3.1 "
    "names (<encoder|decoder|processor>.trainable.trainable) and order.",
    "Trainable edge tensors have one row per edge in the graph's (anemoi-graphs') edge order = edge_index_base order, "
    "NOT the graph file's CSR order: row perm[p] = CSR row p (perm = edges/<set>/perm of the graph file). There is no "
    "trainable_layout_version (0.16+ only).",
    "Non-persistent buffers (in data.pkl, not in the state dict): <mapper>.edge_attr float32 [E, 3] and "
    "<mapper>.edge_index_base int32 [2, E] (the graph's own edge_index tensor, shared storage with graph_data) for "
    "the encoder, decoder and graph-transformer processor, in the graph's edge order. edge_inc int64 [2, 1] IS "
    "persistent (state dict) until 0.11.2, as in 0.3.1.",
    "Normaliser: model.pre_processors.processors.normalizer.{_norm_mul,_norm_add} float32 [8], {_input_idx, "
    "_output_idx} int32 [6] (0.3.1 path; 0.12+ inserts the dataset name, 0.14+ adds _model_output_idx); "
    "post_processors.* share the storages.",
    "The whole HeteroData graph is pickled by reference twice (AnemoiModelInterface.graph_data and "
    "AnemoiModelEncProcDec._graph_data are one object); the interface also keeps truncation_data {}, the statistics "
    "(numpy float64, after the cp <- tp remap), statistics_tendencies None and forward (bound method).",
    "The training config survives in the pickle although the callback sets model.config = None: IndexCollection keeps "
    "OmegaConf.to_container(config) as data_indices.config; the boundings keep name_to_index dicts.",
    "The inference checkpoint's uuid differs from the one left in memory: after writing it, the callback gives the "
    "Lightning checkpoint a fresh uuid (torch >= 2.6).",
    "Transformer variant (not committed, --variants transformer): 0.9.3's SDPAAttentionWrapper runs torch SDPA under "
    "sdpa_kernel(SDPBackend.MATH) with the boolean window mask |i-j| <= window_size, so its predict_step output differs "
    "from 0.18's (torch's default CPU SDPA kernel) by rounding only (max 3.8e-6 in normalised units on the tiny model); "
    "with the MATH restriction lifted it is bit-identical to 0.18. The graph transformer output is bit-identical.",
    "SDPAAttentionWrapper caches its window mask as a plain attribute (not a buffer) after the first forward: this "
    "checkpoint is saved before any forward, so mask is None in data.pkl; a checkpoint written during training holds "
    "the [N_hidden, N_hidden] bool mask tensor there (flash-attn runs keep no mask).",
    "Metadata: anemoi-metadata/ai-models.json (anemoi-utils < 0.4.43 -- 0.4.35 here; anemoi-utils 0.4.43, January "
    "2026, renamed it anemoi.json) plus supporting arrays anemoi-metadata/latitudes.numpy and longitudes.numpy "
    "(float64 degrees; a flat dict, so no per-dataset data/ folder as in 0.18's files); multistep_input "
    "under config.training, forcing / diagnostic / normalizer under config.data, the processor under "
    "config.data.processors.normalizer; metadata_inference does not exist yet (0.12+).",
]


# ----------------------------------------------------------------------------------------------------------------
# importing anemoi-training 0.6.3 without anemoi-datasets
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
        raise RuntimeError("anemoi-datasets is stubbed in make_checkpoint_fixtures_mid.py")

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
        # files) must not make the fixture depend on the working tree
        (prov_mod, "_check_for_git", lambda paths, full: {}),
        (ckpt_mod, "time", time_shim),
        (ckpt_mod, "uuid", _Shim(uuid, uuid4=_uuid_factory(f"{ANEMOI_MODELS_VERSION}/{label}/checkpoint"))),
        (interface_mod, "uuid", _Shim(uuid, uuid4=_uuid_factory(f"{ANEMOI_MODELS_VERSION}/{label}/model"))),
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
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"boreas-checkpoint-fixture/{ANEMOI_MODELS_VERSION}/{variant}/run_id"))


# ----------------------------------------------------------------------------------------------------------------
# config
# ----------------------------------------------------------------------------------------------------------------
def training_config(variant: str, graph_name: str):
    """anemoi-training 0.6.3's config composed with Hydra, tiny settings, validated, as AnemoiTrainer.__init__.
    Returns (BaseSchema, OmegaConf) -- the model gets the former, the metadata / data indices the latter."""
    import anemoi.training
    from anemoi.training.schemas.base_schema import BaseSchema
    from anemoi.training.schemas.base_schema import convert_to_omegaconf
    from anemoi.training.train.train import AnemoiTrainer
    from hydra import compose
    from hydra import initialize_config_dir
    from omegaconf import OmegaConf

    processor = VARIANTS[variant]["processor"]
    config_dir = Path(anemoi.training.__file__).parent / "config"
    with initialize_config_dir(config_dir=str(config_dir), version_base=None):
        cfg = compose("config", overrides=[f"model={processor}", f"graph={GRAPH_CONFIG[variant]}"])

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
    if processor == "transformer":
        m.processor.window_size = WINDOW
        m.processor.dropout_p = 0.0
        m.processor.attention_implementation = "scaled_dot_product_attention"  # flash-attn needs CUDA
    for part in (m.encoder, m.decoder):
        part.num_heads = HEADS
        part.mlp_hidden_ratio = MLP_RATIO
        part.num_chunks = 1
    m.bounding = copy.deepcopy(BOUNDING)

    cfg.training.multistep_input = MULTISTEP
    cfg.training.precision = "32"

    if processor == "transformer":  # the schema's ReducedGaussianGridNodes stops at o16: O4 from an npz file
        cfg.graph.nodes.hidden.node_builder = OmegaConf.create(
            {"_target_": "anemoi.graphs.nodes.NPZFileNodes", "npz_file": "grids/o4.npz", "lat_key": "latitudes",
             "lon_key": "longitudes"})
    else:
        cfg.graph.nodes.hidden.node_builder.resolution = 2

    cfg.hardware.accelerator = "cpu"
    cfg.hardware.paths.data = "data"
    cfg.hardware.paths.output = "output/"
    cfg.hardware.paths.graph = "tests/data/graphs/"
    cfg.hardware.files.dataset = f"{DATASET_NAME}.zarr"
    cfg.hardware.files.graph = f"{graph_name}.safetensors"
    cfg.diagnostics.log.mlflow.tracking_uri = "http://localhost:5000"  # mlflow is disabled
    cfg.diagnostics.log.wandb.entity = "boreas"  # wandb is disabled

    # AnemoiTrainer.__init__ (config_validation: True), run_id, _update_paths
    assert cfg.config_validation
    OmegaConf.resolve(cfg)
    config = BaseSchema(**cfg)
    run_id = run_id_for(variant)
    config.training.run_id = run_id
    AnemoiTrainer._update_paths(types.SimpleNamespace(config=config, run_id=run_id, parent_run_server2server=None))
    return config, convert_to_omegaconf(config)


# ----------------------------------------------------------------------------------------------------------------
# graph, dataset stand-in
# ----------------------------------------------------------------------------------------------------------------
def load_graph_mid(name: str) -> tuple:
    """HeteroData of tests/data/graphs/<name>.safetensors in anemoi's edge order (as make_model_fixtures does),
    checked to round-trip the file (without anemoi-graphs' builders: the *_exact re-computation is left to the 0.18
    tools)."""
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


def grid_latlons(graph) -> tuple[np.ndarray, np.ndarray]:
    """(latitudes, longitudes) float64 degrees of O16, checked against the graph's data nodes."""
    import torch

    lats, lons = octahedral_grid(16)
    ref = torch.from_numpy(np.stack([np.radians(lats), np.radians(lons)], 1).astype(np.float32))
    assert torch.equal(graph["data"].x, ref), "data nodes are not the O16 grid"
    return np.ascontiguousarray(lats), np.ascontiguousarray(lons)


def dataset_metadata(n_grid: int, supporting: list[str], variant: str) -> dict:
    """make_checkpoint_fixtures.dataset_metadata (the shape of anemoi-datasets' Dataset.metadata()), whatever its
    signature, with the anemoi-datasets version of that era."""
    params = inspect.signature(mcf.dataset_metadata).parameters
    if len(params) >= 3:
        md = mcf.dataset_metadata(n_grid, supporting, mcf.tiny_spec(variant))
    else:
        md = mcf.dataset_metadata(n_grid, supporting)
    md["version"] = DATASETS_VERSION
    return md


# ----------------------------------------------------------------------------------------------------------------
# weights: the 0.18 fixtures' state dict in the 0.9.3 layout
# ----------------------------------------------------------------------------------------------------------------
EDGE_TRAINABLES = {  # 0.18 name -> (0.9.3 name, edge set)
    "encoder_graph_provider.data.trainable.trainable": ("encoder.trainable.trainable", "data_to_hidden"),
    "decoder_graph_provider.data.trainable.trainable": ("decoder.trainable.trainable", "hidden_to_data"),
    "processor_graph_provider.trainable.trainable": ("processor.trainable.trainable", "hidden_to_hidden"),
}


def _gt_leaf(leaf: str) -> str:
    """GraphTransformer{Mapper,Processor}Block leaf, 0.18 -> 0.9.3: node_dst_mlp / node_src_mlp lost their inner
    `.mlp` Sequential (anemoi-models 0.16 migration 1778688800_glu_mlp_implementation)."""
    for mlp in ("node_dst_mlp.", "node_src_mlp."):
        if leaf.startswith(mlp + "mlp."):
            return mlp + leaf[len(mlp + "mlp."):]
    return leaf


def to_mid_state_dict(sd18: dict, processor: str, graph_tensors: dict) -> tuple[dict, list]:
    """0.18 state dict (make_model_fixtures names) -> 0.9.3 names; returns (state dict, [[0.18 name, 0.9.3 name,
    how]])."""
    import torch

    out, table = {}, []
    per_chunk = NUM_LAYERS // PROC_CHUNKS
    for name, t in sd18.items():
        how = "copy"
        if name.endswith("trainable_layout_version"):
            continue  # 0.16+ only
        if ".proc.layer_norm_attention_dest." in name:
            continue  # alias of the mapper's layer_norm_attention (the same module in 0.9.3 too)
        if name.startswith("node_attributes."):
            new = name  # NamedNodesAttributes: unchanged from 0.4.0 to 0.11.x and again from 0.13
            if ".latlons_" in name:
                how = "buffer: recomputed by 0.9.3 from the graph, compared"
        elif name in EDGE_TRAINABLES:
            new, key = EDGE_TRAINABLES[name]
            perm = torch.from_numpy(edge_perm(graph_tensors, key, t.shape[0]))
            reordered = torch.empty_like(t)
            reordered[perm] = t  # CSR row p -> graph edge perm[p]
            t, how = reordered, f"rows reordered: row perm[p] = CSR row p ({key} perm of the graph file)"
        elif name.startswith(("encoder.data.", "decoder.data.")):
            part, rest = name.split(".data.", 1)
            if rest.startswith("proc."):
                rest = "proc." + _gt_leaf(rest[len("proc."):])
            new = f"{part}.{rest}"
        elif name.startswith("processor.proc."):
            rest = name[len("processor.proc."):]
            layer, leaf = rest.split(".", 1)
            layer = int(layer)
            prefix = f"processor.proc.{layer // per_chunk}.blocks.{layer % per_chunk}."
            if processor == "transformer":
                if leaf.startswith("mlp.mlp."):
                    leaf = "mlp." + leaf[len("mlp.mlp."):]
            else:
                leaf = _gt_leaf(leaf)
            new = prefix + leaf
        else:
            raise KeyError(f"no 0.9.3 name for {name}")
        assert new not in out, (name, new)
        out[new] = t
        table.append([name, new, how])
    return out, table


def predict(interface, x):
    import torch

    with torch.no_grad():
        return interface.predict_step(x.clone())


@contextlib.contextmanager
def default_sdpa_backend():
    """0.9.3's SDPAAttentionWrapper runs torch's SDPA under sdpa_kernel(backends=[SDPBackend.MATH]); 0.18 lets torch
    choose (on a CPU: its flash-attention kernel).  With the restriction lifted 0.9.3 reproduces 0.18 bit for bit."""
    import torch.nn.attention as attention

    saved = attention.sdpa_kernel
    attention.sdpa_kernel = lambda *a, **k: contextlib.nullcontext()
    try:
        yield
    finally:
        attention.sdpa_kernel = saved


# ----------------------------------------------------------------------------------------------------------------
# building and saving with anemoi-training 0.6.3's code
# ----------------------------------------------------------------------------------------------------------------
class _StandInTrainer:
    """The parts of a pytorch_lightning.Trainer that AnemoiCheckpoint._save_checkpoint (0.6.3) touches."""

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
    from anemoi.training.train.tasks import GraphForecaster
    from anemoi.training.train.train import AnemoiTrainer
    from anemoi.training.utils.checkpoint import check_classes

    config, config_oc = training_config(variant, graph_name)
    lats, lons = grid_latlons(graph)
    supporting_arrays = {"latitudes": lats, "longitudes": lons}  # anemoi-datasets' supporting_arrays(), flat in 0.6

    # the datamodule's parts that AnemoiTrainer uses (AnemoiTrainer.datamodule gets convert_to_omegaconf(config))
    dm = types.SimpleNamespace(
        config=config_oc,
        ds_train=types.SimpleNamespace(name_to_index={v: i for i, v in enumerate(VARIABLES)}),
        statistics=stats,
        statistics_tendencies=None,
        metadata=dataset_metadata(lats.size, sorted(supporting_arrays), variant),
        supporting_arrays=supporting_arrays,
    )
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
        # AnemoiTrainer.model: training.model_task (GraphForecaster) with these kwargs
        module = GraphForecaster(
            config=config,
            data_indices=dm.data_indices,
            graph_data=graph,
            truncation_data={},
            metadata=metadata,
            statistics=dm.statistics,
            statistics_tendencies=dm.statistics_tendencies,
            supporting_arrays=dm.supporting_arrays,
        )
    interface = module.model
    assert interface.metadata is module._hparams["metadata"]

    # weights: the 0.18 fixtures' values in the 0.9.3 layout
    sd18 = load_weights(REPO / "tests" / "data" / "model" / f"{variant}.weights.safetensors")
    sd_mid, rename_table = to_mid_state_dict(sd18, VARIANTS[variant]["processor"], gtensors)
    own = interface.model.state_dict()
    params = dict(interface.model.named_parameters())
    missing = sorted(set(params) - set(sd_mid))
    unexpected = sorted(set(sd_mid) - set(own))
    assert not missing and not unexpected, (missing, unexpected)
    latlons = {k for k in sd_mid if ".latlons_" in k}
    with torch.no_grad():
        for k, v in sd_mid.items():
            assert own[k].shape == v.shape and own[k].dtype == v.dtype, (k, own[k].shape, v.shape)
            if k in latlons:  # 0.9.3 recomputes them from the same graph: must be identical
                assert tensor_equal(own[k], v), f"{k} differs from the 0.18 fixture"
            else:
                own[k].copy_(v)
    for k, p in interface.model.named_parameters():
        assert bool((p != 0).all()), f"parameter {k} has exact zeros"
    interface.eval()
    module.eval()

    check_classes(interface)  # AnemoiCheckpoint.on_train_start

    # AnemoiCheckpoint._save_checkpoint
    lightning_path = tmp / f"{variant}.ckpt"
    with fixed_clock(variant):
        callback = AnemoiCheckpoint(config=config, dirpath=str(tmp), save_last=False)
        callback._save_checkpoint(_StandInTrainer(module), str(lightning_path))
    inference_path = tmp / f"inference-{variant}.ckpt"
    assert inference_path.exists()
    assert interface.config is not None and interface.metadata is metadata  # restored by the callback
    return {
        "config": config_oc,
        "interface": interface,
        "metadata": metadata,
        "supporting_arrays": supporting_arrays,
        "inference_path": inference_path,
        "rename_table": rename_table,
        "state_dict_018": sd18,
    }


def edge_order_checks(interface, processor: str, gtensors: dict, gmeta: dict, sd18: dict) -> dict:
    """Row r of a 0.9.3 trainable edge tensor is edge r of edge_index_base = the graph's (anemoi's) edge order."""
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
        dst_sorted = bool((ei[1, 1:] >= ei[1, :-1]).all())
        out[key] = {
            "module": label,
            "edges": e,
            "trainable": f"{label}.trainable.trainable",
            "edge_index_base_dtype": str(mod.edge_index_base.dtype).replace("torch.", ""),
            "perm_is_identity": bool(torch.equal(perm, torch.arange(e))),
            "edge_index_base_sorted_by_destination": dst_sorted,
            "edge_index_base[:, perm] == file CSR (src, dst)": csr_index,
            "edge_attr[perm] == file CSR attributes (bitwise)": csr_attr,
            "trainable[perm] == 0.18 trainable (CSR rows)": rows_ok,
            "edge_inc": mod.edge_inc.reshape(-1).tolist(),
            "edge_inc_persistent": "edge_inc" not in mod._non_persistent_buffers_set,
        }
        assert csr_index and csr_attr and rows_ok, (key, out[key])
    return out


def config_locations(md: dict) -> dict:
    c = md["config"]
    return {
        "multistep_input": ["config", "training", "multistep_input", c["training"]["multistep_input"]],
        "forcing": ["config", "data", "forcing", c["data"]["forcing"]],
        "diagnostic": ["config", "data", "diagnostic", c["data"]["diagnostic"]],
        "normalizer": ["config", "data", "normalizer", c["data"].get("normalizer", "absent: BaseSchema validation drops "
                       "it; its resolved value is config.data.processors.normalizer.config")],
        "normalizer_processor": ["config", "data", "processors", "normalizer", c["data"]["processors"]["normalizer"]],
        "timestep": ["config", "data", "timestep", c["data"]["timestep"]],
        "frequency": ["config", "data", "frequency", c["data"]["frequency"]],
        "precision": ["config", "training", "precision", c["training"]["precision"]],
        "model": ["config", "model", {k: c["model"][k] for k in ("num_channels", "trainable_parameters", "bounding")}],
        "processor": ["config", "model", "processor", c["model"]["processor"]],
        "encoder": ["config", "model", "encoder", c["model"]["encoder"]],
        "decoder": ["config", "model", "decoder", c["model"]["decoder"]],
        "graph_names": ["config", "graph", {"data": c["graph"]["data"], "hidden": c["graph"]["hidden"]}],
        "variables": ["dataset", "variables", md["dataset"]["variables"]],
        "data_indices": ["data_indices", sorted(md["data_indices"])],
    }


def versions() -> dict:
    import importlib.metadata as md

    out = package_versions()
    for dist in ("anemoi-training", "anemoi-transform", "pytorch-lightning", "torchinfo", "timm", "torchvision",
                 "pydantic", "hydra-core", "omegaconf"):
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
    p = argparse.ArgumentParser(description="Build anemoi-models 0.9.3 inference checkpoints of the tiny model.")
    p.add_argument("--out", default=str(DEFAULT_OUT))
    p.add_argument("--ref", default=str(DEFAULT_OUT), help="folder of the 0.18 checkpoint fixtures (input, outputs)")
    p.add_argument("--variants", nargs="+", default=DEFAULT_VARIANTS, choices=sorted(VARIANTS))
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
    variants = [v for v in VARIANTS if v in args.variants]
    with tempfile.TemporaryDirectory() as tmpd:
        tmp = Path(tmpd)
        for variant in variants:
            var = VARIANTS[variant]
            t0 = time.time()
            graph, gtensors, gmeta, ginfo = load_graph_mid(var["graph"])
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
            y = predict(interface, x)
            assert tensor_equal(y, predict(interface, x)), "predict_step is not deterministic"
            n = x.shape[2]
            assert y.shape == (1, 1, n, len(v_out)) and y.dtype == torch.float32 and bool(torch.isfinite(y).all())
            outputs[f"output_{variant}"] = y.contiguous()

            # ---- reload checks (fresh unpickle of the file)
            loaded = torch.load(ckpt, map_location="cpu", weights_only=False)
            assert type(loaded).__name__ == "AnemoiModelInterface"
            assert loaded.config is None and loaded.metadata is None and loaded.supporting_arrays is None
            loaded.eval()
            assert tensor_equal(predict(loaded, x), y), "reloaded checkpoint differs"
            md = load_metadata(str(ckpt))
            expect = json.loads(json.dumps(r["metadata"]))
            # torch >= 2.6: after writing the inference checkpoint the callback gives the in-memory metadata (and
            # the Lightning checkpoint) a fresh uuid
            assert md["uuid"] != expect["uuid"]
            md_wo = {k: v for k, v in md.items() if k not in ("supporting_arrays_paths", "uuid")}
            expect.pop("uuid")
            if md_wo != expect:
                bad = sorted(k for k in set(md_wo) | set(expect) if md_wo.get(k) != expect.get(k))
                raise AssertionError(f"load_metadata differs from the metadata saved in {bad}")
            md2, arrays = load_metadata(str(ckpt), supporting_arrays=True)
            assert md2 == md
            assert sorted(arrays) == sorted(r["supporting_arrays"])
            assert all(np.array_equal(arrays[k], v) and arrays[k].dtype == v.dtype
                       for k, v in r["supporting_arrays"].items())

            # ---- comparison with the 0.18 checkpoint fixture (same weights, graph, normaliser, input)
            ref_out, _ = read_safetensors(ref_dir / f"{variant}.io.safetensors")
            y18 = ref_out["output"].reshape(y.shape)
            norm = interface.pre_processors.processors.normalizer
            idx = di.data.output.full
            yn, yn18 = y * norm._norm_mul[idx] + norm._norm_add[idx], y18 * norm._norm_mul[idx] + norm._norm_add[idx]
            cmp = compare(y, y18)
            cmp["allclose_rtol1e-5_atol1e-5_normalised_units"] = bool(
                torch.allclose(yn.double(), yn18.double(), rtol=1e-5, atol=1e-5))
            cmp["max_abs_normalised_units"] = float((yn.double() - yn18.double()).abs().max())
            assert cmp["allclose_rtol1e-5_atol1e-5_normalised_units"], (variant, cmp)
            if var["processor"] == "transformer":
                # the only difference: 0.9.3 pins SDPA's MATH backend (rounding of the attention sums)
                with default_sdpa_backend():
                    y_default = predict(interface, x)
                cmp["why_not_bitwise"] = "0.9.3 SDPAAttentionWrapper forces sdpa_kernel(SDPBackend.MATH); 0.18 uses " \
                    "torch's default CPU SDPA kernel"
                cmp["default_sdpa_backend_bitwise_identical_to_018"] = tensor_equal(y_default, y18)
                assert cmp["default_sdpa_backend_bitwise_identical_to_018"], "0.9.3 with the default SDPA backend != 0.18"
            else:
                assert cmp["bitwise_identical"], (variant, cmp)

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
                "metadata_member": [n for n, _ in members if n.endswith(".json")],
                "supporting_arrays_paths": md["supporting_arrays_paths"],
                "metadata_keys": sorted(md),
                "metadata_config_keys": sorted(md["config"]),
                "metadata_locations": config_locations(md),
                "data_indices": md["data_indices"],
                "predict_step": {
                    "signature": "AnemoiModelInterface.predict_step(batch: Tensor, model_comm_group=None, "
                    "gather_out=True) -> Tensor",
                    "input_shape": list(x.shape),
                    "output_shape": list(y.shape),
                    "variables_in": v_in,
                    "variables_out": v_out,
                    "steps": "x = batch[:, 0:multi_step, None]; x = pre_processors(x, in_place=False); "
                    "y = model.forward(x) -> [B, E, N, V_out]; y = post_processors(y, in_place=False)",
                    "output": f"output_{variant}",
                },
                "normaliser": {
                    "norm_mul": norm._norm_mul.tolist(),
                    "norm_add": norm._norm_add.tolist(),
                    "input_idx": norm._input_idx.tolist(),
                    "output_idx": norm._output_idx.tolist(),
                },
                "pickled_statistics_after_remap": {k: np.asarray(v).tolist() for k, v in interface.statistics.items()},
                "weights": f"tests/data/model/{variant}.weights.safetensors mapped to 0.9.3 names "
                "(to_mid_state_dict); state dict prefix under the interface: 'model.'",
                "rename_0.18_to_0.9.3": r["rename_table"],
                "edge_order": order,
                "compare_to_018": {"output": cmp},
                **lists,
            }
            print(f"{variant}: {ckpt.stat().st_size} bytes, {len(lists['state_dict'])} state-dict tensors, "
                  f"{len(lists['non_persistent_buffers'])} non-persistent buffers; vs 0.18: {json.dumps(cmp)}; "
                  f"{time.time() - t0:.1f} s")

    # ---- io file
    io_meta = {
        "generator": "tools/reference/make_checkpoint_fixtures_mid.py",
        "refs": {"input": REF_INPUT},
        "layouts": {
            "input": f"not stored: {REF_INPUT}:input [1, 2, N, 6] float32 physical, variables data.input.full; passed "
            "unchanged as predict_step's batch tensor",
            **{k: "[B=1, E=1, N=1600, V_out=6] float32 physical = predict_step(input) of "
               f"{PREFIX}-{k.split('_', 1)[1]}.ckpt; variables data.output.full (z_500 t_850 2t sp tp cp)"
               for k in outputs},
        },
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

    # ---- VERSIONS-0.9.3.json
    sizes = {n: q.stat().st_size for n, q in sorted(written.items())}
    doc = {
        "generator": "tools/reference/make_checkpoint_fixtures_mid.py",
        "environment": versions(),
        "layout": "anemoi-models 0.7.0-0.10.0 (tools/reference/ANEMOI_LAYOUTS.md, layout E)",
        "anemoi_training_code_followed": f"anemoi-training {ANEMOI_TRAINING_VERSION}: config/config.yaml (Hydra) + "
        "schemas.base_schema.BaseSchema validation, train/train.py AnemoiTrainer.initial_seed + metadata + "
        "_update_paths (run), data/datamodule/singledatamodule.py data_indices (run), train/tasks/forecaster.py "
        "GraphForecaster.__init__ (run), utils/checkpoint.py check_classes (run), diagnostics/callbacks/checkpoint.py "
        "AnemoiCheckpoint._save_checkpoint (run)",
        "variants": variants,
        "variants_note": "only the graph transformer by default: with the transformer too the files exceed the "
        "1.4 MB budget for this layout (run --variants transformer graphtransformer --budget 0 for both)"
        if variants == ["graphtransformer"] else "",
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
    vpath.chmod(0o644)
    total = sum(q.stat().st_size for q in written.values()) + vpath.stat().st_size
    for n, s in sorted(sizes.items()):
        print(f"  {n:45s} {s:9d}")
    print(f"total {total} bytes ({total / 2**20:.3f} MiB) in {out_dir}; {time.time() - t_start:.1f} s")
    if args.budget and total > args.budget:
        print(f"error: fixtures total {total} bytes > budget {args.budget}", file=sys.stderr)
        return 1

    if args.check_rerun:
        with tempfile.TemporaryDirectory() as t2:
            cmd = [sys.executable, __file__, "--out", t2, "--ref", str(ref_dir), "--budget", "0",
                   "--variants", *variants]
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

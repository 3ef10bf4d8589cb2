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

# first, before numpy / torch / anemoi load: importing make_checkpoint_fixtures runs its prepare_process()
# (no GPU, one thread, no ANEMOI_INFERENCE_* / SLURM_JOB_ID, re-executed with PYTHONHASHSEED=0)
import make_checkpoint_fixtures as mcf

import contextlib  # noqa: E402
import inspect  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import types  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_checkpoint_fixtures import LEGACY_EDGE_TRAINABLES  # noqa: E402
from make_checkpoint_fixtures import LEGACY_GRAPH_CONFIG  # noqa: E402
from make_checkpoint_fixtures import REPO  # noqa: E402
from make_checkpoint_fixtures import VARIANTS  # noqa: E402
from make_checkpoint_fixtures import check_legacy_output  # noqa: E402
from make_checkpoint_fixtures import check_metadata  # noqa: E402
from make_checkpoint_fixtures import compare_to_018  # noqa: E402
from make_checkpoint_fixtures import compose_legacy_config  # noqa: E402
from make_checkpoint_fixtures import copy_checkpoint  # noqa: E402
from make_checkpoint_fixtures import edge_trainable_in_graph_order  # noqa: E402
from make_checkpoint_fixtures import file_sizes  # noqa: E402
from make_checkpoint_fixtures import io_variables  # noqa: E402
from make_checkpoint_fixtures import legacy_checkpoint_doc  # noqa: E402
from make_checkpoint_fixtures import legacy_config_locations  # noqa: E402
from make_checkpoint_fixtures import legacy_doc_tail  # noqa: E402
from make_checkpoint_fixtures import legacy_edge_order_checks  # noqa: E402
from make_checkpoint_fixtures import legacy_fixed_clock  # noqa: E402
from make_checkpoint_fixtures import legacy_io_meta  # noqa: E402
from make_checkpoint_fixtures import legacy_metadata_doc  # noqa: E402
from make_checkpoint_fixtures import legacy_normaliser_doc  # noqa: E402
from make_checkpoint_fixtures import legacy_parser  # noqa: E402
from make_checkpoint_fixtures import legacy_predict_step_doc  # noqa: E402
from make_checkpoint_fixtures import legacy_run_id  # noqa: E402
from make_checkpoint_fixtures import legacy_trainer  # noqa: E402
from make_checkpoint_fixtures import legacy_versions  # noqa: E402
from make_checkpoint_fixtures import load_graph_checked  # noqa: E402
from make_checkpoint_fixtures import load_mapped_weights  # noqa: E402
from make_checkpoint_fixtures import over_budget  # noqa: E402
from make_checkpoint_fixtures import parse_run_args  # noqa: E402
from make_checkpoint_fixtures import print_sizes  # noqa: E402
from make_checkpoint_fixtures import processor_block  # noqa: E402
from make_checkpoint_fixtures import reload_checkpoint  # noqa: E402
from make_checkpoint_fixtures import report_legacy_variant  # noqa: E402
from make_checkpoint_fixtures import save_inference_checkpoint  # noqa: E402
from make_checkpoint_fixtures import second_run  # noqa: E402
from make_checkpoint_fixtures import set_legacy_hardware  # noqa: E402
from make_checkpoint_fixtures import set_tiny_legacy  # noqa: E402
from make_checkpoint_fixtures import start_legacy_run  # noqa: E402
from make_checkpoint_fixtures import tensor_list  # noqa: E402
from make_checkpoint_fixtures import write_legacy_io  # noqa: E402
from make_checkpoint_fixtures import write_versions_json  # noqa: E402
from make_graph_fixtures import octahedral_grid  # noqa: E402
from make_model_fixtures import VARIABLES  # noqa: E402
from make_model_fixtures import WINDOW  # noqa: E402
from make_model_fixtures import load_weights  # noqa: E402
from make_model_fixtures import read_safetensors  # noqa: E402
from make_model_fixtures import tensor_equal  # noqa: E402
from make_normaliser_fixture import make_statistics  # noqa: E402

# make_checkpoint_fixtures pops ANEMOI_BASE_SEED when imported; anemoi-training 0.6 needs one
BASE_SEED_ENV = "42"
os.environ["ANEMOI_BASE_SEED"] = BASE_SEED_ENV

SIZE_BUDGET_BYTES = 1_400_000  # everything this script adds under tests/data/checkpoint
ANEMOI_MODELS_VERSION = "0.9.3"
ANEMOI_TRAINING_VERSION = "0.6.3"
PREFIX = f"anemoi-models-{ANEMOI_MODELS_VERSION}"
IO_NAME = f"{PREFIX}.io.safetensors"
VERSIONS_NAME = f"VERSIONS-{ANEMOI_MODELS_VERSION}.json"
DEFAULT_VARIANTS = ["graphtransformer"]  # both checkpoints exceed the size budget (see README.md)
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
# determinism (make_checkpoint_fixtures.legacy_fixed_clock)
# ----------------------------------------------------------------------------------------------------------------
def fixed_clock(label: str):
    return legacy_fixed_clock(ANEMOI_MODELS_VERSION, label)


# ----------------------------------------------------------------------------------------------------------------
# config
# ----------------------------------------------------------------------------------------------------------------
def training_config(variant: str, graph_name: str):
    """anemoi-training 0.6.3's config composed with Hydra, tiny settings, validated, as AnemoiTrainer.__init__.
    Returns (BaseSchema, OmegaConf) -- the model gets the former, the metadata / data indices the latter."""
    from anemoi.training.schemas.base_schema import BaseSchema
    from anemoi.training.schemas.base_schema import convert_to_omegaconf
    from anemoi.training.train.train import AnemoiTrainer
    from omegaconf import OmegaConf

    processor = VARIANTS[variant]["processor"]
    cfg = compose_legacy_config(processor, LEGACY_GRAPH_CONFIG[variant])

    # transformer: flash-attn needs CUDA, so torch's SDPA
    set_tiny_legacy(cfg, processor, {}, {"window_size": WINDOW, "dropout_p": 0.0,
                                         "attention_implementation": "scaled_dot_product_attention"})

    if processor == "transformer":  # the schema's ReducedGaussianGridNodes stops at o16: O4 from an npz file
        cfg.graph.nodes.hidden.node_builder = OmegaConf.create(
            {"_target_": "anemoi.graphs.nodes.NPZFileNodes", "npz_file": "grids/o4.npz", "lat_key": "latitudes",
             "lon_key": "longitudes"})
    else:
        cfg.graph.nodes.hidden.node_builder.resolution = 2

    set_legacy_hardware(cfg, graph_name, grids=False)

    # AnemoiTrainer.__init__ (config_validation: True), run_id, _update_paths
    assert cfg.config_validation
    OmegaConf.resolve(cfg)
    config = BaseSchema(**cfg)
    run_id = legacy_run_id(ANEMOI_MODELS_VERSION, variant)
    config.training.run_id = run_id
    AnemoiTrainer._update_paths(types.SimpleNamespace(config=config, run_id=run_id, parent_run_server2server=None))
    return config, convert_to_omegaconf(config)


# ----------------------------------------------------------------------------------------------------------------
# dataset stand-in
# ----------------------------------------------------------------------------------------------------------------
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
    out, table = {}, []
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
        elif name in LEGACY_EDGE_TRAINABLES:
            new, t, how = edge_trainable_in_graph_order(name, t, graph_tensors)
        elif name.startswith(("encoder.data.", "decoder.data.")):
            part, rest = name.split(".data.", 1)
            if rest.startswith("proc."):
                rest = "proc." + _gt_leaf(rest[len("proc."):])
            new = f"{part}.{rest}"
        elif name.startswith("processor.proc."):
            prefix, leaf = processor_block(name)
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
def build_variant(variant: str, graph, gtensors: dict, graph_name: str, stats: dict, tmp: Path) -> dict:
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

    trainer = legacy_trainer(config, dm)
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
    # latlons: 0.9.3 recomputes them from the same graph (compared, must be identical)
    load_mapped_weights(interface.model, sd_mid, recomputed={k for k in sd_mid if ".latlons_" in k})
    interface.eval()
    module.eval()

    check_classes(interface)  # AnemoiCheckpoint.on_train_start

    # AnemoiCheckpoint._save_checkpoint
    inference_path = save_inference_checkpoint(
        lambda: AnemoiCheckpoint(config=config, dirpath=str(tmp), save_last=False), module, variant, tmp, fixed_clock)
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


def versions() -> dict:
    return legacy_versions(("anemoi-training", "anemoi-transform", "pytorch-lightning", "torchinfo", "timm",
                            "torchvision", "pydantic", "hydra-core", "omegaconf"))


# ----------------------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    p = legacy_parser("Build anemoi-models 0.9.3 inference checkpoints of the tiny model.", SIZE_BUDGET_BYTES,
                      variants_default=DEFAULT_VARIANTS, variants_choices=sorted(VARIANTS))
    args = parse_run_args(p, argv)
    t_start = time.time()

    out_dir, ref_dir, x = start_legacy_run(args, "make_checkpoint_fixtures_mid.py", ANEMOI_MODELS_VERSION,
                                           ANEMOI_TRAINING_VERSION)
    import torch
    from anemoi.utils.checkpoints import load_metadata

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
            graph, gtensors, gmeta, ginfo = load_graph_checked(var["graph"])
            graph_checks[var["graph"]] = ginfo
            r = build_variant(variant, graph, gtensors, var["graph"], {k: v.copy() for k, v in stats.items()}, tmp)
            interface = r["interface"]
            ckpt = copy_checkpoint(r["inference_path"], out_dir / f"{PREFIX}-{variant}.ckpt", written)

            # ---- outputs
            di = interface.data_indices
            v_in, v_out = io_variables(di)
            assert x.shape[-1] == len(v_in)
            y = predict(interface, x)
            assert tensor_equal(y, predict(interface, x)), "predict_step is not deterministic"
            check_legacy_output(y, x, v_out)
            outputs[f"output_{variant}"] = y.contiguous()

            # ---- reload checks (fresh unpickle of the file)
            loaded = reload_checkpoint(ckpt)
            assert tensor_equal(predict(loaded, x), y), "reloaded checkpoint differs"
            md = load_metadata(str(ckpt))
            check_metadata(md, r["metadata"], fresh_uuid=True)
            md2, arrays = load_metadata(str(ckpt), supporting_arrays=True)
            assert md2 == md
            assert sorted(arrays) == sorted(r["supporting_arrays"])
            assert all(np.array_equal(arrays[k], v) and arrays[k].dtype == v.dtype
                       for k, v in r["supporting_arrays"].items())

            # ---- comparison with the 0.18 checkpoint fixture (same weights, graph, normaliser, input)
            ref_out, _ = read_safetensors(ref_dir / f"{variant}.io.safetensors")
            y18 = ref_out["output"].reshape(y.shape)
            norm = interface.pre_processors.processors.normalizer
            cmp = compare_to_018(y, y18, norm, di.data.output.full, "1e-5")
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

            head = legacy_checkpoint_doc(ckpt, ginfo["file"], r["inference_path"], ANEMOI_TRAINING_VERSION)
            lists = tensor_list(interface)
            order = legacy_edge_order_checks(interface, var["processor"], gtensors, gmeta, r["state_dict_018"],
                                             extended=True)
            doc_models[variant] = {
                **head,
                "metadata_member": [n for n, _ in head["zip_members"] if n.endswith(".json")],
                "supporting_arrays_paths": md["supporting_arrays_paths"],
                **legacy_metadata_doc(md, legacy_config_locations(
                    md, normalizer_absent="absent: BaseSchema validation drops it; its resolved value is "
                    "config.data.processors.normalizer.config", precision_early=True)),
                "predict_step": legacy_predict_step_doc(
                    "AnemoiModelInterface.predict_step(batch: Tensor, model_comm_group=None, gather_out=True) -> "
                    "Tensor", x, y, v_in, v_out,
                    "x = batch[:, 0:multi_step, None]; x = pre_processors(x, in_place=False); "
                    "y = model.forward(x) -> [B, E, N, V_out]; y = post_processors(y, in_place=False)",
                    f"output_{variant}"),
                **legacy_normaliser_doc(norm, interface),
                "weights": f"tests/data/model/{variant}.weights.safetensors mapped to 0.9.3 names "
                "(to_mid_state_dict); state dict prefix under the interface: 'model.'",
                "rename_0.18_to_0.9.3": r["rename_table"],
                "edge_order": order,
                "compare_to_018": {"output": cmp},
                **lists,
            }
            report_legacy_variant(variant, ckpt, lists, cmp, t0)

    # ---- io file
    io_meta = legacy_io_meta("tools/reference/make_checkpoint_fixtures_mid.py", PREFIX, outputs, doc_models,
                             versions())
    write_legacy_io(out_dir / IO_NAME, outputs, io_meta, written)

    # ---- VERSIONS-0.9.3.json
    sizes = file_sizes(written)
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
        **legacy_doc_tail(stats, BASE_SEED_ENV, graph_checks, NOTES, doc_models, IO_NAME, io_meta, outputs, written,
                          sizes),
    }
    vpath = out_dir / VERSIONS_NAME
    write_versions_json(vpath, doc, sizes, chmod=True)
    total = print_sizes(written, vpath, sizes, out_dir, t_start, 45)
    if over_budget(total, args.budget):
        return 1
    if args.check_rerun:
        return second_run(__file__, out_dir, [*written, VERSIONS_NAME],
                          ["--ref", str(ref_dir), "--budget", "0", "--variants", *variants])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

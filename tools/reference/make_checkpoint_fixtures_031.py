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

# first, before numpy / torch / anemoi load: importing make_checkpoint_fixtures runs its prepare_process()
# (no GPU, one thread, no ANEMOI_INFERENCE_* / SLURM_JOB_ID, re-executed with PYTHONHASHSEED=0)
import make_checkpoint_fixtures  # noqa: F401

import contextlib  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import types  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_checkpoint_fixtures import LEGACY_EDGE_TRAINABLES  # noqa: E402
from make_checkpoint_fixtures import LEGACY_GRAPH_CONFIG  # noqa: E402
from make_checkpoint_fixtures import REPO  # noqa: E402
from make_checkpoint_fixtures import VARIANTS  # noqa: E402
from make_checkpoint_fixtures import check_legacy_output  # noqa: E402
from make_checkpoint_fixtures import check_metadata  # noqa: E402
from make_checkpoint_fixtures import compare  # noqa: E402
from make_checkpoint_fixtures import compare_to_018  # noqa: E402
from make_checkpoint_fixtures import compose_legacy_config  # noqa: E402
from make_checkpoint_fixtures import copy_checkpoint  # noqa: E402
from make_checkpoint_fixtures import dataset_metadata  # noqa: E402
from make_checkpoint_fixtures import edge_trainable_in_graph_order  # noqa: E402
from make_checkpoint_fixtures import file_sizes  # noqa: E402
from make_checkpoint_fixtures import grid_latlons  # noqa: E402
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
from make_checkpoint_fixtures import max_abs_normalised  # noqa: E402
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
from make_checkpoint_fixtures import tiny_spec  # noqa: E402
from make_checkpoint_fixtures import write_legacy_io  # noqa: E402
from make_checkpoint_fixtures import write_versions_json  # noqa: E402
from make_model_fixtures import VARIABLES  # noqa: E402
from make_model_fixtures import WINDOW  # noqa: E402
from make_model_fixtures import load_weights  # noqa: E402
from make_model_fixtures import read_safetensors  # noqa: E402
from make_model_fixtures import tensor_equal  # noqa: E402
from make_normaliser_fixture import make_statistics  # noqa: E402

# make_checkpoint_fixtures pops ANEMOI_BASE_SEED when imported; anemoi-training 0.3.1 needs one
BASE_SEED_ENV = "42"
os.environ["ANEMOI_BASE_SEED"] = BASE_SEED_ENV

SIZE_BUDGET_BYTES = 1_800_000
PREFIX = "anemoi-models-0.3.1"
IO_NAME = f"{PREFIX}.io.safetensors"
VERSIONS_NAME = "VERSIONS-0.3.1.json"
ANEMOI_MODELS_VERSION = "0.3.1"
ANEMOI_TRAINING_VERSION = "0.3.1"
HIDDEN_GRID = {"transformer": ("NPZFileNodes", "o4"), "graphtransformer": ("TriNodes", 2)}

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
# determinism (make_checkpoint_fixtures.legacy_fixed_clock)
# ----------------------------------------------------------------------------------------------------------------
def fixed_clock(label: str):
    return legacy_fixed_clock(ANEMOI_MODELS_VERSION, label)


# ----------------------------------------------------------------------------------------------------------------
# config
# ----------------------------------------------------------------------------------------------------------------
def training_config(variant: str, graph_name: str):
    """anemoi-training 0.3.1's config composed with Hydra, with the tiny settings, as AnemoiTrainer.__init__."""
    from omegaconf import OmegaConf

    processor = VARIANTS[variant]["processor"]
    cfg = compose_legacy_config(processor, LEGACY_GRAPH_CONFIG[variant])

    cfg.data.resolution = "o16"
    set_tiny_legacy(cfg, processor, {"dropout_p": 0.0}, {"window_size": WINDOW})
    cfg.training.metrics = ["z_500", "t_850"]

    builder, resolution = HIDDEN_GRID[variant]
    cfg.graph.nodes.hidden.node_builder._target_ = f"anemoi.graphs.nodes.{builder}"
    cfg.graph.nodes.hidden.node_builder.resolution = resolution

    set_legacy_hardware(cfg, graph_name, grids=True)

    # AnemoiTrainer.__init__: resolve, run id, paths
    from anemoi.training.train.train import AnemoiTrainer

    OmegaConf.resolve(cfg)
    run_id = legacy_run_id(ANEMOI_MODELS_VERSION, variant)
    cfg.training.run_id = run_id
    AnemoiTrainer._update_paths(types.SimpleNamespace(config=cfg, run_id=run_id, parent_run_server2server=None))
    return cfg


# ----------------------------------------------------------------------------------------------------------------
# weights: the 0.18 fixtures' state dict in the 0.3.1 layout
# ----------------------------------------------------------------------------------------------------------------
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
        elif name in LEGACY_EDGE_TRAINABLES:
            new, t, how = edge_trainable_in_graph_order(name, t, graph_tensors)
        elif name.startswith(("encoder.data.", "decoder.data.")):
            part, rest = name.split(".data.", 1)
            if rest.startswith("proc."):
                rest = "proc." + _gt_block(rest[len("proc."):], mapper=True)
            new = f"{part}.{rest}"
        elif name.startswith("processor.proc."):
            prefix, leaf = processor_block(name)
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
def build_variant(variant: str, graph, gtensors: dict, graph_name: str, stats: dict, tmp: Path) -> dict:
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

    trainer = legacy_trainer(config, dm)
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
    load_mapped_weights(interface.model, sd31)
    # 0.3.1's own buffers equal the 0.18 ones (latlons recomputed from the same graph)
    for which in ("data", "hidden"):
        assert tensor_equal(getattr(interface.model, f"latlons_{which}"), sd18[f"node_attributes.latlons_{which}"])
    interface.eval()
    module.eval()

    # AnemoiCheckpoint._save_checkpoint
    inference_path = save_inference_checkpoint(
        lambda: AnemoiCheckpoint(config=config, dirpath=str(tmp), save_last=False), module, variant, tmp, fixed_clock)
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


def versions() -> dict:
    return legacy_versions(("anemoi-training", "pytorch-lightning", "torchinfo", "timm", "torchvision"))


# ----------------------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    p = legacy_parser("Build anemoi-models 0.3.1 inference checkpoints of the tiny model.", SIZE_BUDGET_BYTES)
    args = parse_run_args(p, argv)
    t_start = time.time()

    out_dir, ref_dir, x = start_legacy_run(args, "make_checkpoint_fixtures_031.py", ANEMOI_MODELS_VERSION,
                                           ANEMOI_TRAINING_VERSION)
    import torch
    from anemoi.utils.checkpoints import load_metadata

    stats = make_statistics()
    written: dict[str, Path] = {}
    outputs: dict[str, torch.Tensor] = {}
    doc_models: dict = {}
    graph_checks: dict = {}
    with tempfile.TemporaryDirectory() as tmpd:
        tmp = Path(tmpd)
        for variant, var in VARIANTS.items():
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
            flash = variant == "transformer"
            y = predict(interface, x, flash=flash)
            assert tensor_equal(y, predict(interface, x, flash=flash)), "predict_step is not deterministic"
            check_legacy_output(y, x, v_out)
            outputs[f"output_{variant}"] = y.contiguous()
            if flash:
                y_fb = predict(interface, x, flash=False)
                outputs[f"output_{variant}_sdpa_fallback"] = y_fb.contiguous()
                assert not tensor_equal(y, y_fb), "the window made no difference"

            # ---- reload checks (fresh unpickle of the file)
            loaded = reload_checkpoint(ckpt, supporting_arrays=False)
            assert tensor_equal(predict(loaded, x, flash=flash), y), "reloaded checkpoint differs"
            if flash:
                assert tensor_equal(predict(loaded, x, flash=False), y_fb), "reloaded checkpoint differs (fallback)"
            md = load_metadata(str(ckpt))
            check_metadata(md, r["metadata"], fresh_uuid=False)
            assert md["supporting_arrays_paths"] == {}

            # ---- comparison with the 0.18 checkpoint fixture (same weights, graph, normaliser, input)
            ref_out, _ = read_safetensors(ref_dir / f"{variant}.io.safetensors")
            y18 = ref_out["output"].reshape(y.shape)
            norm = interface.pre_processors.processors.normalizer
            idx = di.data.output.full
            cmp = compare_to_018(y, y18, norm, idx, "1e-6")
            compare_018 = {"output": cmp}
            if flash:
                c2 = compare(y_fb, y18)
                c2["max_abs_normalised_units"] = max_abs_normalised(y_fb, y18, norm, idx)
                compare_018["output_sdpa_fallback"] = c2
            assert cmp["allclose_rtol1e-5_atol1e-6_normalised_units"], (variant, compare_018)

            head = legacy_checkpoint_doc(ckpt, ginfo["file"], r["inference_path"], ANEMOI_TRAINING_VERSION)
            lists = tensor_list(interface)
            order = legacy_edge_order_checks(interface, var["processor"], gtensors, gmeta, r["state_dict_018"])
            doc_models[variant] = {
                **head,
                "metadata_member": f"{head['archive']}/anemoi-metadata/ai-models.json",
                **legacy_metadata_doc(md, legacy_config_locations(md)),
                "predict_step": legacy_predict_step_doc(
                    "AnemoiModelInterface.predict_step(batch: Tensor) -> Tensor", x, y, v_in, v_out,
                    "batch = pre_processors(batch, in_place=False); x = batch[:, 0:multi_step, None]; "
                    "y = model.forward(x) -> [B, E, N, V_out]; y = post_processors(y, in_place=False)",
                    f"output_{variant}" + (" (flash-attn emulated; see output_transformer_sdpa_fallback)"
                                           if flash else "")),
                **legacy_normaliser_doc(norm, interface),
                "weights": "tests/data/model/" + f"{variant}.weights.safetensors mapped to 0.3.1 names "
                "(to_031_state_dict); state dict prefix under the interface: 'model.'",
                "rename_0.18_to_0.3.1": r["rename_table"],
                "edge_order": order,
                "compare_to_018": compare_018,
                **lists,
            }
            report_legacy_variant(variant, ckpt, lists, compare_018, t0)

    # ---- io file
    io_meta = legacy_io_meta("tools/reference/make_checkpoint_fixtures_031.py", PREFIX, outputs, doc_models,
                             versions(), extra={
                                 "window": "output_transformer: flash-attn semantics emulated (window 16: |i-j| <= "
                                 "16); output_transformer_sdpa_fallback: anemoi-models 0.3.1 without flash-attn "
                                 "(no window)"})
    write_legacy_io(out_dir / IO_NAME, outputs, io_meta, written)

    # ---- VERSIONS-0.3.1.json
    sizes = file_sizes(written)
    doc = {
        "generator": "tools/reference/make_checkpoint_fixtures_031.py",
        "environment": versions(),
        "anemoi_training_code_followed": f"anemoi-training {ANEMOI_TRAINING_VERSION}: config/config.yaml (Hydra), "
        "train/train.py AnemoiTrainer.initial_seed + metadata + _update_paths (run), data/datamodule.py data_indices "
        "(run), train/forecaster.py GraphForecaster.__init__ (run), diagnostics/callbacks/checkpoint.py "
        "AnemoiCheckpoint._save_checkpoint (run)",
        **legacy_doc_tail(stats, BASE_SEED_ENV, graph_checks, NOTES, doc_models, IO_NAME, io_meta, outputs, written,
                          sizes),
    }
    vpath = out_dir / VERSIONS_NAME
    write_versions_json(vpath, doc, sizes)
    total = print_sizes(written, vpath, sizes, out_dir, t_start, 45)
    if over_budget(total, args.budget):
        return 1
    if args.check_rerun:
        return second_run(__file__, out_dir, [*written, VERSIONS_NAME], ["--ref", str(ref_dir), "--budget", "0"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

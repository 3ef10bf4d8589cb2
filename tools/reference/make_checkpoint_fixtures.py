#!/usr/bin/env python3
"""Real anemoi *inference checkpoints* of the `tiny` model, for Boreas' native C++ checkpoint reader tests.

Run from the repository root with the reference environment (tools/reference/requirements.txt) and unpacked
anemoi-training 0.16.0 / timm / Lightning wheels (see README.md, "Checkpoint fixtures"):

    .venv-ref/bin/python tools/reference/make_checkpoint_fixtures.py \
        [--anemoi-training /tmp/atw/src] [--lightning /tmp/atw/pl/src] [--out tests/data/checkpoint]

On demand, not committed (see "GNN-mapper checkpoint" and "AIFS-size checkpoint" at the end of this docstring):

    .venv-ref/bin/python tools/reference/make_checkpoint_fixtures.py --variants gnn_mappers [--out /tmp/boreas-gnn-ckpt]

    .venv-ref/bin/python tools/reference/make_checkpoint_fixtures.py --shape aifs-n320 [--out /tmp/boreas-aifs-ckpt] \
        [--graph /tmp/aifs-graph.safetensors] [--boreas build/cpu-release/boreas] [--no-reload]

The script sets CUDA_VISIBLE_DEVICES="" and OMP_NUM_THREADS=1 itself (before torch is imported) and removes the
ANEMOI_INFERENCE_* environment overrides.  Nothing of anemoi-training is installed: its wheel (and those of
pytorch-lightning, torchmetrics, lightning-utilities, torchinfo, timm) are put on sys.path; two package
__init__ files whose imports need plotting packages / torchvision are bypassed (`anemoi.training.diagnostics.
callbacks` and `timm` become namespace packages over their real directories, so only the modules actually used are
imported: callbacks/checkpoint.py and timm/scheduler/scheduler.py).

What is built (for each variant: transformer on o16_o4, graphtransformer on o16_tri2)
------------------------------------------------------------------------------------
Everything is done by anemoi-training 0.16.0's own code, in the order AnemoiTrainer does it:
  * config: anemoi-training's config/config.yaml composed with Hydra (model=<processor>, graph=existing), then the
    tiny settings (data.datasets.data forcing/diagnostic/normalizer, data.frequency 6h, task.multistep_input 2,
    task.timestep 6h, training.precision "32", model = make_model_fixtures.anemoi_config(processor)["model"] plus
    the two things the schema demands: model.output_mask NoOutputMask and, for the transformer, processor.softcap
    0.0 instead of None -- the same behaviour, softcap is only applied when > 0), validated with BaseSchema and
    converted back with convert_to_omegaconf (config_validation: true, as by default), run_id and output paths as
    AnemoiTrainer.__init__/_update_paths set them.  Note: in anemoi-training 0.16 multistep_input and timestep live
    under `task`, not `training`/`data`; validation drops trainable_parameters.{data2hidden,hidden2data,
    hidden2hidden} (the blocks read their own trainable_size) and fills the schema defaults.
  * data_indices: AnemoiDatasetsDataModule.data_indices (IndexCollection per dataset) on the dataset's
    name_to_index; statistics: make_normaliser_fixture.make_statistics() (seeded float64 mean/stdev/minimum/maximum
    of the 8 variables); statistics_tendencies None.
  * metadata: AnemoiTrainer.metadata (-> AnemoiDatasetsDataModule.fill_metadata, Forecaster.fill_metadata,
    gather_provenance_info, map_config_to_primitives), then AnemoiModelInterface fills metadata_inference shapes
    and AnemoiCheckpoint._save_checkpoint adds uuid, model (torchinfo summary), tracker, training.
    The one hand-made part is metadata["dataset"]["data"] (what anemoi-datasets' Dataset.metadata() would return
    for a real zarr: there is none here): version, arguments, specific, frequency, variables,
    variables_metadata (mars param/levelist/levtype, accumulation period, computed/constant forcings), shape,
    dtype, start/end dates, name, sources, supporting_arrays.
  * the model: SingleTraining (BaseTrainingModule) constructed with exactly those objects; it builds the
    AnemoiModelInterface (pre/post processors = InputNormalizer from the config, AnemoiModelEncProcDec on the graph
    of the Boreas graph file, converted back with make_model_fixtures.load_graph).  Weights:
    make_model_fixtures.init_weights(interface.model) -- the state dict equals tests/data/model/<variant>.weights.
    safetensors bit for bit (checked).
  * saving: AnemoiCheckpoint._save_checkpoint (anemoi-training 0.16.0, diagnostics/callbacks/checkpoint.py) with a
    minimal stand-in trainer: config/metadata/supporting_arrays set to None, torch.save(model, path), then
    anemoi.utils.checkpoints.save_metadata(path, metadata, supporting_arrays=...).  The inference checkpoint is
    written as inference-<variant>.ckpt (the callback's naming, so the zip's archive folder is
    `inference-<variant>`) and copied to <variant>.ckpt; the Lightning checkpoint it also writes is discarded.

Determinism: every random source that ends up in a file is fixed -- uuid4 (AnemoiModelInterface.id, the checkpoint
uuid), run_id, datetime.now/utcnow (metadata timestamp, provenance time), time.time (elapsed_time 0.0), the dates
of the zip entries appended by save_metadata (1980-01-01 00:00:00; torch's own entries carry the zero DOS date);
base seed 42 (ANEMOI_BASE_SEED unset) and seed = derive_seed(42, TRAINER).  A second run writes byte-identical
files (checked with --check-rerun).

Files (tests/data/checkpoint/)
------------------------------
<variant>.ckpt             inference checkpoint (torch zip: <archive>/data.pkl protocol 2, data/<k>, version,
                           byteorder, .format_version, .storage_alignment, .data/serialization_id, plus
                           anemoi-metadata/anemoi.json and anemoi-metadata/data/{latitudes,longitudes}.numpy)
<variant>.io.safetensors   input [1, 2, N, 6] physical (predict_step's batch["data"]), input_normalised
                           [1, 2, 1, N, 6] (transformer.io only, the same for both; header refs), output_normalised [1, 1, 1, N, 6] (raw model forward), output [1, 1, 1, N, 6]
                           (predict_step, physical); header metadata `boreas` describes layouts and versions.
state_dict.ckpt            torch.save of the first entries of <transformer interface>.state_dict(): a plain state dict.
evil.ckpt                  a torch-layout zip whose data.pkl would run os.system("touch /tmp/boreas-pickle-was-
                           executed") if unpickled by Python (GLOBAL os system + REDUCE inside a dict next to a
                           real tensor).  Never torch.load it with weights_only=False.
VERSIONS.json              versions, sha256, zip members, pickle GLOBALs, state-dict and non-persistent buffer
                           lists (name, shape, dtype), normaliser buffers, metadata summary.

Checks on every run: the checkpoints reload with torch.load(weights_only=False) and predict_step reproduces `output`
bit for bit; load_metadata returns the metadata and the supporting arrays; post_processors(output_normalised) ==
output; the state dicts equal tests/data/model/*.weights.safetensors; torch.load(weights_only=True) refuses
evil.ckpt and the marker file is never created.

AIFS-size checkpoint (--shape aifs-n320; about a minute, peak RSS about 5.5 GB; refuses an --out inside the repo)
-----------------------------------------------------------------------------------------------------------------
The same anemoi-training code path (build_variant with an aifs Spec) at the shape of Boreas' built-in config
`aifs-n320`, read from src/model/builtin_configs.cpp (variables, forcing, diagnostic, normaliser, boundings,
channels/heads/layers/chunks/window, trainable sizes, mapper chunks, cutoff factor, k): N320 data grid, O96 hidden
grid, transformer processor, 115 variables (103 inputs, 102 outputs), ~253M parameters.  The graph is a Boreas graph
file (built with `boreas graph build --data-grid N320 --hidden-grid O96 --cutoff-factor 0.6 -k 3` when --graph does
not exist) converted with make_model_fixtures.heterodata_from_boreas.  Weights: anemoi's own initialisation after
torch.manual_seed(0); statistics: a plausible ERA5-like climatology with 1 % seeded perturbations (aifs_statistics);
variables_metadata: MARS requests of an ERA5 recipe.  Writes to DIR (default /tmp/boreas-aifs-ckpt):
  aifs-n320.ckpt      inference checkpoint (~1.15 GB, archive inference-aifs-n320)
  input.safetensors   `input` [1, 2, 542080, 103] float32 physical units (make_aifs_input; header `boreas`)
  aifs-n320.json      sizes, zip/pickle counts, GLOBALs, statistics, variables, timings, peak RSS
No expected output: on the CPU anemoi's SDPA sliding-window attention builds a dense [40320, 40320] mask and computes
every score (~1e14 flop).  Checks: load_metadata returns the variables and the N320 supporting arrays;
torch.load(mmap=True) reproduces the state dict (skip with --no-reload).

GNN-mapper checkpoint (--variants gnn_mappers; refuses an --out inside the repo: the fixture budget is full)
-----------------------------------------------------------------------------------------------------------
The tiny code path above with make_model_fixtures' variant gnn_mappers: GNNProcessor (as its gnn variant) between
anemoi.models.layers.mapper.GNNForwardMapper / GNNBackwardMapper (anemoi_config(..., mappers="gnn"): GNN_ENCODER /
GNN_DECODER) on o16_tri2; the weights equal tests/data/model/gnn_mappers.weights.safetensors (a delta on gnn,
resolved by load_weights; checked).  Same physical input as the committed fixtures.  Writes to DIR (default
/tmp/boreas-gnn-ckpt): gnn_mappers.ckpt (archive inference-gnn_mappers), gnn_mappers.io.safetensors (input,
input_normalised, output_normalised, output, self-contained when run alone), VERSIONS.json; no state_dict.ckpt or
evil.ckpt (they come with the transformer variant), no size budget.
"""

from __future__ import annotations

import os
import sys


def prepare_process() -> None:
    """No GPU, one thread, no ANEMOI_INFERENCE_* overrides, ANEMOI_BASE_SEED and SLURM_JOB_ID removed; re-executes
    the script with PYTHONHASHSEED=0: every nn.Module pickles sets of str (_non_persistent_buffers_set), whose order,
    and so data.pkl's bytes, follow the string hash seed.  Runs when this module is imported, before numpy / torch /
    anemoi load, so make_checkpoint_fixtures_031.py and _mid.py import this module first."""
    os.environ["CUDA_VISIBLE_DEVICES"] = ""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    for k in list(os.environ):
        if k.startswith("ANEMOI_INFERENCE_"):
            del os.environ[k]
    os.environ.pop("ANEMOI_BASE_SEED", None)
    os.environ.pop("SLURM_JOB_ID", None)
    if os.environ.get("PYTHONHASHSEED") != "0":
        os.environ["PYTHONHASHSEED"] = "0"
        os.execv(sys.executable, [sys.executable, *sys.argv])


prepare_process()

import argparse  # noqa: E402
import collections  # noqa: E402
import contextlib  # noqa: E402
import copy  # noqa: E402
import dataclasses  # noqa: E402
import datetime  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import pickletools  # noqa: E402
import shutil  # noqa: E402
import struct  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import types  # noqa: E402
import uuid  # noqa: E402
import warnings  # noqa: E402
import zipfile  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from convert_anemoi_graph import EDGE_ATTRIBUTES  # noqa: E402
from convert_anemoi_graph import check_boreas_graph  # noqa: E402
from convert_anemoi_graph import edge_perm  # noqa: E402
from convert_anemoi_graph import read_boreas_graph  # noqa: E402
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
from make_model_fixtures import _json_text  # noqa: E402
from make_model_fixtures import anemoi_config  # noqa: E402
from make_model_fixtures import heterodata_from_boreas  # noqa: E402
from make_model_fixtures import init_weights  # noqa: E402
from make_model_fixtures import load_graph  # noqa: E402
from make_model_fixtures import load_weights  # noqa: E402
from make_model_fixtures import make_data_indices  # noqa: E402
from make_model_fixtures import package_versions  # noqa: E402
from make_model_fixtures import read_safetensors  # noqa: E402
from make_model_fixtures import save_safetensors  # noqa: E402
from make_model_fixtures import tensor_equal  # noqa: E402
from make_normaliser_fixture import make_statistics  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "tests" / "data" / "checkpoint"
SIZE_BUDGET_BYTES = 2_500_000
ANEMOI_TRAINING_VERSION = "0.16.0"

VARIANTS = {
    "transformer": {"processor": "transformer", "graph": "o16_o4"},
    "graphtransformer": {"processor": "graphtransformer", "graph": "o16_tri2"},
}
# written only on request and never into the repository (tests/data's fixture budget is full); kept out of VARIANTS,
# which make_checkpoint_fixtures_031.py and _mid.py iterate over
ON_DEMAND_VARIANTS = {
    "gnn_mappers": {"processor": "gnn", "mappers": "gnn", "graph": "o16_tri2"},
}
ON_DEMAND_DEFAULT_OUT = Path("/tmp/boreas-gnn-ckpt")
DATA_GRID = 16  # O16: the data nodes of both graphs
INPUT_SEED = 5678
FIXED_NOW = datetime.datetime(2026, 1, 1, 0, 0, 0, tzinfo=datetime.UTC)
FIXED_TIME = FIXED_NOW.timestamp()
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
BASE_SEED = 42  # anemoi-training's default (no ANEMOI_BASE_SEED / SLURM_JOB_ID)
DATASET_NAME = "tiny-o16-6h"
EVIL_MARKER = "/tmp/boreas-pickle-was-executed"
EVIL_COMMAND = f"touch {EVIL_MARKER}"
STATE_DICT_ENTRIES = 8  # state_dict.ckpt: a plain state dict, small (fixture budget)

# mean-std (default), std + remap (tp, cp: FractionBounding on cp), min-max, max, none
NORMALISER = {
    "default": "mean-std",
    "std": ["tp", "cp"],
    "min-max": ["lsm"],
    "max": ["z_500"],
    "none": ["cos_latitude"],
    "remap": {"cp": "tp"},
}
# anemoi-datasets style variables_metadata (MARS requests of a typical ERA5 recipe)
VARIABLES_METADATA = {
    "z_500": {"mars": {"param": "z", "levelist": 500, "levtype": "pl", "class": "ea", "stream": "oper", "type": "an"}},
    "t_850": {"mars": {"param": "t", "levelist": 850, "levtype": "pl", "class": "ea", "stream": "oper", "type": "an"}},
    "2t": {"mars": {"param": "2t", "levtype": "sfc", "class": "ea", "stream": "oper", "type": "an"}},
    "sp": {"mars": {"param": "sp", "levtype": "sfc", "class": "ea", "stream": "oper", "type": "an"}},
    "lsm": {"mars": {"param": "lsm", "levtype": "sfc", "class": "ea", "stream": "oper", "type": "an"}, "constant_in_time": True},
    "cos_latitude": {"computed_forcing": True, "constant_in_time": True},
    "tp": {"mars": {"param": "tp", "levtype": "sfc", "class": "ea", "stream": "oper", "type": "fc"}, "process": "accumulation", "period": [0, 6]},
    "cp": {"mars": {"param": "cp", "levtype": "sfc", "class": "ea", "stream": "oper", "type": "fc"}, "process": "accumulation", "period": [0, 6]},
}
# physical input fields: (mean, amplitude) of the smooth fields per prognostic input variable
INPUT_FIELDS = {"z_500": (5.5e4, 1.0e3), "t_850": (270.0, 10.0), "2t": (285.0, 15.0), "sp": (1.0e5, 1.0e3)}

NOTES = [
    "predict_step(batch) takes {'data': [B, T, N, V_in]} (V_in = data.input.full, physical units), slices "
    "batch[:, 0:n_step_input, None] (adds E=1), normalises with pre_processors (InputNormalizer: x*mul + add on the "
    "data.input.full columns), runs forward, and de-normalises with post_processors ((y - add)/mul on the "
    "data.output.full columns); returns {'data': [B, n_step_output=1, E=1, N, V_out]}.",
    "The inference checkpoint's uuid differs from the one left in memory: after writing it, the callback gives the "
    "Lightning checkpoint a fresh uuid (torch >= 2.6).",
    "metadata_inference.data.shapes.variables = 18 is the model's input_dim (6 variables x 2 steps + 4 sin/cos "
    "latlons + 2 trainable node features), not a variable count; metadata_inference.task stays null (anemoi-training "
    "0.16 writes the task name to the top-level 'task').",
    "anemoi-training 0.16 config layout: multistep_input / multistep_output / timestep under config.task, precision "
    "under config.training, forcing / diagnostic / processors under config.data.datasets.data; schema validation "
    "drops model.trainable_parameters.{data2hidden,hidden2data,hidden2hidden} (the blocks' trainable_size is used).",
    "Non-persistent buffers (not in state_dict, inside data.pkl): per graph provider edge_attr float32 [E, 3], "
    "edge_index_base int32 [2, E], perm int64 [E], edge_inc int64 [2, 1].",
    "Shared storages: pre_ and post_processors share the normaliser buffers; layer_norm_attention_dest is "
    "layer_norm_attention in GraphTransformerMapperBlock (state_dict_aliases); torch.save writes each storage once.",
    "data.pkl pickles more than modules and tensors: AnemoiModelInterface.forward is an instance attribute (bound "
    "method -> __builtin__ getattr), the statistics are numpy arrays (numpy._core.multiarray._reconstruct + "
    "_codecs encode for their bytes), the normaliser keeps an omegaconf DictConfig (remap), the mapper blocks keep "
    "anemoi.utils.config DotDict layer_kernels with hydra _DeferredTarget, attention modules keep function "
    "references (torch._C._nn scaled_dot_product_attention, flex_attention create_mask), torch_geometric convs keep "
    "an Inspector (inspect._empty, typing), every Module pickles _non_persistent_buffers_set as a set "
    "(__builtin__ set); the full HeteroData graph is pickled as graph_data.",
]



# ----------------------------------------------------------------------------------------------------------------
# importing anemoi-training from unpacked wheels
# ----------------------------------------------------------------------------------------------------------------
def import_anemoi_training(paths: list[str]):
    """Put unpacked wheels on sys.path and bypass two package __init__s (see the module docstring)."""
    for p in paths:
        if p and Path(p).is_dir() and str(Path(p).resolve()) not in sys.path:
            sys.path.append(str(Path(p).resolve()))
    import importlib.util

    def namespace(name: str, parent: str | None, sub: str):
        if name in sys.modules:
            return sys.modules[name]
        if parent is None:
            spec = importlib.util.find_spec(name)
            if spec is None or not spec.submodule_search_locations:
                raise ImportError(f"{name} not found (pass the unpacked wheels' directory)")
            path = list(spec.submodule_search_locations)
        else:
            path = [str(Path(p) / sub) for p in sys.modules[parent].__path__]
        mod = types.ModuleType(name)
        mod.__path__ = path
        sys.modules[name] = mod
        return mod

    # timm/__init__ imports torchvision; anemoi-training only needs timm.scheduler.scheduler.Scheduler
    namespace("timm", None, "")
    namespace("timm.scheduler", "timm", "scheduler")
    # anemoi.training.diagnostics.callbacks/__init__ imports the plotting callbacks (datashader, matplotlib, ...)
    import anemoi.training.diagnostics

    cb = namespace("anemoi.training.diagnostics.callbacks", "anemoi.training.diagnostics", "callbacks")
    for name in ("CallbacksContext", "get_callbacks"):  # imported by train/train.py, never called here
        setattr(cb, name, None)
    import anemoi.training

    version = getattr(anemoi.training, "__version__", None)
    if version != ANEMOI_TRAINING_VERSION:
        print(f"warning: anemoi-training {version} (fixtures were made with {ANEMOI_TRAINING_VERSION})", file=sys.stderr)
    return anemoi.training


# ----------------------------------------------------------------------------------------------------------------
# determinism: fixed clocks and uuids while anemoi code runs
# ----------------------------------------------------------------------------------------------------------------
class _FixedDatetime(datetime.datetime):
    @classmethod
    def now(cls, tz=None):
        return FIXED_NOW if tz is not None else FIXED_NOW.replace(tzinfo=None)

    @classmethod
    def utcnow(cls):
        return FIXED_NOW.replace(tzinfo=None)


class _Shim(types.ModuleType):
    """A module stand-in: the given attributes, everything else from the real module."""

    def __init__(self, real, **attrs):
        super().__init__(real.__name__)
        self._real = real
        self.__dict__.update(attrs)

    def __getattr__(self, name):
        return getattr(self._real, name)


def _uuid_factory(label: str):
    counter = iter(range(1_000_000))
    return lambda: uuid.uuid5(uuid.NAMESPACE_URL, f"boreas-checkpoint-fixture/{label}/{next(counter)}")


def clock_shims() -> tuple[_Shim, _Shim]:
    """(datetime with now/utcnow fixed, time with time() and localtime() fixed: the latter dates zip entries)."""
    dt_shim = _Shim(datetime, datetime=_FixedDatetime)
    time_shim = _Shim(time, time=lambda: FIXED_TIME, localtime=lambda *a: time.struct_time(ZIP_DATE + (0, 1, 0)))
    return dt_shim, time_shim


@contextlib.contextmanager
def patched(patches: list[tuple]):
    """setattr(module, name, value) for each (module, name, value) while the block runs; the originals restored."""
    saved = [(m, a, getattr(m, a)) for m, a, _ in patches]
    try:
        for m, a, v in patches:
            setattr(m, a, v)
        yield
    finally:
        for m, a, v in saved:
            setattr(m, a, v)


@contextlib.contextmanager
def fixed_clock(label: str):
    """datetime.now/utcnow, time.time and uuid.uuid4 fixed in the anemoi modules that put them in files; zip entry
    dates of Python's zipfile fixed."""
    import anemoi.training.diagnostics.callbacks.checkpoint as ckpt_mod
    import anemoi.training.train.train as train_mod
    import anemoi.utils.provenance as prov_mod

    dt_shim, time_shim = clock_shims()
    uuid_shim = _Shim(uuid, uuid4=_uuid_factory(label))
    with patched([
        (train_mod, "datetime", dt_shim),
        (prov_mod, "datetime", dt_shim),
        (ckpt_mod, "time", time_shim),
        (ckpt_mod, "uuid", uuid_shim),
        (zipfile, "time", time_shim),
    ]):
        yield


# ----------------------------------------------------------------------------------------------------------------
# config, dataset stand-in, metadata
# ----------------------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Spec:
    """What differs between the tiny fixtures and the on-demand AIFS-size checkpoint."""

    label: str  # run id / uuid label; the callback names the file inference-<label>.ckpt
    processor: str  # anemoi-training config group model=<processor>
    model: dict  # config.model (anemoi-training layout)
    variables: list
    forcing: list
    diagnostic: list
    normaliser: dict
    variables_metadata: dict
    dataset_name: str
    resolution: str
    grid: Callable[[], tuple]  # () -> (latitudes, longitudes) float64 degrees of the data grid
    reference: bool  # tiny: make_model_fixtures.init_weights and the checks against tests/data/model


def tiny_spec(variant: str) -> Spec:
    var = {**VARIANTS, **ON_DEMAND_VARIANTS}[variant]
    processor = var["processor"]
    model = anemoi_config(processor, mappers=var.get("mappers", "graphtransformer"))["model"]
    model["output_mask"] = {"_target_": "anemoi.training.utils.masks.NoOutputMask"}
    if processor == "transformer":
        assert model["processor"]["softcap"] is None
        model["processor"]["softcap"] = 0.0  # the schema wants a float; anemoi applies softcap only when > 0
    return Spec(
        label=variant,
        processor=processor,
        model=model,
        variables=list(VARIABLES),
        forcing=list(FORCING),
        diagnostic=list(DIAGNOSTIC),
        normaliser=copy.deepcopy(NORMALISER),
        variables_metadata=copy.deepcopy(VARIABLES_METADATA),
        dataset_name=DATASET_NAME,
        resolution="o16",
        grid=lambda: octahedral_grid(DATA_GRID),
        reference=True,
    )


def run_id_for(variant: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"boreas-checkpoint-fixture/{variant}/run_id"))


def training_config(spec: Spec, graph_file: str):
    """anemoi-training's own config, composed with Hydra, tiny settings, validated (BaseSchema), as AnemoiTrainer."""
    import anemoi.training
    from anemoi.training.schemas.base_schema import BaseSchema
    from anemoi.training.schemas.base_schema import convert_to_omegaconf
    from hydra import compose
    from hydra import initialize_config_dir
    from omegaconf import OmegaConf

    processor = spec.processor
    config_dir = Path(anemoi.training.__file__).parent / "config"
    with initialize_config_dir(config_dir=str(config_dir), version_base=None):
        cfg = compose("config", overrides=[f"model={processor}", "graph=existing"])

    cfg.model = OmegaConf.create(copy.deepcopy(spec.model))

    cfg.data.frequency = "6h"
    ds = cfg.data.datasets.data
    ds.forcing = list(spec.forcing)
    ds.diagnostic = list(spec.diagnostic)
    ds.processors.normalizer.config = copy.deepcopy(spec.normaliser)
    cfg.task.multistep_input = MULTISTEP
    cfg.task.multistep_output = 1
    cfg.task.timestep = "6h"
    cfg.training.precision = "32"
    cfg.training.metrics.datasets.data = ["z_500", "t_850"]
    cfg.system.input.dataset = f"{spec.dataset_name}.zarr"
    cfg.system.input.graph = graph_file
    cfg.system.output.root = "output"
    cfg.system.hardware.accelerator = "cpu"
    cfg.diagnostics.log.mlflow.tracking_uri = "http://localhost:5000"  # mandatory in the schema; mlflow is disabled

    # AnemoiTrainer.__init__ (config_validation: true)
    OmegaConf.resolve(cfg)
    config = convert_to_omegaconf(BaseSchema(**cfg))
    run_id = run_id_for(spec.label)
    config.training.run_id = run_id
    from anemoi.training.train.train import AnemoiTrainer

    AnemoiTrainer._update_paths(types.SimpleNamespace(config=config, run_id=run_id, parent_run_server2server=None))
    return config


def grid_latlons(graph, spec: Spec) -> tuple[np.ndarray, np.ndarray]:
    """(latitudes, longitudes) float64 degrees of the data grid (O16), checked against the graph's data nodes."""
    import torch

    lats, lons = spec.grid()
    coords = graph["data"].x
    ref = torch.from_numpy(np.stack([np.radians(lats), np.radians(lons)], 1).astype(np.float32))
    assert coords.shape == ref.shape and torch.equal(coords, ref), f"data nodes are not the {spec.resolution} grid"
    return np.ascontiguousarray(lats), np.ascontiguousarray(lons)


def dataset_metadata(n_grid: int, supporting: list[str], spec: Spec) -> dict:
    """What anemoi-datasets' Dataset.metadata() returns for a gridded zarr (hand-made: no real dataset here)."""
    start, end = np.datetime64("1979-01-01T00:00:00"), np.datetime64("2020-12-31T18:00:00")
    n_dates = int((end - start) / np.timedelta64(6, "h")) + 1
    shape = [n_dates, len(spec.variables), 1, n_grid]
    arguments = {"args": [], "kwargs": {"dataset": f"{spec.dataset_name}.zarr", "frequency": "6h", "start": None, "end": 2020}}
    attrs = {
        "frequency": "6h",
        "resolution": spec.resolution,
        "field_shape": [n_grid],
        "variables": list(spec.variables),
        "variables_metadata": copy.deepcopy(spec.variables_metadata),
        "start_date": str(start),
        "end_date": str(end),
        "ensemble_dimension": 1,
        "flatten_grid": True,
        "licence": "CC-BY-4.0",
        "attribution": "Boreas test fixture (synthetic)",
    }
    return {
        "version": "0.5.47",
        "arguments": arguments,
        "specific": {
            "action": "subset",
            "variables": list(spec.variables),
            "shape": shape,
            "frequency": "6h",
            "start_date": str(start),
            "end_date": "2020-12-31T18:00:00",
            "forward": {
                "action": "zarr",
                "variables": list(spec.variables),
                "shape": shape,
                "path": f"{spec.dataset_name}.zarr",
                "attrs": attrs,
            },
        },
        "frequency": "6h",
        "variables": list(spec.variables),
        "variables_metadata": copy.deepcopy(spec.variables_metadata),
        "shape": shape,
        "dtype": "float32",
        "start_date": str(start),
        "end_date": str(end),
        "name": None,
        "sources": [],
        "supporting_arrays": sorted(supporting),
    }


def make_physical_input(lat: np.ndarray, lon: np.ndarray, v_in: list[str]) -> np.ndarray:
    """[1, T=2, N, V_in] float32 physical fields: smooth patterns with realistic magnitudes (lat/lon in radians)."""
    rng = np.random.default_rng(INPUT_SEED)
    n = lat.size

    def smooth():
        f = np.zeros(n)
        for _ in range(6):
            m, k = rng.integers(0, 5), rng.integers(0, 5)
            f += rng.normal() * np.cos(m * lon + rng.uniform(0, 2 * np.pi)) * np.cos(k * lat + rng.uniform(0, 2 * np.pi))
        f += 0.1 * rng.normal(size=n)
        return (f - f.mean()) / f.std()

    x = np.zeros((1, MULTISTEP, n, len(v_in)))
    lsm = 1.0 / (1.0 + np.exp(-2.5 * smooth()))
    for j, v in enumerate(v_in):
        if v == "lsm":
            x[0, :, :, j] = lsm
        elif v == "cos_latitude":
            x[0, :, :, j] = np.cos(lat)
        else:
            mean, amp = INPUT_FIELDS[v]
            x[0, 0, :, j] = mean + amp * smooth()
            for t in range(1, MULTISTEP):
                x[0, t, :, j] = x[0, t - 1, :, j] + 0.3 * amp * smooth()
    return x.astype(np.float32)


# ----------------------------------------------------------------------------------------------------------------
# building and saving with anemoi-training's code
# ----------------------------------------------------------------------------------------------------------------
class StandInTrainer:
    """The parts of a pytorch_lightning.Trainer that AnemoiCheckpoint._save_checkpoint touches (logger: also
    trainer.logger = None, as anemoi-training 0.16 needs; the 0.3.1 and 0.6.3 callbacks do without)."""

    def __init__(self, module, logger: bool = False):
        self.model = module  # _torch_drop_down: trainer.model.model = the AnemoiModelInterface
        self.lightning_module = module
        self.is_global_zero = True
        self.current_epoch = 0
        self.global_step = 0
        if logger:
            self.logger = None
        self.loggers = []
        self.strategy = types.SimpleNamespace(barrier=lambda *a, **k: None, remove_checkpoint=lambda *a, **k: None)

    def save_checkpoint(self, filepath, weights_only=False):  # the Lightning checkpoint (discarded)
        import torch

        torch.save({"state_dict": {}, "stand_in": True}, filepath)


def save_inference_checkpoint(make_callback, module, variant: str, tmp: Path, clock, logger: bool = False) -> Path:
    """AnemoiCheckpoint._save_checkpoint (the callback made by make_callback() inside clock(variant)) with a
    stand-in trainer; returns the inference checkpoint tmp/inference-<variant>.ckpt."""
    lightning_path = tmp / f"{variant}.ckpt"
    with clock(variant):
        callback = make_callback()
        callback._save_checkpoint(StandInTrainer(module, logger=logger), str(lightning_path))
    inference_path = tmp / f"inference-{variant}.ckpt"
    assert inference_path.exists()
    return inference_path


def copy_checkpoint(src: Path, dst: Path, written: dict) -> Path:
    shutil.copyfile(src, dst)
    dst.chmod(0o644)
    written[dst.name] = dst
    return dst


def _plain(v):
    """Tensors / nested dicts of an IndexCollection.todict() as plain Python values."""
    if hasattr(v, "tolist"):
        return v.tolist()
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    return v


def build_variant(spec: Spec, graph, graph_file: str, stats: dict, tmp: Path) -> dict:
    import torch
    from anemoi.training.data.datamodule import AnemoiDatasetsDataModule
    from anemoi.training.diagnostics.callbacks.checkpoint import AnemoiCheckpoint
    from anemoi.training.train.methods import SingleTraining
    from anemoi.training.train.train import AnemoiTrainer
    from anemoi.training.utils.checkpoint import check_classes
    from anemoi.training.utils.seeding import SeedContext
    from anemoi.training.utils.seeding import derive_seed
    from hydra.utils import instantiate

    variant = spec.label
    config = training_config(spec, graph_file)
    task = instantiate(config.task)
    lats, lons = grid_latlons(graph, spec)
    supporting_arrays = {"data": {"latitudes": lats, "longitudes": lons}}

    # the datamodule's parts that AnemoiTrainer uses (statistics, metadata, supporting arrays, data indices)
    dm = types.SimpleNamespace(
        config=config,
        task=task,
        dataset_names=["data"],
        ds_train=types.SimpleNamespace(name_to_index={"data": {v: i for i, v in enumerate(spec.variables)}}),
        statistics={"data": stats},
        statistics_tendencies=None,
        metadata={"data": dataset_metadata(lats.size, list(supporting_arrays["data"]), spec)},
        supporting_arrays=supporting_arrays,
    )
    dm.data_indices = AnemoiDatasetsDataModule.__dict__["data_indices"].func(dm)
    dm.fill_metadata = types.MethodType(AnemoiDatasetsDataModule.fill_metadata, dm)
    if spec.reference:
        ref_di = make_data_indices()["data"]
        assert _plain(dm.data_indices["data"].todict()) == _plain(ref_di.todict()), "data indices differ from make_model_fixtures'"

    trainer = types.SimpleNamespace(
        config=config,
        task=task,
        datamodule=dm,
        base_seed=BASE_SEED,
        initial_seed=derive_seed(BASE_SEED, SeedContext.TRAINER),
        run_id=config.training.run_id,
    )
    with fixed_clock(variant):
        metadata = AnemoiTrainer.__dict__["metadata"].func(trainer)

    # AnemoiTrainer.model: training.method (SingleTraining) with these kwargs
    uuid_patch = _uuid_factory(f"{variant}/model")
    import anemoi.models.interface as interface_mod

    saved_uuid = interface_mod.uuid
    interface_mod.uuid = _Shim(uuid, uuid4=uuid_patch)  # AnemoiModelInterface.id
    try:
        module = SingleTraining(
            config=config,
            task=task,
            graph_data=copy.deepcopy(graph),
            statistics=dm.statistics,
            statistics_tendencies=dm.statistics_tendencies,
            data_indices=dm.data_indices,
            metadata=metadata,
            supporting_arrays=dm.supporting_arrays,
        )
    finally:
        interface_mod.uuid = saved_uuid
    interface = module.model
    assert interface.metadata is module._hparams["metadata"]
    if spec.reference:
        kinds = init_weights(interface.model)
    else:  # anemoi's own initialisation (torch defaults), seeded by torch.manual_seed(SEED) in main
        kinds = {"anemoi_default_init": sum(p.numel() for p in interface.model.parameters())}
    interface.eval()
    module.eval()

    if spec.reference:  # the weights equal make_model_fixtures' (same names, same values)
        ref_sd = load_weights(REPO / "tests" / "data" / "model" / f"{variant}.weights.safetensors")
        sd = interface.model.state_dict()
        assert sorted(sd) == sorted(ref_sd), set(sd) ^ set(ref_sd)
        assert all(tensor_equal(sd[k].contiguous(), ref_sd[k]) for k in sd), "weights differ from tests/data/model"

    check_classes(interface)  # AnemoiCheckpoint.on_train_start

    # AnemoiCheckpoint._save_checkpoint
    inference_path = save_inference_checkpoint(lambda: AnemoiCheckpoint(dirpath=str(tmp), save_last=False), module,
                                               variant, tmp, fixed_clock, logger=True)
    assert interface.config is config and interface.metadata is metadata  # restored by the callback

    return {
        "config": config,
        "module": module,
        "interface": interface,
        "metadata": metadata,
        "supporting_arrays": supporting_arrays,
        "inference_path": inference_path,
        "weights_init": kinds,
    }


# ----------------------------------------------------------------------------------------------------------------
# the evil checkpoint
# ----------------------------------------------------------------------------------------------------------------
def _binunicode(s: str) -> bytes:
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def evil_pickle(benign: bytes) -> bytes:
    """`benign` (torch's protocol-2 pickle of {"weight": tensor}) with the item "payload": os.system(cmd) added to
    the dict before STOP: GLOBAL 'os system', BINUNICODE cmd, TUPLE1, REDUCE, SETITEM."""
    assert benign.endswith(b"s."), "expected ... SETITEM STOP"
    payload = _binunicode("payload") + b"cos\nsystem\n" + _binunicode(EVIL_COMMAND) + b"\x85R" + b"s"
    return benign[:-1] + payload + b"."


def _aligned_extra(zf: zipfile.ZipFile, name: str, alignment: int = 64) -> bytes:
    """Local-header extra field ('FB' padding, as torch writes) so that the member's data starts aligned."""
    offset = zf.fp.tell() + 30 + len(name.encode())
    pad = (-(offset + 4)) % alignment
    return b"FB" + struct.pack("<H", pad) + b"Z" * pad


def write_evil(path: Path, tmp: Path) -> dict:
    import torch

    src = tmp / "evil.ckpt"
    torch.save({"weight": torch.arange(4, dtype=torch.float32) + 0.5}, src)
    with zipfile.ZipFile(src) as z:
        members = [(i.filename, z.read(i.filename)) for i in z.infolist()]
    archive = members[0][0].split("/")[0]
    out = []
    for name, data in members:
        if name == f"{archive}/data.pkl":
            data = evil_pickle(data)
        out.append((name, data))
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        for name, data in out:
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_STORED
            info.create_system = 3
            info.extra = _aligned_extra(z, name)  # torch aligns every record's data to 64 bytes
            z.writestr(info, data)
    path.chmod(0o644)
    return {"archive": archive, "payload": f"os.system({EVIL_COMMAND!r}) via GLOBAL 'os system' + REDUCE, as dict item 'payload'"}


# ----------------------------------------------------------------------------------------------------------------
# inspection helpers
# ----------------------------------------------------------------------------------------------------------------
def zip_members(path: Path) -> list[list]:
    """[name, size] of every member in zip order (all ZIP_STORED, checked)."""
    with zipfile.ZipFile(path) as z:
        assert all(i.compress_type == zipfile.ZIP_STORED for i in z.infolist())
        return [[i.filename, i.file_size] for i in z.infolist()]


def pickle_globals(path: Path) -> dict:
    """Distinct GLOBAL opcodes (module name), persistent-id storage types and opcode set of <archive>/data.pkl."""
    with zipfile.ZipFile(path) as z:
        (pkl,) = [n for n in z.namelist() if n.endswith("/data.pkl")]
        data = z.read(pkl)
    globals_, opcodes = [], set()
    for op, arg, _ in pickletools.genops(data):
        opcodes.add(op.name)
        if op.name == "GLOBAL":
            if arg not in globals_:
                globals_.append(arg)
        elif op.name == "STACK_GLOBAL":
            raise AssertionError("STACK_GLOBAL in a protocol-2 pickle")
    proto = data[1] if data[:1] == b"\x80" else None
    return {"member": pkl, "protocol": proto, "bytes": len(data), "globals": sorted(globals_), "opcodes": sorted(opcodes)}


def tensor_list(module) -> dict:
    """state_dict (name, shape, dtype) and non-persistent buffers (named_buffers not in the state dict)."""
    sd = module.state_dict()
    state = [[k, list(v.shape), str(v.dtype).replace("torch.", "")] for k, v in sd.items()]
    nonpersistent = []
    for mname, mod in module.named_modules(remove_duplicate=False):
        for b in sorted(mod._non_persistent_buffers_set):
            t = mod._buffers.get(b)
            if t is None:
                continue
            name = f"{mname}.{b}" if mname else b
            assert name not in sd
            nonpersistent.append([name, list(t.shape), str(t.dtype).replace("torch.", "")])
    named = {n for n, _ in module.named_buffers(remove_duplicate=False)}
    assert {n for n, _, _ in nonpersistent} == named - set(sd), "non-persistent buffer list incomplete"
    aliases = {}
    by_ptr: dict = {}
    for k, v in sd.items():
        key = (v.untyped_storage().data_ptr(), v.storage_offset(), tuple(v.shape), tuple(v.stride()))
        by_ptr.setdefault(key, []).append(k)
    for names in by_ptr.values():
        if len(names) > 1:
            aliases[names[0]] = names[1:]
    return {"state_dict": state, "non_persistent_buffers": nonpersistent, "state_dict_aliases": aliases}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def versions() -> dict:
    import importlib.metadata as md

    import anemoi.training

    out = package_versions()
    out["anemoi-training"] = getattr(anemoi.training, "__version__", None)
    out["anemoi-training_source"] = "unpacked wheel on sys.path (not installed)"
    for mod, dist in (("pytorch_lightning", "pytorch-lightning"), ("torchinfo", "torchinfo")):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            out[dist] = getattr(sys.modules.get(mod), "__version__", None)
    return out


def io_variables(data_indices) -> tuple[list, list]:
    """(data.input.full, data.output.full) variable names."""
    v_in = [VARIABLES[i] for i in data_indices.data.input.full.tolist()]
    v_out = [VARIABLES[i] for i in data_indices.data.output.full.tolist()]
    return v_in, v_out


def reload_checkpoint(ckpt: Path, supporting_arrays: bool = True):
    """torch.load(weights_only=False) of an inference checkpoint: the interface with config / metadata (and
    supporting_arrays, where the release has them) cleared by the callback, in eval mode."""
    import torch

    loaded = torch.load(ckpt, map_location="cpu", weights_only=False)
    assert type(loaded).__name__ == "AnemoiModelInterface"
    assert loaded.config is None and loaded.metadata is None
    if supporting_arrays:
        assert loaded.supporting_arrays is None
    loaded.eval()
    return loaded


def check_metadata(md: dict, saved: dict, fresh_uuid: bool) -> None:
    """load_metadata's result equals the metadata saved (but supporting_arrays_paths).  fresh_uuid (torch >= 2.6):
    the callback gives the Lightning checkpoint a fresh uuid after writing the inference checkpoint, so the
    in-memory metadata holds the second uuid, the inference checkpoint the first."""
    expect = json.loads(json.dumps(saved))
    skip = ["supporting_arrays_paths"]
    if fresh_uuid:
        assert md["uuid"] != expect.pop("uuid")
        skip.append("uuid")
    md_wo = {k: v for k, v in md.items() if k not in skip}
    if md_wo != expect:
        bad = sorted(k for k in set(md_wo) | set(expect) if md_wo.get(k) != expect.get(k))
        raise AssertionError(f"load_metadata differs from the metadata saved in {bad}")


# ----------------------------------------------------------------------------------------------------------------
# VERSIONS*.json, sizes, second run, options (this script, make_checkpoint_fixtures_031.py and _mid.py)
# ----------------------------------------------------------------------------------------------------------------
def config_doc(stats: dict, **extra) -> dict:
    """The tiny fixtures' variables, roles, normaliser and statistics (+ extra)."""
    return {
        "variables": VARIABLES,
        "forcing": FORCING,
        "diagnostic": DIAGNOSTIC,
        "normaliser": NORMALISER,
        "statistics": {k: v.tolist() for k, v in stats.items()},
        "statistics_note": "make_normaliser_fixture.make_statistics(): float64, dataset order, before remap",
        **extra,
    }


def file_sizes(written: dict) -> dict:
    return {n: q.stat().st_size for n, q in sorted(written.items())}


def write_versions_json(vpath: Path, doc: dict, sizes: dict, chmod: bool = False) -> None:
    """Writes doc with its own size and the total in it (three passes: the numbers change the size)."""
    vpath.write_text(_json_text(doc))
    for _ in range(3):
        sizes[vpath.name] = vpath.stat().st_size
        doc["total_bytes"] = sum(sizes.values())
        vpath.write_text(_json_text(doc))
    if chmod:
        vpath.chmod(0o644)


def print_sizes(written: dict, vpath: Path, sizes: dict, out_dir: Path, t_start: float, width: int) -> int:
    """Prints each file's size and the total; returns the total."""
    total = sum(q.stat().st_size for q in written.values()) + vpath.stat().st_size
    for n, s in sorted(sizes.items()):
        print(f"  {n:{width}s} {s:9d}")
    print(f"total {total} bytes ({total / 2**20:.3f} MiB) in {out_dir}; {time.time() - t_start:.1f} s")
    return total


def over_budget(total: int, budget: int) -> bool:
    if budget and total > budget:
        print(f"error: fixtures total {total} bytes > budget {budget}", file=sys.stderr)
        return True
    return False


def second_run(script: str, out_dir: Path, names: list[str], args: list[str]) -> int:
    """--check-rerun: the script again into a temporary folder; 0 if every file in names is byte-identical."""
    with tempfile.TemporaryDirectory() as t2:
        cmd = [sys.executable, script, "--out", t2, *args]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        diff = [n for n in names if (Path(t2) / n).read_bytes() != (out_dir / n).read_bytes()]
        if diff:
            print(f"error: a second run differs in {diff}", file=sys.stderr)
            return 1
        print("second run: every file byte-identical")
    return 0


def add_run_options(p: argparse.ArgumentParser, budget: int) -> None:
    p.add_argument("--budget", type=int, default=budget, help="size budget in bytes (0: no check)")
    p.add_argument("--check-rerun", action="store_true", help="run a second time into a temporary folder and "
                   "compare every file byte for byte")
    p.add_argument("-v", "--verbose", action="store_true")


def parse_run_args(p: argparse.ArgumentParser, argv: list[str] | None):
    """parse_args; logging at INFO with -v (else ERROR); warnings off."""
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.ERROR)
    warnings.filterwarnings("ignore")
    return args


# ----------------------------------------------------------------------------------------------------------------
# shared by make_checkpoint_fixtures_031.py (anemoi-models 0.3.1, .venv-ref-031) and _mid.py (0.9.3,
# .venv-ref-mid): one config layout (forcing / diagnostic / normalizer under config.data, multistep_input under
# config.training), anemoi-datasets stubbed, the 0.18 fixtures' weights, input and outputs as reference.  They live
# here, not in a module of their own: anemoi-utils records every loaded module in the checkpoints'
# provenance_training.module_versions, so a new module would change the committed files.  Nothing here is
# imported at module level beyond what this script already loads: torch, hydra and anemoi inside the functions.
# ----------------------------------------------------------------------------------------------------------------
LEGACY_GRAPH_CONFIG = {"transformer": "encoder_decoder_only", "graphtransformer": "multi_scale"}
LEGACY_REF_INPUT = "transformer.io.safetensors"  # the 0.18 fixtures' physical input [1, 2, N, 6]
LEGACY_EDGE_TRAINABLES = {  # 0.18 name -> (0.3.1 / 0.9.3 name, edge set)
    "encoder_graph_provider.data.trainable.trainable": ("encoder.trainable.trainable", "data_to_hidden"),
    "decoder_graph_provider.data.trainable.trainable": ("decoder.trainable.trainable", "hidden_to_data"),
    "processor_graph_provider.trainable.trainable": ("processor.trainable.trainable", "hidden_to_hidden"),
}


def stub_anemoi_datasets(script: str) -> None:
    """anemoi.training.data.datamodule imports anemoi.datasets.data.open_dataset at module level; no dataset is
    opened here, so a stub that refuses is enough (anemoi-datasets is not installed)."""
    try:
        import anemoi.datasets.data  # noqa: F401

        return
    except ImportError:
        pass

    def open_dataset(*args, **kwargs):
        raise RuntimeError(f"anemoi-datasets is stubbed in {script}")

    pkg = types.ModuleType("anemoi.datasets")
    pkg.__path__ = []
    sub = types.ModuleType("anemoi.datasets.data")
    sub.open_dataset = open_dataset
    pkg.data = sub
    sys.modules["anemoi.datasets"] = pkg
    sys.modules["anemoi.datasets.data"] = sub


@contextlib.contextmanager
def legacy_fixed_clock(version: str, label: str):
    """fixed_clock for 0.3.1 / 0.9.3: datetime, time, the checkpoint's and the model's uuid4 fixed; provenance
    without git_versions."""
    import anemoi.models.interface as interface_mod
    import anemoi.training.diagnostics.callbacks.checkpoint as ckpt_mod
    import anemoi.training.train.train as train_mod
    import anemoi.utils.provenance as prov_mod

    dt_shim, time_shim = clock_shims()
    with patched([
        (train_mod, "datetime", dt_shim),
        (prov_mod, "datetime", dt_shim),
        # git_versions {}: the generator's own modules live in the Boreas repository, whose state (head, modified
        # files) must not make the fixture depend on the working tree (0.3.1 also lacks gitpython)
        (prov_mod, "_check_for_git", lambda paths, full: {}),
        (ckpt_mod, "time", time_shim),
        (ckpt_mod, "uuid", _Shim(uuid, uuid4=_uuid_factory(f"{version}/{label}/checkpoint"))),
        (interface_mod, "uuid", _Shim(uuid, uuid4=_uuid_factory(f"{version}/{label}/model"))),
        (zipfile, "time", time_shim),
    ]):
        yield


def legacy_run_id(version: str, variant: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"boreas-checkpoint-fixture/{version}/{variant}/run_id"))


def compose_legacy_config(processor: str, graph: str):
    """anemoi-training's config/config.yaml composed with Hydra (model=<processor>, graph=<graph>)."""
    import anemoi.training
    from hydra import compose
    from hydra import initialize_config_dir

    config_dir = Path(anemoi.training.__file__).parent / "config"
    with initialize_config_dir(config_dir=str(config_dir), version_base=None):
        return compose("config", overrides=[f"model={processor}", f"graph={graph}"])


def set_tiny_legacy(cfg, processor: str, processor_settings: dict, transformer_settings: dict) -> None:
    """The tiny settings of config.data, config.model and config.training (multistep_input, precision);
    processor_settings are set for both processors, then transformer_settings for the transformer, in that order."""
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
    for k, v in processor_settings.items():
        setattr(m.processor, k, v)
    if processor == "transformer":
        for k, v in transformer_settings.items():
            setattr(m.processor, k, v)
    for part in (m.encoder, m.decoder):
        part.num_heads = HEADS
        part.mlp_hidden_ratio = MLP_RATIO
        part.num_chunks = 1
    m.bounding = copy.deepcopy(BOUNDING)

    cfg.training.multistep_input = MULTISTEP
    cfg.training.precision = "32"


def set_legacy_hardware(cfg, graph_name: str, grids: bool) -> None:
    """config.hardware paths and files (grids: hardware.paths.grids too); mlflow and wandb stay disabled."""
    cfg.hardware.accelerator = "cpu"
    cfg.hardware.paths.data = "data"
    if grids:
        cfg.hardware.paths.grids = "grids"
    cfg.hardware.paths.output = "output/"
    cfg.hardware.paths.graph = "tests/data/graphs/"
    cfg.hardware.files.dataset = f"{DATASET_NAME}.zarr"
    cfg.hardware.files.graph = f"{graph_name}.safetensors"
    cfg.diagnostics.log.mlflow.tracking_uri = "http://localhost:5000"  # mlflow is disabled
    cfg.diagnostics.log.wandb.entity = "boreas"  # wandb is disabled


def legacy_config_locations(md: dict, normalizer_absent: str | None = None, precision_early: bool = False) -> dict:
    """Where the settings Boreas reads live in the metadata.  normalizer_absent: what to record when
    config.data.normalizer is missing (None: it must be there); precision_early: precision listed after frequency
    (key order of the committed VERSIONS files)."""
    c = md["config"]
    normalizer = c["data"]["normalizer"] if normalizer_absent is None else c["data"].get("normalizer", normalizer_absent)
    precision = {"precision": ["config", "training", "precision", c["training"]["precision"]]}
    return {
        "multistep_input": ["config", "training", "multistep_input", c["training"]["multistep_input"]],
        "forcing": ["config", "data", "forcing", c["data"]["forcing"]],
        "diagnostic": ["config", "data", "diagnostic", c["data"]["diagnostic"]],
        "normalizer": ["config", "data", "normalizer", normalizer],
        "normalizer_processor": ["config", "data", "processors", "normalizer", c["data"]["processors"]["normalizer"]],
        "timestep": ["config", "data", "timestep", c["data"]["timestep"]],
        "frequency": ["config", "data", "frequency", c["data"]["frequency"]],
        **(precision if precision_early else {}),
        "model": ["config", "model", {k: c["model"][k] for k in ("num_channels", "trainable_parameters", "bounding")}],
        "processor": ["config", "model", "processor", c["model"]["processor"]],
        "encoder": ["config", "model", "encoder", c["model"]["encoder"]],
        "decoder": ["config", "model", "decoder", c["model"]["decoder"]],
        "graph_names": ["config", "graph", {"data": c["graph"]["data"], "hidden": c["graph"]["hidden"]}],
        **({} if precision_early else precision),
        "variables": ["dataset", "variables", md["dataset"]["variables"]],
        "data_indices": ["data_indices", sorted(md["data_indices"])],
    }


def load_graph_checked(name: str) -> tuple:
    """HeteroData of tests/data/graphs/<name>.safetensors in anemoi's edge order (as make_model_fixtures does),
    checked to round-trip the file (without anemoi-graphs' builders: the *_exact re-computation is left to the 0.18
    tools).  Returns (graph, tensors, meta, info)."""
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


def edge_trainable_in_graph_order(name: str, t, graph_tensors: dict) -> tuple:
    """A 0.18 trainable edge tensor (rows in CSR order) -> (legacy name, rows in the graph's edge order, how)."""
    import torch

    new, key = LEGACY_EDGE_TRAINABLES[name]
    perm = torch.from_numpy(edge_perm(graph_tensors, key, t.shape[0]))
    reordered = torch.empty_like(t)
    reordered[perm] = t  # CSR row p -> graph edge perm[p]
    return new, reordered, f"rows reordered: row perm[p] = CSR row p ({key} perm of the graph file)"


def processor_block(name: str) -> tuple[str, str]:
    """0.18 processor.proc.<layer>.<leaf> -> ("processor.proc.<chunk>.blocks.<i>.", leaf)."""
    per_chunk = NUM_LAYERS // PROC_CHUNKS
    rest = name[len("processor.proc."):]
    layer, leaf = rest.split(".", 1)
    layer = int(layer)
    return f"processor.proc.{layer // per_chunk}.blocks.{layer % per_chunk}.", leaf


def load_mapped_weights(model, sd: dict, recomputed: frozenset | set = frozenset()) -> None:
    """The 0.18 fixtures' weights, already renamed, into `model`: every parameter given, nothing unknown, shapes and
    dtypes equal; the buffers in `recomputed` are compared instead of copied; no parameter has exact zeros."""
    import torch

    own = model.state_dict()
    params = dict(model.named_parameters())
    missing = sorted(set(params) - set(sd))
    unexpected = sorted(set(sd) - set(own))
    assert not missing and not unexpected, (missing, unexpected)
    with torch.no_grad():
        for k, v in sd.items():
            assert own[k].shape == v.shape and own[k].dtype == v.dtype, (k, own[k].shape, v.shape)
            if k in recomputed:  # recomputed by anemoi from the same graph: must be identical
                assert tensor_equal(own[k], v), f"{k} differs from the 0.18 fixture"
            else:
                own[k].copy_(v)
    for k, p in model.named_parameters():
        assert bool((p != 0).all()), f"parameter {k} has exact zeros"


def legacy_edge_order_checks(interface, processor: str, gtensors: dict, gmeta: dict, sd18: dict,
                             extended: bool = False) -> dict:
    """Row r of a trainable edge tensor is edge r of edge_index_base = the graph's (anemoi's) edge order.
    extended: also whether edge_index_base is sorted by destination and whether edge_inc is persistent."""
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
        name18 = [k for k, v in LEGACY_EDGE_TRAINABLES.items() if v[1] == key][0]
        rows_ok = bool(torch.equal(rows[perm], sd18[name18]))
        o = out[key] = {
            "module": label,
            "edges": e,
            "trainable": f"{label}.trainable.trainable",
            "edge_index_base_dtype": str(mod.edge_index_base.dtype).replace("torch.", ""),
            "perm_is_identity": bool(torch.equal(perm, torch.arange(e))),
        }
        if extended:
            o["edge_index_base_sorted_by_destination"] = bool((ei[1, 1:] >= ei[1, :-1]).all())
        o["edge_index_base[:, perm] == file CSR (src, dst)"] = csr_index
        o["edge_attr[perm] == file CSR attributes (bitwise)"] = csr_attr
        o["trainable[perm] == 0.18 trainable (CSR rows)"] = rows_ok
        o["edge_inc"] = mod.edge_inc.reshape(-1).tolist()
        if extended:
            o["edge_inc_persistent"] = "edge_inc" not in mod._non_persistent_buffers_set
        assert csr_index and csr_attr and rows_ok, (key, o)
    return out


def legacy_trainer(config, datamodule):
    """The parts of AnemoiTrainer that its metadata property uses; initial_seed is AnemoiTrainer's own
    (pl.seed_everything(42000))."""
    from anemoi.training.train.train import AnemoiTrainer

    trainer = types.SimpleNamespace(
        config=config,
        datamodule=datamodule,
        run_id=config.training.run_id,
        strategy=types.SimpleNamespace(global_rank=0),
    )
    trainer.initial_seed = AnemoiTrainer.__dict__["initial_seed"].func(trainer)
    return trainer


def check_legacy_output(y, x, v_out: list) -> None:
    """predict_step's output [B=1, E=1, N, V_out] float32, finite."""
    import torch

    n = x.shape[2]
    assert y.shape == (1, 1, n, len(v_out)) and y.dtype == torch.float32 and bool(torch.isfinite(y).all())


def compare(a, b) -> dict:
    d = (a.double() - b.double()).abs()
    return {
        "max_abs": float(d.max()),
        "max_rel": float((d / b.double().abs().clamp_min(1e-30)).max()),
        "bitwise_identical": tensor_equal(a, b),
    }


def normalised(y, norm, idx):
    """Physical output -> normalised units with the normaliser's buffers (columns idx)."""
    return y * norm._norm_mul[idx] + norm._norm_add[idx]


def max_abs_normalised(y, y18, norm, idx) -> float:
    return float((normalised(y, norm, idx).double() - normalised(y18, norm, idx).double()).abs().max())


def compare_to_018(y, y18, norm, idx, atol: str) -> dict:
    """compare() of two physical outputs, allclose (rtol 1e-5, atol) and the max |difference| in normalised units."""
    import torch

    yn, yn18 = normalised(y, norm, idx), normalised(y18, norm, idx)
    cmp = compare(y, y18)
    cmp[f"allclose_rtol1e-5_atol{atol}_normalised_units"] = bool(
        torch.allclose(yn.double(), yn18.double(), rtol=1e-5, atol=float(atol)))
    cmp["max_abs_normalised_units"] = max_abs_normalised(y, y18, norm, idx)
    return cmp


def legacy_versions(dists: tuple[str, ...]) -> dict:
    import importlib.metadata as md

    out = package_versions()
    for dist in dists:
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            out[dist] = None
    out["anemoi-datasets"] = "not installed (stub module for anemoi.training.data.datamodule's import)"
    return out


def legacy_checkpoint_doc(ckpt: Path, graph_file: str, inference_path: Path, training_version: str) -> dict:
    """File, graph file, archive, writer, pickle GLOBALs and zip members of a written checkpoint."""
    members = zip_members(ckpt)
    return {
        "file": ckpt.name,
        "graph_file": graph_file,
        "archive": members[0][0].split("/")[0],
        "written_by": f"anemoi-training {training_version} AnemoiCheckpoint._save_checkpoint "
        f"(as {inference_path.name}), copied",
        "pickle": pickle_globals(ckpt),
        "zip_members": members,
    }


def legacy_metadata_doc(md: dict, locations: dict) -> dict:
    return {
        "metadata_keys": sorted(md),
        "metadata_config_keys": sorted(md["config"]),
        "metadata_locations": locations,
        "data_indices": md["data_indices"],
    }


def legacy_predict_step_doc(signature: str, x, y, v_in: list, v_out: list, steps: str, output: str) -> dict:
    return {
        "signature": signature,
        "input_shape": list(x.shape),
        "output_shape": list(y.shape),
        "variables_in": v_in,
        "variables_out": v_out,
        "steps": steps,
        "output": output,
    }


def legacy_normaliser_doc(norm, interface) -> dict:
    """The normaliser's buffers and the statistics the interface pickles."""
    return {
        "normaliser": {
            "norm_mul": norm._norm_mul.tolist(),
            "norm_add": norm._norm_add.tolist(),
            "input_idx": norm._input_idx.tolist(),
            "output_idx": norm._output_idx.tolist(),
        },
        "pickled_statistics_after_remap": {k: np.asarray(v).tolist() for k, v in interface.statistics.items()},
    }


def report_legacy_variant(variant: str, ckpt: Path, lists: dict, vs_018: dict, t0: float) -> None:
    print(f"{variant}: {ckpt.stat().st_size} bytes, {len(lists['state_dict'])} state-dict tensors, "
          f"{len(lists['non_persistent_buffers'])} non-persistent buffers; vs 0.18: {json.dumps(vs_018)}; "
          f"{time.time() - t0:.1f} s")


def legacy_io_meta(generator: str, prefix: str, outputs: dict, doc_models: dict, versions: dict,
                   extra: dict | None = None) -> dict:
    """The io file's header (`extra` between layouts and equal_to_018)."""
    return {
        "generator": generator,
        "refs": {"input": LEGACY_REF_INPUT},
        "layouts": {
            "input": f"not stored: {LEGACY_REF_INPUT}:input [1, 2, N, 6] float32 physical, variables "
            "data.input.full; passed unchanged as predict_step's batch tensor",
            **{k: "[B=1, E=1, N=1600, V_out=6] float32 physical = predict_step(input) of "
               f"{prefix}-{k.split('_')[1]}.ckpt; variables data.output.full (z_500 t_850 2t sp tp cp)"
               for k in outputs},
        },
        **(extra or {}),
        "equal_to_018": {
            f"output_{v}": f"bit-identical to {v}.io.safetensors:output reshaped [1, 1, 1, N, 6] -> [1, 1, N, 6]"
            for v, m in doc_models.items()
            if m["compare_to_018"]["output"]["bitwise_identical"]
        },
        "versions": {k: v for k, v in versions.items() if k in ("torch", "anemoi-models", "anemoi-utils",
                                                                "anemoi-training", "python")},
    }


def write_legacy_io(path: Path, outputs: dict, meta: dict, written: dict) -> None:
    """save_safetensors, read back bit for bit."""
    save_safetensors(path, outputs, meta)
    written[path.name] = path
    stored, _ = read_safetensors(path)
    assert all(tensor_equal(stored[k], v) for k, v in outputs.items())


def legacy_doc_tail(stats: dict, base_seed_env: str, graph_checks: dict, notes: list, doc_models: dict,
                    io_name: str, io_meta: dict, outputs: dict, written: dict, sizes: dict) -> dict:
    """VERSIONS-<version>.json from "config" on."""
    return {
        "config": config_doc(stats, ANEMOI_BASE_SEED=base_seed_env),
        "determinism": "uuid4, datetime.now, time.time fixed inside the anemoi modules while they run; "
        "save_metadata's zip entries dated 1980-01-01 00:00:00; PYTHONHASHSEED=0",
        "graphs": graph_checks,
        "notes": notes,
        "models": doc_models,
        "io": {"file": io_name, **io_meta, "tensors": {k: [list(v.shape), "float32"] for k, v in outputs.items()}},
        "sha256": {n: sha256(q) for n, q in sorted(written.items())},
        "sizes": sizes,
    }


def legacy_parser(description: str, budget: int, variants_default: list | None = None,
                  variants_choices: list | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--out", default=str(DEFAULT_OUT))
    p.add_argument("--ref", default=str(DEFAULT_OUT), help="folder of the 0.18 checkpoint fixtures (input, outputs)")
    if variants_choices is not None:
        p.add_argument("--variants", nargs="+", default=variants_default, choices=variants_choices)
    add_run_options(p, budget)
    return p


def start_legacy_run(args, script: str, models_version: str, training_version: str) -> tuple:
    """anemoi-datasets stubbed, anemoi-models / anemoi-training / torch imported (a warning for other versions),
    torch seeded and single-threaded, the output folder made, the 0.18 fixtures' input read.  Returns
    (out_dir, ref_dir, x)."""
    stub_anemoi_datasets(script)
    import anemoi.models
    import anemoi.training
    import torch

    for mod, want in ((anemoi.models, models_version), (anemoi.training, training_version)):
        if getattr(mod, "__version__", None) != want:
            print(f"warning: {mod.__name__} {getattr(mod, '__version__', None)} (fixtures are made with {want})",
                  file=sys.stderr)
    torch.manual_seed(SEED)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    out_dir, ref_dir = Path(args.out), Path(args.ref)
    out_dir.mkdir(parents=True, exist_ok=True)

    ref_io, _ = read_safetensors(ref_dir / LEGACY_REF_INPUT)
    x = ref_io["input"]
    assert x.dtype == torch.float32 and x.shape[:2] == (1, MULTISTEP) and x.dim() == 4
    return out_dir, ref_dir, x


# ----------------------------------------------------------------------------------------------------------------
# on demand (--shape aifs-n320): an AIFS-single 1.0-shaped inference checkpoint, never committed
# ----------------------------------------------------------------------------------------------------------------
AIFS_SHAPE = "aifs-n320"
AIFS_DEFAULT_OUT = Path("/tmp/boreas-aifs-ckpt")
AIFS_DEFAULT_GRAPH = Path("/tmp/aifs-graph.safetensors")
AIFS_DATASET_NAME = "boreas-synthetic-aifs-n320-6h"
AIFS_STATS_SEED = 9101
AIFS_INPUT_SEED = 9102
AIFS_DATES = [datetime.datetime(2024, 6, 1, 6), datetime.datetime(2024, 6, 1, 12)]  # input steps t = 0, 1
BUILTIN_CONFIGS = REPO / "src" / "model" / "builtin_configs.cpp"
PRESSURE_LEVELS = [50, 100, 150, 200, 250, 300, 400, 500, 600, 700, 850, 925, 1000]
COMPUTED_FORCINGS = {  # name -> constant_in_time
    "cos_latitude": True, "sin_latitude": True, "cos_longitude": True, "sin_longitude": True,
    "cos_julian_day": False, "sin_julian_day": False, "cos_local_time": False, "sin_local_time": False,
    "insolation": False,
}
CONSTANT_FIELDS = ["lsm", "sdor", "slor", "z"]
ACCUMULATIONS = ["cp", "tp", "sf", "ro", "ssrd", "strd"]
# plausible ERA5-like climatology: per pressure level (hPa) mean / stdev
_PL = {
    "t": ({50: 211.0, 100: 206.0, 150: 211.0, 200: 218.0, 250: 226.0, 300: 234.0, 400: 248.0, 500: 259.0,
           600: 267.0, 700: 274.0, 850: 281.0, 925: 284.0, 1000: 288.0},
          {50: 10.0, 100: 9.0, 150: 8.0, 200: 8.0, 250: 8.5, 300: 9.0, 400: 10.0, 500: 10.5, 600: 11.0, 700: 11.5,
           850: 12.5, 925: 13.5, 1000: 15.0}),
    "z": ({50: 201900.0, 100: 158700.0, 150: 133400.0, 200: 115500.0, 250: 101600.0, 300: 89800.0, 400: 70500.0,
           500: 54600.0, 600: 41200.0, 700: 29500.0, 850: 14300.0, 925: 7550.0, 1000: 1080.0},
          {50: 5200.0, 100: 3600.0, 150: 3700.0, 200: 4000.0, 250: 4100.0, 300: 3900.0, 400: 3400.0, 500: 2700.0,
           600: 2200.0, 700: 1700.0, 850: 1200.0, 925: 1100.0, 1000: 1100.0}),
    "q": ({50: 2.6e-6, 100: 2.6e-6, 150: 4.0e-6, 200: 1.4e-5, 250: 4.0e-5, 300: 1.0e-4, 400: 3.4e-4, 500: 8.0e-4,
           600: 1.5e-3, 700: 2.4e-3, 850: 4.8e-3, 925: 6.7e-3, 1000: 8.6e-3}, None),
    "u": ({50: 4.0, 100: 9.0, 150: 14.0, 200: 15.0, 250: 15.0, 300: 13.5, 400: 10.5, 500: 8.0, 600: 6.3, 700: 5.0,
           850: 2.5, 925: 1.2, 1000: -0.3},
          {50: 13.0, 100: 14.0, 150: 16.5, 200: 18.0, 250: 19.0, 300: 18.0, 400: 15.0, 500: 12.0, 600: 10.5,
           700: 9.5, 850: 8.0, 925: 7.5, 1000: 6.0}),
    "w": (None, {50: 0.008, 100: 0.015, 150: 0.03, 200: 0.05, 250: 0.08, 300: 0.11, 400: 0.16, 500: 0.18,
                 600: 0.19, 700: 0.19, 850: 0.17, 925: 0.14, 1000: 0.08}),
}
# surface and other fields: mean, stdev, minimum, maximum
_SFC = {
    "10u": (-0.3, 5.5, -40.0, 40.0), "10v": (0.2, 4.6, -40.0, 40.0), "2d": (283.0, 15.0, 190.0, 310.0),
    "2t": (287.5, 15.8, 190.0, 330.0), "lsm": (0.34, 0.46, 0.0, 1.0), "msl": (101130.0, 1100.0, 91000.0, 108500.0),
    "sdor": (19.0, 45.0, 0.0, 880.0), "skt": (288.5, 17.0, 180.0, 350.0), "slor": (0.0033, 0.0078, 0.0001, 0.14),
    "sp": (97100.0, 9500.0, 48000.0, 108000.0), "tcw": (19.5, 16.5, 0.0, 90.0), "z": (3700.0, 8400.0, -990.0, 54000.0),
    "cp": (2.3e-4, 1.0e-3, 0.0, 0.12), "tp": (6.6e-4, 2.1e-3, 0.0, 0.25),
    "cos_latitude": (0.785, 0.22, 0.0, 1.0), "sin_latitude": (0.0, 0.58, -1.0, 1.0),
    "cos_longitude": (0.0, 0.707, -1.0, 1.0), "sin_longitude": (0.0, 0.707, -1.0, 1.0),
    "cos_julian_day": (0.0, 0.707, -1.0, 1.0), "sin_julian_day": (0.0, 0.707, -1.0, 1.0),
    "cos_local_time": (0.0, 0.707, -1.0, 1.0), "sin_local_time": (0.0, 0.707, -1.0, 1.0),
    "insolation": (0.25, 0.33, 0.0, 1.0), "100u": (0.0, 7.0, -50.0, 50.0), "100v": (0.2, 5.8, -50.0, 50.0),
    "hcc": (0.3, 0.4, 0.0, 1.0), "lcc": (0.38, 0.38, 0.0, 1.0), "mcc": (0.25, 0.35, 0.0, 1.0),
    "ro": (4.5e-5, 4.0e-4, 0.0, 0.1), "sf": (5.6e-5, 2.9e-4, 0.0, 0.05), "ssrd": (4.3e6, 5.6e6, 0.0, 2.6e7),
    "stl1": (289.0, 16.0, 210.0, 345.0), "stl2": (288.5, 15.5, 215.0, 335.0), "strd": (7.2e6, 1.7e6, 1.5e6, 1.15e7),
    "swvl1": (0.19, 0.17, 0.0, 0.77), "swvl2": (0.19, 0.17, 0.0, 0.77), "tcc": (0.65, 0.35, 0.0, 1.0),
}
POSITIVE = {"tcw", "sdor", "slor"}  # besides q_*: input fields kept > 0 (log-normal)


def aifs_builtin(shape: str = AIFS_SHAPE) -> dict:
    """Boreas' built-in config `shape` read from src/model/builtin_configs.cpp (the one place it is defined)."""
    import re
    import textwrap

    import yaml

    src = BUILTIN_CONFIGS.read_text()
    raw = dict(re.findall(r'constexpr const char\* (\w+) = R"yaml\((.*?)\)yaml";', src, re.S))
    data_text = raw["kAifsData"]
    for key, value in re.findall(r'\{"(VARIABLES|FORCING|DIAGNOSTIC)", "(\[[^"]*\])"\}', src):
        data_text = data_text.replace(key, value, 1)
    data = yaml.safe_load(data_text)
    bounding = yaml.safe_load(textwrap.dedent(raw["kAifsBounding"]))["bounding"]
    m = re.search(r'\{"' + re.escape(shape) + r'", aifs_shaped\(\{"(?:[^"\\]|\\.)*",\s*(\d+), (\d+), (\d+), (\d+), '
                  r'(\d+), "(\w+)", "(\w+)"\}\)\}', src)
    if m is None:
        raise SystemExit(f"error: built-in config {shape!r} not found in {BUILTIN_CONFIGS}")
    channels, heads, layers, chunks, window = map(int, m.groups()[:5])
    template = re.search(r'std::string aifs_shaped\(.*?return fmt::format\(R"yaml\((.*?)\)yaml"', src, re.S).group(1)

    def num(pattern, kind=int):
        return kind(re.search(pattern, template).group(1))

    out = {
        "variables": [str(v) for v in data["data"]["variables"]],
        "forcing": [str(v) for v in data["data"]["forcing"]],
        "diagnostic": [str(v) for v in data["data"]["diagnostic"]],
        "normaliser": {k: ([str(x) for x in v] if isinstance(v, list) else v) for k, v in data["data"]["normalizer"].items()},
        "multistep_input": int(data["training"]["multistep_input"]),
        "bounding": bounding,
        "channels": channels, "heads": heads, "layers": layers, "chunks": chunks, "window": window,
        "data_grid": m.group(6), "hidden_grid": m.group(7),
        "mlp_hidden_ratio": num(r"mlp_hidden_ratio: (\d+)"),
        "trainable": num(r"trainable_parameters: \{\{data: (\d+)"),
        "cutoff_factor": num(r"cutoff_factor: ([\d.]+)", float),
        "knn": num(r"num_nearest_neighbours: (\d+)"),
        "mapper_chunks": num(r"GraphTransformerForwardMapper, .*?num_chunks: (\d+)"),
    }
    v = out["variables"]
    assert len(v) == len(set(v)) and set(out["forcing"]) <= set(v) and set(out["diagnostic"]) <= set(v)
    assert out["multistep_input"] == MULTISTEP
    return out


def aifs_variables_metadata(variables: list[str]) -> dict:
    """anemoi-datasets style variables_metadata of an ERA5 recipe (MARS requests, accumulations, computed forcings)."""
    out = {}
    for v in variables:
        if v in COMPUTED_FORCINGS:
            out[v] = {"computed_forcing": True, "constant_in_time": COMPUTED_FORCINGS[v]}
            continue
        param, _, level = v.partition("_")
        if level:
            mars = {"param": param, "levelist": int(level), "levtype": "pl"}
        else:
            mars = {"param": v, "levtype": "sfc"}
        mars.update({"class": "ea", "stream": "oper", "type": "fc" if v in ACCUMULATIONS else "an"})
        out[v] = {"mars": mars}
        if v in CONSTANT_FIELDS:
            out[v]["constant_in_time"] = True
        if v in ACCUMULATIONS:
            out[v].update({"process": "accumulation", "period": [0, 6]})
    return out


def aifs_base_stats(v: str) -> tuple[float, float, float, float]:
    if v in _SFC:
        return _SFC[v]
    param, _, level = v.partition("_")
    lev = int(level)
    means, stds = _PL[param if param != "v" else "u"]
    if param == "q":
        mean = means[lev]
        return mean, 1.1 * mean, 0.0, mean + 12.0 * 1.1 * mean
    if param == "v":
        std = 0.6 * stds[lev]
        return 0.02, std, -8.0 * std, 8.0 * std
    if param == "w":
        std = stds[lev]
        return 0.005, std, -20.0 * std, 20.0 * std
    mean, std = means[lev], stds[lev]
    return mean, std, mean - 6.0 * std, mean + 6.0 * std


def aifs_statistics(variables: list[str]) -> dict[str, np.ndarray]:
    """Seeded float64 mean/stdev/minimum/maximum in dataset order: the climatology above, mean and stdev perturbed
    by 1 % so that they are not round numbers (bounds kept)."""
    rng = np.random.default_rng(AIFS_STATS_SEED)
    s = np.array([aifs_base_stats(v) for v in variables], dtype=np.float64)
    s[:, :2] *= 1.0 + 0.01 * rng.standard_normal((len(variables), 2))
    stats = {k: np.ascontiguousarray(s[:, i]) for i, k in enumerate(("mean", "stdev", "minimum", "maximum"))}
    assert (stats["stdev"] > 0).all() and (stats["maximum"] > stats["minimum"]).all() and (stats["maximum"] > 0).all()
    return stats


def reduced_gaussian_grid(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(latitudes, longitudes) float64 degrees of the classic reduced Gaussian grid N<n> (row lengths from ecCodes'
    reduced_gg_pl_<n>_grib2 sample, as Boreas), rows north -> south, longitudes 0 .. 360 (exclusive)."""
    import eccodes

    h = eccodes.codes_grib_new_from_samples(f"reduced_gg_pl_{n}_grib2")
    try:
        pl = np.asarray(eccodes.codes_get_array(h, "pl"), dtype=np.int64)
    finally:
        eccodes.codes_release(h)
    assert pl.size == 2 * n
    roots, _ = np.polynomial.legendre.leggauss(2 * n)
    row_lat = np.degrees(np.arcsin(roots))[::-1]
    return np.repeat(row_lat, pl), np.concatenate([360.0 * np.arange(m) / m for m in pl])


def aifs_spec(builtin: dict) -> Spec:
    b = builtin
    assert b["data_grid"].startswith("N"), b["data_grid"]
    model = anemoi_config("transformer")["model"]
    model["num_channels"] = b["channels"]
    model["trainable_parameters"] = {k: b["trainable"] for k in model["trainable_parameters"]}
    model["processor"].update(num_layers=b["layers"], num_chunks=b["chunks"], num_heads=b["heads"],
                              window_size=b["window"], mlp_hidden_ratio=b["mlp_hidden_ratio"], softcap=0.0)
    for part in ("encoder", "decoder"):
        model[part].update(num_heads=b["heads"], mlp_hidden_ratio=b["mlp_hidden_ratio"], num_chunks=b["mapper_chunks"],
                           trainable_size=b["trainable"])
    model["bounding"] = copy.deepcopy(b["bounding"])
    model["output_mask"] = {"_target_": "anemoi.training.utils.masks.NoOutputMask"}
    n = int(b["data_grid"][1:])
    return Spec(
        label=AIFS_SHAPE,
        processor="transformer",
        model=model,
        variables=list(b["variables"]),
        forcing=list(b["forcing"]),
        diagnostic=list(b["diagnostic"]),
        normaliser=copy.deepcopy(b["normaliser"]),
        variables_metadata=aifs_variables_metadata(b["variables"]),
        dataset_name=AIFS_DATASET_NAME,
        resolution=b["data_grid"].lower(),
        grid=lambda: reduced_gaussian_grid(n),
        reference=False,
    )


def computed_forcing(v: str, lat: np.ndarray, lon: np.ndarray, date: datetime.datetime) -> np.ndarray:
    """anemoi-datasets' computed forcings (lat/lon in radians), insolation as the clipped cosine of the solar
    zenith angle (simple declination / hour-angle formula)."""
    jd = (date - datetime.datetime(date.year, 1, 1)).total_seconds() / 86400.0
    local = (date.hour + date.minute / 60.0 + np.degrees(lon) / 15.0) % 24.0
    if v == "insolation":
        decl = np.radians(-23.44) * np.cos(2 * np.pi * (jd + 10.0) / 365.25)
        hour_angle = 2 * np.pi * (local - 12.0) / 24.0
        return np.maximum(0.0, np.sin(lat) * np.sin(decl) + np.cos(lat) * np.cos(decl) * np.cos(hour_angle))
    fn, what = v.split("_", 1)
    arg = {"latitude": lat, "longitude": lon, "julian_day": 2 * np.pi * jd / 365.25 + 0 * lat,
           "local_time": 2 * np.pi * local / 24.0}[what]
    return (np.cos if fn == "cos" else np.sin)(arg)


def make_aifs_input(lat: np.ndarray, lon: np.ndarray, v_in: list[str], stats: dict, variables: list[str]) -> np.ndarray:
    """[1, T=2, N, V_in] float32 physical fields: smooth seeded patterns around the statistics' mean with about
    0.8 stdev amplitude (log-normal for q and positive fields, logistic for [0, 1] fields, clipped to [min, max]),
    the second step the first plus 0.3 x another pattern; constants equal in both steps; computed forcings exact
    for AIFS_DATES (lat/lon in radians)."""
    rng = np.random.default_rng(AIFS_INPUT_SEED)
    n = lat.size
    x = np.empty((1, MULTISTEP, n, len(v_in)), dtype=np.float32)

    def smooth():
        f = np.zeros(n)
        for _ in range(8):
            m, k = rng.integers(0, 9), rng.integers(0, 9)
            f += rng.normal() * np.cos(m * lon + rng.uniform(0, 2 * np.pi)) * np.cos(k * lat + rng.uniform(0, 2 * np.pi))
        f += 0.05 * rng.normal(size=n)
        return (f - f.mean()) / f.std()

    for j, v in enumerate(v_in):
        i = variables.index(v)
        mean, std, lo, hi = (float(stats[k][i]) for k in ("mean", "stdev", "minimum", "maximum"))
        if v in COMPUTED_FORCINGS:
            for t, date in enumerate(AIFS_DATES):
                x[0, t, :, j] = computed_forcing(v, lat, lon, date)
            continue
        steps = [smooth()]
        if v not in CONSTANT_FIELDS:
            steps.append(steps[0] + 0.3 * smooth())
        for t in range(MULTISTEP):
            f = steps[min(t, len(steps) - 1)]
            if v.startswith("q_") or v in POSITIVE:
                y = mean * np.exp(0.35 * f)
            elif lo == 0.0 and hi == 1.0 or v.startswith("swvl"):
                y = lo + (hi - lo) / (1.0 + np.exp(-(2.5 * f + np.log(mean / (hi - mean)))))
            else:
                y = mean + 0.8 * std * f
            x[0, t, :, j] = np.clip(y, lo, hi)
    assert np.isfinite(x).all()
    return x


def pickle_opcode_counts(path: Path) -> dict:
    """Total GLOBAL / persistent-id / opcode counts of <archive>/data.pkl."""
    with zipfile.ZipFile(path) as z:
        (pkl,) = [n for n in z.namelist() if n.endswith("/data.pkl")]
        data = z.read(pkl)
    counts: dict[str, int] = {}
    for op, _, _ in pickletools.genops(data):
        counts[op.name] = counts.get(op.name, 0) + 1
    return {"opcodes_total": sum(counts.values()), "GLOBAL": counts.get("GLOBAL", 0),
            "BINPERSID": counts.get("BINPERSID", 0), "REDUCE": counts.get("REDUCE", 0), "BUILD": counts.get("BUILD", 0)}


def main_aifs(args) -> int:
    """--shape aifs-n320: write DIR/aifs-n320.ckpt, DIR/input.safetensors and DIR/aifs-n320.json."""
    import resource

    t_start = time.time()
    import_anemoi_training([args.anemoi_training, args.lightning])
    import torch
    from anemoi.utils.checkpoints import load_metadata

    torch.manual_seed(SEED)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    out_dir = Path(args.out or AIFS_DEFAULT_OUT).resolve()
    if out_dir == REPO or REPO in out_dir.parents:
        print(f"error: {out_dir} is inside the repository; the AIFS-size files (~1.5 GB) are never committed",
              file=sys.stderr)
        return 1
    out_dir.mkdir(parents=True, exist_ok=True)
    timings = {}

    b = aifs_builtin()
    graph_path = Path(args.graph or AIFS_DEFAULT_GRAPH)
    graph_cmd = [args.boreas, "graph", "build", "--data-grid", b["data_grid"], "--hidden-grid", b["hidden_grid"],
                 "--cutoff-factor", str(b["cutoff_factor"]), "-k", str(b["knn"]), "-o", str(graph_path)]
    if not graph_path.exists():
        t0 = time.time()
        print("building the graph:", " ".join(graph_cmd))
        subprocess.run(graph_cmd, check=True, stdout=subprocess.DEVNULL)
        timings["graph_build_s"] = round(time.time() - t0, 1)
    t0 = time.time()
    tensors, gmeta = read_boreas_graph(graph_path)
    grids = {s: m.get("grid") for s, m in gmeta["nodes"].items()}
    assert grids == {"data": b["data_grid"], "hidden": b["hidden_grid"]}, f"{graph_path}: grids {grids}"
    builders = {k: m.get("builder", {}) for k, m in gmeta["edges"].items()}
    assert builders["data_to_hidden"].get("cutoff_factor") == b["cutoff_factor"], builders
    assert builders["hidden_to_data"].get("k") == b["knn"], builders
    graph = heterodata_from_boreas(tensors, gmeta)
    check_boreas_graph(tensors, gmeta, graph)
    del tensors
    timings["graph_convert_s"] = round(time.time() - t0, 1)

    spec = aifs_spec(b)
    stats = aifs_statistics(spec.variables)
    ckpt = out_dir / f"{AIFS_SHAPE}.ckpt"
    t0 = time.time()
    with tempfile.TemporaryDirectory(dir=out_dir) as tmpd:
        r = build_variant(spec, graph, str(graph_path), {k: v.copy() for k, v in stats.items()}, Path(tmpd))
        os.replace(r["inference_path"], ckpt)
    ckpt.chmod(0o644)
    timings["build_and_save_s"] = round(time.time() - t0, 1)
    interface = r["interface"]
    n_params = sum(p.numel() for p in interface.model.parameters())
    print(f"{ckpt}: {ckpt.stat().st_size} bytes, {n_params} parameters, {timings['build_and_save_s']} s")

    # ---- the physical input
    t0 = time.time()
    di = interface.data_indices["data"]
    v_in = [spec.variables[i] for i in di.data.input.full.tolist()]
    v_out = [spec.variables[i] for i in di.data.output.full.tolist()]
    lat = graph["data"].x[:, 0].double().numpy()
    lon = graph["data"].x[:, 1].double().numpy()
    x = make_aifs_input(lat, lon, v_in, stats, spec.variables)
    input_path = out_dir / "input.safetensors"
    save_safetensors(input_path, {"input": torch.from_numpy(x)}, {
        "shape": AIFS_SHAPE,
        "checkpoint": ckpt.name,
        "layout": f"[B=1, T={MULTISTEP}, N={lat.size}, V_in={len(v_in)}] float32 physical units = predict_step's "
        "batch['data']; t = 0 is the older step",
        "variables": v_in,
        "dates": [d.isoformat() for d in AIFS_DATES],
        "input_seed": AIFS_INPUT_SEED,
        "expected_output": None,
        "expected_output_note": "not written: anemoi's SDPA sliding-window attention on the CPU builds a dense "
        "[40320, 40320] mask and computes all 40320^2 scores per head (~1e14 flop over 16 layers)",
    })
    timings["input_s"] = round(time.time() - t0, 1)

    # ---- checks: metadata and supporting arrays back, the pickle reloads (mmap) with the same state dict
    t0 = time.time()
    md, arrays = load_metadata(str(ckpt), supporting_arrays=True)
    assert md["dataset"]["data"]["variables"] == spec.variables and md["data_indices"]
    lats, lons = spec.grid()
    assert np.array_equal(arrays["data"]["latitudes"], lats) and np.array_equal(arrays["data"]["longitudes"], lons)
    if not args.no_reload:
        loaded = torch.load(ckpt, map_location="cpu", weights_only=False, mmap=True)
        sd_l, sd = loaded.state_dict(), interface.state_dict()
        assert list(sd_l) == list(sd) and all(tensor_equal(sd_l[k], sd[k]) for k in sd), "reloaded state dict differs"
        del loaded, sd_l
        timings["reload_check_s"] = round(time.time() - t0, 1)

    members = zip_members(ckpt)
    pick = pickle_globals(ckpt)
    doc = {
        "generator": f"tools/reference/make_checkpoint_fixtures.py --shape {AIFS_SHAPE}",
        "environment": versions(),
        "builtin_config": {k: v for k, v in b.items() if k not in ("variables", "forcing", "diagnostic", "bounding")},
        "graph": {"file": str(graph_path), "command": " ".join(graph_cmd), "nodes": {s: m["count"] for s, m in gmeta["nodes"].items()},
                  "edges": {k: m["count"] for k, m in gmeta["edges"].items()}},
        "files": {p.name: p.stat().st_size for p in (ckpt, input_path)},
        "archive": members[0][0].split("/")[0],
        "zip_members": len(members),
        "pickle": {"member": pick["member"], "protocol": pick["protocol"], "bytes": pick["bytes"],
                   "distinct_globals": len(pick["globals"]), **pickle_opcode_counts(ckpt), "globals": pick["globals"]},
        "parameters": n_params,
        "state_dict_tensors": len(interface.state_dict()),
        "weights": "anemoi's own initialisation (torch defaults) after torch.manual_seed(0)",
        "variables": spec.variables, "forcing": spec.forcing, "diagnostic": spec.diagnostic,
        "variables_in": v_in, "variables_out": v_out,
        "statistics": {k: v.tolist() for k, v in stats.items()},
        "metadata_inference": md.get("metadata_inference"),
        "timings": timings,
        "max_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "total_s": round(time.time() - t_start, 1),
    }
    (out_dir / f"{AIFS_SHAPE}.json").write_text(_json_text(doc))
    print(f"input {input_path.stat().st_size} bytes; pickle {pick['bytes']} bytes, {doc['pickle']['GLOBAL']} GLOBAL "
          f"({len(pick['globals'])} distinct); peak RSS {doc['max_rss_mib']} MiB; {doc['total_s']} s")
    return 0


# ----------------------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Build anemoi inference checkpoints of the tiny model for Boreas.")
    p.add_argument("--shape", choices=["tiny", AIFS_SHAPE], default="tiny", help=f"tiny: the committed fixtures; "
                   f"{AIFS_SHAPE}: one AIFS-single 1.0-shaped checkpoint + input on demand (never committed)")
    p.add_argument("--out", default=None, help=f"default {DEFAULT_OUT.relative_to(REPO)} (tiny), {AIFS_DEFAULT_OUT} "
                   f"({AIFS_SHAPE}), {ON_DEMAND_DEFAULT_OUT} (tiny, --variants {' '.join(ON_DEMAND_VARIANTS)})")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=[*VARIANTS, *ON_DEMAND_VARIANTS],
                   help=f"tiny: default {' '.join(VARIANTS)} (the committed fixtures); "
                   f"{', '.join(ON_DEMAND_VARIANTS)} only on request and only into an --out outside the repository "
                   "(tests/data's fixture size budget is full): not committed")
    p.add_argument("--graph", default=None, help=f"{AIFS_SHAPE}: Boreas graph file (default {AIFS_DEFAULT_GRAPH}; "
                   "built with --boreas if missing)")
    p.add_argument("--boreas", default=str(REPO / "build" / "cpu-release" / "boreas"), help="the boreas binary")
    p.add_argument("--no-reload", action="store_true", help=f"{AIFS_SHAPE}: skip the torch.load check")
    p.add_argument("--anemoi-training", default="/tmp/atw/src", help="unpacked anemoi-training 0.16.0 (+ timm) wheels")
    p.add_argument("--lightning", default="/tmp/atw/pl/src", help="unpacked pytorch-lightning, torchmetrics, "
                   "lightning-utilities, torchinfo wheels (kept apart: make_training_fixtures.py must not see them)")
    add_run_options(p, SIZE_BUDGET_BYTES)
    args = parse_run_args(p, argv)
    if args.shape == AIFS_SHAPE:
        return main_aifs(args)
    variants = {v: var for v, var in {**VARIANTS, **ON_DEMAND_VARIANTS}.items() if v in args.variants}
    on_demand = sorted(set(variants) & set(ON_DEMAND_VARIANTS))
    if args.out is None:
        args.out = str(ON_DEMAND_DEFAULT_OUT if on_demand else DEFAULT_OUT)
    out_resolved = Path(args.out).resolve()
    if on_demand and (out_resolved == REPO or REPO in out_resolved.parents):
        print(f"error: {out_resolved} is inside the repository; {on_demand} are never committed (the fixture size "
              f"budget of tests/data is full): use an --out outside it, e.g. {ON_DEMAND_DEFAULT_OUT}", file=sys.stderr)
        return 1
    t_start = time.time()

    import_anemoi_training([args.anemoi_training, args.lightning])
    import torch
    from anemoi.utils.checkpoints import load_metadata

    torch.manual_seed(SEED)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    if Path(EVIL_MARKER).exists():
        print(f"error: {EVIL_MARKER} exists before the run; remove it first", file=sys.stderr)
        return 1

    stats = make_statistics()
    first_io = None
    written: dict[str, Path] = {}
    doc_models: dict = {}
    graph_checks: dict = {}
    with tempfile.TemporaryDirectory() as tmpd:
        tmp = Path(tmpd)
        for variant, var in variants.items():
            t0 = time.time()
            graph, _, gmeta = load_graph(var["graph"], tmp, graph_checks)
            graph_file = f"tests/data/graphs/{var['graph']}.safetensors"
            r = build_variant(tiny_spec(variant), graph, graph_file, {k: v.copy() for k, v in stats.items()}, tmp)
            interface = r["interface"]
            ckpt = copy_checkpoint(r["inference_path"], out_dir / f"{variant}.ckpt", written)

            # ---- reference tensors
            di = interface.data_indices["data"]
            v_in, v_out = io_variables(di)
            lat = graph["data"].x[:, 0].double().numpy()
            lon = graph["data"].x[:, 1].double().numpy()
            x = torch.from_numpy(make_physical_input(lat, lon, v_in))
            with torch.no_grad():
                y = interface.predict_step({"data": x.clone()})["data"]
                y2 = interface.predict_step({"data": x.clone()})["data"]
                x_n = interface.pre_processors["data"](x[:, 0:MULTISTEP, None, ...], in_place=False)
                y_n = interface.model.forward({"data": x_n.clone()})["data"]
                y_post = interface.post_processors["data"](y_n.clone(), in_place=False)
            assert tensor_equal(y, y2), "predict_step is not deterministic"
            assert tensor_equal(y_post, y), "post_processors(forward(pre_processors(x))) != predict_step(x)"
            n = x.shape[2]
            assert y.shape == (1, 1, 1, n, len(v_out)) and y_n.shape == y.shape and x_n.shape == (1, MULTISTEP, 1, n, len(v_in))
            assert bool(torch.isfinite(y).all())

            norm = interface.pre_processors["data"].processors["normalizer"]
            io_meta = {
                "variant": variant,
                "checkpoint": ckpt.name,
                "layouts": {
                    "input": f"[B=1, T=2, N={n}, V_in={len(v_in)}] float32 physical units = predict_step's batch['data'] "
                    f"(batch, time, grid, variables); variables = data.input.full in dataset order: {v_in}; t = 0 is the "
                    "older step",
                    "input_normalised": f"[1, 2, E=1, {n}, {len(v_in)}] pre_processors['data'](input[:, 0:2, None], "
                    "in_place=False): what the model's forward receives",
                    "output_normalised": f"[1, n_step_output=1, E=1, {n}, V_out={len(v_out)}] raw model forward on "
                    f"input_normalised (residual + boundings included, before post-processing); variables = model "
                    f"output order = data.output.full: {v_out}",
                    "output": f"[1, 1, 1, {n}, {len(v_out)}] predict_step({{'data': input}})['data'] = "
                    "post_processors['data'](output_normalised, in_place=False): physical units",
                },
                "normaliser": {
                    "config": NORMALISER,
                    "forward": "x * norm_mul[idx] + norm_add[idx] (idx = data.input.full)",
                    "inverse": "(y - norm_add[idx]) / norm_mul[idx] (idx = data.output.full)",
                },
                "versions": {k: v for k, v in versions().items() if k in ("torch", "anemoi-models", "anemoi-utils", "anemoi-training", "python")},
            }
            io_tensors = {"input": x.contiguous(), "input_normalised": x_n.contiguous(),
                          "output_normalised": y_n.contiguous(), "output": y.contiguous()}
            # input and input_normalised are the same for every variant: input_normalised is stored once
            io_path = out_dir / f"{variant}.io.safetensors"
            if first_io is None:
                first_io = (io_path.name, io_tensors)
                io_meta["refs"] = {}
            else:
                assert tensor_equal(first_io[1]["input"], x), "inputs differ between variants"
                assert tensor_equal(first_io[1]["input_normalised"], x_n), "normalised inputs differ between variants"
                del io_tensors["input_normalised"]
                io_meta["refs"] = {"input_normalised": first_io[0]}
            io_meta["refs_note"] = "a tensor named in refs is stored (bit-identical) in that file instead"
            save_safetensors(io_path, io_tensors, io_meta)
            written[io_path.name] = io_path

            # ---- reload checks
            loaded = reload_checkpoint(ckpt)
            with torch.no_grad():
                y_l = loaded.predict_step({"data": x.clone()})["data"]
            assert tensor_equal(y_l, y), "reloaded checkpoint does not reproduce output bit for bit"
            md, arrays = load_metadata(str(ckpt), supporting_arrays=True)
            check_metadata(md, r["metadata"], fresh_uuid=True)
            assert load_metadata(str(ckpt)) == md
            for k, a in r["supporting_arrays"]["data"].items():
                assert arrays["data"][k].dtype == np.float64 and np.array_equal(arrays["data"][k], a), k
            stored_io, _ = read_safetensors(io_path)
            assert tensor_equal(stored_io["output"], y)

            members = zip_members(ckpt)
            archive = members[0][0].split("/")[0]
            lists = tensor_list(interface)
            doc_models[variant] = {
                "file": ckpt.name,
                "io_file": io_path.name,
                "graph_file": graph_file,
                "archive": archive,
                "written_by": f"anemoi-training {ANEMOI_TRAINING_VERSION} AnemoiCheckpoint._save_checkpoint "
                f"(as {r['inference_path'].name}), copied",
                "pickle": pickle_globals(ckpt),
                "zip_members": members,
                "metadata_member": f"{archive}/anemoi-metadata/anemoi.json",
                "supporting_arrays_paths": md["supporting_arrays_paths"],
                "metadata_keys": sorted(md),
                "metadata_inference": md["metadata_inference"],
                "data_indices": md["data_indices"],
                "predict_step": {
                    "signature": "AnemoiModelInterface.predict_step(batch: dict[str, Tensor], model_comm_group=None, "
                    "gather_out=True, **kwargs) -> dict[str, Tensor]",
                    "input_shape": list(x.shape),
                    "output_shape": list(y.shape),
                    "variables_in": v_in,
                    "variables_out": v_out,
                    "steps": "x = batch[:, 0:n_step_input, None]; x = pre_processors(x, in_place=False); "
                    "y = model.forward({'data': x}); y = post_processors(y, in_place=False)",
                },
                "normaliser": {
                    "norm_mul": norm._norm_mul.tolist(),
                    "norm_add": norm._norm_add.tolist(),
                    "note": "float32 buffers over all 8 dataset variables (after the cp <- tp remap); the pre and "
                    "post processors share them (the same tensors in the pickle)",
                },
                "weights_init": r["weights_init"],
                "state_dict_equals": f"tests/data/model/{variant}.weights.safetensors under the prefix 'model.' "
                "(plus pre_processors.* / post_processors.* normaliser buffers)",
                **lists,
            }
            print(f"{variant}: {ckpt.stat().st_size} bytes, archive {archive!r}, {len(lists['state_dict'])} state-dict "
                  f"tensors, {len(lists['non_persistent_buffers'])} non-persistent buffers, {time.time() - t0:.1f} s")
            if variant == "transformer":
                # The first STATE_DICT_ENTRIES entries of state_dict() (with its _metadata): a plain
                # state-dict file as torch.save writes one, kept small for the fixture budget.
                sd_path = out_dir / "state_dict.ckpt"
                full = interface.state_dict()
                ref = collections.OrderedDict(list(full.items())[:STATE_DICT_ENTRIES])
                ref._metadata = full._metadata
                torch.save(ref, sd_path)
                sd_path.chmod(0o644)
                written[sd_path.name] = sd_path
                reloaded = torch.load(sd_path, map_location="cpu", weights_only=True)
                assert list(reloaded) == list(ref) and all(tensor_equal(reloaded[k], ref[k]) for k in ref)
                doc_state_dict = {
                    "file": sd_path.name,
                    "what": f"torch.save of the first {STATE_DICT_ENTRIES} entries of <transformer "
                    "AnemoiModelInterface>.state_dict() (an OrderedDict with its _metadata attribute), loadable with "
                    "torch.load(weights_only=True)",
                    "archive": zip_members(sd_path)[0][0].split("/")[0],
                    "pickle": pickle_globals(sd_path),
                    "zip_members": zip_members(sd_path),
                    "state_dict": f"= the first {STATE_DICT_ENTRIES} entries of models.transformer.state_dict (same "
                    "names, shapes, dtypes, order, values)",
                }

        # ---- evil.ckpt (with the transformer's state_dict.ckpt: the committed set, not the on-demand variants)
        extra_docs = {}
        if "transformer" in variants:
            extra_docs["state_dict_ckpt"] = doc_state_dict
            evil = out_dir / "evil.ckpt"
            evil_info = write_evil(evil, tmp)
            written[evil.name] = evil
            refused = None
            try:
                torch.load(evil, map_location="cpu", weights_only=True)
            except Exception as exc:  # the weights-only unpickler must refuse os.system
                lines = [ln.strip() for ln in str(exc).splitlines() if "GLOBAL" in ln or "global" in ln]
                refused = f"{type(exc).__name__}: {(lines or str(exc).splitlines())[0][:200]}"
            assert refused is not None, "torch.load(weights_only=True) accepted evil.ckpt"
            assert not Path(EVIL_MARKER).exists(), "the evil pickle was executed"
            evil_globals = pickle_globals(evil)
            assert "os system" in evil_globals["globals"]
            extra_docs["evil_ckpt"] = {
                "file": evil.name,
                **evil_info,
                "pickle": evil_globals,
                "zip_members": zip_members(evil),
                "zip_writer": "Python zipfile, ZIP_STORED, dates 1980-01-01, every record's data 64-byte aligned via an "
                "'FB' local extra field (as torch); the other members are copied from torch.save of {'weight': arange(4) + 0.5}",
                "torch_load_weights_only_true": refused,
                "marker_file": EVIL_MARKER,
            }

    # ---- VERSIONS.json
    sizes = file_sizes(written)
    doc = {
        "generator": "tools/reference/make_checkpoint_fixtures.py",
        "environment": versions(),
        "anemoi_training_code_followed": f"anemoi-training {ANEMOI_TRAINING_VERSION}: diagnostics/callbacks/"
        "checkpoint.py AnemoiCheckpoint._save_checkpoint (run), train/train.py AnemoiTrainer.metadata (run), "
        "data/datamodule.py fill_metadata + data_indices (run), tasks/base.py fill_metadata (run), "
        "train/methods/base.py BaseTrainingModule.__init__ via SingleTraining (run)",
        "config": config_doc(stats, input_seed=INPUT_SEED, base_seed=BASE_SEED),
        "determinism": "uuid4, datetime.now/utcnow, time.time fixed inside the anemoi modules while they run; "
        "save_metadata's zip entries dated 1980-01-01 00:00:00; torch's entries carry the zero DOS date",
        "graphs": graph_checks,
        "notes": NOTES,
        "models": doc_models,
        **extra_docs,
        "sha256": {n: sha256(p) for n, p in sorted(written.items())},
        "sizes": sizes,
    }
    vpath = out_dir / "VERSIONS.json"
    write_versions_json(vpath, doc, sizes)
    total = print_sizes(written, vpath, sizes, out_dir, t_start, 32)
    stray = sorted(q.name for q in out_dir.iterdir() if q.name not in written and q.name != "VERSIONS.json")
    if stray:
        print(f"warning: other files in {out_dir}: {stray}", file=sys.stderr)
    if not on_demand and over_budget(total, args.budget):  # the on-demand variants are never committed
        return 1
    if args.check_rerun:
        rerun_args = ["--anemoi-training", args.anemoi_training, "--lightning", args.lightning, "--budget", "0",
                      "--variants", *variants]
        return second_run(__file__, out_dir, [*written, "VERSIONS.json"], rerun_args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

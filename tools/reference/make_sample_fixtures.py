#!/usr/bin/env python3
"""What anemoi-training's own training dataset yields from tests/data/datasets/o16.zarr, for Boreas' sampler /
loader tests: valid anchors, the order of samples per DDP replica and per DataLoader worker, every sample's bytes
(SHA-256) and a few exact values, the normalised samples, and the seed semantics needed to reproduce the order.

Run from the repository root with the reference environment and the unpacked anemoi-training 0.16.0 and Lightning
wheels of README.md ("Checkpoint fixtures"; nothing of anemoi-training is installed):

    .venv-ref/bin/python tools/reference/make_sample_fixtures.py [--out tests/data/datasets/samples.json] \
        [--anemoi-training /tmp/atw/src] [--lightning /tmp/atw/pl/src] [--check-rerun]  # about 40 s of CPU

The script hides any GPU, uses one thread and removes ANEMOI_BASE_SEED and SLURM_JOB_ID from the environment, so
anemoi-training's base seed is its default 42.  anemoi.training.diagnostics.callbacks becomes a namespace package
over its real directory (its __init__ imports timm/torchvision through the plotting callbacks; only
callbacks/plot_adapter.py is imported, by the Forecaster task).

Why
---
Boreas' C++ data loader must hand the trainer the same samples, in the same order, as anemoi-training: the
fixture pins (1) which windows are valid around the missing date, (2) how the shuffled order is drawn and split
across replicas and workers, (3) the bytes of each sample and of its normalised form.

What runs (anemoi-training 0.16.0's own code, as AnemoiTrainer would run it)
-----------------------------------------------------------------------------
  * config: anemoi-training's config/config.yaml composed with Hydra, then data.datasets.data forcing
    [cos_latitude, lsm], diagnostic [tp, cp], the normaliser config NORMALISER_CONFIG, dataloader.training
    dataset_config.dataset = the store (relative path), frequency 6h, start null, end 2024, task.multistep_input 2,
    task.timestep 6h, task.rollout {start: R, epoch_increment: 0, maximum: R} for R = 1 and 2; validated with
    BaseSchema and converted back (config_validation: true, as by default).
  * the task: hydra instantiate(config.task) = anemoi.training.tasks.Forecaster (AnemoiTrainer.task);
    the datamodule: AnemoiDatasetsDataModule(config, task) (AnemoiTrainer.datamodule); the dataset: its
    ds_train = MultiDataset({"data": NativeGridDataset}) (data/multidataset.py, data/data_reader.py).
  * epoch > 0: datamodule.set_epoch(epoch) (what BaseTrainingModule.on_train_epoch_end calls).
  * replicas / reader groups: MultiDataset.set_comm_group_info with the arguments DDPGroupStrategy.process_dataloader
    passes (distributed/groups.py get_my_model_comm_group, get_my_reader_group; shard_sizes =
    get_balanced_partition_sizes(grid, read_group_size) as BaseTrainingModule builds them).
  * workers, in process: torch's WorkerInfo is set as torch's worker loop sets it, then anemoi's
    worker_init_func(worker_id) (utils/worker_init.py -> MultiDataset.per_worker_init), then iter(dataset).
  * workers, for real: datamodule._get_dataloader(ds, "training") -- torch DataLoader with worker processes,
    worker_init_fn=worker_init_func, batch_size 2, persistent workers -- must yield the same samples; its batch
    order is recorded (for f: two passes over the same loader with datamodule.set_epoch(1) in between, as
    Lightning does with reload_dataloaders_every_n_epochs 0).
  * normalisation: anemoi-models 0.18.0 AnemoiModelInterface._build_processor_pair(processors config,
    data_indices, statistics) -- the pre_processors["data"] of the model -- applied in place to the collated
    float32 batch [1, T, 1, 1600, 8] (torch default_collate of one sample), as BaseTrainingModule._normalize_batch.

Configurations: a (1 replica, 1 worker), b (1 replica, 2 workers), c (2 replicas, 1 worker each), d (2 replicas,
2 workers each), e (1 replica of 2 GPUs with read_group_size 2: grid shards), each with rollout 1 and/or 2, epoch 0;
a also at epoch 1 with workers started after datamodule.set_epoch(1) (non-persistent workers); f (2 persistent
workers iterated for two epochs: the second epoch continues the generator).

Checks on every run: each sample equals zarr-python's read of data[p-1 : p+R+1] transposed to (dates, ensemble,
grid, variables); the DataLoader's batches equal the in-process worker streams, round-robin over workers;
the recorded full permutation taken at each worker's chunk_index_range is the order the worker yielded; a
pure-Python re-implementation of the seed derivation, PCG64, Lemire's bounded integers and Generator.choice
(replace=False, both the Floyd and the tail-shuffle path) reproduces numpy (seeds, states, permutations up to
10001 elements); the normalised samples equal numpy's two float32 operations x * mul + add.  The output is
deterministic: --check-rerun writes it again in a fresh process and compares the bytes.

samples.json (floats as float.hex() strings; SHA-256 of np.ascontiguousarray(x).astype('<f4').tobytes(), i.e. the
sample in C order (dates, ensemble, grid, variables) as the dataset yields it (a non-contiguous view))
-----------------------------------------------------------------------------------------------------------------
  store          path, variables, dates, missing indices, grid size
  config         the parts of the composed config that matter (task, dataloader.training, data processors)
  rollouts.R     relative_date_indices, anchors ((sequence, position) rows: the position is the date index of
                 the LAST INPUT step, offset 0), samples[i] for flat index i: anchor, positions (date indices
                 read), dates, shape, strides, sha256, values (3 exact values with their [t, e, g, v]),
                 normalised {sha256, values}
  configurations name, rollout, epoch, world_size, num_gpus_per_model, read_group_size, num_workers and per rank:
                 comm (set_comm_group_info arguments), grid_shard, workers[w] {chunk_index_range, seed,
                 sanity_rnd, permutation (the whole rng.choice result), indices (flat indices yielded, in order),
                 positions, sha256 (only where the grid is sharded)}, dataloader_batches (positions per batch)
  normaliser     config, per-variable method, _norm_mul / _norm_add (float32 hex), how it is applied
  seed_semantics the procedure in words, file:line references into the anemoi-training 0.16.0 wheel,
                 anemoi-models 0.18.0 and numpy 2.4.6 sources, derived seeds per epoch, SeedSequence pools,
                 PCG64 states, reference permutations (n = 3, 5, 10000, 10001)
  checks, notes, versions
"""

from __future__ import annotations

import os
import sys

os.environ["CUDA_VISIBLE_DEVICES"] = ""
os.environ.setdefault("OMP_NUM_THREADS", "1")
for _k in ("ANEMOI_BASE_SEED", "SLURM_JOB_ID"):  # anemoi-training's base seed: its default 42
    os.environ.pop(_k, None)

import argparse  # noqa: E402
import copy  # noqa: E402
import functools  # noqa: E402
import hashlib  # noqa: E402
import inspect  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import types  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_dataset_fixtures import dump_json  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "tests/data/datasets/samples.json"
DEFAULT_STORE = REPO / "tests/data/datasets/o16.zarr"
BUDGET = 60_000  # bytes
ANEMOI_TRAINING_VERSION = "0.16.0"
NUMPY_VERSION = "2.4.6"
NUMPY_COMMIT = "b832a09cf2a169c833dd2371e7c07aa00b293242"  # tag v2.4.6
MULTISTEP = 2
BATCH_SIZE = 2  # anemoi's default dataloader.batch_size.training
FORCING = ["cos_latitude", "lsm"]
DIAGNOSTIC = ["tp", "cp"]
# anemoi-training's default normaliser (config/data/zarr.yaml) for this store's variables: mean-std by default, std
# for the precipitation, none for the forcings; max for z_500 to cover that method too (the defaults' max list
# sdor/slor/z is not in the store); no remap
NORMALISER_CONFIG = {
    "default": "mean-std",
    "std": ["tp", "cp"],
    "min-max": None,
    "max": ["z_500"],
    "none": ["cos_latitude", "lsm"],
}

# name, rollout, epoch, world_size, num_gpus_per_model, read_group_size, num_workers, epochs on the same workers
CONFIGURATIONS = [
    ("a", 1, 0, 1, 1, 1, 1, 1),
    ("a", 2, 0, 1, 1, 1, 1, 1),
    ("a", 1, 1, 1, 1, 1, 1, 1),
    ("b", 1, 0, 1, 1, 1, 2, 1),
    ("b", 2, 0, 1, 1, 1, 2, 1),
    ("c", 1, 0, 2, 1, 1, 1, 1),
    ("c", 2, 0, 2, 1, 1, 1, 1),
    ("d", 1, 0, 2, 1, 1, 2, 1),
    ("e", 1, 0, 2, 2, 2, 1, 1),
    ("f", 1, 0, 1, 1, 1, 2, 2),
]
DESCRIPTIONS = {
    "a": "1 model replica (1 GPU), 1 dataloader worker",
    "b": "1 model replica (1 GPU), 2 dataloader workers",
    "c": "2 model replicas (DDP, 1 GPU each: sample_comm_num_groups = 2), 1 worker each",
    "d": "2 model replicas (1 GPU each), 2 workers each",
    "e": "1 model replica over 2 GPUs (num_gpus_per_model 2) with read_group_size 2: both ranks read the same "
         "samples, each its half of the grid",
    "f": "1 model replica, 2 persistent workers, epochs 0 and 1 on the same workers (anemoi's default with a fixed "
         "rollout): epoch 1 is the generator's next permutation, not a re-seed with epoch 1",
}
EPOCH_NOTE = ("epoch > 0 here: workers started after datamodule.set_epoch(epoch), i.e. non-persistent workers (a "
              "rollout curriculum, epoch_increment > 0) or a new DataLoader")

NOTES = [
    "anemoi-training 0.16.0 is the multi-dataset generation: AnemoiDatasetsDataModule builds a MultiDataset "
    "(data/multidataset.py) over one NativeGridDataset reader per dataset name (data/data_reader.py); the classic "
    "single NativeGridDataset(IterableDataset) of training <= 0.6 no longer exists.",
    "The anchor of a sample is the date index of its last input step (offset 0), not the first date read: the "
    "Forecaster's offsets are inputs [-(m-1)*dt .. 0] and outputs [dt .. R*dt], so relative_date_indices = "
    "[-1, 0, 1] (R = 1) or [-1, 0, 1, 2] (R = 2) and the window read is data[p-1 : p+R+1].  Valid anchors: "
    "p with 0 <= p-1 and p+R <= n_dates-1 and no p+r equal to a missing index.",
    "Every worker of every replica seeds the same generator (the seed depends on the base seed and the epoch only) "
    "and draws the same full permutation of the flat anchor indices; replicas take contiguous equal shares of it "
    "(the remainder len % replicas is dropped for the epoch), workers contiguous balanced parts of their replica's "
    "share (the first len % workers workers get one more).",
    "One uniform double is drawn (the logged 'sanity rnd') between seeding and the permutation: it advances PCG64 by "
    "one 64-bit output.",
    "The permutation is numpy Generator.choice(arange(n), n, replace=False) with shuffle=True: for n <= 10000 "
    "Floyd's sampling followed by a Fisher-Yates shuffle of positions n-1..1, for n > 10000 a plain Fisher-Yates "
    "shuffle (tail shuffle).  Real datasets (tens of thousands of anchors) take the second path; the store here "
    "only the first, so reference_permutations holds both at the boundary (n = 10000 and 10001).",
    "The yielded sample is a dict {dataset name: tensor} whose tensor is torch.from_numpy of an einops rearrange of "
    "the (dates, variables, ensemble, grid) array read by anemoi-datasets: a non-contiguous view; the collate "
    "(torch.stack) makes the batch contiguous [B, dates, ensemble, grid, variables].",
    "The samples are float32 and not normalised; normalisation runs on the device in the model's pre_processors, in "
    "place, over all dataset variables (the batch has 8 columns, not the 6 of data.input.full, so every column gets "
    "its own mul/add).",
    "With persistent workers (the default for a fixed rollout) the epoch number never reaches the workers: epoch "
    "e's order is the (e+1)-th permutation drawn from the generator seeded with derive_seed(base, 2, 0), not the "
    "first permutation of derive_seed(base, 2, e); only freshly started workers (rollout curriculum, restart) use "
    "the epoch's seed.  Read from the source, not run here: a resumed run builds a new datamodule whose epoch is 0 "
    "(nothing in 0.16.0 calls set_epoch on resume), so its first epoch draws the epoch-0 seed's first permutation "
    "again.",
    "The dataloader needs num_workers > 0: worker_init_func raises when torch's worker info is None, and "
    "per_worker_init is what sets the generator and the index range.",
    "The DataLoader is built with pin_memory false (no accelerator here); persistent_workers is true because the "
    "rollout is fixed (epoch_increment 0).",
]


# ----------------------------------------------------------------------------------------------------------------
# importing anemoi-training from unpacked wheels
# ----------------------------------------------------------------------------------------------------------------
def import_anemoi_training(paths: list[str]):
    for p in paths:
        if p and Path(p).is_dir() and str(Path(p).resolve()) not in sys.path:
            sys.path.append(str(Path(p).resolve()))
    import anemoi.training.diagnostics

    name = "anemoi.training.diagnostics.callbacks"
    if name not in sys.modules:
        mod = types.ModuleType(name)
        mod.__path__ = [str(Path(p) / "callbacks") for p in sys.modules["anemoi.training.diagnostics"].__path__]
        sys.modules[name] = mod
    import anemoi.training

    version = getattr(anemoi.training, "__version__", None)
    if version != ANEMOI_TRAINING_VERSION:
        print(f"warning: anemoi-training {version} (fixture made with {ANEMOI_TRAINING_VERSION})", file=sys.stderr)
    return anemoi.training


# ----------------------------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------------------------
def hx(v) -> str:
    return float(np.float64(v)).hex()


def sha(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes()).hexdigest()


def source_ref(obj, needle: str, *, all_hits: bool = False) -> str | list[str]:
    """'anemoi/training/data/multidataset.py:318' for the line of obj's source file that contains needle; obj is a
    module or a path 'anemoi/training/...' (files not imported: their imports need timm / torchvision)."""
    if isinstance(obj, str):
        import anemoi.training

        path = Path(anemoi.training.__file__).parents[2] / obj
    else:
        path = Path(inspect.getsourcefile(obj))
    lines = path.read_text().splitlines()
    hits = [i + 1 for i, line in enumerate(lines) if needle in line]
    if not hits or (len(hits) > 1 and not all_hits):
        raise AssertionError(f"{needle!r} found {len(hits)} times in {path}")
    parts = path.parts
    rel = "/".join(parts[len(parts) - 1 - parts[::-1].index("anemoi"):])
    refs = [f"{rel}:{h}" for h in hits]
    return refs if all_hits else refs[0]


# ----------------------------------------------------------------------------------------------------------------
# independent pure-Python reference of numpy's SeedSequence / PCG64 / Generator.random / Generator.choice
# (numpy 2.4.6: numpy/random/bit_generator.pyx, _pcg64.pyx, src/pcg64/pcg64.h, src/distributions/distributions.c,
# _generator.pyx) -- what the C++ side has to implement
# ----------------------------------------------------------------------------------------------------------------
M32, M64, M128 = (1 << 32) - 1, (1 << 64) - 1, (1 << 128) - 1
INIT_A, MULT_A, INIT_B, MULT_B = 0x43B0D7E5, 0x931E8875, 0x8B51F9DD, 0x58F38DED
MIX_MULT_L, MIX_MULT_R = 0xCA01F9DD, 0x4973F715
PCG_MULT = (2549297995355413924 << 64) | 4865540595714422341


def _words32(n: int) -> list[int]:
    out = [0] if n == 0 else []
    while n > 0:
        out.append(n & M32)
        n >>= 32
    return out


def seed_sequence_pool(entropy: int, spawn_key: tuple[int, ...] = ()) -> list[int]:
    run = _words32(entropy)
    spawn = [w for k in spawn_key for w in _words32(int(k))]
    if spawn and len(run) < 4:
        run = run + [0] * (4 - len(run))
    ent = run + spawn
    hc = INIT_A

    def hashmix(v: int) -> int:
        nonlocal hc
        v = (v ^ hc) & M32
        hc = (hc * MULT_A) & M32
        v = (v * hc) & M32
        return v ^ (v >> 16)

    def mix(x: int, y: int) -> int:
        r = (MIX_MULT_L * x - MIX_MULT_R * y) & M32
        return r ^ (r >> 16)

    pool = [hashmix(ent[i] if i < len(ent) else 0) for i in range(4)]
    for i_src in range(4):
        for i_dst in range(4):
            if i_src != i_dst:
                pool[i_dst] = mix(pool[i_dst], hashmix(pool[i_src]))
    for i_src in range(4, len(ent)):
        for i_dst in range(4):
            pool[i_dst] = mix(pool[i_dst], hashmix(ent[i_src]))
    return pool


def generate_state32(pool: list[int], n_words: int) -> list[int]:
    hc, out = INIT_B, []
    for i in range(n_words):
        v = pool[i % len(pool)] ^ hc
        hc = (hc * MULT_B) & M32
        v = (v * hc) & M32
        out.append(v ^ (v >> 16))
    return out


def derive_seed_ref(base_seed: int, context: int, *keys: int) -> int:
    return generate_state32(seed_sequence_pool(base_seed, (context, *keys)), 1)[0]


class PCG64Ref:
    """numpy's PCG64 (XSL-RR 128/64) with its 32-bit output buffer, seeded like np.random.default_rng(seed)."""

    def __init__(self, seed: int):
        w = generate_state32(seed_sequence_pool(seed), 8)
        w64 = [w[2 * k] | (w[2 * k + 1] << 32) for k in range(4)]
        initstate, initseq = (w64[0] << 64) | w64[1], (w64[2] << 64) | w64[3]
        self.state, self.inc = 0, ((initseq << 1) | 1) & M128
        self._step()
        self.state = (self.state + initstate) & M128
        self._step()
        self.has_uint32, self.uinteger = 0, 0

    def _step(self):
        self.state = (self.state * PCG_MULT + self.inc) & M128

    def next64(self) -> int:
        self._step()
        x = ((self.state >> 64) ^ self.state) & M64
        rot = self.state >> 122
        return ((x >> rot) | (x << ((64 - rot) & 63))) & M64

    def next32(self) -> int:
        if self.has_uint32:
            self.has_uint32 = 0
            return self.uinteger
        v = self.next64()
        self.has_uint32, self.uinteger = 1, v >> 32
        return v & M32

    def random(self) -> float:
        return (self.next64() >> 11) * (1.0 / 9007199254740992.0)

    def bounded(self, rng: int) -> int:
        """random_bounded_uint64(off=0, rng, use_masked=False): uniform in [0, rng], Lemire."""
        if rng == 0:
            return 0
        if rng <= M32:
            if rng == M32:
                return self.next32()
            excl = rng + 1
            m = self.next32() * excl
            if (m & M32) < excl:
                threshold = (M32 - rng) % excl
                while (m & M32) < threshold:
                    m = self.next32() * excl
            return m >> 32
        excl = rng + 1
        m = self.next64() * excl
        if (m & M64) < excl:
            threshold = (M64 - rng) % excl
            while (m & M64) < threshold:
                m = self.next64() * excl
        return m >> 64

    def shuffle_int(self, data: list[int], first: int) -> None:
        for i in range(len(data) - 1, first - 1, -1):
            j = self.bounded(i)
            data[i], data[j] = data[j], data[i]

    def permutation_choice(self, n: int) -> list[int]:
        """Generator.choice(arange(n), size=n, replace=False) (p None, shuffle True)."""
        if n > 10000 and n > n // 50:  # tail shuffle of `size` elements (here all of them)
            idx = list(range(n))
            self.shuffle_int(idx, max(n - n, 1))
            return idx[n - n:]
        idx, seen = [], set()  # Floyd's algorithm, then shuffle
        for j in range(0, n):
            val = self.bounded(j)
            if val in seen:
                val = j
            seen.add(val)
            idx.append(val)
        self.shuffle_int(idx, 1)
        return idx


def pcg_state_dict(bitgen_state: dict) -> dict:
    s = bitgen_state["state"]
    return {"state": f"{s['state']:#034x}", "inc": f"{s['inc']:#034x}", "has_uint32": int(bitgen_state["has_uint32"]),
            "uinteger": int(bitgen_state["uinteger"])}


# ----------------------------------------------------------------------------------------------------------------
# anemoi-training's config, datamodule and dataset
# ----------------------------------------------------------------------------------------------------------------
@functools.cache
def composed_config():
    """anemoi-training's config/config.yaml composed with Hydra (all defaults), once."""
    import anemoi.training
    from hydra import compose
    from hydra import initialize_config_dir

    config_dir = Path(anemoi.training.__file__).parent / "config"
    with initialize_config_dir(config_dir=str(config_dir), version_base=None):
        return compose("config")


def training_config(store: str, rollout: int, num_workers: int, read_group_size: int, gpus_per_model: int):
    from anemoi.training.schemas.base_schema import BaseSchema
    from anemoi.training.schemas.base_schema import convert_to_omegaconf
    from omegaconf import OmegaConf

    cfg = copy.deepcopy(composed_config())
    cfg.system.input.dataset = store
    cfg.system.input.graph = "graph.pt"  # never read
    cfg.system.output.root = "output"  # never written
    cfg.system.hardware.accelerator = "cpu"
    cfg.system.hardware.num_gpus_per_model = gpus_per_model
    cfg.diagnostics.log.mlflow.tracking_uri = "http://localhost:5000"  # mandatory in the schema; mlflow unused
    for stage in ("training", "validation", "test"):
        reader = cfg.dataloader[stage].datasets.data
        reader.start, reader.end = None, 2024
    cfg.dataloader.read_group_size = read_group_size
    cfg.dataloader.num_workers.training = num_workers
    cfg.dataloader.batch_size.training = BATCH_SIZE
    cfg.dataloader.pin_memory = False
    ds = cfg.data.datasets.data
    ds.forcing = list(FORCING)
    ds.diagnostic = list(DIAGNOSTIC)
    ds.processors.normalizer.config = copy.deepcopy(NORMALISER_CONFIG)
    cfg.task.multistep_input = MULTISTEP
    cfg.task.multistep_output = 1
    cfg.task.timestep = "6h"
    cfg.task.rollout = {"start": rollout, "epoch_increment": 0, "maximum": rollout}
    cfg.training.metrics.datasets.data = ["z_500"]
    OmegaConf.resolve(cfg)
    return convert_to_omegaconf(BaseSchema(**cfg))


def make_datamodule(store: str, rollout: int, num_workers: int = 1, read_group_size: int = 1, gpus_per_model: int = 1):
    from hydra.utils import instantiate

    from anemoi.training.data.datamodule import AnemoiDatasetsDataModule

    config = training_config(store, rollout, num_workers, read_group_size, gpus_per_model)
    task = instantiate(config.task)  # AnemoiTrainer.task
    return AnemoiDatasetsDataModule(config, task), config  # AnemoiTrainer.datamodule


def comm_info(ds, global_rank: int, world_size: int, gpus_per_model: int, read_group_size: int) -> dict:
    """MultiDataset.set_comm_group_info with DDPGroupStrategy.process_dataloader's arguments."""
    from anemoi.models.distributed.balanced_partition import get_balanced_partition_sizes
    from anemoi.training.distributed.groups import get_my_model_comm_group
    from anemoi.training.distributed.groups import get_my_reader_group

    mc_id, mc_rank, mc_num = get_my_model_comm_group(gpus_per_model, global_rank, world_size)
    _, reader_rank, _, _ = get_my_reader_group(mc_rank, read_group_size, global_rank)
    shard_sizes = {name: get_balanced_partition_sizes(reader.grid_size, read_group_size)
                   for name, reader in ds.data_readers.items()}
    ds.set_comm_group_info(global_rank, mc_id, mc_rank, mc_num, reader_rank, read_group_size, shard_sizes)
    return {"global_rank": global_rank, "model_comm_group_id": mc_id, "model_comm_group_rank": mc_rank,
            "model_comm_num_groups": mc_num, "reader_group_rank": reader_rank, "reader_group_size": read_group_size,
            "shard_sizes": {k: list(v) for k, v in shard_sizes.items()},
            "sample_comm_group_id": ds.sample_comm_group_id, "sample_comm_num_groups": ds.sample_comm_num_groups}


def run_worker(ds, worker_id: int, n_workers: int) -> tuple[list, dict]:
    """torch's worker loop: WorkerInfo, worker_init_fn(worker_id), then iterate the dataset."""
    import torch.utils.data._utils.worker as torch_worker

    from anemoi.training.utils.worker_init import worker_init_func

    torch_worker._worker_info = torch_worker.WorkerInfo(id=worker_id, num_workers=n_workers, seed=0, dataset=ds)
    try:
        worker_init_func(worker_id)
        rng_before = copy.deepcopy(ds.rng)
        n = len(ds.valid_date_indices)
        rng_range = ds.chunk_index_range
        info = {"seed": int(ds.seed), "rng_state": ds.rng.bit_generator.state,
                "chunk_index_range": [int(rng_range[0]), int(rng_range[-1]) + 1] if len(rng_range) else [0, 0],
                "permutation": [int(i) for i in rng_before.choice(ds.valid_date_indices, size=n, replace=False)]}
        samples = list(iter(ds))
    finally:
        torch_worker._worker_info = None
    return samples, info


# ----------------------------------------------------------------------------------------------------------------
def build(args) -> dict:
    import torch

    torch.set_num_threads(1)
    import numcodecs.blosc

    numcodecs.blosc.use_threads = False
    at = import_anemoi_training([args.anemoi_training, args.lightning])
    import zarr
    from torch.utils.data import default_collate

    import anemoi.models.distributed.balanced_partition as balanced_partition
    import anemoi.training.utils.worker_init as worker_init
    from anemoi.models.interface import AnemoiModelInterface
    from anemoi.utils.dates import frequency_to_string
    from omegaconf import OmegaConf

    os.chdir(REPO)
    store = os.path.relpath(Path(args.store).resolve(), REPO)
    checks: dict = {}
    doc: dict = {"notes": NOTES}

    # ---- rollouts: anchors and the sample table (configuration a, epoch 0) ----
    raw = zarr.open(store, mode="r")["data"]
    rollouts, samples_by_sha = {}, {}
    normaliser_doc = None
    for rollout in (1, 2):
        dm, config = make_datamodule(store, rollout)
        ds = dm.ds_train
        assert type(ds).__name__ == "MultiDataset" and type(ds.data_readers["data"]).__name__ == "NativeGridDataset"
        reader = ds.data_readers["data"]
        variables, dates = list(reader.variables), [str(d) for d in reader.dates.astype("datetime64[s]")]
        if rollout == 1:
            doc["store"] = {"path": store, "variables": variables, "dates": dates,
                            "missing": sorted(int(i) for i in reader.missing), "grid_size": int(reader.grid_size),
                            "frequency": frequency_to_string(reader.frequency), "dtype": str(reader.data.dtype)}
            doc["config"] = {
                "task": OmegaConf.to_container(config.task),
                "dataloader.training": OmegaConf.to_container(config.dataloader.training),
                "dataloader (configuration a)": {
                    k: OmegaConf.to_container(config.dataloader[k]) if k in ("num_workers", "batch_size")
                    else config.dataloader[k]
                    for k in ("batch_size", "num_workers", "pin_memory", "prefetch_factor", "read_group_size")},
                "data.datasets.data": OmegaConf.to_container(config.data.datasets.data),
                "data.frequency": config.data.frequency,
            }
        rel = ds.relative_date_indices["data"]
        anchors = ds.anchors
        comm_info(ds, 0, 1, 1, 1)
        stream, info = run_worker(ds, 0, 1)
        # the table is indexed by flat anchor index; the stream is in permutation order
        perm = info["permutation"]
        assert len(stream) == len(anchors) and sorted(perm) == list(range(len(anchors)))
        table = [None] * len(anchors)
        for flat, item in zip(perm, stream):
            table[flat] = item["data"]
        stats = {k: v.copy() for k, v in dm.statistics["data"].items()}
        processors_cfg = get_processors_cfg(config)
        pre, _post = AnemoiModelInterface._build_processor_pair(processors_cfg, dm.data_indices["data"],
                                                                 dm.statistics["data"])
        checks[f"statistics_untouched_by_normaliser_r{rollout}"] = all(
            np.array_equal(stats[k], dm.statistics["data"][k]) for k in stats)
        norm = pre.processors["normalizer"]
        mul = norm._norm_mul.numpy().copy()
        add = norm._norm_add.numpy().copy()
        samples = []
        n_t = MULTISTEP + rollout
        for flat, t in enumerate(table):
            seq, pos = (int(v) for v in anchors[flat])
            x = t.numpy()
            positions = list(range(pos - 1, pos - 1 + n_t))
            # independent read: zarr-python, (dates, variables, ensemble, grid) -> (dates, ensemble, grid, variables)
            direct = np.transpose(raw[positions[0]:positions[-1] + 1], (0, 2, 3, 1))
            checks.setdefault("samples_equal_zarr_read", True)
            checks["samples_equal_zarr_read"] &= bool(x.dtype == np.float32 and np.array_equal(
                x.view(np.uint32), direct.view(np.uint32)))
            again = ds.get_sample(flat)["data"].numpy()
            checks.setdefault("get_sample_equals_iteration", True)
            checks["get_sample_equals_iteration"] &= bool(np.array_equal(again.view(np.uint32), x.view(np.uint32)))
            g_n, v_n = x.shape[2], x.shape[3]
            coords = [(0, 0, 0, 0), (n_t - 1, 0, g_n - 1, v_n - 1),
                      (n_t // 2, 0, (pos * 397 + 11) % g_n, (pos * 3 + 2) % v_n)]
            # normalised: the collated float32 batch [1, T, E, G, V], pre_processors in place (_normalize_batch)
            batch = default_collate([{"data": t}])
            xb = batch["data"]
            ptr = xb.data_ptr()
            with torch.no_grad():
                out = pre(xb)
            assert out.data_ptr() == ptr and out.is_contiguous()
            xn = out[0].numpy()
            ref = (x.astype(np.float32) * mul).astype(np.float32) + add
            checks.setdefault("normalised_equal_numpy_mul_then_add_float32", True)
            checks["normalised_equal_numpy_mul_then_add_float32"] &= bool(
                ref.dtype == np.float32 and np.array_equal(ref.view(np.uint32), xn.view(np.uint32)))
            digest = sha(x)
            assert digest not in samples_by_sha or np.array_equal(samples_by_sha[digest], x)
            samples_by_sha[digest] = x
            samples.append({
                "index": flat, "anchor": [seq, pos], "positions": positions, "dates": [dates[p] for p in positions],
                "shape": list(x.shape), "dtype": str(x.dtype), "strides": list(t.stride()),
                "contiguous": bool(t.is_contiguous()), "sha256": digest,
                "values": [{"at": list(c), "variable": variables[c[3]], "hex": hx(x[c])} for c in coords],
                "normalised": {"sha256": sha(xn), "values": [{"at": list(c), "hex": hx(xn[c])} for c in coords]},
            })
        assert len({s["sha256"] for s in samples}) == len(samples), "samples must be distinguishable by their hash"
        rollouts[str(rollout)] = {
            "relative_date_indices": [int(o) for o in compute_rel(dm)],
            "time_indices": f"slice({rel.start}, {rel.stop}, {rel.step})" if isinstance(rel, slice) else list(rel),
            "anchors": [[int(a), int(b)] for a, b in anchors],
            "valid_date_indices": [int(i) for i in ds.valid_date_indices],
            "samples": samples,
        }
        if normaliser_doc is None:
            methods = {v: method_of(v, "mean-std (default)") for v in variables}
            normaliser_doc = {
                "config": copy.deepcopy(NORMALISER_CONFIG),
                "target": to_plain(processors_cfg)["normalizer"]["_target_"],
                "methods": methods,
                "norm_mul": [hx(v) for v in mul], "norm_add": [hx(v) for v in add],
                "input_idx": [int(i) for i in norm._input_idx], "output_idx": [int(i) for i in norm._output_idx],
                "applied_as": "pre_processors['data'](batch) in place on the collated float32 batch [B, T, E, G, 8]: "
                              "x.mul_(_norm_mul).add_(_norm_add) over all 8 columns (the last dimension is not "
                              "len(_input_idx) = 6): two float32 roundings, no FMA",
                "built_by": "anemoi.models.interface.AnemoiModelInterface._build_processor_pair(config.data.datasets."
                            "data.processors, datamodule.data_indices['data'], datamodule.statistics['data'])",
            }
            stat_names = ("mean", "stdev", "minimum", "maximum")
            normaliser_doc["statistics"] = {k: [hx(v) for v in dm.statistics["data"][k]] for k in stat_names}
            ref_mul, ref_add = numpy_mul_add(dm.statistics["data"], variables)
            checks["norm_mul_add_equal_float64_formula_rounded_once"] = bool(
                np.array_equal(ref_mul.view(np.uint32), mul.view(np.uint32))
                and np.array_equal(ref_add.view(np.uint32), add.view(np.uint32)))
    doc["rollouts"] = rollouts
    doc["normaliser"] = normaliser_doc

    # ---- configurations ----
    configs = []
    for name, rollout, epoch, world_size, gpus_per_model, read_group_size, n_workers, n_epochs in CONFIGURATIONS:
        description = DESCRIPTIONS[name] + (f"; {EPOCH_NOTE}" if epoch else "")
        entry = {"name": name, "description": description, "rollout": rollout, "epoch": epoch,
                 "world_size": world_size, "num_gpus_per_model": gpus_per_model, "read_group_size": read_group_size,
                 "num_workers": n_workers, "batch_size": BATCH_SIZE, "epochs_on_the_same_workers": n_epochs,
                 "ranks": []}
        table = rollouts[str(rollout)]

        def flat_indices(stream, lo, hi):
            return [match_sample(item["data"].numpy(), table["samples"], samples_by_sha, lo, hi) for item in stream]

        for rank in range(world_size):
            dm, _config = make_datamodule(store, rollout, n_workers, read_group_size, gpus_per_model)
            ds = dm.ds_train
            if epoch:
                dm.set_epoch(epoch)  # BaseTrainingModule.on_train_epoch_end -> datamodule.set_epoch(epoch + 1)
            comm = comm_info(ds, rank, world_size, gpus_per_model, read_group_size)
            lo, hi = balanced_partition.get_partition_range(comm["shard_sizes"]["data"], comm["reader_group_rank"])
            workers, streams = [], [[] for _ in range(n_epochs)]
            for w in range(n_workers):
                stream, info = run_worker(ds, w, n_workers)
                flat_order = flat_indices(stream, lo, hi)
                c0, c1 = info["chunk_index_range"]
                checks.setdefault("worker_order_is_permutation_slice", True)
                checks["worker_order_is_permutation_slice"] &= flat_order == info["permutation"][c0:c1]
                ref = PCG64Ref(info["seed"])
                ref_sanity = ref.random()
                fresh = np.random.default_rng(info["seed"])
                sanity = fresh.random(1)[0]
                checks.setdefault("rng_state_after_init_is_seed_plus_one_double", True)
                checks["rng_state_after_init_is_seed_plus_one_double"] &= bool(
                    fresh.bit_generator.state == info["rng_state"] and float(sanity) == ref_sanity)
                checks.setdefault("pure_python_permutation_equals_numpy", True)
                checks["pure_python_permutation_equals_numpy"] &= (
                    ref.permutation_choice(len(ds.valid_date_indices)) == info["permutation"])
                checks.setdefault("seed_equals_derive_seed_reference", True)
                checks["seed_equals_derive_seed_reference"] &= info["seed"] == derive_seed_ref(42, 2, epoch)
                wdoc = {"worker_id": w, "chunk_index_range": [c0, c1], "seed": info["seed"], "sanity_rnd": hx(sanity),
                        "permutation": info["permutation"], "indices": flat_order,
                        "positions": [table["anchors"][i][1] for i in flat_order]}
                if (lo, hi) != (0, doc["store"]["grid_size"]):
                    wdoc["sha256"] = [sha(item["data"].numpy()) for item in stream]
                streams[0].append(flat_order)
                # persistent workers: the next epoch is the next iter(dataset) in the same worker (no
                # worker_init_fn, no re-seeding): the generator continues
                for k in range(1, n_epochs):
                    perm = [int(i) for i in copy.deepcopy(ds.rng).choice(
                        ds.valid_date_indices, size=len(ds.valid_date_indices), replace=False)]
                    order = flat_indices(list(iter(ds)), lo, hi)
                    checks.setdefault("persistent_worker_next_epoch_is_next_permutation", True)
                    checks["persistent_worker_next_epoch_is_next_permutation"] &= (
                        order == perm[c0:c1] and ref.permutation_choice(len(perm)) == perm)
                    wdoc.setdefault("later_epochs", []).append({
                        "epoch": epoch + k, "permutation": perm, "indices": order,
                        "positions": [table["anchors"][i][1] for i in order]})
                    streams[k].append(order)
                workers.append(wdoc)
            # the real thing: torch DataLoader with worker processes (datamodule._get_dataloader), one pass per
            # epoch on the same loader (Lightning builds the train loader once: reload_dataloaders_every_n_epochs 0)
            loader = dm._get_dataloader(ds, "training")
            assert loader.worker_init_fn is worker_init.worker_init_func and loader.num_workers == n_workers
            assert loader.persistent_workers
            per_epoch = []
            for k in range(n_epochs):
                if k:
                    dm.set_epoch(epoch + k)  # what on_train_epoch_end does; persistent workers never see it
                batches = []
                for batch in loader:
                    batches.append([match_sample(row, table["samples"], samples_by_sha, lo, hi)
                                    for row in batch["data"].numpy()])
                    checks.setdefault("dataloader_batches_contiguous", True)
                    checks["dataloader_batches_contiguous"] &= bool(batch["data"].is_contiguous())
                checks.setdefault("dataloader_equals_in_process_workers_round_robin", True)
                checks["dataloader_equals_in_process_workers_round_robin"] &= (
                    batches == round_robin(streams[k], BATCH_SIZE))
                per_epoch.append(batches)
            del loader
            rdoc = {"comm": comm, "grid_shard": [lo, hi], "workers": workers,
                    "dataloader_batches": [[table["anchors"][i][1] for i in b] for b in per_epoch[0]],
                    "dataloader_batches_indices": per_epoch[0]}
            if n_epochs > 1:
                rdoc["dataloader_batches_later_epochs"] = [[[table["anchors"][i][1] for i in b] for b in e]
                                                           for e in per_epoch[1:]]
            entry["ranks"].append(rdoc)
        configs.append(entry)
    doc["configurations"] = configs

    # ---- seed semantics ----
    doc["seed_semantics"] = seed_semantics()
    doc["checks"] = checks
    doc["versions"] = versions(at)
    bad = [k for k, v in checks.items() if v is not True]
    if bad:
        raise AssertionError(f"checks failed: {bad}")
    return doc


def get_processors_cfg(config):
    from anemoi.models.utils.config import get_multiple_datasets_config

    return get_multiple_datasets_config(config.data)["data"].processors  # as AnemoiModelInterface._build_model


def to_plain(cfg):
    from omegaconf import OmegaConf

    return OmegaConf.to_container(cfg) if not isinstance(cfg, dict) else cfg


def compute_rel(dm) -> list[int]:
    from anemoi.training.data.relative_time_indices import compute_relative_date_indices

    return compute_relative_date_indices(dm.task, dm.ds_train.data_readers, mode="training")["data"]


def method_of(variable: str, default: str) -> str:
    return next((m for m, names in NORMALISER_CONFIG.items() if names and variable in names and m != "default"),
                default)


def numpy_mul_add(stats: dict, variables: list[str]) -> tuple[np.ndarray, np.ndarray]:
    mul, add = np.ones(len(variables), np.float32), np.zeros(len(variables), np.float32)
    for i, v in enumerate(variables):
        method = method_of(v, NORMALISER_CONFIG["default"])
        mean, std, mx = np.float64(stats["mean"][i]), np.float64(stats["stdev"][i]), np.float64(stats["maximum"][i])
        if method == "mean-std":
            mul[i], add[i] = 1 / std, -mean / std
        elif method == "std":
            mul[i] = 1 / std
        elif method == "max":
            mul[i] = 1 / mx
        elif method != "none":
            raise AssertionError(method)
    return mul, add


def match_sample(x: np.ndarray, samples: list[dict], by_sha: dict, lo: int, hi: int) -> int:
    """Flat index of the table sample whose grid columns lo:hi equal x (bitwise); unique."""
    bits = np.ascontiguousarray(x).view(np.uint32)
    hits = [s["index"] for s in samples if np.array_equal(by_sha[s["sha256"]][:, :, lo:hi, :].view(np.uint32), bits)]
    assert len(hits) == 1, hits
    return hits[0]


def round_robin(streams: list[list[int]], batch_size: int) -> list[list[int]]:
    """torch's order for an IterableDataset: each worker batches its own stream; batches are taken from the
    workers in turn (worker 0, 1, ..., 0, 1, ...), skipping exhausted workers."""
    per_worker = [[s[i:i + batch_size] for i in range(0, len(s), batch_size)] for s in streams]
    out, k = [], 0
    while any(k < len(b) for b in per_worker):
        out += [b[k] for b in per_worker if k < len(b)]
        k += 1
    return out


def seed_semantics() -> dict:
    import anemoi.models.distributed.balanced_partition as balanced_partition
    import anemoi.models.preprocessing.normalizer as normalizer_mod
    import anemoi.training.data.data_reader as data_reader
    import anemoi.training.data.datamodule as datamodule_mod
    import anemoi.training.data.multidataset as multidataset
    import anemoi.training.data.relative_time_indices as rti
    import anemoi.training.data.usable_indices as usable_indices
    import anemoi.training.distributed.groups as groups
    import anemoi.training.tasks.forecaster as forecaster
    import anemoi.training.utils.seeding as seeding
    import anemoi.training.utils.time_indices as time_indices
    import anemoi.training.utils.worker_init as worker_init

    r = source_ref
    methods_base = "anemoi/training/train/methods/base.py"
    strategy = "anemoi/training/distributed/strategy.py"
    refs = {
        "base_seed_env_then_42": [r(seeding, 'env_var_list = ["ANEMOI_BASE_SEED", "SLURM_JOB_ID"]'),
                                  r(seeding, "base_seed = 42")],
        "seed_context_dataloader_2": r(seeding, "DATALOADER = 2"),
        "derive_seed_seedsequence": r(seeding, "np.random.SeedSequence(entropy=base_seed, spawn_key=(context, *keys))"),
        "derive_seed_first_uint32": r(seeding, "return int(seed_seq.generate_state(1, dtype=np.uint32)[0])"),
        "per_worker_init": r(multidataset, "def per_worker_init(self, n_workers: int, worker_id: int) -> None:"),
        "replica_shard_size_floor": r(multidataset, "shard_size = len(self.valid_date_indices) // self.sample"),
        "replica_shard_start": r(multidataset, "shard_start = self.sample_comm_group_id * shard_size"),
        "worker_balanced_range": r(multidataset, "low, high = get_balanced_partition_range(shard_size, n_workers,"),
        "chunk_index_range": r(multidataset, "self.chunk_index_range = np.arange(low, high, dtype=np.uint32)"),
        "seed_from_base_and_epoch": r(multidataset, "derive_seed(base_seed, SeedContext.DATALOADER, self.epoch)"),
        "torch_and_python_seeded_too": [r(multidataset, "torch.manual_seed(seed)"),
                                        r(multidataset, "random.seed(seed)")],
        "numpy_generator_pcg64": r(multidataset, "self.rng = np.random.default_rng(seed=seed)"),
        "sanity_draw_one_double": r(multidataset, "sanity_rnd = self.rng.random(1)[0]"),
        "permutation_choice": r(multidataset, "shuffled_chunk_indices = self.rng.choice("),
        "permutation_sliced_by_range": r(multidataset, ")[self.chunk_index_range]"),
        "get_sample_anchor_to_window": r(multidataset, "time_steps = offset_time_indices(position, self.relative_date"),
        "get_sample_grid_shard": r(multidataset, "get_partition_range(self.shard_sizes[name], self.reader"),
        "sample_comm_from_model_comm": r(multidataset, "self.sample_comm_group_id = model_comm_group_id"),
        "valid_date_indices_flat": r(multidataset, "self.valid_date_indices = np.arange(len(self.anchors)",
                                     all_hits=True),
        "set_epoch_recomputes_anchors": r(multidataset, "def set_epoch("),
        "anchors_intersection": r(usable_indices, "def compute_valid_anchors("),
        "usable_in_bounds": r(usable_indices, "usable_indices = usable_indices[(usable_indices + min_offset >= 0)"),
        "usable_drop_missing": r(usable_indices, "rel_missing = i - relative_indices"),
        "reader_compute_anchors": r(data_reader, "positions = get_usable_indices("),
        "reader_read": r(data_reader, "x = self.data[positions, :, :, grid_shard_indices]"),
        "reader_rearrange": r(data_reader, '"dates variables ensemble gridpoints -> dates ensemble'),
        "reader_from_numpy": r(data_reader, "return torch.from_numpy(x)", all_hits=True),
        "forecaster_input_offsets": r(forecaster, "input_offsets = [-1 * i * self.timestep for i in range("),
        "forecaster_output_offsets": r(forecaster, "output_offsets = [(i + 1) * self.timestep for i in range(multist"),
        "forecaster_rollout_offsets": r(forecaster, "def _compute_rollout_offsets("),
        "relative_indices_from_offsets": r(rti, "relative_date_indices[name] = [o // dr.frequency for o in offsets]"),
        "time_indices_to_slice": r(time_indices, "return slice(indices[0], indices[-1] + step, step)"),
        "worker_init_func": r(worker_init, "dataset_obj.per_worker_init("),
        "datamodule_worker_init_fn": r(datamodule_mod, "worker_init_fn=worker_init_func,"),
        "datamodule_builds_multidataset": r(datamodule_mod, "return MultiDataset("),
        "epoch_end_sets_epoch": r(methods_base, "self.trainer.datamodule.set_epoch(self.current_epoch + 1)"),
        "normalize_batch_in_place": r(methods_base, "= self.model.pre_processors[dataset_name](batch[dataset_name])"),
        "strategy_set_comm_group_info": r(strategy, "dataloader.dataset.set_comm_group_info(", all_hits=True),
        "model_comm_group": r(groups, "model_comm_group_id = global_rank // num_gpus_per_model"),
        "reader_group_rank": r(groups, "reader_group_rank = model_comm_group_rank % read_group_size"),
        "balanced_partition_sizes": r(balanced_partition, "return [base_size + 1] * remainder + [base_size] * (n_part"),
        "normaliser_forward_full_batch": r(normalizer_mod, "x.mul_(self._norm_mul).add_(self._norm_add)"),
    }
    numpy_refs = {
        "source": f"numpy v{NUMPY_VERSION} (commit {NUMPY_COMMIT}); not shipped with the wheel",
        "SeedSequence.__init__ / mix_entropy / get_assembled_entropy / generate_state":
            "numpy/random/bit_generator.pyx:299 / :342 / :377 / :405 (constants :56-64, _int_to_uint32_array :66, "
            "hashmix :151, mix :159)",
        "PCG64 seeding (generate_state(4, uint64) -> pcg64_set_seed(state=w[0]<<64|w[1], inc=w[2]<<64|w[3]))":
            "numpy/random/_pcg64.pyx:122-140, src/pcg64/pcg64.c:148, pcg64.h:327 (srandom), :321 (step then output), "
            ":284 (XSL-RR), :97-98 (multiplier)",
        "next_uint32 buffering (low half first, high half kept)": "numpy/random/src/pcg64/pcg64.h:386-396",
        "Generator.random: (next_uint64 >> 11) * 2**-53": "numpy/random/_pcg64.pyx:41-42, _common.pxd:71-72 "
            "(uint64_to_double)",
        "Generator.choice replace=False p=None": "numpy/random/_generator.pyx:942-985 (cutoff 50 with shuffle; "
            "pop > 10000 and size > pop // 50 -> tail shuffle :950-958, else Floyd :959-982 then _shuffle_int(size, 1) "
            ":983-984)",
        "_shuffle_int (Fisher-Yates from the end, j = bounded(0, i))": "numpy/random/_generator.pyx:108-131",
        "random_bounded_uint64 (rng 0: no draw; rng <= 0xFFFFFFFF: 32-bit Lemire on next_uint32; else 64-bit Lemire)":
            "numpy/random/src/distributions/distributions.c:1421-1452, Lemire32 :1305-1341, Lemire64 :1220-1301",
    }
    procedure = [
        "base_seed = int(ANEMOI_BASE_SEED) if set, else int(SLURM_JOB_ID) if set, else 42.",
        "seed = SeedSequence(entropy=base_seed, spawn_key=(2, epoch)).generate_state(1, uint32)[0] "
        "(2 = SeedContext.DATALOADER); the same for every replica, worker and rank.",
        "rng = numpy.random.default_rng(seed) = Generator(PCG64(SeedSequence(seed))); rng.random(1) is drawn once.",
        "n = number of valid anchors (after intersecting all datasets); perm = rng.choice(arange(n), size=n, "
        "replace=False) (shuffle=True).",
        "replica share: shard_size = n // sample_comm_num_groups, start = sample_comm_group_id * shard_size "
        "(sample_comm_* = model comm group id / count, or the ensemble comm group for ensemble training).",
        "worker part: sizes = [shard_size // W + 1] * (shard_size % W) + [shard_size // W] * (W - shard_size % W); "
        "worker w takes perm[start + sum(sizes[:w]) : start + sum(sizes[:w + 1])].",
        "sample for flat index i: (sequence, p) = anchors[i]; data[p + rel[0] : p + rel[-1] + 1, :, :, grid shard] "
        "with rel = relative_date_indices (dates, variables, ensemble, grid) -> (dates, ensemble, grid, variables).",
        "epoch e > 0 with persistent workers (anemoi's default when rollout.epoch_increment == 0; Lightning builds "
        "the train DataLoader once): per_worker_init ran once, at epoch 0; each epoch calls iter(dataset) in the same "
        "worker again, i.e. the next rng.choice of the same generator (no re-seed, no second sanity draw) sliced by "
        "the same chunk_index_range; datamodule.set_epoch(e) (BaseTrainingModule.on_train_epoch_end) only changes "
        "the main process's copy (configuration f).",
        "epoch e > 0 with non-persistent workers (rollout curriculum, epoch_increment > 0) or a new DataLoader: "
        "workers are forked from the main-process dataset after datamodule.set_epoch(e), which recomputed the "
        "anchors for the new rollout: seed = derive_seed(base, 2, e), sanity draw, first permutation (configuration a "
        "at epoch 1).",
        "DataLoader order with W workers: batches of batch_size from each worker's own stream, taken round-robin over "
        "the workers (worker 0, 1, ..., 0, 1, ...); the last batch of a worker may be short (drop_last false).",
    ]
    # derived seeds and generator states
    derived = {}
    for epoch in range(4):
        seed = seeding.derive_seed(42, seeding.SeedContext.DATALOADER, epoch)
        assert seed == derive_seed_ref(42, 2, epoch)
        pool = seed_sequence_pool(42, (2, epoch))
        assert pool == [int(v) for v in np.random.SeedSequence(entropy=42, spawn_key=(2, epoch)).pool]
        rng = np.random.default_rng(seed)
        state0 = pcg_state_dict(rng.bit_generator.state)
        ref = PCG64Ref(seed)
        assert (f"{ref.state:#034x}", f"{ref.inc:#034x}") == (state0["state"], state0["inc"])
        derived[str(epoch)] = {
            "seed": seed, "seed_sequence_pool_base": [f"{v:#010x}" for v in pool],
            "seed_sequence_pool_seed": [f"{v:#010x}" for v in seed_sequence_pool(seed)],
            "pcg64_after_seeding": state0, "sanity_rnd": hx(rng.random(1)[0]),
            "pcg64_after_sanity": pcg_state_dict(rng.bit_generator.state),
        }
    reference = {}
    for epoch in (0, 1):
        for n in (3, 5, 10000, 10001):
            rng = np.random.default_rng(derived[str(epoch)]["seed"])
            rng.random(1)
            perm = rng.choice(np.arange(n, dtype=np.int64), size=n, replace=False)
            ref = PCG64Ref(derived[str(epoch)]["seed"])
            ref.random()
            assert ref.permutation_choice(n) == perm.tolist(), (epoch, n)
            reference[f"epoch{epoch}_n{n}"] = {
                "path": "tail shuffle" if n > 10000 else "floyd + shuffle",
                "sha256_int64_le": sha(perm.astype(np.int64)), "head": perm[:8].tolist(), "tail": perm[-4:].tolist(),
                "pcg64_after": pcg_state_dict(rng.bit_generator.state),
            }
    return {"procedure": procedure, "anemoi_source_refs": refs,
            "anemoi_source_root": "anemoi-training 0.16.0 wheel (anemoi/training/...), anemoi-models 0.18.0 "
                                  "(anemoi/models/...)",
            "numpy_refs": numpy_refs, "derived": derived, "reference_permutations": reference}


def versions(at) -> dict:
    from importlib.metadata import version

    out = {"python": ".".join(map(str, sys.version_info[:3])), "anemoi-training": at.__version__,
           "anemoi-training_source": "unpacked wheel on sys.path (not installed)"}
    for dist in ("anemoi-models", "anemoi-datasets", "anemoi-utils", "torch", "numpy", "zarr", "numcodecs",
                 "hydra-core", "omegaconf", "einops"):
        out[dist] = version(dist)
    import pytorch_lightning

    out["pytorch-lightning"] = pytorch_lightning.__version__
    if out["numpy"] != NUMPY_VERSION:
        out["numpy_note"] = f"numpy_refs point at v{NUMPY_VERSION}"
    return out


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
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    size = len(text.encode())
    print(f"wrote {args.out} ({size} bytes); checks: {sorted(doc['checks'])}")
    status = 0
    if args.budget and size > args.budget:
        print(f"{args.out} is {size} bytes > budget {args.budget}", file=sys.stderr)
        status = 1
    if args.check_rerun:
        with tempfile.TemporaryDirectory() as tmp:
            other = Path(tmp) / "samples.json"
            subprocess.run([sys.executable, __file__, "--out", str(other), "--store", str(args.store),
                            "--anemoi-training", args.anemoi_training, "--lightning", args.lightning, "--budget", "0"],
                           check=True, stdout=subprocess.DEVNULL)
            same = other.read_bytes() == args.out.read_bytes()
        print("rerun: byte-identical" if same else "rerun differs")
        status = status or (0 if same else 1)
    return status


if __name__ == "__main__":
    sys.exit(main())

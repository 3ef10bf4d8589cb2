#!/usr/bin/env python3
"""The peer of `boreas bench data`: anemoi-training 0.16.0's own training data loader (MultiDataset over a
NativeGridDataset reader, in torch's DataLoader with worker processes) on the same anemoi-datasets Zarr store,
the same windows and the same method, written as the same JSON document (schema boreas-bench-data/1).

    .venv-ref/bin/python tools/peer/bench_data_anemoi.py --dataset STORE.zarr [--threads 1 2] [--batch 1]
        [--batches 8] [--multistep 2] [--rollout 1] [--chunks 8] [--json FILE]
        [--anemoi-training /tmp/atw/src] [--lightning /tmp/atw/pl/src]

Run from anywhere with the reference environment (.venv-ref) and the unpacked anemoi-training 0.16.0 and
Lightning wheels (tools/reference/README.md; nothing of anemoi-training is installed).  The way anemoi-training
is imported and its config, task, datamodule and dataset are built is tools/reference/make_sample_fixtures.py's
(imported as a module): Hydra-composed config/config.yaml, validated by BaseSchema, hydra-instantiated task
(Forecaster), AnemoiDatasetsDataModule(config, task).ds_train, set_comm_group_info as DDPGroupStrategy calls it
for one GPU, and datamodule._get_dataloader(ds, "training") -- the DataLoader anemoi-training trains with.

Stages (docs/bench.md "Data loading"; src/data/bench.cpp is the Boreas side):

chunks   the first --chunks chunks of present dates of `data` (chunk index (d, 0, 0, 0), skipping d whose first date
         is missing), read as stored through zarr-python's store (bytes), then decoded three times with zarr's own
         codec (the array's numcodecs compressor, .decode(buf, out)), each round followed by numcodecs.blosc.
         decompress on the same buffers (c-blosc through numcodecs' thinnest call: `blosc_mb_per_s`,
         `decode_vs_blosc` = zarr codec overhead); single thread (numcodecs.blosc.use_threads False, set_nthreads(1)),
         restored afterwards so the loader's workers run with numcodecs' defaults.  `parallel_decode`: the same
         chunks decoded by T Python threads at once (numcodecs releases the GIL inside c-blosc).
loader   for each T of --threads: a fresh datamodule with dataloader.num_workers.training = T and batch_size
         max(--batch, T) (as Boreas: one batch keeps all workers busy), task multistep_input --multistep,
         timestep = the store's frequency, rollout {start: R, epoch_increment: 0, maximum: R}, every variable of the
         store an input (forcing and diagnostic lists empty: the reader reads all variables anyway), training period
         = the whole store; DataLoader with anemoi's defaults otherwise (prefetch_factor 2, persistent workers,
         worker_init_fn = anemoi's worker_init_func, fork) except pin_memory false (no GPU).  One untimed batch
         (includes forking the workers and their first reads), then --batches timed ones; the epoch is restarted
         (iter(loader) on the persistent workers: each worker's next permutation, as Lightning does) whenever it
         ends, which only happens on tiny stores.  samples/s = samples / seconds; decompressed MB/s = samples *
         dates_per_sample * chunk_bytes / 1e6 / seconds (Boreas' definition: chunk_bytes = one date, all variables,
         ensembles and points); CPU-seconds per sample = (main process getrusage + every worker's utime + stime from
         /proc/PID/stat, before and after) / samples.  Workers keep prefetching (prefetch_factor x T batches in
         flight) before the clock starts and after it stops, as Boreas' loader does with its queue: on a short run
         the CPU time and wall time are a little off in opposite directions.
memory   peak_rss_bytes: the largest sum of the resident sets (/proc/PID/statm) of the main process and all live
         workers, sampled every 10 ms over the whole run (and at least the main process's VmHWM); the sum counts
         pages shared by the forked workers (torch, numpy libraries, copy-on-write) once per process, so
         `peak_memory.peak_pss_bytes` (sum of /proc/PID/smaps_rollup Pss, sampled every second) is given as well.  The
         monitor thread's own CPU time is subtracted from the main process's.

Same samples: the order anemoi's workers yield is predicted in process (anemoi's own worker_init_func on a shallow
copy of the dataset per worker with torch's WorkerInfo set, then the dataset's own rng.choice(...)[chunk_index_range]
per epoch, batches round-robin over the workers as torch's DataLoader takes them; make_sample_fixtures.py checked
that rule against the real DataLoader).  Every batch's flat anchor indices (`sample_indices`: indices into the
list of valid anchors, anemoi's valid_date_indices) and anchor dates (`sample_anchors`: the date index of the last
input step; the window read is data[a-(m-1) : a+R+1]) are recorded; the untimed batch and the first timed batch of
every T are compared in full with zarr-python's read of those windows transposed to (dates, ensemble, grid,
variables), and every timed batch's values at 3 (grid, variable) points with zarr's values at the predicted windows.
A mismatch makes the script exit 1 (the document is still written).

Boreas' loader reads one worker stream (anemoi's single-worker order: derive_seed(42, DATALOADER, epoch 0),
one sanity draw, rng.choice permutation per epoch) and spreads each batch over T threads, so with T = 1 the two
read the same windows in the same order; with T > 1 anemoi's batch k comes from worker k mod T, whose stream is its
contiguous share of the same permutation: other windows (the same amount of work per sample).  ANEMOI_BASE_SEED
and SLURM_JOB_ID are removed from the environment (base seed 42, as the fixture and Boreas' default).

anemoi-training does not normalise in the loader (the model's pre_processors do, on the device): the samples are
the raw float32 values (`normalised_in_loader: false`); Boreas' loader also normalises (x * mul + add, fused with
its transpose).  anemoi reads every ensemble member, Boreas member 0 (the same for single-member stores).
c-blosc in anemoi's workers runs as numcodecs leaves it (use_threads None: blosc's own threads, nthreads as inherited
from the main process, because a worker's loop runs in its main thread); only the chunk stage forces one thread.

Progress and one summary line per T go to stderr; the document goes to --json only (stdout stays empty).
"""

from __future__ import annotations

import os
import sys

os.environ["CUDA_VISIBLE_DEVICES"] = ""  # hide GPUs before torch is imported

import argparse  # noqa: E402
import copy  # noqa: E402
import datetime as _dt  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SCHEMA = "boreas-bench-data/1"
PEER_NAME = "anemoi-training 0.16.0 NativeGridDataset + torch DataLoader"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
             "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16")  # src/core/context.cpp isa_flags
ENV_PREFIXES = ("OMP_", "OPENBLAS_", "GOMP_", "KMP_", "SLURM_", "BOREAS_", "CUDA_VISIBLE_DEVICES",
                "OMPI_COMM_WORLD_", "ANEMOI_", "MKL_", "BLOSC_")


def log(msg: str) -> None:
    print(f"[bench_data_anemoi] {msg}", file=sys.stderr, flush=True)


def import_reference_helpers():
    """tools/reference/make_sample_fixtures.py as a module, without its environment defaults (it sets
    OMP_NUM_THREADS=1 at import; anemoi-training leaves torch's defaults, so that is undone)."""
    sys.path.insert(0, str(REPO / "tools" / "reference"))
    had_omp = "OMP_NUM_THREADS" in os.environ
    import make_sample_fixtures as msf  # also removes ANEMOI_BASE_SEED / SLURM_JOB_ID: base seed 42

    if not had_omp:
        os.environ.pop("OMP_NUM_THREADS", None)
    return msf


# ----------------------------------------------------------------------------------------------------------------
# processes: CPU time and memory from /proc
# ----------------------------------------------------------------------------------------------------------------
def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of one process (clock ticks of /proc/PID/stat); 0 when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = text[text.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15 of proc(5)


def self_cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def proc_rss_bytes(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return 0


def proc_pss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def vm_hwm_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class MemoryMonitor(threading.Thread):
    """Samples sum(RSS) of the main process and the registered workers every `interval` s, sum(PSS) every
    `pss_every` samples (smaps_rollup costs about 10 ms per GB-sized process). pause() around fork() so that no lock
    of this thread is held while workers are forked. `cpu_seconds` is this thread's own CPU time, which the loader
    stage subtracts from the main process's."""

    def __init__(self, interval: float = 0.01, pss_every: int = 100):
        super().__init__(daemon=True)
        self.interval, self.pss_every = interval, pss_every
        self.workers: list[int] = []
        self.peak_rss = self.peak_pss = 0
        self.samples = 0
        self.cpu_seconds = 0.0
        self._halt = threading.Event()
        self._lock = threading.Lock()

    def run(self) -> None:
        me = os.getpid()
        start = time.thread_time()
        while not self._halt.is_set():
            with self._lock:
                pids = [me, *self.workers]
                rss = sum(proc_rss_bytes(p) for p in pids)
                self.peak_rss = max(self.peak_rss, rss)
                if self.samples % self.pss_every == 0:
                    self.peak_pss = max(self.peak_pss, sum(proc_pss_bytes(p) for p in pids))
                self.samples += 1
            self.cpu_seconds = time.thread_time() - start
            time.sleep(self.interval)

    def pause(self):
        return self._lock

    def stop(self) -> None:
        self._halt.set()
        self.join()


# ----------------------------------------------------------------------------------------------------------------
# context
# ----------------------------------------------------------------------------------------------------------------
def cpuinfo_field(key: str) -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def meminfo_bytes(key: str) -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return -1


def system_context(threads: list[int]) -> dict:
    """src/core/context.cpp system_context()'s keys (no omp_max_threads), plus the thread counts measured."""
    os_name = "unknown"
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    flags = set(cpuinfo_field("flags").split())
    uname = os.uname()
    return {
        "hostname": socket.gethostname(),
        "os": os_name,
        "kernel": f"{uname.sysname} {uname.release}",
        "arch": uname.machine,
        "cpu_model": cpuinfo_field("model name"),
        "logical_cpus": os.cpu_count(),
        "online_cpus": os.sysconf("SC_NPROCESSORS_ONLN"),
        "affinity_cpus": len(os.sched_getaffinity(0)),
        "isa": {name: name in flags for name in ISA_FLAGS},
        "memory_total_bytes": meminfo_bytes("MemTotal"),
        "memory_available_bytes": meminfo_bytes("MemAvailable"),
        "load_average": list(os.getloadavg()),
        "environment": {k: v for k, v in sorted(os.environ.items()) if k.startswith(ENV_PREFIXES)},
        "threads": list(threads),
    }


def peer_context(at) -> dict:
    from importlib.metadata import version

    import torch

    versions = {"anemoi-training": getattr(at, "__version__", "?"),
                "anemoi-training_source": "unpacked wheel on sys.path (not installed)"}
    for dist in ("anemoi-datasets", "anemoi-models", "anemoi-utils", "zarr", "numcodecs", "torch", "numpy"):
        versions[dist] = version(dist)
    import pytorch_lightning

    versions["pytorch-lightning"] = pytorch_lightning.__version__
    versions["python"] = platform.python_version()
    return {"name": PEER_NAME, "versions": versions, "torch_num_threads_main": torch.get_num_threads(),
            "torch_num_threads_workers": 1}


# ----------------------------------------------------------------------------------------------------------------
# the store
# ----------------------------------------------------------------------------------------------------------------
def open_store(path: str):
    import zarr

    root = zarr.open(path, mode="r")
    return root, root["data"]


def store_context(path: str, root) -> tuple[dict, dict, dict]:
    store = root.store
    zarray = json.loads(store["data/.zarray"])
    zattrs = json.loads(store[".zattrs"]) if ".zattrs" in store else {}
    shape, chunks = zarray["shape"], zarray["chunks"]
    item = np.dtype(zarray["dtype"]).itemsize
    comp = zarray.get("compressor")
    doc = {
        "path": path,
        "dates": shape[0], "variables": shape[1], "ensembles": shape[2], "points": shape[3],
        "chunk_shape": chunks,
        "chunk_bytes": int(np.prod(chunks)) * item,
        "compressor": comp["id"] if comp else "",
        "blosc_codec": comp.get("cname", "") if comp and comp["id"] == "blosc" else "",
    }
    return doc, zarray, zattrs


# ----------------------------------------------------------------------------------------------------------------
# chunks stage
# ----------------------------------------------------------------------------------------------------------------
def dump_json(obj, indent: int = 0) -> str:
    """Indented JSON in insertion order, lists of scalars (and of short lists) on one line."""
    pad = " " * (indent + 2)

    def flat(x):
        return not isinstance(x, (dict, list)) or (isinstance(x, list) and all(flat(y) for y in x))

    if isinstance(obj, dict) and obj:
        items = [f"{pad}{json.dumps(str(k))}: {dump_json(v, indent + 2)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    if isinstance(obj, list) and not flat(obj):
        return "[\n" + ",\n".join(pad + dump_json(v, indent + 2) for v in obj) + "\n" + " " * indent + "]"
    return json.dumps(obj, separators=(", ", ": "))


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def bench_chunks(arr, zarray: dict, missing: set[int], n_chunks: int, threads: list[int]) -> dict:
    import numcodecs.blosc as blosc

    chunks = zarray["chunks"]
    grid0 = -(-zarray["shape"][0] // chunks[0])
    keys = []
    for d in range(grid0):
        if len(keys) >= n_chunks:
            break
        if d * chunks[0] not in missing:
            keys.append(arr._chunk_key((d,) + (0,) * (len(chunks) - 1)))
    if not keys:
        raise SystemExit("bench data: the store has no chunk to read")
    if zarray.get("filters"):
        raise SystemExit(f"bench data: filters {zarray['filters']} (none expected, as Boreas)")
    store = arr.chunk_store
    t0 = time.perf_counter()
    stored = [store[k] for k in keys]  # bytes as stored (zarr.storage.DirectoryStore / ZipStore __getitem__)
    read_seconds = time.perf_counter() - t0
    compressed = sum(len(s) for s in stored)
    chunk_bytes = int(np.prod(chunks)) * np.dtype(zarray["dtype"]).itemsize
    codec = arr.compressor
    is_blosc = codec is not None and codec.codec_id == "blosc"

    old_use_threads, old_nthreads = blosc.use_threads, blosc.set_nthreads(1)
    blosc.use_threads = False  # blosc_decompress_ctx(..., numinternalthreads=1)
    try:
        out = np.empty(chunk_bytes, np.uint8)

        def decode(raw, buf):
            if codec is None:
                buf[:] = np.frombuffer(raw, np.uint8)
            else:
                codec.decode(raw, out=buf)

        decode_times, blosc_times = [], []
        for _ in range(3):  # alternate zarr's codec and numcodecs.blosc.decompress, as Boreas alternates
            t0 = time.perf_counter()
            for raw in stored:
                decode(raw, out)
            decode_times.append(time.perf_counter() - t0)
            if is_blosc:
                t0 = time.perf_counter()
                for raw in stored:
                    blosc.decompress(raw, out)
                blosc_times.append(time.perf_counter() - t0)
        decoded = float(chunk_bytes) * len(stored)
        doc = {
            "count": len(stored),
            "compressed_bytes": compressed,
            "decompressed_bytes": decoded,
            "ratio": decoded / max(compressed, 1),
            "read_seconds": read_seconds,
            "read_mb_per_s": compressed / 1e6 / read_seconds,
            "decode_seconds_median": median(decode_times),
            "decode_mb_per_s": decoded / 1e6 / median(decode_times),
            "chunks_per_s": len(stored) / median(decode_times),
        }
        if blosc_times:
            doc["blosc_mb_per_s"] = decoded / 1e6 / median(blosc_times)
            doc["decode_vs_blosc"] = median(blosc_times) / median(decode_times)
        parallel = []
        for t in threads:
            buffers = [np.empty(chunk_bytes, np.uint8) for _ in range(t)]

            def work(i, t=t, buffers=buffers):
                for k in range(i, len(stored), t):
                    decode(stored[k], buffers[i])

            times = []
            with ThreadPoolExecutor(max_workers=t) as pool:
                for _ in range(3):
                    t0 = time.perf_counter()
                    list(pool.map(work, range(t)))
                    times.append(time.perf_counter() - t0)
            entry = {"threads": t, "seconds_median": median(times), "mb_per_s": decoded / 1e6 / median(times)}
            if blosc_times:
                entry["vs_blosc_single_thread_times_threads"] = median(blosc_times) / (median(times) * t)
            parallel.append(entry)
        doc["parallel_decode"] = parallel
        doc["keys"] = keys
        doc["decoder"] = (f"zarr {type(arr).__module__}.Array.compressor = numcodecs {codec!r} .decode(buf, out), "
                          "blosc_mb_per_s: numcodecs.blosc.decompress(buf, out); single c-blosc thread "
                          "(use_threads False, set_nthreads(1)); parallel_decode: Python threads "
                          "(c-blosc runs without the GIL)")
    finally:
        blosc.use_threads = old_use_threads
        blosc.set_nthreads(old_nthreads)
    return doc


# ----------------------------------------------------------------------------------------------------------------
# anemoi-training's config, datamodule and loader
# ----------------------------------------------------------------------------------------------------------------
def training_config(msf, store: str, *, multistep: int, rollout: int, frequency: str, end, workers: int, batch: int):
    """make_sample_fixtures.training_config with this benchmark's parameters: the same composition and
    validation, every store variable an input, the whole store the training period."""
    from anemoi.training.schemas.base_schema import BaseSchema
    from anemoi.training.schemas.base_schema import convert_to_omegaconf
    from omegaconf import OmegaConf

    cfg = copy.deepcopy(msf.composed_config())
    cfg.system.input.dataset = store
    cfg.system.input.graph = "graph.pt"  # never read
    cfg.system.output.root = "output"  # never written
    cfg.system.hardware.accelerator = "cpu"
    cfg.system.hardware.num_gpus_per_model = 1
    cfg.diagnostics.log.mlflow.tracking_uri = "http://localhost:5000"  # mandatory in the schema; mlflow unused
    for stage in ("training", "validation", "test"):
        reader = cfg.dataloader[stage].datasets.data
        reader.start, reader.end = None, end
    cfg.dataloader.read_group_size = 1
    cfg.dataloader.num_workers.training = workers
    cfg.dataloader.batch_size.training = batch
    cfg.dataloader.pin_memory = False  # no accelerator (anemoi's default is true)
    cfg.data.frequency = frequency
    ds = cfg.data.datasets.data
    ds.forcing = []
    ds.diagnostic = []
    ds.processors.normalizer.config = {"default": "mean-std", "std": None, "min-max": None, "max": None,
                                       "none": None}
    cfg.task.multistep_input = multistep
    cfg.task.multistep_output = 1
    cfg.task.timestep = frequency
    cfg.task.rollout = {"start": rollout, "epoch_increment": 0, "maximum": rollout}
    cfg.training.metrics.datasets.data = []
    OmegaConf.resolve(cfg)
    return convert_to_omegaconf(BaseSchema(**cfg))


def make_loader(msf, store: str, *, multistep: int, rollout: int, frequency: str, end, workers: int, batch: int):
    from hydra.utils import instantiate

    from anemoi.training.data.datamodule import AnemoiDatasetsDataModule
    from anemoi.training.utils.worker_init import worker_init_func

    config = training_config(msf, store, multistep=multistep, rollout=rollout, frequency=frequency, end=end,
                             workers=workers, batch=batch)
    task = instantiate(config.task)  # AnemoiTrainer.task
    dm = AnemoiDatasetsDataModule(config, task)  # AnemoiTrainer.datamodule
    ds = dm.ds_train
    assert type(ds).__name__ == "MultiDataset" and type(ds.data_readers["data"]).__name__ == "NativeGridDataset"
    msf.comm_info(ds, 0, 1, 1, 1)  # DDPGroupStrategy.process_dataloader for one GPU
    loader = dm._get_dataloader(ds, "training")  # AnemoiTrainer -> datamodule.train_dataloader()
    assert loader.worker_init_fn is worker_init_func and loader.num_workers == workers
    assert loader.batch_size == batch and loader.persistent_workers
    return dm, ds, loader, config


def predicted_batches(msf, ds, workers: int, batch: int, n_batches: int) -> tuple[list[list[int]], int]:
    """The flat anchor indices of the loader's first n_batches batches, from anemoi's own per-worker
    initialisation and permutation (epochs continue each worker's generator: persistent workers)."""
    import torch.utils.data._utils.worker as torch_worker

    from anemoi.training.utils.worker_init import worker_init_func

    states = []
    for w in range(workers):
        wds = copy.copy(ds)  # per_worker_init only sets attributes: the main-process dataset stays untouched
        torch_worker._worker_info = torch_worker.WorkerInfo(id=w, num_workers=workers, seed=0, dataset=wds)
        try:
            worker_init_func(w)
        finally:
            torch_worker._worker_info = None
        states.append((copy.deepcopy(wds.rng), wds.chunk_index_range))
    out, epochs = [], 0
    n = len(ds.valid_date_indices)
    while len(out) < n_batches:
        streams = [[int(i) for i in rng.choice(ds.valid_date_indices, size=n, replace=False)[part]]
                   for rng, part in states]
        epoch_batches = msf.round_robin(streams, batch)
        if not epoch_batches:
            raise SystemExit("bench data: the store has no valid window for this multistep/rollout")
        out += epoch_batches
        epochs += 1
    return out[:n_batches], epochs


def read_window(raw, positions: list[int]) -> np.ndarray:
    """zarr-python's read of the dates `positions`, (dates, variables, ensemble, grid) -> (dates, ensemble, grid,
    variables)."""
    x = raw.get_orthogonal_selection((positions, slice(None), slice(None), slice(None)))
    return np.transpose(x, (0, 2, 3, 1))


def bench_loader(msf, args, threads: int, *, raw, frequency: str, end, monitor: MemoryMonitor, chunk_bytes: int,
                 fingerprint_at: list[tuple[int, int]]) -> tuple[dict, dict]:
    batch = max(args.batch, threads)
    window = args.multistep + args.rollout
    log(f"T={threads}: building anemoi-training's datamodule (num_workers {threads}, batch {batch})")
    dm, ds, loader, config = make_loader(msf, args.dataset, multistep=args.multistep, rollout=args.rollout,
                                         frequency=frequency, end=end, workers=threads, batch=batch)
    rel = [int(o) for o in msf.compute_rel(dm)]
    anchors = [int(p) for _, p in ds.anchors]
    predicted, epochs_predicted = predicted_batches(msf, ds, threads, batch, args.batches + 1)
    gs = [g for g, _ in fingerprint_at]
    vs = [v for _, v in fingerprint_at]

    with monitor.pause():  # fork the workers with the monitor thread parked outside its lock
        it = iter(loader)
        monitor.workers = [w.pid for w in it._workers]
    pids = list(monitor.workers)
    epochs = 1

    def next_batch():
        nonlocal epochs
        try:
            return next(it)
        except StopIteration:
            epochs += 1
            iter(loader)  # persistent workers: the same iterator, reset; each worker's next permutation
            return next(it)

    t0 = time.perf_counter()
    first = next_batch()["data"]  # untimed: forks nothing more, but includes the workers' start-up and first reads
    first_seconds = time.perf_counter() - t0

    cpu_main0, cpu_monitor0 = self_cpu_seconds(), monitor.cpu_seconds
    cpu_workers0 = sum(proc_cpu_seconds(p) for p in pids)
    sizes, fingerprints, first_timed = [], [], None
    t0 = time.perf_counter()
    for b in range(args.batches):
        x = next_batch()["data"]
        sizes.append(x.shape[0])
        fingerprints.append(x[:, :, 0, gs, vs].numpy().copy())  # [B, dates, points]: a few floats
        if b == 0:
            first_timed = x  # a fresh tensor per batch: keeping it costs nothing
    seconds = time.perf_counter() - t0
    cpu_workers = sum(proc_cpu_seconds(p) for p in pids) - cpu_workers0
    cpu_monitor = monitor.cpu_seconds - cpu_monitor0
    cpu_main = self_cpu_seconds() - cpu_main0 - cpu_monitor  # without the memory monitor's thread
    samples = sum(sizes)

    # shut the workers down (persistent: they live as long as the iterator)
    it._shutdown_workers()
    with monitor.pause():
        monitor.workers = []
    del it, loader

    # ---- same samples ----
    timed_pred = predicted[1:]
    checks = {}
    checks["batch_sizes_as_predicted"] = sizes == [len(b) for b in timed_pred] and first.shape[0] == len(predicted[0])

    def full_check(x, flat_indices) -> bool:
        ok = x.dtype.is_floating_point and tuple(x.shape[1:3]) == (window, raw.shape[2])
        for row, i in zip(x.numpy(), flat_indices):
            ref = read_window(raw, [anchors[i] + r for r in rel])
            ok &= row.dtype == np.float32 and np.array_equal(row.view(np.uint32), ref.view(np.uint32))
        return bool(ok)

    checks["untimed_batch_equals_zarr_read"] = full_check(first, predicted[0])
    checks["first_timed_batch_equals_zarr_read"] = full_check(first_timed, timed_pred[0])
    fp_ok = True
    for fp, flat in zip(fingerprints, timed_pred):
        for row, i in zip(fp, flat):
            positions = [anchors[i] + r for r in rel]
            ref = np.stack([raw.get_orthogonal_selection((positions, v, 0, g)) for g, v in fingerprint_at], axis=-1)
            fp_ok &= bool(np.array_equal(row.view(np.uint32), ref.astype(np.float32).view(np.uint32)))
    checks["timed_batches_fingerprints_equal_zarr_read"] = fp_ok

    entry = {
        "threads": threads,
        "samples": samples,
        "dates_per_sample": window,
        "seconds": seconds,
        "samples_per_s": samples / seconds,
        "decompressed_mb_per_s": samples * window * chunk_bytes / 1e6 / seconds,
        "cpu_seconds_per_sample": (cpu_main + cpu_workers) / samples,
        "normalised_in_loader": False,
        "workers": threads,
        "batch": batch,
        "batches": args.batches,
        "cpu_seconds_main": cpu_main,
        "cpu_seconds_workers": cpu_workers,
        "cpu_seconds_memory_monitor_excluded": cpu_monitor,
        "first_batch_seconds": first_seconds,
        "epochs": epochs,
        "sample_indices": timed_pred,
        "sample_anchors": [[anchors[i] for i in b] for b in timed_pred],
        "untimed_batch": {"sample_indices": predicted[0], "sample_anchors": [anchors[i] for i in predicted[0]]},
        "checks": checks,
    }
    ctx = {
        "relative_date_indices": rel,
        "anchors": len(anchors),
        "first_anchors": anchors[:8],
        "dataloader": {"num_workers": threads, "batch_size": batch,
                       "prefetch_factor": config.dataloader.prefetch_factor,
                       "pin_memory": bool(config.dataloader.pin_memory),
                       "persistent_workers": True,
                       "multiprocessing_context": config.dataloader.get("multiprocessing_context", None) or "fork",
                       "worker_init_fn": "anemoi.training.utils.worker_init.worker_init_func"},
        "epochs_predicted": epochs_predicted,
    }
    log(f"T={threads}: {samples} samples in {seconds:.3f} s: {samples / seconds:.2f} samples/s, "
        f"{entry['decompressed_mb_per_s']:.1f} MB/s decompressed, {entry['cpu_seconds_per_sample']:.3g} CPU-s per "
        f"sample (main {cpu_main:.2f} s, workers {cpu_workers:.2f} s); first batch {first_seconds:.2f} s; "
        f"checks {'ok' if all(checks.values()) else checks}")
    return entry, ctx


# ----------------------------------------------------------------------------------------------------------------
def parse_args(argv=None):
    p = argparse.ArgumentParser(description="anemoi-training's data loader on an anemoi-datasets store: the peer of "
                                            "`boreas bench data` (same JSON schema).")
    p.add_argument("--dataset", required=True, help="anemoi-datasets Zarr store (directory or .zip)")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                   help="DataLoader worker processes to measure (dataloader.num_workers)")
    p.add_argument("--batch", type=int, default=1, help="batch size; max(B, T) is used")
    p.add_argument("--batches", type=int, default=8, help="timed batches after one untimed")
    p.add_argument("--multistep", type=int, default=2, help="task.multistep_input")
    p.add_argument("--rollout", type=int, default=1)
    p.add_argument("--chunks", type=int, default=8, help="chunks of the chunk stage")
    p.add_argument("--json", type=Path, help="write the document here")
    p.add_argument("--anemoi-training", default="/tmp/atw/src", help="unpacked anemoi-training 0.16.0 wheel")
    p.add_argument("--lightning", default="/tmp/atw/pl/src", help="unpacked pytorch-lightning & co. wheels")
    a = p.parse_args(argv)
    if a.batches < 1 or a.chunks < 1 or a.batch < 1 or a.multistep < 1 or a.rollout < 1:
        p.error("--batches, --chunks, --batch, --multistep and --rollout must be >= 1")
    if any(t < 1 for t in a.threads):
        p.error("--threads: anemoi's worker_init_func needs worker processes (num_workers >= 1)")
    return a


def main(argv=None) -> int:
    args = parse_args(argv)
    monitor = MemoryMonitor()
    monitor.start()
    start_utc = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    logging.disable(logging.WARNING)
    warnings.simplefilter("ignore")

    msf = import_reference_helpers()
    log("importing anemoi-training")
    at = msf.import_anemoi_training([args.anemoi_training, args.lightning])
    from anemoi.datasets import open_dataset
    from anemoi.utils.dates import frequency_to_string

    root, raw = open_store(args.dataset)
    store, zarray, zattrs = store_context(args.dataset, root)
    ads = open_dataset(args.dataset)
    missing = {int(i) for i in ads.missing}
    frequency = frequency_to_string(ads.frequency)
    last = np.datetime64(ads.dates[-1], "s").astype(object)
    end = last.year  # the training period's end: the store's last year (anemoi's config takes years or dates)
    store["frequency"] = frequency
    store["missing_indices"] = sorted(missing)

    log(f"chunks: the first {args.chunks} chunks of {args.dataset}")
    chunks = bench_chunks(raw, zarray, missing, args.chunks, args.threads)
    log(f"chunks: {chunks['count']} read at {chunks['read_mb_per_s']:.1f} MB/s, decoded at "
        f"{chunks['decode_mb_per_s']:.1f} MB/s ({chunks['chunks_per_s']:.1f} chunks/s) by zarr's codec")

    v_n, g_n = store["variables"], store["points"]
    fingerprint_at = [(0, 0), (g_n - 1, v_n - 1), (g_n // 2, v_n // 2)]  # (point, variable)
    loaders, contexts = [], {}
    for t in args.threads:
        entry, ctx = bench_loader(msf, args, t, raw=raw, frequency=frequency, end=end, monitor=monitor,
                                  chunk_bytes=store["chunk_bytes"], fingerprint_at=fingerprint_at)
        loaders.append(entry)
        contexts[str(t)] = ctx

    import numcodecs.blosc as blosc

    monitor.stop()
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    hwm = vm_hwm_bytes()
    checks = {f"T{e['threads']}.{k}": v for e in loaders for k, v in e["checks"].items()}
    first = contexts[str(args.threads[0])]
    doc = {
        "schema": SCHEMA,
        "peer": peer_context(at),
        "store": store,
        "chunks": chunks,
        "loader": loaders,
        "peak_rss_bytes": max(monitor.peak_rss, hwm),
        "peak_memory": {
            "method": "max over the run of sum(RSS) of the main process and its live DataLoader workers, "
                      "sampled every 10 ms (/proc/PID/statm); at least the main process's VmHWM; "
                      "PSS (smaps_rollup) every 1 s",
            "peak_rss_sum_bytes": monitor.peak_rss,
            "peak_pss_bytes": monitor.peak_pss,
            "main_vm_hwm_bytes": hwm,
            "largest_worker_ru_maxrss_bytes": children,
            "samples": monitor.samples,
        },
        "system": system_context(args.threads),
        "config": {
            "multistep_input": args.multistep,
            "rollout": args.rollout,
            "timestep": frequency,
            "relative_date_indices": first["relative_date_indices"],
            "window": f"data[a{first['relative_date_indices'][0]:+d} : a+{first['relative_date_indices'][-1] + 1}] "
                      "for anchor a (the last input date)",
            "anchors": first["anchors"],
            "first_anchors": first["first_anchors"],
            "training_period": {"start": None, "end": end},
            "base_seed": 42,
            "normalised_in_loader": False,
            "ensembles_read": "all (anemoi's reader); Boreas reads member 0",
            "blosc_in_workers": {"numcodecs.blosc.use_threads": blosc.use_threads,
                                 "numcodecs.blosc nthreads": blosc.get_nthreads()},
            "dataloader": {t: c["dataloader"] for t, c in contexts.items()},
        },
        "checks": checks,
        "notes": [
            "loader[].sample_indices: flat indices into the valid anchors (anemoi's valid_date_indices) of each timed "
            "batch; sample_anchors: their anchor dates (date index of the last input step); untimed_batch: batch 0.",
            "With one worker anemoi's order is Boreas' (one worker stream); with T workers batch k comes from worker "
            "k mod T, which reads its contiguous share of the same permutation.",
            "samples are not normalised (anemoi normalises in the model's pre_processors); Boreas' loader normalises.",
            "c-blosc in the workers runs with numcodecs' defaults: use_threads None is adaptive (blosc's own "
            "threads when called from a process's main thread, which a DataLoader worker's loop is), with the "
            "nthreads inherited from the main process (config.blosc_in_workers); the chunk stage uses one thread.",
            "cpu_seconds_per_sample counts the main process (getrusage) and every worker (/proc/PID/stat, 10 ms "
            "ticks); workers prefetch prefetch_factor x T batches ahead, before and after the timed window.",
        ],
        "start_utc": start_utc,
    }
    text = dump_json(doc) + "\n"
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text)
        log(f"wrote {args.json}")
    bad = [k for k, v in checks.items() if not v]
    if bad:
        log(f"checks failed: {bad}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Reference Zarr stores for Boreas' native anemoi-datasets / Zarr v2 reader: real datasets written by
anemoi-datasets' own ``create`` and small arrays written by plain zarr-python 2, with what zarr-python and
``anemoi.datasets.open_dataset`` read from them.

Run from the repository root (no network, no GPU):

    .venv-ref/bin/python tools/reference/make_dataset_fixtures.py [--out tests/data/datasets] [--check-rerun]

What is written (under --out)
-----------------------------
  o16.zarr/          anemoi-datasets ``create`` (the CLI's serial sequence of tasks, run in-process) from GRIB2
                     files this script writes first into a temporary folder: O16 (1600 points), 10 dates 6-hourly
                     2024-01-01T00 .. 2024-01-03T06 with 2024-01-02T00 declared missing (``dates.missing``: its
                     chunk is absent, ``missing_dates`` in .zattrs), variables z_500 t_850 2t sp lsm (constant),
                     tp cp (6 h accumulations made by anemoi's ``accumulate`` source from 0-6 h forecast fields)
                     and cos_latitude (``forcings`` source).  Statistics by anemoi (default period: the first 80 %
                     of the dates).  zarr's default compressor (Blosc lz4 clevel 5 byte-shuffle), chunks
                     (1, nvar, 1, 1600), '.' separators.
  o16_zstd.zarr/     the same recipe on 4 dates (2024-01-01T00..18, none missing) with Blosc zstd clevel 3
                     bit-shuffle: ``zarr.storage.default_compressor`` replaced while anemoi's create runs.
  codecs/*.zarr.zip  groups written by zarr-python 2 alone (each a zarr.ZipStore, entry dates fixed, ZIP_STORED): ``data`` float32 (4, 3, 1, 50) chunks (1, 3, 1, 50)
                     (seeded, with NaN, +inf and -inf), ``dates`` datetime64[s] (4,), ``latitudes`` float64 (50,)
                     chunks (32,) (two chunks, the last one partial), one store per compressor:
                     blosc_{lz4,lz4hc,zstd_bitshuffle,zlib,blosclz}, blosc_lz4_blocks (blocksize 256: several
                     blocks per chunk, the last one partial), zstd, lz4, zlib, gzip, none,
                     blosc_snappy (system libblosc through ctypes: numcodecs has no snappy); slash.zarr
                     (dimension_separator "/", Zstd), missing_chunk.zarr (chunk of date 2 deleted, fill NaN),
                     fill_zero_i8.zarr (int64 fill 0 with a deleted chunk, and ``big_endian`` '>f8').
                     blosc_lz4.zarr also holds ``incompressible`` (uint8 random bytes: Blosc stores the chunk
                     uncompressed, header flag 0x02 MEMCPYED) and NaN / Infinity / -Infinity tokens in its root
                     .zattrs (Python's json writes them bare).
  expected.json      for every array of every store: the .zarray as written (shape, chunks, dtype, fill_value,
                     compressor, ...), which chunk keys exist, per first-axis index the SHA-256 of
                     ``np.ascontiguousarray(a[i]).astype(a.dtype.newbyteorder('<')).tobytes()`` as zarr-python
                     reads it (whole-array SHA-256 for 1-D arrays) and a few exact samples (floats as
                     float.hex() strings: NaN/inf and every bit survive); for the two anemoi stores, what
                     ``open_dataset`` returns (variables, dates, missing, frequency, name_to_index, statistics,
                     latitudes/longitudes, ``ds[i]`` per present date).
  VERSIONS.json      package versions, the exact recipes, the blosc compressors of this machine's libraries,
                     file sizes, notes.

The generated fields are smooth functions of (variable, date, latitude, longitude) plus seeded uniform noise,
quantised like 16-bit GRIB simple packing (multiples of a power of two, exact in float32), written as lossless
grid_ieee float32 GRIB2 messages; the script checks that anemoi's dataset holds exactly these values (tp/cp after
anemoi's accumulation, cos_latitude equal to cos(radians(lat)) rounded to float32).

Determinism: uuid4 (the dataset's ``uuid``), datetime.now/utcnow (``latest_write_timestamp``, provenance
``time``) are fixed while anemoi code runs, the temporary GRIB folder has a fixed name and the recipe's paths are
sanitised by anemoi, zip entry dates are fixed and Blosc runs single-threaded, so a second run writes
byte-identical files (``--check-rerun`` makes one into a temporary folder and compares every file).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import filecmp
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
import types
import uuid
from pathlib import Path

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "tests/data/datasets"
TEMPLATE = REPO / "tests/data/forecast/o16_init.grib2"
BUDGET = 450_000  # bytes, everything under --out

FIXED_NOW = datetime.datetime(2025, 1, 1, 0, 0, 0, tzinfo=datetime.timezone.utc)
ZIP_DATE = (2025, 1, 1, 0, 0, 0)
SEED = 20240101

START = datetime.datetime(2024, 1, 1, 0)
STEP = datetime.timedelta(hours=6)
ALL_DATES = [START + k * STEP for k in range(10)]  # 2024-01-01T00 .. 2024-01-03T06
MISSING = [datetime.datetime(2024, 1, 2, 0)]  # index 4
ZSTD_DATES = ALL_DATES[:4]  # 2024-01-01T00 .. 18

# name -> the message of o16_init.grib2 (shortName) cloned for it: same parameter and level, new date and values
INSTANT = {"z_500": "z", "t_850": "t", "2t": "2t", "sp": "sp", "lsm": "lsm"}
ACCUM = {"tp": 228, "cp": 143}  # paramId; 0-6 h forecast accumulations (metres)
# root attributes of the anemoi stores copied into expected.json (the others are listed by name only)
ANEMOI_ATTRS = ("variables", "missing_dates", "frequency", "start_date", "end_date", "resolution", "field_shape",
                "constant_fields", "statistics_start_date", "statistics_end_date", "dimensions", "version",
                "shape", "chunks", "dtype", "uuid", "latest_write_timestamp")
PACK_BITS = {"z_500": 14, "t_850": 14, "2t": 14, "sp": 14, "lsm": 12, "tp": 12, "cp": 12}


NOTES = [
    "o16.zarr and o16_zstd.zarr are made by anemoi-datasets' own code: the task sequence of `anemoi-datasets create "
    "RECIPE PATH` (commands/create.py Create.serial_create: init, load, finalise, init_additions, load_additions, "
    "finalise_additions, patch, cleanup, verify), each run in this process through anemoi.datasets.commands.create.task.",
    "o16_zstd.zarr: zarr.storage.default_compressor = Blosc(zstd, clevel 3, BITSHUFFLE) while create runs. anemoi's "
    "Dataset.add_array (create/dataset.py) passes no compressor to zarr 2's create_dataset (compat/zarr2.py "
    "_monkey_patch_create_array), so every array of that store (data, dates, latitudes, longitudes, statistics) uses it.",
    "Variable order is anemoi's: the fields are arranged in earthkit-data's cube over ['valid_datetime', "
    "'param_level', 'number'] (create/gridded/context.py order_by, create/gridded/result.py ds.cube), whose "
    "param_level values come out sorted: 2t, cos_latitude, cp, lsm, sp, t_850, tp, z_500.",
    "Missing date: dates.missing removes 2024-01-02T00 from the dates loaded but not from the `dates` array "
    "(StartEndDates.full_dates_list, create/recipe/dates.py): chunk 4.0.0.0 of `data` is never written and reads as "
    "the fill value NaN; .zattrs missing_dates lists it; open_dataset reports ds.missing == {4} and ds[4] raises.",
    "Statistics (create/statistics.py _CollectorBase): float64 over the dates statistics_start_date.."
    "statistics_end_date, NaN skipped (so the missing date does not count), mean and population stdev by "
    "Welford/Chan merging, min/max of the float32 values. Default period (create/recipe/statistics.py "
    "default_statistics_dates): fewer than 10 years -> the first 80 % of the dates (o16: indices 0..7, i.e. up to "
    "2024-01-02T18; o16_zstd, fewer than 10 dates: max(1, int(0.8 n)) = 3 dates). Checked against numpy "
    "(statistics_check). Tendency statistics are off by default in anemoi-datasets 0.5.47 (statistics.tendencies "
    "None, create/gridded/creator.py _tendencies_to_compute), so none are stored.",
    "tp/cp: anemoi's accumulate source (create/sources/accumulate) with period 6h over a grib source of 0-6 h forecast "
    "accumulations (PDT 4.8, stepType accum, base date d - 6 h, valid at d). The covering lists the base hours "
    "explicitly: base '*' only yields intervals based at 00 UTC of each day (interval_generators.build_interval) "
    "and covering 'auto' discovery only works with a mars source. anemoi re-encodes the result as GRIB with the "
    "field as template (accumulate/writers.py, grid_ieee), so the stored values equal the generated ones.",
    "cos_latitude: the forcings source with template ${input.join.0.grib} (earthkit-data's forcings in float64, "
    "stored as float32 = float32(cos(radians(lat)))).",
    "Fields: smooth functions + seeded uniform noise, quantised like GRIB simple packing (multiples of 2^E, 14 bits "
    "for z_500 t_850 2t sp, 12 bits for lsm tp cp), written as lossless grid_ieee GRIB2; the stores hold exactly "
    "these float32 values (checked).",
    "Determinism: the dataset uuid is uuid5 of a fixed label, latest_write_timestamp and provenance_load.time are "
    "2025-01-01T00:00:00 (datetime and uuid shimmed in anemoi.datasets.create.{creator,dataset} and "
    "anemoi.utils.provenance). provenance_load.module_versions lists the modules loaded in the process: another "
    "environment changes .zattrs, not the chunks.",
    "Blosc snappy: numcodecs 0.15.2's bundled c-blosc has blosclz, lz4, lz4hc, zlib, zstd but no snappy; the system "
    "libblosc (Debian bookworm's c-blosc 1.21.3, see `blosc`) has snappy. codecs/blosc_snappy.zarr is written by "
    "zarr-python with a stand-in numcodecs codec (id 'blosc') that calls the system libblosc through ctypes "
    "(blosc_compress_ctx, one thread); expected.json's entry is read the same way and equals blosc_lz4.zarr's "
    "(checked). The store is left out where the system libblosc lacks snappy.",
    "Blosc block layout: the anemoi stores' chunks are one block each (blocksize = nbytes = 51200); with lz4 and "
    "byte shuffle the block is split into typesize streams (header flag 0x10 clear), with zstd + bit-shuffle it is "
    "not (0x10 set). codecs/blosc_lz4_blocks.zarr forces blocksize 256: a 600-byte data chunk is three blocks, the "
    "last of 88 bytes (blocks that small are not split: flag 0x10 set); the other codec stores' chunks are one "
    "split block (0x10 clear) or, zstd bit-shuffle, one unsplit block.",
    "Blosc shuffle: byte shuffle everywhere but blosc_zstd_bitshuffle (bit shuffle) and blosc_zlib (none; "
    "blosclz or lz4 would leave such chunks uncompressed).",
    "codecs/blosc_lz4.zarr/incompressible: 256 random bytes; Blosc gives up compressing and stores them after its "
    "16-byte header with flag 0x02 (MEMCPYED).",
    "codecs/gzip.zarr: numcodecs.GZip leaves gzip's MTIME to time.time(); it is fixed to 2025-01-01T00:00:00Z "
    "(bytes 4..7 of each chunk) while the store is written.",
    "Sizes: `sizes` counts the bytes of the files (VERSIONS.json excluded). `du -sb` also counts every directory's "
    "own size (4096 bytes each on ext4/overlayfs, see sizes.directories), which git does not store.",
]


# ----------------------------------------------------------------------------------------------------------------
# fields
# ----------------------------------------------------------------------------------------------------------------
def template_grid() -> tuple[np.ndarray, np.ndarray]:
    import eccodes

    with open(TEMPLATE, "rb") as f:
        h = eccodes.codes_grib_new_from_file(f)
        try:
            lat = eccodes.codes_get_array(h, "latitudes")
            lon = eccodes.codes_get_array(h, "longitudes")
        finally:
            eccodes.codes_release(h)
    assert lat.size == lon.size == 1600
    return lat, lon


def quantise(v: np.ndarray, bits: int) -> np.ndarray:
    """Multiples of 2^E with (max - min) / 2^E < 2^bits, like GRIB simple packing with binary scaling: exact in
    float32 (checked) and realistically compressible (the low mantissa bits are zero)."""
    span = float(v.max() - v.min())
    e = int(np.ceil(np.log2(span / (2**bits - 1)))) if span > 0 else 0
    q = np.round(v / 2.0**e) * 2.0**e
    assert np.all(np.abs(q / 2.0**e) < 2**24), "not exact in float32"
    out = q.astype(np.float32)
    assert np.array_equal(out.astype(np.float64), q)
    return out


def field(name: str, date: datetime.datetime, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Smooth deterministic field + seeded uniform noise, quantised; float32 [1600]."""
    phi, lam = np.deg2rad(lat), np.deg2rad(lon)
    h = (date - START).total_seconds() / 3600.0
    w = 2 * np.pi * h / 24.0  # diurnal phase
    names = list(INSTANT) + list(ACCUM)
    rng = np.random.default_rng([SEED, names.index(name), int(h)])
    u = rng.random(lat.size) - 0.5  # uniform [-0.5, 0.5)
    c, s = np.cos(phi), np.sin(phi)
    land = np.clip(2.5 * (np.sin(2 * lam + 0.5) * np.cos(2 * phi) + 0.35 * np.sin(5 * lam) * c - 0.1), 0.0, 1.0)
    if name == "z_500":
        v = 9.80665 * (5600.0 - 380.0 * s**2 + 90.0 * c * np.sin(3 * lam - 2 * np.pi * h / 120.0)) + 8.0 * u
    elif name == "t_850":
        v = 252.0 + 38.0 * c**2 + 2.5 * c * np.sin(2 * lam + w) + 0.15 * u
    elif name == "2t":
        v = 248.0 + 50.0 * c**2 + 6.0 * c * np.cos(lam + w) * (0.3 + land) + 0.2 * u
    elif name == "sp":
        v = 101325.0 - 900.0 * np.sin(2 * phi) ** 2 + 700.0 * c * np.sin(2 * lam - w / 2) - 4000.0 * land + 15.0 * u
    elif name == "lsm":
        v = land  # constant in time: 0 or 1 away from the coasts, fractional near them
    elif name in ("tp", "cp"):  # dry (exactly 0) where the rain band is off, noisy inside it
        rain = np.clip(np.sin(3 * lam + 2 * phi - 2 * np.pi * h / 36.0) * c - 0.2, 0.0, None) ** 2
        v = 0.006 * rain * (1.0 + 0.5 * u) if name == "tp" else 0.004 * rain * (0.4 + 0.6 * c) * (1.0 + 0.5 * u)
    else:
        raise KeyError(name)
    return quantise(v, PACK_BITS[name])


def write_gribs(folder: Path, lat: np.ndarray, lon: np.ndarray) -> dict[str, Path]:
    """an.grib2: the instant fields at every date but the missing one (step 0); fc.grib2: tp and cp as 0-6 h
    forecast accumulations from base date d - 6 h (valid at d).  grid_ieee float32: lossless."""
    import eccodes

    templates = {}
    with open(TEMPLATE, "rb") as f:
        while (h := eccodes.codes_grib_new_from_file(f)) is not None:
            sn = eccodes.codes_get(h, "shortName")
            if sn in templates:
                eccodes.codes_release(h)
            else:
                templates[sn] = h
    dates = [d for d in ALL_DATES if d not in MISSING]
    paths = {"an": folder / "an.grib2", "fc": folder / "fc.grib2"}
    try:
        with open(paths["an"], "wb") as out:
            for d in dates:
                for name, tsn in INSTANT.items():
                    h = eccodes.codes_clone(templates[tsn])
                    eccodes.codes_set(h, "dataDate", int(d.strftime("%Y%m%d")))
                    eccodes.codes_set(h, "dataTime", int(d.strftime("%H%M")))
                    eccodes.codes_set(h, "step", 0)
                    eccodes.codes_set_values(h, field(name, d, lat, lon).astype(np.float64))
                    assert eccodes.codes_get(h, "packingType") == "grid_ieee"
                    eccodes.codes_write(h, out)
                    eccodes.codes_release(h)
        with open(paths["fc"], "wb") as out:
            for d in dates:
                base = d - STEP
                for name, param in ACCUM.items():
                    h = eccodes.codes_clone(templates["sp"])
                    eccodes.codes_set(h, "productDefinitionTemplateNumber", 8)
                    eccodes.codes_set(h, "typeOfProcessedData", 1)  # forecast
                    eccodes.codes_set(h, "dataDate", int(base.strftime("%Y%m%d")))
                    eccodes.codes_set(h, "dataTime", int(base.strftime("%H%M")))
                    eccodes.codes_set(h, "stepType", "accum")
                    eccodes.codes_set(h, "stepRange", "0-6")
                    eccodes.codes_set(h, "paramId", param)
                    eccodes.codes_set_values(h, field(name, d, lat, lon).astype(np.float64))
                    assert eccodes.codes_get(h, "shortName") == name, eccodes.codes_get(h, "shortName")
                    assert eccodes.codes_get(h, "packingType") == "grid_ieee"
                    assert eccodes.codes_get(h, "validityDate") == int(d.strftime("%Y%m%d"))
                    assert eccodes.codes_get(h, "validityTime") == int(d.strftime("%H%M"))
                    eccodes.codes_write(h, out)
                    eccodes.codes_release(h)
    finally:
        for h in templates.values():
            eccodes.codes_release(h)
    return paths


# ----------------------------------------------------------------------------------------------------------------
# anemoi-datasets create
# ----------------------------------------------------------------------------------------------------------------
def make_recipe(gribs: dict[str, Path], dates: list[datetime.datetime], missing: list[datetime.datetime],
                description: str) -> dict:
    dates_cfg = {
        "start": dates[0].isoformat(),
        "end": dates[-1].isoformat(),
        "frequency": "6h",
    }
    if missing:
        dates_cfg["missing"] = [d.isoformat() for d in missing]
    return {
        "description": description,
        "licence": "CC-BY-4.0",
        "attribution": "Boreas test fixtures (synthetic fields on the O16 grid)",
        "dates": dates_cfg,
        "input": {
            "join": [
                {"grib": {"path": str(gribs["an"])}},
                {
                    "accumulate": {
                        "period": "6h",
                        "covering": {"auto": [[0, ["0-6"]], [6, ["0-6"]], [12, ["0-6"]], [18, ["0-6"]]]},
                        "source": {"grib": {"path": str(gribs["fc"])}},
                    }
                },
                {"forcings": {"template": "${input.join.0.grib}", "param": ["cos_latitude"]}},
            ]
        },
    }


class _DatetimeMeta(type):
    """isinstance(x, shim.datetime) stays true for real datetimes (anemoi's _tidy_json matches `datetime.datetime()`)."""

    def __instancecheck__(cls, obj):
        return isinstance(obj, datetime.datetime)


class _FixedDatetime(datetime.datetime, metaclass=_DatetimeMeta):
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


@contextlib.contextmanager
def patched(patches: list[tuple]):
    saved = [(m, a, getattr(m, a)) for m, a, _ in patches]
    try:
        for m, a, v in patches:
            setattr(m, a, v)
        yield
    finally:
        for m, a, v in saved:
            setattr(m, a, v)


@contextlib.contextmanager
def fixed_clock(label: str, compressor=None):
    """uuid4 and datetime.now/utcnow fixed in the anemoi modules that write them into .zattrs; optionally zarr's
    default compressor replaced (anemoi passes no compressor to create_dataset)."""
    import anemoi.datasets.create.creator as creator_mod
    import anemoi.datasets.create.dataset as dataset_mod
    import anemoi.utils.provenance as prov_mod
    import zarr

    counter = iter(range(1_000_000))
    uuid_shim = _Shim(uuid, uuid4=lambda: uuid.uuid5(uuid.NAMESPACE_URL,
                                                     f"boreas-dataset-fixture/{label}/{next(counter)}"))
    dt_shim = _Shim(datetime, datetime=_FixedDatetime)
    patches = [
        (creator_mod, "uuid", uuid_shim),
        (dataset_mod, "datetime", dt_shim),
        (prov_mod, "datetime", dt_shim),
    ]
    if compressor is not None:
        patches.append((zarr.storage, "default_compressor", compressor))
    with patched(patches):
        yield


def anemoi_create(recipe_path: Path, path: Path, label: str, compressor=None) -> list[str]:
    """The sequence of tasks of ``anemoi-datasets create RECIPE PATH`` (commands/create.py serial_create), in
    this process so that the clock, the uuid and the compressor can be fixed."""
    from anemoi.datasets.commands.create import task

    options = {"overwrite": False, "recompute_statistics": False, "recipe": str(recipe_path), "path": str(path),
               "trace": False}
    tasks = ["init", "load", "finalise", "init_additions", "load_additions", "finalise_additions", "patch",
             "cleanup", "verify"]
    with fixed_clock(label, compressor):
        for t in tasks:
            task(t, options)
    return tasks


# ----------------------------------------------------------------------------------------------------------------
# zarr-python 2 stores
# ----------------------------------------------------------------------------------------------------------------
# the special values of the codec stores' `data` (NaN, +inf, -inf), sampled in expected.json
SAMPLES_4D = [(1, 0, 0, 5), (2, 1, 0, 7), (3, 2, 0, 9), (0, 0, 0, 2), (2, 2, 0, 49)]


def codec_data() -> dict[str, np.ndarray]:
    rng = np.random.default_rng([SEED, 7])
    x = np.linspace(0.0, 2 * np.pi, 50)
    base = 280.0 + 15.0 * np.sin(x)[None, None, None, :] + np.arange(3)[None, :, None, None] * 2.0 \
        + np.arange(4)[:, None, None, None] * 0.5
    data = np.round((base + rng.random((4, 3, 1, 50)) - 0.5) * 256.0) / 256.0
    data = data.astype(np.float32)
    data[SAMPLES_4D[0]] = np.nan
    data[SAMPLES_4D[1]] = np.inf
    data[SAMPLES_4D[2]] = -np.inf
    dates = np.array([START + k * STEP for k in range(4)], dtype="datetime64[s]")
    lats = np.linspace(90.0, -90.0, 50)
    lats[13] = 1.0 / 3.0  # a value with every mantissa bit set
    ints = rng.integers(-(2**40), 2**40, size=(4, 3, 1, 50), dtype=np.int64)
    ints[0, 0, 0, :3] = [np.iinfo(np.int64).min, np.iinfo(np.int64).max, 0]
    big = np.linspace(-1.5, 1.5, 50).astype(">f8").reshape(1, 50).repeat(4, axis=0) * np.arange(1, 5)[:, None]
    big = big.astype(">f8")
    big[2, 3] = np.nan
    noise = rng.integers(0, 256, size=(256,), dtype=np.uint8)
    return {"data": data, "dates": dates, "latitudes": lats, "ints": ints, "big": big, "noise": noise}


def system_blosc():
    """ctypes handle of the system libblosc (what a C++ build links), or None."""
    import ctypes
    import ctypes.util

    for cand in ("/usr/lib/x86_64-linux-gnu/libblosc.so.1", ctypes.util.find_library("blosc")):
        if not cand:
            continue
        try:
            lib = ctypes.CDLL(cand)
        except OSError:
            continue
        lib.blosc_list_compressors.restype = ctypes.c_char_p
        lib.blosc_get_version_string.restype = ctypes.c_char_p
        lib._boreas_path = cand
        return lib
    return None


def make_system_blosc_codec(lib):
    """A numcodecs codec with id "blosc" running the system libblosc: numcodecs' bundled c-blosc has no snappy."""
    import ctypes

    from numcodecs.abc import Codec
    from numcodecs.compat import ensure_contiguous_ndarray

    class SystemBlosc(Codec):
        codec_id = "blosc"

        def __init__(self, cname="lz4", clevel=5, shuffle=1, blocksize=0):
            self.cname, self.clevel, self.shuffle, self.blocksize = cname, clevel, shuffle, blocksize

        def encode(self, buf):
            a = ensure_contiguous_ndarray(buf)
            src = a.tobytes()
            dest = ctypes.create_string_buffer(len(src) + 16)
            n = lib.blosc_compress_ctx(ctypes.c_int(self.clevel), ctypes.c_int(self.shuffle),
                                       ctypes.c_size_t(a.dtype.itemsize), ctypes.c_size_t(len(src)), src, dest,
                                       ctypes.c_size_t(len(dest)), self.cname.encode(),
                                       ctypes.c_size_t(self.blocksize), ctypes.c_int(1))
            if n <= 0:
                raise RuntimeError(f"blosc_compress_ctx failed ({n})")
            return dest.raw[:n]

        def decode(self, buf, out=None):
            src = bytes(ensure_contiguous_ndarray(buf))
            nbytes, cbytes, blocksize = ctypes.c_size_t(), ctypes.c_size_t(), ctypes.c_size_t()
            lib.blosc_cbuffer_sizes(src, ctypes.byref(nbytes), ctypes.byref(cbytes), ctypes.byref(blocksize))
            dest = ctypes.create_string_buffer(nbytes.value)
            n = lib.blosc_decompress_ctx(src, dest, ctypes.c_size_t(nbytes.value), ctypes.c_int(1))
            if n != nbytes.value:
                raise RuntimeError(f"blosc_decompress_ctx failed ({n})")
            data = np.frombuffer(dest.raw, dtype=np.uint8)
            if out is not None:
                out = ensure_contiguous_ndarray(out).view(np.uint8)
                out[...] = data
                return out
            return data

    return SystemBlosc


@contextlib.contextmanager
def system_blosc_registered():
    """numcodecs' "blosc" codec replaced by the system libblosc (zarr re-creates codecs from .zarray configs)."""
    import numcodecs.registry

    saved = numcodecs.registry.codec_registry["blosc"]
    numcodecs.registry.register_codec(make_system_blosc_codec(system_blosc()))
    try:
        yield
    finally:
        numcodecs.registry.register_codec(saved)


def codec_stores() -> dict:
    """name -> (compressor, extra create kwargs)"""
    from numcodecs import GZip, LZ4, Blosc, Zlib, Zstd

    stores = {
        "blosc_lz4": (Blosc(cname="lz4", clevel=5, shuffle=Blosc.SHUFFLE), {}),
        "blosc_lz4_blocks": (Blosc(cname="lz4", clevel=5, shuffle=Blosc.SHUFFLE, blocksize=256), {}),
        "blosc_lz4hc": (Blosc(cname="lz4hc", clevel=5, shuffle=Blosc.SHUFFLE), {}),
        "blosc_zstd_bitshuffle": (Blosc(cname="zstd", clevel=3, shuffle=Blosc.BITSHUFFLE), {}),
        "blosc_zlib": (Blosc(cname="zlib", clevel=5, shuffle=Blosc.NOSHUFFLE), {}),  # still compresses unshuffled
        "blosc_blosclz": (Blosc(cname="blosclz", clevel=5, shuffle=Blosc.SHUFFLE), {}),  # unshuffled: MEMCPYED
        "zstd": (Zstd(level=3), {}),
        "lz4": (LZ4(acceleration=1), {}),
        "zlib": (Zlib(level=5), {}),
        "gzip": (GZip(level=5), {}),
        "none": (None, {}),
        "slash": (Zstd(level=3), {"dimension_separator": "/"}),
        "missing_chunk": (Blosc(cname="lz4", clevel=5, shuffle=Blosc.SHUFFLE), {}),
        "fill_zero_i8": (Blosc(cname="lz4", clevel=5, shuffle=Blosc.SHUFFLE), {}),
    }
    lib = system_blosc()
    if lib is not None and "snappy" in lib.blosc_list_compressors().decode().split(","):
        stores["blosc_snappy"] = (make_system_blosc_codec(lib)(cname="snappy", clevel=5, shuffle=1), {})
    return stores


def write_codec_store(path: Path, compressor, extra: dict, arrays: dict, name: str) -> None:
    import zarr

    root = zarr.open_group(str(path), mode="w")
    common = dict(compressor=compressor, **extra)
    if name == "fill_zero_i8":
        root.create_dataset("data", data=arrays["ints"], chunks=(1, 3, 1, 50), fill_value=0, **common)
        root.create_dataset("big_endian", data=arrays["big"], chunks=(1, 50), fill_value=np.nan, **common)
    else:
        root.create_dataset("data", data=arrays["data"], chunks=(1, 3, 1, 50), fill_value=np.nan, **common)
    root.create_dataset("dates", data=arrays["dates"], chunks=(4,), **common)
    root.create_dataset("latitudes", data=arrays["latitudes"], chunks=(32,), fill_value=np.nan, **common)
    if name == "blosc_lz4":
        root.create_dataset("incompressible", data=arrays["noise"], chunks=(256,), **common)
        root.attrs.update({"variables": ["a", "b", "c"], "odd": float("nan"), "big": float("inf"),
                           "small": float("-inf"), "note": "NaN and Infinity written by Python's json"})
    root["data"].attrs["_ARRAY_DIMENSIONS"] = ["time", "variable", "ensemble", "cell"]
    sep = extra.get("dimension_separator", ".")
    if name == "missing_chunk":
        os.remove(path / "data" / sep.join(["2", "0", "0", "0"]))
    if name == "fill_zero_i8":
        os.remove(path / "data" / sep.join(["1", "0", "0", "0"]))


def write_zip(src: Path, dst: Path) -> None:
    import zarr
    import zarr.storage

    time_shim = _Shim(time, time=lambda: FIXED_NOW.timestamp(),
                      localtime=lambda *a: time.struct_time(ZIP_DATE + (0, 1, 0)))
    with patched([(zarr.storage, "time", time_shim)]):
        src_store = zarr.DirectoryStore(str(src))
        store = zarr.ZipStore(str(dst), mode="w")
        try:
            for key in sorted(src_store.keys()):  # os.walk order would depend on the file system
                store[key] = src_store[key]
        finally:
            store.close()


# ----------------------------------------------------------------------------------------------------------------
# what zarr-python and open_dataset read
# ----------------------------------------------------------------------------------------------------------------
def fhex(x) -> str | int | bool:
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, np.datetime64):
        return str(x)
    return float(x).hex()


def sha(a: np.ndarray) -> str:
    a = np.ascontiguousarray(a)
    return hashlib.sha256(a.astype(a.dtype.newbyteorder("<")).tobytes()).hexdigest()


def describe_array(a, raw_meta: dict, chunk_keys: list[str], extra: list[tuple] = ()) -> dict:
    full = a[...]
    out = {
        "zarray": raw_meta,
        "chunk_keys": chunk_keys,
        "attrs": json_safe(dict(a.attrs)),
    }
    if full.ndim == 1:
        out["sha256"] = sha(full)
    else:
        out["sha256_per_index"] = [sha(full[i]) for i in range(full.shape[0])]
    flat = full.reshape(-1)
    picks = sorted({0, 1, flat.size // 2, flat.size - 1})
    picks += [int(np.ravel_multi_index(e, full.shape)) for e in extra if len(e) == full.ndim]
    picks = list(dict.fromkeys(picks))
    out["samples"] = [[list(int(j) for j in np.unravel_index(i, full.shape)), fhex(flat[i])] for i in picks]
    return out


def json_safe(x):
    """Non-finite floats as the strings "NaN", "Infinity", "-Infinity" (expected.json stays strict JSON)."""
    if isinstance(x, dict):
        return {k: json_safe(v) for k, v in x.items()}
    if isinstance(x, list):
        return [json_safe(v) for v in x]
    if isinstance(x, float) and not np.isfinite(x):
        return "NaN" if np.isnan(x) else ("Infinity" if x > 0 else "-Infinity")
    return x


def describe_store(store, anemoi: bool = False) -> dict:
    """Every array under the group: raw .zarray, chunk keys present, hashes and samples as zarr-python reads."""
    import zarr

    root = zarr.open_group(store, mode="r")
    attrs = dict(root.attrs)
    out = {"zattrs_keys": sorted(attrs), "arrays": {},
           "zattrs": json_safe({k: attrs[k] for k in ANEMOI_ATTRS if k in attrs} if anemoi else attrs)}
    keys = sorted(store.keys()) if hasattr(store, "keys") else []
    for name, a in sorted(root.arrays(recurse=True), key=lambda kv: kv[1].path):
        path = a.path
        raw = json.loads(store[path + "/.zarray"])
        chunk_keys = sorted(k[len(path) + 1:] for k in keys
                            if k.startswith(path + "/") and not k.split("/")[-1].startswith(".z"))
        if a.ndim == 4 and a.shape[1:] == (3, 1, 50):  # codec stores: the NaN / inf positions and more
            extra = SAMPLES_4D
        elif a.ndim == 4:  # anemoi stores: every variable at the first and last date, the missing date
            extra = [(i, j, 0, 799) for i in (0, a.shape[0] - 1) for j in range(a.shape[1])] + [(4, 0, 0, 799)]
        elif a.ndim == 2:
            extra = [(1, 3), (2, 3)]
        else:
            extra = [(13,), (31,), (32,)]  # 1/3 in the codec stores' latitudes; the two sides of a chunk border
        out["arrays"][path] = describe_array(a, raw, chunk_keys, [e for e in extra if all(
            x < n for x, n in zip(e, a.shape))])
    return out


def describe_open_dataset(path: Path) -> dict:
    from anemoi.datasets import open_dataset
    from anemoi.utils.dates import frequency_to_string

    ds = open_dataset(str(path))
    stats = ds.statistics
    out = {
        "variables": list(ds.variables),
        "name_to_index": dict(ds.name_to_index),
        "dates": [str(d) for d in ds.dates],
        "missing": sorted(int(i) for i in ds.missing),
        "frequency": frequency_to_string(ds.frequency),
        "shape": list(ds.shape),
        "field_shape": list(ds.field_shape),
        "resolution": ds.resolution,
        "constant_fields": list(ds.constant_fields) if hasattr(ds, "constant_fields") else None,
        "statistics": {k: [fhex(x) for x in np.asarray(stats[k])] for k in ("mean", "stdev", "minimum", "maximum")},
        "latitudes": {"dtype": str(ds.latitudes.dtype), "sha256": sha(ds.latitudes),
                      "first": [fhex(x) for x in ds.latitudes[:3]]},
        "longitudes": {"dtype": str(ds.longitudes.dtype), "sha256": sha(ds.longitudes),
                       "first": [fhex(x) for x in ds.longitudes[:3]]},
        "data": {},
    }
    for i in range(len(ds)):
        if i in ds.missing:
            continue
        x = ds[i]
        assert x.dtype == np.float32 and x.shape == (len(ds.variables), 1, 1600), (x.dtype, x.shape)
        out["data"][str(i)] = sha(x)
    return out


def check_values(path: Path, lat: np.ndarray, lon: np.ndarray, dates: list[datetime.datetime]) -> list[str]:
    """The dataset holds exactly the generated fields (and NaN at the missing date)."""
    import zarr

    z = zarr.open_group(str(path), mode="r")
    variables = z.attrs["variables"]
    data = z["data"][...]
    problems = []
    assert np.array_equal(z["latitudes"][...], lat) and np.array_equal(z["longitudes"][...], lon % 360)
    for i, d in enumerate(dates):
        for j, name in enumerate(variables):
            got = data[i, j, 0]
            if d in MISSING:
                want = np.full(1600, np.nan, np.float32)
            elif name == "cos_latitude":
                want = np.cos(np.deg2rad(lat)).astype(np.float32)
            else:
                want = field(name, d, lat, lon)
            if not np.array_equal(got, want, equal_nan=True):
                problems.append(f"{path.name} {d} {name}: max diff {np.nanmax(np.abs(got - want))}")
    return problems


def check_statistics(path: Path) -> dict:
    """anemoi's statistics = float64 mean / population stdev / min / max over the dates statistics_start_date ..
    statistics_end_date of .zattrs, NaN (the missing date's absent chunk) skipped: checked against numpy."""
    import zarr

    z = zarr.open_group(str(path), mode="r")
    dates = z["dates"][...]
    lo, hi = (np.datetime64(z.attrs[k]) for k in ("statistics_start_date", "statistics_end_date"))
    sel = (dates >= lo) & (dates <= hi)
    x = z["data"][...][sel].astype(np.float64)  # [t, var, 1, points]
    x = np.moveaxis(x, 1, 0).reshape(x.shape[1], -1)
    present = ~np.isnan(x)
    worst = 0.0
    for j in range(x.shape[0]):
        v = x[j][present[j]]
        assert z["minimum"][j] == v.min() and z["maximum"][j] == v.max(), j
        for name, want in (("mean", v.mean()), ("stdev", v.std())):
            got = z[name][j]
            err = abs(got - want) / max(abs(want), 1e-300)
            worst = max(worst, err)
            assert err < 1e-12, (path.name, name, j, got, want)
    return {"dates_used": int(sel.sum()), "values_per_variable": int(present[0].sum()),
            "max_relative_difference_mean_stdev_vs_numpy": worst}


def libblosc_compressors() -> dict:
    """The compressors of this machine's system libblosc (what a C++ build linking it can decode) and of
    numcodecs' bundled c-blosc."""
    import numcodecs.blosc

    out = {"numcodecs": {"version": numcodecs.blosc.VERSION_STRING, "compressors": numcodecs.blosc.list_compressors()}}
    lib = system_blosc()
    if lib is not None:
        out["system"] = {"library": lib._boreas_path, "version": lib.blosc_get_version_string().decode(),
                         "compressors": lib.blosc_list_compressors().decode().split(",")}
    return out


def versions() -> dict:
    from importlib.metadata import version

    out = {"python": ".".join(map(str, sys.version_info[:3]))}
    for dist in ("anemoi-datasets", "anemoi-transform", "anemoi-utils", "earthkit-data", "eccodes", "zarr",
                 "numcodecs", "numpy"):
        out[dist] = version(dist)
    import eccodes

    out["eccodes_library"] = eccodes.codes_get_api_version()
    return out


def dump_json(obj, indent: int = 0) -> str:
    """JSON with one key per line but lists of scalars (and of short lists) on one line: small and diffable."""
    pad = " " * (indent + 1)

    def flat(x):
        return not isinstance(x, (dict, list)) or (isinstance(x, list) and all(flat(y) for y in x))

    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [f"{pad}{json.dumps(str(k))}: {dump_json(v, indent + 1)}" for k, v in sorted(obj.items())]
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    if isinstance(obj, list) and not flat(obj):
        return "[\n" + ",\n".join(pad + dump_json(v, indent + 1) for v in obj) + "\n" + " " * indent + "]"
    return json.dumps(obj, separators=(", ", ": "))


# Written into the same folder by make_sample_fixtures.py and make_dataset_loss_fixture.py: not this
# script's, not counted or compared.
OTHER_SCRIPTS = {"samples.json", "first_step.json"}


def tree(folder: Path) -> dict[str, int]:
    return {
        str(p.relative_to(folder)): p.stat().st_size
        for p in sorted(folder.rglob("*"))
        if p.is_file() and str(p.relative_to(folder)) not in OTHER_SCRIPTS
    }


# ----------------------------------------------------------------------------------------------------------------
def build(out: Path) -> dict:
    import numcodecs
    import numcodecs.blosc
    import yaml
    import zarr

    numcodecs.blosc.use_threads = False
    numcodecs.blosc.set_nthreads(1)

    lat, lon = template_grid()
    out.mkdir(parents=True, exist_ok=True)
    for p in ("o16.zarr", "o16_zstd.zarr", "codecs", "expected.json", "VERSIONS.json"):
        q = out / p
        if q.is_dir():
            shutil.rmtree(q)
        elif q.exists():
            q.unlink()

    # The GRIB files' folder does not reach the stores: anemoi keeps the recipe in .zattrs with its paths
    # sanitised ("/.../an.grib2"; output.sanitise) and deletes the unsanitised copy (_recipe) at cleanup.
    work = Path(tempfile.mkdtemp(prefix="boreas-dataset-fixtures-"))
    expected = {"generator": "tools/reference/make_dataset_fixtures.py", "stores": {}, "anemoi": {}}
    meta = {"recipes": {}, "tasks": None, "statistics_check": {}}
    try:
        gribs = write_gribs(work, lat, lon)
        specs = {
            "o16": (ALL_DATES, MISSING, None,
                    "Boreas fixture: O16, 6-hourly, 2024-01-01T00 to 2024-01-03T06, 2024-01-02T00 missing"),
            "o16_zstd": (ZSTD_DATES, [], numcodecs.Blosc(cname="zstd", clevel=3, shuffle=numcodecs.Blosc.BITSHUFFLE),
                         "Boreas fixture: O16, 6-hourly, 2024-01-01T00 to 2024-01-01T18, blosc zstd"),
        }
        for name, (dates, missing, comp, desc) in specs.items():
            recipe = make_recipe(gribs, dates, missing, desc)
            rpath = work / f"{name}.yaml"
            rpath.write_text(yaml.safe_dump(recipe, sort_keys=False))
            meta["recipes"][name] = recipe
            target = work / f"{name}.zarr"
            meta["tasks"] = anemoi_create(rpath, target, name, comp)
            problems = check_values(target, lat, lon, dates)
            if problems:
                raise SystemExit("dataset values differ from the generated fields:\n" + "\n".join(problems))
            meta["statistics_check"][name] = check_statistics(target)
            leftovers = [p.name for p in work.iterdir() if p.name.startswith(f"{name}.zarr.")]
            assert not leftovers, leftovers
            shutil.copytree(target, out / f"{name}.zarr")
    finally:
        shutil.rmtree(work, ignore_errors=True)

    # plain zarr-python stores, each committed as a zip: a directory store of a dozen tiny files costs a file
    # system block per file and per folder, ten times its bytes (the directory reader is o16*.zarr's)
    arrays = codec_data()
    codecs = out / "codecs"
    codecs.mkdir()
    import gzip

    # numcodecs.GZip writes gzip.GzipFile(mtime=None): the header's MTIME would be the current time
    gzip_time = _Shim(time, time=lambda: FIXED_NOW.timestamp())
    codec_dirs = Path(tempfile.mkdtemp(prefix="boreas-codec-stores-"))
    try:
        with patched([(gzip, "time", gzip_time)]):
            for name, (comp, extra) in codec_stores().items():
                with system_blosc_registered() if name == "blosc_snappy" else contextlib.nullcontext():
                    write_codec_store(codec_dirs / f"{name}.zarr", comp, extra, arrays, name)
        for d in sorted(codec_dirs.glob("*.zarr")):
            write_zip(d, codecs / f"{d.name}.zip")
        zattrs_nan_text = (codec_dirs / "blosc_lz4.zarr" / ".zattrs").read_text()
    finally:
        shutil.rmtree(codec_dirs, ignore_errors=True)

    # expected
    for key in ("o16.zarr", "o16_zstd.zarr"):
        expected["stores"][key] = describe_store(zarr.DirectoryStore(str(out / key)), anemoi=True)
    for p in sorted(codecs.glob("*.zarr.zip")):
        key = f"codecs/{p.name}"
        zs = zarr.ZipStore(str(p), mode="r")
        try:
            if key == "codecs/blosc_snappy.zarr.zip":  # read with the system libblosc as zarr-python's "blosc"
                with system_blosc_registered():
                    expected["stores"][key] = describe_store(zs)
                twin = expected["stores"]["codecs/blosc_lz4.zarr.zip"]["arrays"]
                for name, a in expected["stores"][key]["arrays"].items():  # the same values as blosc_lz4
                    assert {k: v for k, v in a.items() if k.startswith("sha")} == \
                        {k: v for k, v in twin[name].items() if k.startswith("sha")}, name
            else:
                expected["stores"][key] = describe_store(zs)
        finally:
            zs.close()
    for key in ("o16.zarr", "o16_zstd.zarr"):
        expected["anemoi"][key] = describe_open_dataset(out / key)
    expected["zattrs_nan_example"] = {"store": "codecs/blosc_lz4.zarr.zip/.zattrs", "text": zattrs_nan_text}
    (out / "expected.json").write_text(dump_json(expected) + "\n")

    versions_doc = {
        "generator": "tools/reference/make_dataset_fixtures.py",
        "environment": versions(),
        "blosc": libblosc_compressors(),
        "anemoi_create_tasks": meta["tasks"],
        "statistics_check": meta["statistics_check"],
        "recipes": {k: json.loads(json.dumps(v).replace(str(work), "$TMP")) for k, v in meta["recipes"].items()},
        "notes": NOTES,
    }
    files = tree(out)  # all but VERSIONS.json itself
    versions_doc["sizes"] = {
        "total_bytes_of_files_but_VERSIONS.json": sum(files.values()),
        "directories": sum(1 for p in out.rglob("*") if p.is_dir()),
        "per_entry": {top: {"files": sum(1 for k in files if k.split("/")[0] == top),
                            "bytes": sum(v for k, v in files.items() if k.split("/")[0] == top)}
                      for top in sorted({k.split("/")[0] for k in files})},
        "codecs": {top: sum(v for k, v in files.items() if k.startswith(f"codecs/{top}/") or k == f"codecs/{top}")
                   for top in sorted({k.split("/")[1] for k in files if k.startswith("codecs/")})},
        "files_of_1000_bytes_or_more": {k: v for k, v in files.items() if v >= 1000},
    }
    (out / "VERSIONS.json").write_text(dump_json(versions_doc) + "\n")
    return versions_doc


def compare_trees(a: Path, b: Path) -> list[str]:
    ta, tb = tree(a), tree(b)
    diff = sorted(set(ta) ^ set(tb))
    diff += [k for k in sorted(set(ta) & set(tb)) if not filecmp.cmp(a / k, b / k, shallow=False)]
    return diff


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--budget", type=int, default=BUDGET, help="maximum bytes under --out (0 = no check)")
    ap.add_argument("--check-rerun", action="store_true", help="also build into a temporary folder and compare")
    args = ap.parse_args()

    doc = build(args.out)
    files = tree(args.out)
    total = sum(files.values())
    print(f"wrote {args.out} ({len(files)} files, {total} bytes of files, {doc['sizes']['directories']} directories)")
    status = 0
    if args.budget and total > args.budget:
        print(f"{args.out} holds {total} bytes > budget {args.budget}", file=sys.stderr)
        status = 1
    if args.check_rerun:  # in a fresh process: anemoi records the loaded modules (provenance_load)
        import subprocess

        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run([sys.executable, __file__, "--out", str(Path(tmp) / "data"), "--budget", "0"],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            diff = compare_trees(args.out, Path(tmp) / "data")
        print("rerun: byte-identical" if not diff else f"rerun differs: {diff}")
        status = status or (1 if diff else 0)
    return status


if __name__ == "__main__":
    sys.exit(main())

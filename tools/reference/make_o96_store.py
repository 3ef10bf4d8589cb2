#!/usr/bin/env python3
"""On-demand O96 benchmark store (never committed): an anemoi dataset with the AIFS-single variable list of Boreas'
``o96`` built-in config, written by anemoi-datasets' own ``create`` from GRIB2 files this script writes first, the
way ``make_dataset_fixtures.py`` makes the small committed ``o16.zarr`` (whose functions it imports).

Run from the repository root (no network, no GPU):

    nice -n 19 .venv-ref/bin/python tools/reference/make_o96_store.py [--out /tmp/boreas-o96/o96.zarr] [--force]
        [--dates 64] [--missing K] [--group-by 8]

About 2 minutes for the default 64 dates on two shared cores (GRIB about 50 s, anemoi's create about 55 s, the
checks the rest): 1.1 GB of temporary GRIB is written into a temporary folder, read back by anemoi and deleted; the
store is 0.58 GB on disk (1.19 GB raw float32, ratio 2.05); peak memory about 1 GB (GRIB is written one date at a
time, anemoi loads --group-by dates at a time, the checks read one date at a time).

Why: Boreas' dataset reader, its training sampler and ``boreas bench`` need a realistically sized store to time
decompression and reading: 115 variables x 40,320 points per date, one chunk per date as anemoi writes it, with
fields that compress like real ones (smooth fields plus a little noise, quantised like 16-bit GRIB simple packing).
The committed O16 fixtures are far too small for that, and a real O96 dataset cannot be downloaded here.

The store
---------
  grid        octahedral reduced Gaussian O96 (40,320 points): the O16 template's GRIB2 messages with N = 96 and
              the octahedral pl array pl[i] = 20 + 4 i (i = 0..95, mirrored), grid_ieee float32 (lossless).
  dates       6-hourly from 2024-01-01T00, --dates of them; --missing K declares the dates of index K, 2K, ...
              (neither the first nor the last) missing: no GRIB is written for them and anemoi's ``dates.missing``
              leaves their chunks absent (NaN), as in o16.zarr.
  variables   exactly VARIABLES below (the ``o96`` config's dataset variables, in that order): pressure-level
              q t u v w z at 13 levels (levtype pl), surface fields (lsm sdor slor z: the same field at every date),
              cp tp ro sf ssrd strd as 6 h accumulations made by anemoi's ``accumulate`` source from 0-6 h forecast
              fields (as o16.zarr's tp/cp), and the computed forcings cos_latitude .. insolation from anemoi's
              ``forcings`` source.
  order       anemoi-datasets 0.5.47 hard-codes the cube order ["valid_datetime", "param_level", "number"], all
              ascending (create/gridded/context.py SimpleGriddedContext.order_by; the recipe's output.order_by is
              deprecated and must equal it), so its variables come out sorted by name.  While create runs, this
              script sets that class attribute to {"valid_datetime": "ascending", "param_level": VARIABLES,
              "number": "ascending"}: earthkit-data's cube then orders param_level by the list (what older
              anemoi-datasets' ``output.order_by`` recipe option did) and the store's ``variables`` is VARIABLES.
              Everything else is anemoi's as usual (statistics, .zattrs; ``order_by`` in .zattrs records the dict).
  storage     anemoi's defaults: zarr 2's default compressor (Blosc lz4 clevel 5 byte shuffle), float32 chunks
              (1, 115, 1, 40320), statistics over the first 80 % of the dates.

The uuid and the timestamps are fixed as in make_dataset_fixtures.py; the values are seeded, so reruns hold the same
data (byte-identity is not checked).  At the end the script checks a few dates against the generated fields and the
statistics against a streaming numpy pass, then prints dates, variables, points, bytes on disk, raw bytes, ratio and
wall time.
"""

from __future__ import annotations

import argparse
import datetime
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_dataset_fixtures as mdf  # noqa: E402  (also sets CUDA_VISIBLE_DEVICES="" and OMP_NUM_THREADS=1)

import numpy as np  # noqa: E402

DEFAULT_OUT = Path("/tmp/boreas-o96/o96.zarr")
N = 96
PL_ARRAY = [20 + 4 * i for i in range(N)] + [20 + 4 * i for i in reversed(range(N))]
NPOINTS = 40320
SEED = 20240196
BITS = 16  # like 16-bit GRIB simple packing

LEVELS = [50, 100, 150, 200, 250, 300, 400, 500, 600, 700, 850, 925, 1000]
PL_PARAMS = {"q": 133, "t": 130, "u": 131, "v": 132, "w": 135, "z": 129}  # paramId
SFC_PARAMS = {"10u": 165, "10v": 166, "2d": 168, "2t": 167, "lsm": 172, "msl": 151, "sdor": 160, "skt": 235,
              "slor": 163, "sp": 134, "tcw": 136, "z": 129, "100u": 228246, "100v": 228247, "hcc": 3075,
              "lcc": 3073, "mcc": 3074, "stl1": 139, "stl2": 170, "swvl1": 39, "swvl2": 40, "tcc": 164}
ACCUM_PARAMS = {"cp": 143, "tp": 228, "ro": 205, "sf": 144, "ssrd": 169, "strd": 175}  # 0-6 h accumulations
FORCINGS = ["cos_latitude", "sin_latitude", "cos_longitude", "sin_longitude", "cos_julian_day", "sin_julian_day",
            "cos_local_time", "sin_local_time", "insolation"]
CONSTANT = {"lsm", "sdor", "slor", "z"}

# src/model/builtin_configs.cpp, the o96 config's dataset variables, in this order
VARIABLES = ([f"{p}_{lev}" for p in PL_PARAMS for lev in LEVELS]
             + ["10u", "10v", "2d", "2t", "lsm", "msl", "sdor", "skt", "slor", "sp", "tcw", "z", "cp", "tp"]
             + FORCINGS
             + ["100u", "100v", "hcc", "lcc", "mcc", "ro", "sf", "ssrd", "stl1", "stl2", "strd", "swvl1", "swvl2",
                "tcc"])
assert len(VARIABLES) == 115 == len(set(VARIABLES))
GRIB_NAMES = [v for v in VARIABLES if v not in FORCINGS]  # generated here
G = 9.80665


# ----------------------------------------------------------------------------------------------------------------
# O96 GRIB templates
# ----------------------------------------------------------------------------------------------------------------
def set_o96(h) -> None:
    """Turn a reduced_gg GRIB2 message (the O16 template's) into an octahedral O96 one."""
    import eccodes

    lat0 = float(eccodes.codes_get_gaussian_latitudes(N)[0])
    eccodes.codes_set(h, "N", N)
    eccodes.codes_set(h, "Nj", 2 * N)
    eccodes.codes_set_long_array(h, "pl", PL_ARRAY)
    eccodes.codes_set(h, "latitudeOfFirstGridPointInDegrees", lat0)
    eccodes.codes_set(h, "latitudeOfLastGridPointInDegrees", -lat0)
    eccodes.codes_set(h, "longitudeOfLastGridPointInDegrees", 360.0 - 360.0 / PL_ARRAY[N - 1])
    eccodes.codes_set(h, "numberOfDataPoints", NPOINTS)
    eccodes.codes_set_values(h, np.zeros(NPOINTS))


def o96_templates() -> dict:
    """{"pl", "sfc", "accum"}: O96 message handles (the O16 template's t_850 and sp, the latter also as a PDT 4.8
    0-6 h accumulation like make_dataset_fixtures.write_gribs' fc fields)."""
    import eccodes

    src = {}
    with open(mdf.TEMPLATE, "rb") as f:
        while (h := eccodes.codes_grib_new_from_file(f)) is not None:
            sn = eccodes.codes_get(h, "shortName")
            if sn in ("t", "sp") and sn not in src:
                src[sn] = h
            else:
                eccodes.codes_release(h)
    out = {"pl": src["t"], "sfc": src["sp"], "accum": eccodes.codes_clone(src["sp"])}
    a = out["accum"]
    eccodes.codes_set(a, "productDefinitionTemplateNumber", 8)
    eccodes.codes_set(a, "typeOfProcessedData", 1)  # forecast
    eccodes.codes_set(a, "stepType", "accum")
    eccodes.codes_set(a, "stepRange", "0-6")
    for h in out.values():
        set_o96(h)
        assert eccodes.codes_get(h, "gridName") == "O96" and eccodes.codes_get(h, "isOctahedral") == 1
        assert eccodes.codes_get(h, "numberOfDataPoints") == NPOINTS and eccodes.codes_get(h, "packingType") == \
            "grid_ieee"
    return out


def grid(templates: dict) -> tuple[np.ndarray, np.ndarray]:
    import eccodes

    lat = eccodes.codes_get_array(templates["sfc"], "latitudes")
    lon = eccodes.codes_get_array(templates["sfc"], "longitudes")
    assert lat.size == lon.size == NPOINTS == sum(PL_ARRAY), lat.size
    return lat, lon


# ----------------------------------------------------------------------------------------------------------------
# fields
# ----------------------------------------------------------------------------------------------------------------
class Fields:
    """Smooth functions of (variable, date, latitude, longitude) plus seeded uniform noise, quantised to 16 bits
    (make_dataset_fixtures.quantise), float32, with plausible magnitudes per variable."""

    def __init__(self, lat: np.ndarray, lon: np.ndarray):
        self.lat, self.lon = lat, lon
        self.phi, self.lam = np.deg2rad(lat), np.deg2rad(lon)
        self.c, self.s = np.cos(self.phi), np.sin(self.phi)
        c, phi, lam = self.c, self.phi, self.lam
        self.land = np.clip(2.5 * (np.sin(2 * lam + 0.5) * np.cos(2 * phi) + 0.35 * np.sin(5 * lam) * c - 0.1)
                            + 0.3 * np.sin(11 * lam) * np.cos(7 * phi) * c, 0.0, 1.0)
        self.relief = self.land * (0.5 + 0.5 * np.sin(7 * lam + 1.0) * np.cos(5 * phi)) ** 2

    def noise(self, name: str, h: float) -> np.ndarray:
        rng = np.random.default_rng([SEED, VARIABLES.index(name), 0 if name in CONSTANT else int(h)])
        return rng.random(self.lat.size) - 0.5  # uniform [-0.5, 0.5)

    def raw(self, name: str, date: datetime.datetime) -> np.ndarray:
        c, s, phi, lam, land = self.c, self.s, self.phi, self.lam, self.land
        h = (date - mdf.START).total_seconds() / 3600.0
        w = 2 * np.pi * h / 24.0  # diurnal phase
        u = self.noise(name, h)
        if "_" in name:  # pressure level
            p, lev = name.split("_")
            x = int(lev) / 1000.0
            jet = 30.0 * np.exp(-(((x - 0.25) / 0.25) ** 2))
            wave = np.sin(3 * lam + 2 * phi - 2 * np.pi * h / 120.0 + 2 * x)
            if p == "q":
                qs = 0.018 * c**3 * x**3.5 + 2.5e-6
                return qs * (0.6 + 0.35 * np.sin(2 * lam + 3 * phi - 2 * np.pi * h / 60.0)) * (1.0 + 0.05 * u)
            if p == "t":
                base = np.maximum(288.0 * x**0.19, 210.0 + 5.0 * (1.0 - x))
                return base + 30.0 * (c**2 - 0.5) * x**0.5 + 2.5 * c * np.sin(2 * lam + w) * x + 3.0 * wave \
                    + 0.15 * u
            if p == "u":
                return (8.0 + jet) * np.sin(2 * phi) ** 2 - 6.0 * c**8 \
                    + 6.0 * c * np.sin(4 * lam - 2 * np.pi * h / 96) + 0.3 * u
            if p == "v":
                return (4.0 + 0.5 * jet) * c * wave + 0.3 * u
            if p == "w":
                return 0.4 * c * np.sin(5 * lam + 3 * phi - 2 * np.pi * h / 48.0) * np.sin(np.pi * x) + 0.05 * u
            if p == "z":
                height = 7200.0 * np.log(1013.25 / (1000.0 * x))
                return G * (height - 380.0 * s**2 * (1.0 + 1.5 * (1.0 - x))
                            + 90.0 * c * (2.0 - x) * np.sin(3 * lam - 2 * np.pi * h / 120.0)) + 8.0 * u
            raise KeyError(name)
        t2 = 248.0 + 50.0 * c**2 + 6.0 * c * np.cos(lam + w) * (0.3 + land)
        rain = np.clip(np.sin(3 * lam + 2 * phi - 2 * np.pi * h / 36.0) * c - 0.2, 0.0, None) ** 2
        cloud = np.sin(4 * lam - 3 * phi - 2 * np.pi * h / 30.0)
        wind = 7.0 * np.sin(2 * phi) ** 2 * (1.0 - 0.4 * land) + 4.0 * c * np.sin(4 * lam - 2 * np.pi * h / 96)
        if name in ("10u", "100u"):
            return (1.0 if name == "10u" else 1.3) * wind + 0.2 * u
        if name in ("10v", "100v"):
            return (1.0 if name == "10v" else 1.3) * 3.5 * c * np.sin(3 * lam + 2 * phi - 2 * np.pi * h / 120) + 0.2 * u
        if name == "2t":
            return t2 + 0.2 * u
        if name == "2d":
            return t2 - 2.0 - 6.0 * land * c**2 + 0.2 * u
        if name == "skt":
            return t2 + 3.0 * land * c * np.cos(lam + w) + 0.2 * u
        if name == "stl1":
            return 249.0 + 48.0 * c**2 + 2.0 * c * np.cos(lam + w - 0.5) * land + 0.05 * u
        if name == "stl2":
            return 250.0 + 47.0 * c**2 + 0.5 * c * np.cos(lam + w - 1.5) * land + 0.02 * u
        if name == "msl":
            return 101325.0 - 900.0 * np.sin(2 * phi) ** 2 + 700.0 * c * np.sin(2 * lam - w / 2) + 15.0 * u
        if name == "sp":
            return 101325.0 - 900.0 * np.sin(2 * phi) ** 2 + 700.0 * c * np.sin(2 * lam - w / 2) \
                - 12000.0 * self.relief - 2000.0 * land + 15.0 * u
        if name == "tcw":
            return 2.0 + 55.0 * c**4 * (0.7 + 0.3 * cloud) + 0.1 * u
        if name == "lsm":
            return land
        if name == "z":
            return G * 5000.0 * self.relief
        if name == "sdor":
            return 400.0 * self.relief * (1.0 + 0.3 * u)
        if name == "slor":
            return 0.05 * self.relief * (1.0 + 0.3 * u)
        if name in ("hcc", "mcc", "lcc"):
            k = {"hcc": 0.0, "mcc": 1.0, "lcc": 2.0}[name]
            return np.clip(0.45 + 0.6 * np.sin(4 * lam - 3 * phi + k - 2 * np.pi * h / 30.0) + 0.05 * u, 0.0, 1.0)
        if name == "tcc":
            hcc, mcc, lcc = (self.raw(n, date) for n in ("hcc", "mcc", "lcc"))
            return 1.0 - (1.0 - hcc) * (1.0 - mcc) * (1.0 - lcc)
        if name in ("swvl1", "swvl2"):
            return land * (0.15 + 0.2 * (0.5 + 0.5 * np.sin(3 * lam + 2 * phi)) + (0.03 if name == "swvl1" else 0.01)
                           * (u + 0.5))
        if name == "tp":
            return 0.006 * rain * (1.0 + 0.5 * u)
        if name == "cp":
            return 0.004 * rain * (0.4 + 0.6 * c) * (1.0 + 0.5 * u)
        if name == "ro":
            return 0.002 * rain * land * (1.0 + 0.5 * u)
        if name == "sf":
            return 0.006 * rain * np.clip(4.0 * (s**2 - 0.45), 0.0, 1.0) * (1.0 + 0.5 * u)
        if name == "ssrd":
            sun = np.clip(c * np.cos(lam + w - np.pi), 0.0, None)
            return 2.0e7 * sun * (0.75 - 0.25 * cloud) * (1.0 + 0.02 * u)
        if name == "strd":
            return 21600.0 * (250.0 + 120.0 * c**2 + 20.0 * cloud + 2.0 * u)
        raise KeyError(name)

    def __call__(self, name: str, date: datetime.datetime) -> np.ndarray:
        return mdf.quantise(self.raw(name, date), BITS)


# ----------------------------------------------------------------------------------------------------------------
def write_gribs(folder: Path, templates: dict, fields: Fields, dates: list[datetime.datetime]) -> dict[str, str]:
    """an_YYYYmmddHH.grib2 per date (pressure-level and surface fields, step 0) and fc.grib2 (cp tp ro sf ssrd strd
    as 0-6 h forecast accumulations from base date d - 6 h, valid at d), one date at a time."""
    import eccodes

    def put(h, name, d, out):
        eccodes.codes_set_values(h, fields(name, d).astype(np.float64))
        assert eccodes.codes_get(h, "packingType") == "grid_ieee"
        eccodes.codes_write(h, out)
        eccodes.codes_release(h)

    fc = folder / "fc.grib2"
    with open(fc, "wb") as fco:
        for d in dates:
            with open(folder / f"an_{d:%Y%m%d%H}.grib2", "wb") as out:
                for name in GRIB_NAMES:
                    if name in ACCUM_PARAMS:
                        continue
                    if "_" in name:
                        p, lev = name.split("_")
                        h = eccodes.codes_clone(templates["pl"])
                        eccodes.codes_set(h, "paramId", PL_PARAMS[p])
                        eccodes.codes_set(h, "level", int(lev))
                        assert eccodes.codes_get(h, "typeOfLevel") == "isobaricInhPa"
                        sn = p
                    else:
                        h = eccodes.codes_clone(templates["sfc"])
                        eccodes.codes_set(h, "paramId", SFC_PARAMS[name])
                        sn = name
                    eccodes.codes_set(h, "dataDate", int(d.strftime("%Y%m%d")))
                    eccodes.codes_set(h, "dataTime", int(d.strftime("%H%M")))
                    eccodes.codes_set(h, "step", 0)
                    assert eccodes.codes_get(h, "shortName") == sn, (name, eccodes.codes_get(h, "shortName"))
                    put(h, name, d, out)
            base = d - mdf.STEP
            for name, param in ACCUM_PARAMS.items():
                h = eccodes.codes_clone(templates["accum"])
                eccodes.codes_set(h, "dataDate", int(base.strftime("%Y%m%d")))
                eccodes.codes_set(h, "dataTime", int(base.strftime("%H%M")))
                eccodes.codes_set(h, "stepRange", "0-6")
                eccodes.codes_set(h, "paramId", param)
                assert eccodes.codes_get(h, "shortName") == name, eccodes.codes_get(h, "shortName")
                assert eccodes.codes_get(h, "validityDate") == int(d.strftime("%Y%m%d"))
                assert eccodes.codes_get(h, "validityTime") == int(d.strftime("%H%M"))
                put(h, name, d, fco)
    return {"an": str(folder / "an_{date:strftime(%Y%m%d%H)}.grib2"), "fc": str(fc)}


def make_recipe(gribs: dict[str, str], dates: list[datetime.datetime], missing: list[datetime.datetime],
                group_by: int) -> dict:
    dates_cfg = {"start": dates[0].isoformat(), "end": dates[-1].isoformat(), "frequency": "6h"}
    if missing:
        dates_cfg["missing"] = [d.isoformat() for d in missing]
    return {
        "description": f"Boreas benchmark store: O96, {len(dates)} dates 6-hourly from {dates[0].isoformat()}, "
                       "the AIFS-single variables of Boreas' o96 config (synthetic fields)",
        "licence": "CC-BY-4.0",
        "attribution": "Boreas benchmark (synthetic fields on the O96 grid)",
        "dates": dates_cfg,
        "build": {"group_by": group_by},
        "input": {
            "join": [
                {"grib": {"path": gribs["an"]}},
                {
                    "accumulate": {
                        "period": "6h",
                        "covering": {"auto": [[0, ["0-6"]], [6, ["0-6"]], [12, ["0-6"]], [18, ["0-6"]]]},
                        "source": {"grib": {"path": gribs["fc"]}},
                    }
                },
                {"forcings": {"template": "${input.join.0.grib}", "param": FORCINGS}},
            ]
        },
    }


def create(recipe_path: Path, path: Path) -> None:
    """make_dataset_fixtures.anemoi_create (anemoi's serial create tasks in process, fixed clocks) with the cube's
    param_level order set to VARIABLES (see the docstring: 'order')."""
    from anemoi.datasets.create.gridded.context import SimpleGriddedContext

    order = {"valid_datetime": "ascending", "param_level": list(VARIABLES), "number": "ascending"}
    with mdf.patched([(SimpleGriddedContext, "order_by", order)]):
        mdf.anemoi_create(recipe_path, path, "o96")


# ----------------------------------------------------------------------------------------------------------------
def check(path: Path, fields: Fields, lat: np.ndarray, lon: np.ndarray, dates: list[datetime.datetime],
          missing: list[datetime.datetime]) -> dict:
    """variables == VARIABLES; a few dates hold exactly the generated fields (forcings: cos/sin latitude and
    longitude); statistics equal a streaming float64 numpy pass (one date in memory at a time)."""
    import zarr

    z = zarr.open_group(str(path), mode="r")
    data = z["data"]
    assert list(z.attrs["variables"]) == VARIABLES, z.attrs["variables"]
    assert data.shape == (len(dates), len(VARIABLES), 1, NPOINTS), data.shape
    assert data.chunks == (1, len(VARIABLES), 1, NPOINTS), data.chunks
    assert np.array_equal(z["latitudes"][...], lat) and np.allclose(z["longitudes"][...], lon % 360)
    present = [i for i, d in enumerate(dates) if d not in missing]
    forcing_want = {"cos_latitude": np.cos(np.deg2rad(lat)), "sin_latitude": np.sin(np.deg2rad(lat)),
                    "cos_longitude": np.cos(np.deg2rad(lon)), "sin_longitude": np.sin(np.deg2rad(lon))}
    for i in sorted({present[0], present[len(present) // 2], present[-1]}):
        x = data[i]
        for j, name in enumerate(VARIABLES):
            if name in forcing_want:
                assert np.allclose(x[j, 0], forcing_want[name], atol=1e-6), name
            elif name not in FORCINGS:
                want = fields(name, dates[i])
                assert np.array_equal(x[j, 0], want), (dates[i], name, np.abs(x[j, 0] - want).max())
    for d in missing:
        assert np.isnan(data[dates.index(d)]).all()
    lo, hi = (np.datetime64(z.attrs[k]) for k in ("statistics_start_date", "statistics_end_date"))
    sel = [i for i, t in enumerate(z["dates"][...]) if lo <= t <= hi and dates[i] not in missing]
    n, s1, s2 = 0, np.zeros(len(VARIABLES)), np.zeros(len(VARIABLES))
    mn, mx = np.full(len(VARIABLES), np.inf), np.full(len(VARIABLES), -np.inf)
    for i in sel:
        x = data[i][:, 0].astype(np.float64)
        n += x.shape[1]
        s1 += x.sum(axis=1)
        mn, mx = np.minimum(mn, x.min(axis=1)), np.maximum(mx, x.max(axis=1))
    mean = s1 / n
    for i in sel:
        x = data[i][:, 0].astype(np.float64)
        s2 += ((x - mean[:, None]) ** 2).sum(axis=1)
    stdev = np.sqrt(s2 / n)
    assert np.array_equal(z["minimum"][...], mn) and np.array_equal(z["maximum"][...], mx)
    err_mean = np.max(np.abs(z["mean"][...] - mean) / np.maximum(np.abs(mean), 1e-300))
    err_std = np.max(np.abs(z["stdev"][...] - stdev) / np.maximum(np.abs(stdev), 1e-300))
    assert err_mean < 1e-9 and err_std < 1e-6, (err_mean, err_std)
    return {"statistics_dates": len(sel), "max_rel_diff_mean": float(err_mean), "max_rel_diff_stdev": float(err_std)}


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--dates", type=int, default=64, help="number of 6-hourly dates from 2024-01-01T00")
    ap.add_argument("--missing", type=int, default=0, metavar="K",
                    help="declare dates K, 2K, ... (not the first or last) missing")
    ap.add_argument("--group-by", type=int, default=8, help="dates anemoi loads at a time (memory)")
    ap.add_argument("--force", action="store_true", help="replace an existing store")
    ap.add_argument("--no-check", action="store_true", help="skip the value and statistics checks")
    args = ap.parse_args()
    if args.dates < 2:
        ap.error("--dates must be at least 2")

    t0 = time.time()
    out = args.out.resolve()
    if out.exists():
        if not args.force:
            print(f"{out} exists; use --force to replace it", file=sys.stderr)
            return 1
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)

    import eccodes
    import yaml

    dates = [mdf.START + k * mdf.STEP for k in range(args.dates)]
    missing = [d for k, d in enumerate(dates) if args.missing > 0 and k % args.missing == 0 and 0 < k < len(dates) - 1]
    present = [d for d in dates if d not in missing]

    templates = o96_templates()
    lat, lon = grid(templates)
    fields = Fields(lat, lon)
    work = Path(tempfile.mkdtemp(prefix="boreas-o96-grib-"))
    try:
        gribs = write_gribs(work, templates, fields, present)
        t_grib = time.time() - t0
        print(f"GRIB written in {t_grib:.0f} s ({sum(p.stat().st_size for p in work.iterdir()) / 1e6:.0f} MB)",
              flush=True)
        rpath = work / "o96.yaml"
        rpath.write_text(yaml.safe_dump(make_recipe(gribs, dates, missing, args.group_by), sort_keys=False))
        create(rpath, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        for h in templates.values():
            eccodes.codes_release(h)
    t_create = time.time() - t0
    checked = None if args.no_check else check(out, fields, lat, lon, dates, missing)

    from anemoi.datasets import open_dataset

    ds = open_dataset(str(out))
    assert list(ds.variables) == VARIABLES and ds.statistics is not None
    data_bytes = du(out / "data")
    raw = len(present) * len(VARIABLES) * NPOINTS * 4
    print(f"store      {out}")
    print(f"dates      {len(dates)} ({dates[0]:%Y-%m-%dT%H} .. {dates[-1]:%Y-%m-%dT%H}, 6-hourly), "
          f"{len(missing)} missing, shape {ds.shape}")
    print(f"variables  {len(VARIABLES)} (order == o96 config: {list(ds.variables) == VARIABLES})")
    print(f"points     {NPOINTS}")
    print(f"on disk    {du(out)} bytes (data chunks {data_bytes})")
    print(f"raw        {raw} bytes (float32, present dates)")
    print(f"ratio      {raw / data_bytes:.3f}")
    if checked:
        print(f"checked    values of 3 dates; statistics over {checked['statistics_dates']} dates "
              f"(max rel diff mean {checked['max_rel_diff_mean']:.1e}, stdev {checked['max_rel_diff_stdev']:.1e})")
    print(f"wall time  {time.time() - t0:.0f} s (GRIB {t_grib:.0f} s, create {t_create - t_grib:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

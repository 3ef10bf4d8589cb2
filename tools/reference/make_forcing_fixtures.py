#!/usr/bin/env python3
"""Reference fixture for the computed forcings of anemoi-inference (cos_latitude, insolation, ...), for Boreas'
`forecast` forcing code.

Run from the repository root with the inference environment (tools/peer/requirements-inference.txt; README.md of
tools/peer says how .venv-inf is made):

    .venv-inf/bin/python tools/reference/make_forcing_fixtures.py [--out tests/data/forecast/computed_forcings.safetensors]

The values are made by anemoi-inference's own code path, not by a re-implementation:
``anemoi.inference.forcings.ComputedForcings(context, variables, mask).load_forcings_array(dates, state)`` with
``state = {"latitudes": lats, "longitudes": lons}`` -- the call TensorHandler makes for the initial tensor and for
every rollout step.  It builds ``anemoi.transform.grids.unstructured.UnstructuredGridFieldList.from_values`` on the
points and evaluates ``earthkit.data.from_source("forcings", source, date=dates, param=variables)`` (earthkit-data's
``sources/forcings.py`` ForcingMaker; insolation / cos_solar_zenith_angle / toa_incident_solar_radiation come from
``earthkit/data/utils/meteo.py``, a copy of earthkit-meteo's solar code), then ``to_numpy(dtype=np.float32)``:
every forcing is computed in float64 from the float64 coordinates and rounded once to float32.

Tensors (computed_forcings.safetensors)
---------------------------------------
  latitudes   F64 [P]          degrees (P = 48: 8 latitudes x 6 longitudes, latitude-major)
  longitudes  F64 [P]          degrees (one negative longitude, -30, on purpose: the formulas are used as is)
  <forcing>   F32 [D, P]       anemoi-inference's value at date d (row order = metadata dates), point p
Header metadata ``boreas`` (JSON): dates (ISO, naive = UTC), forcings, the function used, versions, notes.
Deterministic: a second run writes a byte-identical file.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "tests/data/forecast/computed_forcings.safetensors"

# Every name earthkit-data's ForcingMaker answers (earthkit-data 0.20 sources/forcings.py).  Names with a time
# shift ("insolation-6h", "cos_julian_day+1d") are also accepted there (ForcingMaker.__getattr__: the base forcing
# at date +/- N hours/days); they are not stored here, nor are "latitude" / "longitude" (the coordinates
# themselves, rounded to float32).
FORCINGS = [
    "cos_latitude",
    "sin_latitude",
    "cos_longitude",
    "sin_longitude",
    "ecef_x",
    "ecef_y",
    "ecef_z",
    "julian_day",
    "cos_julian_day",
    "sin_julian_day",
    "local_time",
    "cos_local_time",
    "sin_local_time",
    "insolation",
    "cos_solar_zenith_angle",
    "toa_incident_solar_radiation",
]

# Ascending: ComputedForcings returns the dates sorted (order_by valid_datetime ascending), whatever the order asked.
DATES = [
    datetime.datetime(2023, 3, 20, 0, 0),
    datetime.datetime(2024, 2, 29, 12, 0),  # leap day
    datetime.datetime(2024, 3, 10, 13, 30),  # minutes: cos_solar_zenith_angle uses date.hour only
    datetime.datetime(2024, 6, 1, 6, 0),  # the forecast fixture's base date
    datetime.datetime(2024, 6, 20, 21, 0),  # near the June solstice
    datetime.datetime(2024, 12, 21, 9, 0),
    datetime.datetime(2025, 1, 1, 0, 0),  # julian_day 0
]

LATITUDES = [90.0, 89.9, 85.76058712044382, 60.0, 23.5, 0.0, -45.25, -89.9]
LONGITUDES = [0.0, 45.5, 180.0, 270.25, 359.9, -30.0]


def versions() -> dict:
    from importlib.metadata import version

    out = {"python": ".".join(map(str, sys.version_info[:3]))}
    for dist in ("anemoi-inference", "anemoi-transform", "earthkit-data", "earthkit-utils", "numpy"):
        out[dist] = version(dist)
    return out


def compute(lats: np.ndarray, lons: np.ndarray, dates: list | None = None) -> np.ndarray:
    """anemoi-inference's ComputedForcings on the points: [forcings, dates, points] float32."""
    from anemoi.inference.forcings import ComputedForcings

    dates = list(DATES) if dates is None else dates
    provider = ComputedForcings(None, list(FORCINGS), mask=None)  # context is only stored, never used
    state = {"latitudes": lats, "longitudes": lons}
    arr = provider.load_forcings_array(dates, state)
    assert arr.dtype == np.float32 and arr.shape == (len(FORCINGS), len(dates), lats.size), (arr.dtype, arr.shape)
    return arr


def independent(name: str, date: datetime.datetime, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Plain numpy float64 transcription of the formulas Boreas implements (see the report / docs); rounded to f32."""
    year0 = datetime.datetime(date.year, 1, 1)
    d = date - year0
    jd = d.days + d.seconds / 86400.0
    d0 = date - datetime.datetime(date.year, date.month, date.day)
    hours = (d0.days + d0.seconds / 86400.0) * 24

    def csza(dt, la, lo):
        a = ((dt - datetime.datetime(dt.year, 1, 1)).days + (dt - datetime.datetime(dt.year, 1, 1)).seconds / 86400.0)
        a = a / 365.25 * np.pi * 2
        dec = float(0.396372 - 22.91327 * np.cos(a) + 4.025430 * np.sin(a) - 0.387205 * np.cos(2 * a)
                    + 0.051967 * np.sin(2 * a) - 0.154527 * np.cos(3 * a) + 0.084798 * np.sin(3 * a))
        tc = float(0.004297 + 0.107029 * np.cos(a) - 1.837877 * np.sin(a) - 0.837378 * np.cos(2 * a)
                   - 2.340475 * np.sin(2 * a))
        dec = np.deg2rad(dec)
        la = np.deg2rad(la)
        ha = np.deg2rad((dt.hour - 12) * 15 + lo + tc)
        return np.clip(np.sin(dec) * np.sin(la) + np.cos(dec) * np.cos(la) * np.cos(ha), 0.0, None)

    phi, lda = np.deg2rad(lat), np.deg2rad(lon)
    n = lat.size
    if name == "latitude":
        v = lat
    elif name == "longitude":
        v = lon
    elif name == "cos_latitude":
        v = np.cos(phi)
    elif name == "sin_latitude":
        v = np.sin(phi)
    elif name == "cos_longitude":
        v = np.cos(lda)
    elif name == "sin_longitude":
        v = np.sin(lda)
    elif name == "ecef_x":
        v = np.cos(phi) * np.cos(lda)
    elif name == "ecef_y":
        v = np.cos(phi) * np.sin(lda)
    elif name == "ecef_z":
        v = np.sin(phi)
    elif name == "julian_day":
        v = np.full(n, jd)
    elif name == "cos_julian_day":
        v = np.cos(np.full(n, jd) / 365.25 * np.pi * 2)
    elif name == "sin_julian_day":
        v = np.sin(np.full(n, jd) / 365.25 * np.pi * 2)
    elif name in ("local_time", "cos_local_time", "sin_local_time"):
        lt = (lon / 360.0 * 24.0 + hours) % 24
        v = {"local_time": lt, "cos_local_time": np.cos(lt / 24 * np.pi * 2),
             "sin_local_time": np.sin(lt / 24 * np.pi * 2)}[name]
    elif name in ("insolation", "cos_solar_zenith_angle"):
        v = csza(date, lat, lon)
    elif name == "toa_incident_solar_radiation":
        # _integrate(begin=date-30min, end=date+30min, intervals_per_hour=2, integration_order=3)
        begin = date - datetime.timedelta(minutes=30)
        E = np.asarray([-np.sqrt(5.0 / 9.0), 0.0, np.sqrt(5.0 / 9.0)])
        W = np.asarray([5.0 / 9.0, 8.0 / 9.0, 5.0 / 9.0])
        size = 1.0
        nsplits = int(size * 2 + 0.5)
        ts = np.linspace(0, size, num=nsplits + 1)
        v = np.zeros_like(lat)
        for s in range(nsplits):
            ti, tf = ts[s], ts[s + 1]
            jac = (tf - ti) / 2.0
            w = jac * W / size
            t = jac * E + (tf + ti) / 2.0
            for k in range(3):
                dt = begin + datetime.timedelta(hours=float(t[k]))
                a = ((dt - datetime.datetime(dt.year, 1, 1)).days
                     + (dt - datetime.datetime(dt.year, 1, 1)).seconds / 86400.0) / 365.25 * np.pi * 2
                isr = np.cos(a) * 165120.0 + 4892416.0
                v = v + w[k] * (isr * csza(dt, lat, lon))
    else:
        raise KeyError(name)
    return np.asarray(v, dtype=np.float64).astype(np.float32)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--budget", type=int, default=40_000, help="maximum file size in bytes (0 = no check)")
    args = ap.parse_args()

    from safetensors.numpy import save_file

    lats = np.repeat(np.asarray(LATITUDES, dtype=np.float64), len(LONGITUDES))
    lons = np.tile(np.asarray(LONGITUDES, dtype=np.float64), len(LATITUDES))
    arr = compute(lats, lons)

    # cross-check against the plain transcription of the formulas (what the report documents): bit for bit
    differ = [name for i, name in enumerate(FORCINGS) for j, date in enumerate(DATES)
              if not np.array_equal(arr[i, j], independent(name, date, lats, lons))]
    if differ:
        print("formula transcription differs for:", sorted(set(differ)), file=sys.stderr)
        return 1
    # the rows come back sorted by date whatever order the dates are asked in
    if not np.array_equal(compute(lats, lons, list(reversed(DATES))), arr):
        print("ComputedForcings did not return the dates in ascending order", file=sys.stderr)
        return 1

    tensors = {"latitudes": lats, "longitudes": lons}
    for i, name in enumerate(FORCINGS):
        tensors[name] = np.ascontiguousarray(arr[i])

    meta = {
        "generator": "tools/reference/make_forcing_fixtures.py",
        "function": "anemoi.inference.forcings.ComputedForcings(None, forcings, mask=None).load_forcings_array("
                    "dates, {'latitudes': latitudes, 'longitudes': longitudes}) -> "
                    "earthkit.data.from_source('forcings', UnstructuredGridFieldList.from_values(...), date=dates, "
                    "param=forcings).order_by(name=forcings, valid_datetime='ascending').to_numpy(dtype=float32)",
        "dates": [d.isoformat() for d in DATES],
        "forcings": FORCINGS,
        "layout": "<forcing>: float32 [dates, points]; latitudes/longitudes: float64 degrees [points], "
                  "points = 8 latitudes x 6 longitudes, latitude-major",
        "versions": versions(),
        "notes": [
            "computed in float64 (numpy, from the float64 degrees), rounded once to float32",
            "bit-identical to a plain numpy float64 transcription of the formulas (checked by the generator)",
            "cos_solar_zenith_angle/insolation use date.hour only (minutes and seconds ignored); julian_day uses "
            "days + seconds/86400 since Jan 1 00:00 of the same year (Jan 1 00:00 = 0), divisor 365.25",
            "toa_incident_solar_radiation: mean over [date-30min, date+30min] of (cos(2*pi*jd/365.25)*165120 + "
            "4892416) * csza, 3-point Gauss-Legendre on two 30-minute intervals; csza uses each node's truncated hour",
        ],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(args.out), metadata={"boreas": json.dumps(meta, sort_keys=True, separators=(",", ":"))})
    size = args.out.stat().st_size
    print(f"wrote {args.out} ({size} bytes)")
    if args.budget and size > args.budget:
        print(f"{args.out} is {size} bytes > budget {args.budget}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Seed corpus for tests/fuzz/fuzz_zarr.cpp from the committed dataset fixtures: for every array
of every store under tests/data/datasets, one input "<.zarray>\\0<the group's .zattrs>\\0<its first
stored chunk>", so every compressor (blosc with each cname and shuffle, zstd, lz4, zlib, gzip,
none), dtype, fill value and separator starts the fuzzer off.  Plain Python, no packages.

    python3 tools/reference/make_zarr_fuzz_corpus.py   # writes tests/fuzz/corpus/fuzz_zarr/
"""
import hashlib
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
STORES = REPO / "tests" / "data" / "datasets"
OUT = REPO / "tests" / "fuzz" / "corpus" / "fuzz_zarr"


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    seen = set()
    for zarray in sorted(STORES.rglob(".zarray")):
        array = zarray.parent
        group = array.parent
        meta = json.loads(zarray.read_text())
        attrs = (group / ".zattrs").read_bytes() if (group / ".zattrs").exists() else b"{}"
        chunks = sorted(p for p in array.rglob("*") if p.is_file() and not p.name.startswith("."))
        if not chunks:
            continue
        chunk = chunks[0].read_bytes()
        if len(chunk) > 64 * 1024:
            continue  # the big O16 chunks add nothing the small ones do not
        key = (json.dumps(meta.get("compressor"), sort_keys=True), meta["dtype"], str(meta.get("fill_value")),
               meta.get("dimension_separator", "."))
        if key in seen:
            continue
        seen.add(key)
        payload = zarray.read_bytes() + b"\0" + attrs + b"\0" + chunk
        name = hashlib.sha1(payload).hexdigest()[:16]
        (OUT / name).write_bytes(payload)
        print(f"{name}: {array.relative_to(STORES)} ({len(payload)} bytes)")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Seed corpus for tests/fuzz/fuzz_checkpoint.cpp: small checkpoints written by torch.save itself
(state dicts, whole modules with parameters and persistent and non-persistent buffers, every
storage dtype Boreas reads, strided views, shared storages) plus hand-made pickles whose GLOBALs
and REDUCEs Python would execute.  Each file stays a few KB.

    .venv-ref/bin/python tools/reference/make_fuzz_corpus.py   # writes tests/fuzz/corpus/fuzz_checkpoint/
"""
import collections
import io
import os
import pickle
import zipfile
from pathlib import Path

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
import torch  # noqa: E402

OUT = Path(__file__).resolve().parents[2] / "tests" / "fuzz" / "corpus" / "fuzz_checkpoint"


class WithBuffers(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(3, 2)
        self.norm = torch.nn.LayerNorm(2)
        self.register_buffer("persistent", torch.arange(4, dtype=torch.int64))
        self.register_buffer("transient", torch.ones(2, 2), persistent=False)
        self.inner = torch.nn.ModuleDict({"data": torch.nn.Linear(2, 2, bias=False)})


def save(name, obj):
    path = OUT / name
    torch.save(obj, path)
    print(f"{path.name}: {path.stat().st_size} bytes")


class Evil:
    def __reduce__(self):
        return (os.system, ("touch /tmp/boreas-pickle-was-executed",))


def torch_zip(name, payload: bytes, storages: dict[str, bytes]):
    """A zip in torch's layout around a hand-made pickle."""
    path = OUT / name
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", payload)
        for key, data in storages.items():
            z.writestr(f"archive/data/{key}", data)
        z.writestr("archive/version", "3\n")
        z.writestr("archive/byteorder", "little")
    print(f"{path.name}: {path.stat().st_size} bytes")


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    save("state_dict.pt", collections.OrderedDict(w=torch.randn(2, 3), b=torch.randn(3)))
    save("module.pt", WithBuffers())
    save("module_state_dict.pt", WithBuffers().state_dict())
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    save("views.pt", {"t": base.t(), "row": base[1], "shared": base, "slice": base[:, 1:3]})
    save(
        "dtypes.pt",
        {
            "f64": torch.randn(3, dtype=torch.float64),
            "f16": torch.randn(3).half(),
            "bf16": torch.randn(3).bfloat16(),
            "i64": torch.arange(3),
            "i32": torch.arange(3, dtype=torch.int32),
            "i16": torch.arange(3, dtype=torch.int16),
            "i8": torch.arange(3, dtype=torch.int8),
            "u8": torch.arange(3, dtype=torch.uint8),
            "bool": torch.tensor([True, False]),
            "scalar": torch.tensor(1.5),
            "empty": torch.zeros(0, 3),
        },
    )
    save("lightning.pt", {"state_dict": {"model.w": torch.ones(2)}, "epoch": 3, "hyper_parameters": {"x": [1, 2.5, None]}})
    save("nested.pt", {"set": {1, 2}, "tuple": (1, "a", b"b"), "list": [1.0, float("inf")], "param": torch.nn.Parameter(torch.ones(2))})
    torch_zip("evil.pt", pickle.dumps({"w": 1, "x": Evil()}, protocol=2), {})
    torch_zip("evil_p0.pt", pickle.dumps([Evil(), {"a": 1}], protocol=0), {})
    torch_zip("evil_p4.pt", pickle.dumps({"x": Evil(), "s": {1, 2}}, protocol=4), {})
    # a torch pickle whose tensor record points past its storage
    buf = io.BytesIO()
    torch.save({"w": torch.ones(4)}, buf)
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as z:
        pkl = z.read(next(n for n in z.namelist() if n.endswith("data.pkl")))
    torch_zip("short_storage.pt", pkl, {"0": b"\0" * 8})


if __name__ == "__main__":
    main()

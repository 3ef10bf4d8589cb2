#!/usr/bin/env python3
"""anemoi-models under torch.autocast(bfloat16) on the committed model fixtures' weights and input.

For the transformer, graphtransformer and gnn variants of tests/data/model (make_model_fixtures.py:
the same seeded weights, graphs and input), runs AnemoiModelEncProcDec twice on the CPU: in fp32
(checked bit for bit against the committed `output`, so the weights are the fixture's) and under
torch.autocast("cpu", dtype=torch.bfloat16), as anemoi-inference runs a bf16 checkpoint. Writes
tests/data/model/bf16_autocast.safetensors: "<variant>.output" [1, T, E, N, V_out], the autocast
output of the input's first batch element as fp32 (one element keeps the fixtures under their
10 MB budget), and per-variable statistics in the metadata. gnn_mappers is left out: none of
its weights run through the bf16 Linears.

    .venv-ref/bin/python tools/reference/make_bf16_fixtures.py
"""
from __future__ import annotations

import json
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_model_fixtures as mf  # noqa: E402

VARIANTS = ["transformer", "graphtransformer", "gnn"]


def main() -> int:
    warnings.filterwarnings("ignore")
    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file

    torch.manual_seed(mf.SEED)
    torch.set_num_threads(1)
    out_dir = mf.REPO / "tests" / "data" / "model"
    checks: dict = {}
    tensors: dict = {}
    meta: dict = {"variables": "columns of the output: internal model output order (see VERSIONS.json)"}
    with tempfile.TemporaryDirectory() as tmp:
        graphs = {name: mf.load_graph(name, Path(tmp), checks) for name in {mf.VARIANTS[v]["graph"] for v in VARIANTS}}
    coords = graphs["o16_o4"][0]["data"].x.numpy()
    x = mf.make_input(coords)
    for name in VARIANTS:
        var = mf.VARIANTS[name]
        graph = graphs[var["graph"]][0]
        model = mf.build_model(graph, mf.anemoi_config(var["processor"], mappers=var.get("mappers", "graphtransformer")))
        mf.init_weights(model)
        y32 = mf.run(model, x)
        with safe_open(str(out_dir / f"{name}.io.safetensors"), framework="pt") as f:
            committed = f.get_tensor("output")
        # torch's CPU kernels round differently from CPU to CPU (as make_model_fixtures --only checks)
        assert torch.allclose(y32, committed, rtol=1e-5, atol=1e-5), f"{name}: fp32 output is not the fixture's"
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            y16 = model({"data": torch.from_numpy(x)})["data"]
        y16, y32 = y16.float()[:1], y32[:1]
        tensors[f"{name}.output"] = y16.contiguous()
        diff = (y16 - y32).reshape(-1, y32.shape[-1]).double()
        ref = y32.reshape(-1, y32.shape[-1]).double()
        # Relative to the variable's RMS; absolute where the variable is zero (bounded to 0 here)
        ref_rms = ref.pow(2).mean(0).sqrt()
        rel_rms = (diff.pow(2).mean(0).sqrt() / torch.where(ref_rms > 0, ref_rms, 1.0)).tolist()
        meta[f"{name}.relative_rms_vs_fp32"] = [round(v, 6) for v in rel_rms]
        print(f"{name}: autocast output dtype {y16.dtype}, relative RMS vs fp32 per variable {np.round(rel_rms, 5)}")
    from importlib.metadata import version

    meta["versions"] = {m: version(m) for m in ["torch", "anemoi-models"]}
    save_file(tensors, str(out_dir / "bf16_autocast.safetensors"), metadata={"boreas": json.dumps(meta)})
    return 0


if __name__ == "__main__":
    sys.exit(main())

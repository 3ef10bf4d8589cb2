#!/usr/bin/env python3
"""Time the PyTorch / anemoi-models kernels that correspond to Boreas' attention kernels, at given shapes: the peer
numbers for Boreas' kernel micro-benchmarks (bench/micro/kernels.cpp, BM_window_attention and BM_graph_attention).

    .venv-ref/bin/python tools/peer/kernel_peers.py window-attention --seq N --window W --heads H --head-dim D \
        [--threads T] [--warmup 1] [--repetitions 3] [--seed 1] [--contiguous] [--check] [--json OUT.json]
    .venv-ref/bin/python tools/peer/kernel_peers.py graph-attention --n-src S --n-dst T --edges-per-dst E \
        --heads H --head-dim D --edge-dim F [--threads T] [--warmup 1] [--repetitions 3] [--seed 1] [--check] \
        [--json OUT.json]

Both run on the CPU in fp32 with T threads (default: OMP_NUM_THREADS, else all CPUs of the affinity mask): as
run_anemoi.py does, OMP_NUM_THREADS / MKL_NUM_THREADS are set and CUDA is hidden before torch is imported, then
torch.set_num_threads(T).  Inputs are random normal from a seeded torch.Generator (--seed, default 1).  A summary line
goes to stdout; with --json the result document (below) is written too.  Bad arguments: one line on stderr, exit 2.

Timing (both kernels)
---------------------
Under torch.inference_mode(): --warmup calls (default 1, excluded), then --repetitions calls (default 3), each timed
on its own with time.perf_counter around exactly the timed region named below.  Reported: median, min, max and every
sample, in seconds.  Nothing is repeated to reach a minimum time: at tiny shapes the numbers are noisy.
--check runs one more, untimed call and compares its output with a float64 reference written independently here
(dense masked softmax for the window, a per-destination softmax over the E gathered sources for the graph); it stops
with exit 1 when the largest absolute difference exceeds 1e-4.  It costs O(N^2) float64 memory for the window, so
use it at small shapes only.

window-attention
----------------
What anemoi-models 0.18 does on the CPU without flash-attn, found in the venv's anemoi/models/layers/attention.py:
MultiHeadSelfAttention.attention_computation rearranges q, k, v from [(batch grid), (heads vars)] to
[batch, heads, grid, vars] (einops: a strided view, not a copy) and calls SDPAAttentionWrapper.forward with
window_size=self.window_size.  On its first call that wrapper builds the mask once, with
create_sliding_window_mask(1, H, N, N, (W, W)): torch.nn.attention.flex_attention.create_mask over
    kv <= q: |q - kv| <= W_left,   q <= kv: |q - kv| <= W_right      (W_left = W_right = W)
taking [0, 0] of the result, i.e. a boolean [N, N] mask, True = attend, mask[i, j] = |i - j| <= W; it keeps it in
self.attn_mask and then calls torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask,
is_causal=False, dropout_p=0.0) (default scale 1/sqrt(D)) on every forward.

This script does the same: q, k, v are drawn as [N, H*D] and viewed as [1, H, N, D] the way the einops rearrange
views them (--contiguous: contiguous [1, H, N, D] tensors instead); the boolean mask is built once, before timing
(in row blocks, so that building it needs no more than the N^2-byte mask itself; for N <= 2048 it is also built
with anemoi's own SDPAAttentionWrapper.create_sliding_window_mask and must be equal, recorded as
mask_matches_anemoi; anemoi's builder materialises several N^2 int64 temporaries, hence the limit).
Timed region: one scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=False, dropout_p=0.0) call.  In
torch 2.10 on the CPU that call first turns the boolean mask into an additive float mask (aten::where, N^2 * 4 bytes,
6.5 GB at N = 40320) and then runs aten::_scaled_dot_product_flash_attention_for_cpu over all N x N scores (checked
with torch.profiler at a small shape); both are inside the timed region, as they are inside anemoi's forward.
Memory: the N^2-byte mask (1.6 GB at N = 40320) plus the N^2 * 4-byte float mask during each call.

FLOPs (per call; pairs = number of (i, j) in [0, N)^2 with |i - j| <= W, truncated at both ends
= N (2w + 1) - w (w + 1) with w = min(W, N - 1)):
    model_flops    = 4 * D * H * pairs      q.k and alpha*v over the keys inside each query's window: 2 D each per
                                            head and pair; the useful work, the count of Boreas' BM_window_attention
                                            and cost model (src/bench/cost_model.cpp)
    executed_flops = 4 * D * H * N * N      what SDPA with a dense mask computes (every score, masked afterwards)
    bytes          = 4 * 4 * N * H * D      q, k, v read once and out written once (fp32), BM_window_attention's model;
                                            the mask is not counted
gflops = model_flops / median / 1e9, gbytes_per_s = bytes / median / 1e9 (also executed_gflops on executed_flops).

graph-attention
---------------
What anemoi-models 0.18 does, found in the venv's anemoi/models/layers/block.py and conv.py: the mapper and
processor blocks derive from GraphTransformerBaseBlock, whose set_attention_function() picks
graph_attention_backend "triton" (anemoi.models.triton.gt.graph_transformer_attention_conv) or "pyg"; without triton
(is_triton_available() is False on a CPU-only install) it falls back to pyg, self.conv =
GraphTransformerConv(out_channels=D) (anemoi/models/layers/conv.py, a torch_geometric MessagePassing, aggr "add").
The block (GraphTransformerMapperBlock.forward, edge sharding, num_chunks 1) computes query/key/value with
lin_query/lin_key/lin_value and edges = lin_edge(edge_pre_mlp(edge_attr)) (edge_pre_mlp = Identity by default;
lin_edge = Linear(edge_dim, H*D), torch.nn.Linear with the layer kernels Boreas' configs use), then
_forward_edges_sharded_attention -> prepare_qkve_edge_sharding (einops "nodes (heads vars) -> nodes heads vars") ->
attention_block -> apply_gt, which for pyg calls self.conv(query, key, value, edges, edge_index, (n_src, n_dst)),
and rearranges the [n_dst, H, D] result back to [n_dst, H*D].  GraphTransformerConv.message computes, per edge
j -> i and head,  alpha = q_i . (k_j + e_ij) / sqrt(D),  pyg softmax of alpha over the edges of destination i,
message (v_j + e_ij) * alpha, summed per destination.

Boreas' fused kernel (kernels::graph_attention) takes q, k, v and the raw edge features and includes the edge
projection, so the timed region here is the same unit:
    edges = lin_edge(edge_attr)                                      [num_edges, F] -> [num_edges, H*D]
    edges = einops.rearrange(edges, "nodes (heads vars) -> nodes heads vars")
    out   = GraphTransformerConv(q, k, v, edges, edge_index, (S, T))  [T, H, D]
    out   = einops.rearrange(out, "nodes heads vars -> nodes (heads vars)")
with q [T, H, D], k and v [S, H, D] (random normal; the rearranged outputs of lin_query/lin_key/lin_value, which are
not timed), edge_attr [num_edges, F] random normal, lin_edge a seeded torch.nn.Linear(F, H*D).  The graph: every
destination has exactly E sources drawn uniformly from [0, S) with replacement (seeded, like BM_graph_attention),
num_edges = T * E, edge_index = [[src], [dst]] int64 sorted by destination (anemoi's mappers make the edges
destination-sorted, ensure_edges_are_dst_sorted).  Unlike anemoi's edge-sharded mapper, which keeps only the source
nodes that have an edge, k and v hold all S sources (the kernel reads only the gathered rows either way).

FLOP / byte model (per call):
    model_flops = num_edges * H * (4 * D + 2 * F * D)
                  per edge and head: q.(k + e) 2 D, alpha * (v + e) 2 D, edge projection F -> D 2 F D
    bytes       = 4 * (num_edges * 2 * H * D      k and v rows gathered per edge
                       + 2 * T * H * D            q read, out written
                       + num_edges * F)           edge attributes
                  (fp32; the edge index, lin_edge's weights and any intermediate are not counted)
gflops = model_flops / median / 1e9, gbytes_per_s = bytes / median / 1e9.
BM_graph_attention (bench/micro/kernels.cpp) counts differently: flops = num_edges * (4 H D + 4 H F) (Boreas folds
the edge projection into per-destination terms) and bytes = 4 * (num_edges * (2 H D + F + 1) + 2 T H D) (it counts
the int32 source index).  Those are recorded too, as boreas_micro_flops / boreas_micro_bytes with their rates, so
either rate can be put next to Boreas'; the seconds are comparable regardless.

Result document (--json)
------------------------
{"kernel": "window-attention" | "graph-attention", "shape": {...the shape arguments...}, "threads": T,
 "torch_version": ..., "anemoi_models_version": ..., "seconds": {"median", "min", "max", "samples": [...]},
 "model_flops", "gflops", "bytes", "gbytes_per_s", ...} plus, for window-attention, "executed_flops",
"executed_gflops", "pairs", "layout", "mask_matches_anemoi"; for graph-attention, "num_edges", "backend",
"triton_available", "torch_geometric_version", "boreas_micro_flops", "boreas_micro_gflops", "boreas_micro_bytes",
"boreas_micro_gbytes_per_s"; for both "warmup", "repetitions", "seed", "timed" (the timed region in words) and
"check" (null, or the --check result).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time

PROG = "kernel_peers"
CHECK_ATOL = 1e-4
ANEMOI_MASK_CHECK_MAX_SEQ = 2048


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument in one line (no usage block)."""

    def error(self, message):  # noqa: D102
        raise UsageError(message)


# ----------------------------------------------------------------------------------------------------------------
# arguments and environment
# ----------------------------------------------------------------------------------------------------------------
def parse_args(argv):
    p = _Parser(prog=PROG, description="Time PyTorch / anemoi-models attention kernels at given shapes.")
    sub = p.add_subparsers(dest="kernel", metavar="{window-attention,graph-attention}")

    def common(sp):
        sp.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: OMP_NUM_THREADS, else all CPUs)")
        sp.add_argument("--warmup", type=int, default=1, help="untimed calls first (default 1)")
        sp.add_argument("--repetitions", type=int, default=3, help="timed calls (default 3)")
        sp.add_argument("--seed", type=int, default=1, help="seed of the random inputs (default 1)")
        sp.add_argument("--check", action="store_true",
                        help="one more, untimed call compared with a float64 reference (small shapes only)")
        sp.add_argument("--json", help="write the result document here")

    w = sub.add_parser("window-attention", help="torch SDPA with a sliding-window boolean mask (anemoi's CPU path)")
    w.add_argument("--seq", type=int, required=True, help="sequence length N (hidden grid points)")
    w.add_argument("--window", type=int, required=True, help="window W: query i attends keys j with |i-j| <= W")
    w.add_argument("--heads", type=int, required=True, help="heads H")
    w.add_argument("--head-dim", type=int, required=True, help="head dimension D")
    w.add_argument("--contiguous", action="store_true",
                   help="contiguous [1, H, N, D] q/k/v instead of anemoi's strided view of [N, H*D]")
    common(w)

    g = sub.add_parser("graph-attention", help="anemoi GraphTransformerConv (pyg) with the lin_edge projection")
    g.add_argument("--n-src", type=int, required=True, help="source nodes S")
    g.add_argument("--n-dst", type=int, required=True, help="destination nodes T")
    g.add_argument("--edges-per-dst", type=int, required=True, help="sources per destination E")
    g.add_argument("--heads", type=int, required=True, help="heads H")
    g.add_argument("--head-dim", type=int, required=True, help="head dimension D")
    g.add_argument("--edge-dim", type=int, required=True, help="edge attribute width F (3 geometric + trainable)")
    common(g)

    a = p.parse_args(argv)
    if a.kernel is None:
        raise UsageError("a subcommand is required: window-attention or graph-attention")
    if a.threads is None:
        env = os.environ.get("OMP_NUM_THREADS", "")
        a.threads = int(env) if env.isdigit() and int(env) > 0 else len(os.sched_getaffinity(0))
    if a.threads < 1:
        raise UsageError(f"--threads must be >= 1 (got {a.threads})")
    if a.repetitions < 1:
        raise UsageError(f"--repetitions must be >= 1 (got {a.repetitions})")
    if a.warmup < 0:
        raise UsageError(f"--warmup must be >= 0 (got {a.warmup})")
    if a.kernel == "window-attention":
        positive = {"--seq": a.seq, "--heads": a.heads, "--head-dim": a.head_dim}
        if a.window < 0:
            raise UsageError(f"--window must be >= 0 (got {a.window})")
    else:
        positive = {"--n-src": a.n_src, "--n-dst": a.n_dst, "--edges-per-dst": a.edges_per_dst,
                    "--heads": a.heads, "--head-dim": a.head_dim, "--edge-dim": a.edge_dim}
    for name, value in positive.items():
        if value < 1:
            raise UsageError(f"{name} must be >= 1 (got {value})")
    if a.json:
        parent = os.path.dirname(os.path.abspath(a.json))
        if not os.path.isdir(parent):
            raise UsageError(f"--json {a.json}: directory {parent} does not exist")
    return a


def set_environment(threads: int) -> None:
    """Before torch/anemoi are imported: one CPU, T threads (as run_anemoi.py)."""
    os.environ["CUDA_VISIBLE_DEVICES"] = ""
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["MKL_NUM_THREADS"] = str(threads)


# ----------------------------------------------------------------------------------------------------------------
# timing
# ----------------------------------------------------------------------------------------------------------------
def time_calls(fn, warmup: int, repetitions: int) -> list[float]:
    """warmup untimed calls, then repetitions calls each timed with time.perf_counter, under inference_mode."""
    import torch

    samples = []
    with torch.inference_mode():
        for _ in range(warmup):
            fn()
        for _ in range(repetitions):
            t0 = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - t0)
    return samples


def seconds_summary(samples: list[float]) -> dict:
    return {"median": statistics.median(samples), "min": min(samples), "max": max(samples), "samples": samples}


def rate(amount: float, seconds: float) -> float:
    return amount / seconds / 1e9 if seconds > 0 else float("nan")


# ----------------------------------------------------------------------------------------------------------------
# window attention
# ----------------------------------------------------------------------------------------------------------------
def window_pairs(n: int, window: int) -> int:
    """Number of (i, j) in [0, n)^2 with |i - j| <= window."""
    w = min(window, n - 1)
    return n * (2 * w + 1) - w * (w + 1)


def window_mask(n: int, window: int):
    """Boolean [n, n], True where |i - j| <= window, built in row blocks (no n^2 int64 temporaries)."""
    import torch

    mask = torch.empty((n, n), dtype=torch.bool)
    idx = torch.arange(n, dtype=torch.int32)
    block = 256
    for r0 in range(0, n, block):
        r1 = min(n, r0 + block)
        torch.le((idx[r0:r1, None] - idx[None, :]).abs_(), window, out=mask[r0:r1])
    return mask


def run_window_attention(a) -> dict:
    import torch
    import torch.nn.functional as F

    n, window, h, d = a.seq, a.window, a.heads, a.head_dim
    gen = torch.Generator().manual_seed(a.seed)
    if a.contiguous:
        q, k, v = (torch.randn((1, h, n, d), generator=gen) for _ in range(3))
    else:
        # anemoi: lin_q(x) is [(batch grid), (heads vars)]; einops "(batch grid) (heads vars) -> batch heads grid
        # vars" is a view with strides (H*D, D, H*D, 1), not a copy.
        q, k, v = (torch.randn((n, h * d), generator=gen).view(1, n, h, d).permute(0, 2, 1, 3) for _ in range(3))

    mask = window_mask(n, window)
    mask_matches_anemoi = None
    if n <= ANEMOI_MASK_CHECK_MAX_SEQ:
        from anemoi.models.layers.attention import SDPAAttentionWrapper

        ref = SDPAAttentionWrapper().create_sliding_window_mask(1, h, n, n, (window, window), device="cpu")
        mask_matches_anemoi = bool(ref.dtype == torch.bool and ref.shape == mask.shape and torch.equal(ref, mask))
        del ref
        if not mask_matches_anemoi:
            raise SystemExit(f"{PROG}: error: the window mask differs from anemoi's create_sliding_window_mask")

    def call():
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=False, dropout_p=0.0)

    samples = time_calls(call, a.warmup, a.repetitions)

    check = None
    if a.check:
        with torch.inference_mode():
            out = call()
            q64, k64, v64 = (t.double() for t in (q, k, v))
            scores = (q64 @ k64.transpose(-1, -2)) / math.sqrt(d)
            scores = scores.masked_fill(~mask, float("-inf"))
            ref = torch.softmax(scores, dim=-1) @ v64
            err = float((out.double() - ref).abs().max())
        check = {"max_abs_error": err, "atol": CHECK_ATOL, "passed": err <= CHECK_ATOL,
                 "reference": "float64 dense softmax(q k^T / sqrt(D), masked to |i-j| <= W) v"}

    pairs = window_pairs(n, window)
    model_flops = 4 * d * h * pairs
    executed_flops = 4 * d * h * n * n
    nbytes = 4 * 4 * n * h * d
    sec = seconds_summary(samples)
    return {
        "kernel": "window-attention",
        "shape": {"seq": n, "window": window, "heads": h, "head_dim": d},
        "timed": "torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=bool [N, N] |i-j| <= W, "
                 "is_causal=False, dropout_p=0.0), q/k/v [1, H, N, D] fp32; mask built once, untimed, as "
                 "anemoi's SDPAAttentionWrapper keeps it",
        "layout": "contiguous [1, H, N, D]" if a.contiguous else "anemoi: strided view of [N, H*D]",
        "mask_matches_anemoi": mask_matches_anemoi,
        "pairs": pairs,
        "seconds": sec,
        "model_flops": model_flops,
        "gflops": rate(model_flops, sec["median"]),
        "executed_flops": executed_flops,
        "executed_gflops": rate(executed_flops, sec["median"]),
        "bytes": nbytes,
        "gbytes_per_s": rate(nbytes, sec["median"]),
        "check": check,
    }


# ----------------------------------------------------------------------------------------------------------------
# graph attention
# ----------------------------------------------------------------------------------------------------------------
def run_graph_attention(a) -> dict:
    import einops
    import torch
    import torch_geometric

    from anemoi.models.layers.conv import GraphTransformerConv
    from anemoi.models.triton.utils import is_triton_available

    s, t, e_per, h, d, f = a.n_src, a.n_dst, a.edges_per_dst, a.heads, a.head_dim, a.edge_dim
    num_edges = t * e_per
    torch.manual_seed(a.seed)  # lin_edge's initialisation
    gen = torch.Generator().manual_seed(a.seed)
    q = torch.randn((t, h, d), generator=gen)
    k = torch.randn((s, h, d), generator=gen)
    v = torch.randn((s, h, d), generator=gen)
    edge_attr = torch.randn((num_edges, f), generator=gen)
    src = torch.randint(0, s, (num_edges,), generator=gen, dtype=torch.int64)
    dst = torch.arange(t, dtype=torch.int64).repeat_interleave(e_per)
    edge_index = torch.stack([src, dst])  # pyg: row 0 source (j), row 1 destination (i); destination-sorted

    lin_edge = torch.nn.Linear(f, h * d)
    conv = GraphTransformerConv(out_channels=d)
    lin_edge.eval()
    conv.eval()
    size = (s, t)

    def call():
        edges = lin_edge(edge_attr)
        edges = einops.rearrange(edges, "nodes (heads vars) -> nodes heads vars", heads=h, vars=d)
        out = conv(q, k, v, edges, edge_index, size)
        return einops.rearrange(out, "nodes heads vars -> nodes (heads vars)")

    samples = time_calls(call, a.warmup, a.repetitions)

    check = None
    if a.check:
        with torch.inference_mode():
            out = call().view(t, h, d).double()
            e64 = (edge_attr.double() @ lin_edge.weight.double().T + lin_edge.bias.double()).view(t, e_per, h, d)
            kk = k.double()[src].view(t, e_per, h, d) + e64
            vv = v.double()[src].view(t, e_per, h, d) + e64
            alpha = torch.softmax((q.double()[:, None] * kk).sum(-1) / math.sqrt(d), dim=1)  # [T, E, H]
            ref = (alpha[..., None] * vv).sum(1)
            err = float((out - ref).abs().max())
        check = {"max_abs_error": err, "atol": CHECK_ATOL, "passed": err <= CHECK_ATOL,
                 "reference": "float64 per-destination softmax over the E gathered sources"}

    model_flops = num_edges * h * (4 * d + 2 * f * d)
    nbytes = 4 * (num_edges * 2 * h * d + 2 * t * h * d + num_edges * f)
    micro_flops = num_edges * (4 * h * d + 4 * h * f)
    micro_bytes = 4 * (num_edges * (2 * h * d + f + 1) + 2 * t * h * d)
    sec = seconds_summary(samples)
    return {
        "kernel": "graph-attention",
        "shape": {"n_src": s, "n_dst": t, "edges_per_dst": e_per, "heads": h, "head_dim": d, "edge_dim": f},
        "timed": "lin_edge (torch.nn.Linear F -> H*D) on the edge attributes, rearrange to [E, H, D], anemoi "
                 "GraphTransformerConv(q, k, v, edges, edge_index, (S, T)) (pyg), rearrange to [T, H*D]",
        "backend": "pyg",
        "triton_available": bool(is_triton_available()),
        "torch_geometric_version": torch_geometric.__version__,
        "num_edges": num_edges,
        "seconds": sec,
        "model_flops": model_flops,
        "gflops": rate(model_flops, sec["median"]),
        "bytes": nbytes,
        "gbytes_per_s": rate(nbytes, sec["median"]),
        "boreas_micro_flops": micro_flops,
        "boreas_micro_gflops": rate(micro_flops, sec["median"]),
        "boreas_micro_bytes": micro_bytes,
        "boreas_micro_gbytes_per_s": rate(micro_bytes, sec["median"]),
        "check": check,
    }


# ----------------------------------------------------------------------------------------------------------------
def main(argv=None) -> int:
    a = parse_args(sys.argv[1:] if argv is None else argv)
    set_environment(a.threads)

    import importlib.metadata

    import torch

    torch.set_num_threads(a.threads)
    result = run_window_attention(a) if a.kernel == "window-attention" else run_graph_attention(a)
    doc = {
        "kernel": result.pop("kernel"),
        "shape": result.pop("shape"),
        "threads": a.threads,
        "torch_version": torch.__version__,
        "anemoi_models_version": importlib.metadata.version("anemoi-models"),
        "warmup": a.warmup,
        "repetitions": a.repetitions,
        "seed": a.seed,
        **result,
    }

    sec = doc["seconds"]
    shape = " ".join(f"{k}={v}" for k, v in doc["shape"].items())
    line = (f"{doc['kernel']} {shape} threads={a.threads}: median {sec['median'] * 1e3:.3f} ms "
            f"(min {sec['min'] * 1e3:.3f}, max {sec['max'] * 1e3:.3f}, n={len(sec['samples'])}), "
            f"{doc['gflops']:.2f} GFLOP/s model")
    if doc["kernel"] == "window-attention":
        line += f" ({doc['executed_gflops']:.2f} executed)"
    else:
        line += f" ({doc['boreas_micro_gflops']:.2f} on BM_graph_attention's count)"
    line += f", {doc['gbytes_per_s']:.2f} GB/s"
    if doc["check"] is not None:
        c = doc["check"]
        line += f", check {'passed' if c['passed'] else 'FAILED'} (max abs error {c['max_abs_error']:.2e})"
    print(line)
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(doc, fh, indent=2)
            fh.write("\n")
        print(f"  -> {a.json}")
    return 0 if doc["check"] is None or doc["check"]["passed"] else 1


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        raise SystemExit(2)

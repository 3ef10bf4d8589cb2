#!/usr/bin/env python3
"""Convert a graph built by anemoi-graphs (a torch_geometric HeteroData saved with torch.save) into the
Boreas graph file format v1 (a safetensors file).

Development tool only: it needs the reference virtual environment (tools/reference/requirements.txt).

Boreas graph file format v1
---------------------------
safetensors file, all tensors little-endian, C order.  The safetensors header carries
``"__metadata__": {"boreas": "<JSON string>"}`` with

    {"format": "boreas-graph", "format_version": 1, "created_by": "...",
     "nodes": {S: {"count": N, "grid": "O16" | "TRI2" | ...}, ...},
     "edges": {X: {"source": S1, "target": S2, "count": E, "builder": {"type": ..., ...}}, ...},
     "attributes": {"edge_length": {"norm": ...}, "edge_dirs": {"norm": ..., "convention": "current"},
                    "area_weight": {"norm": ...}},
     "source": {"anemoi_graphs_version": ..., ...}}

Tensors:
    nodes/S/coords       F32 [N, 2]   (lat, lon) in radians, bit-identical to anemoi's graph[S].x
    nodes/S/area_weight  F32 [N]      graph[S].area_weight squeezed
    edges/X/src          I32 [E]      source node index of each edge, edges sorted by destination (CSR)
    edges/X/dst_offsets  I64 [Ndst+1] CSR row pointer over destination nodes
    edges/X/edge_length  F32 [E, 1]   in CSR order
    edges/X/edge_dirs    F32 [E, 2]   in CSR order
    edges/X/perm         I64 [E]      perm[p] = column of anemoi's edge_index holding the edge at CSR position p

The CSR order is a *stable* sort of anemoi's edge_index by destination, i.e. within one destination the
edges keep anemoi's relative order.  Edge set names are "<source>_to_<target>" (anemoi's ("data", "to",
"hidden") becomes "data_to_hidden").

Nothing about the builders or the attribute normalisation is stored in a HeteroData (only the class names
in node_type / edge_type), so pass them on the command line (--grid, --builder, --norm); anything not given
is written as null and a warning is printed.

Example:
    python tools/reference/convert_anemoi_graph.py graph.pt out.safetensors \\
        --grid data=O16 --grid hidden=O4 \\
        --builder 'data_to_hidden={"type": "cutoff", "cutoff_factor": 0.6}' \\
        --builder 'hidden_to_data={"type": "knn", "k": 3}' \\
        --norm edge_length=unit-std --norm edge_dirs=unit-std --norm area_weight=unit-max
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

FORMAT_NAME = "boreas-graph"
FORMAT_VERSION = 1

EDGE_ATTRIBUTES = ("edge_length", "edge_dirs")
EDGE_ATTRIBUTE_WIDTH = {"edge_length": 1, "edge_dirs": 2}
NODE_ATTRIBUTES = ("area_weight",)

# anemoi-graphs class name (stored in HeteroData.edge_type) -> Boreas builder type
ANEMOI_EDGE_BUILDER_TYPES = {
    "CutOffEdges": "cutoff",
    "ReversedCutOffEdges": "reversed_cutoff",
    "KNNEdges": "knn",
    "ReversedKNNEdges": "reversed_knn",
    "MutualKNNEdges": "mutual_knn",
    "MultiScaleEdges": "multiscale",
}


def _to_numpy(t) -> np.ndarray:
    """torch.Tensor (any device) or array-like -> numpy array (no copy where possible)."""
    if hasattr(t, "detach"):
        t = t.detach().cpu().numpy()
    return np.asarray(t)


def package_versions() -> dict:
    """Versions of the packages that determine a graph built by anemoi-graphs."""
    import importlib.metadata as md
    import platform

    out = {"python": platform.python_version()}
    for key, dist in (
        ("anemoi_graphs_version", "anemoi-graphs"),
        ("anemoi_utils_version", "anemoi-utils"),
        ("torch_version", "torch"),
        ("torch_geometric_version", "torch-geometric"),
        ("numpy_version", "numpy"),
        ("scipy_version", "scipy"),
        ("sklearn_version", "scikit-learn"),
        ("trimesh_version", "trimesh"),
        ("networkx_version", "networkx"),
        ("safetensors_version", "safetensors"),
    ):
        try:
            out[key] = md.version(dist)
        except md.PackageNotFoundError:
            out[key] = None
    try:
        md.version("torch-cluster")
        out["torch_cluster"] = True
    except md.PackageNotFoundError:
        out["torch_cluster"] = False
    return out


def csr_from_edge_index(edge_index: np.ndarray, num_dst: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stable sort of an anemoi edge_index ([2, E], row 0 = source, row 1 = destination) by destination.

    Returns (src_csr int32 [E], dst_offsets int64 [num_dst + 1], perm int64 [E]) with
    src_csr[p] == edge_index[0, perm[p]] and destination of CSR position p == edge_index[1, perm[p]].
    """
    edge_index = np.asarray(edge_index)
    assert edge_index.ndim == 2 and edge_index.shape[0] == 2, edge_index.shape
    src = edge_index[0].astype(np.int64)
    dst = edge_index[1].astype(np.int64)
    if dst.size:
        assert dst.min() >= 0 and dst.max() < num_dst, "destination index out of range"
        assert src.min() >= 0 and src.max() < np.iinfo(np.int32).max, "source index out of range"
    perm = np.argsort(dst, kind="stable").astype(np.int64)
    counts = np.bincount(dst, minlength=num_dst)
    offsets = np.zeros(num_dst + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return src[perm].astype(np.int32), offsets, perm


def convert_heterodata(
    graph,
    grids: dict[str, str] | None = None,
    builders: dict[str, dict] | None = None,
    norms: dict[str, str | None] | None = None,
    created_by: str | None = None,
    extra_source: dict | None = None,
) -> tuple[dict[str, np.ndarray], dict]:
    """Convert an anemoi HeteroData into (tensors, metadata) of the Boreas graph format v1.

    grids:    node set -> grid name ("O16", "TRI2", ...)
    builders: edge set ("data_to_hidden") -> builder description; merged over what the HeteroData tells
              (the anemoi class name in edge_type).
    norms:    attribute name -> normalisation used when the graph was built ("unit-std", "unit-max", None)
    """
    grids = dict(grids or {})
    builders = dict(builders or {})
    norms = dict(norms or {})
    tensors: dict[str, np.ndarray] = {}
    meta_nodes: dict[str, dict] = {}
    meta_edges: dict[str, dict] = {}
    node_counts: dict[str, int] = {}

    for name in graph.node_types:
        store = graph[name]
        x = _to_numpy(store.x)
        if x.dtype != np.float32:
            raise TypeError(f"nodes {name}: x has dtype {x.dtype}, expected float32 (anemoi stores float32)")
        if x.ndim != 2 or x.shape[1] != 2:
            raise ValueError(f"nodes {name}: x has shape {x.shape}, expected [N, 2]")
        n = int(x.shape[0])
        node_counts[name] = n
        tensors[f"nodes/{name}/coords"] = np.ascontiguousarray(x)
        for attr in NODE_ATTRIBUTES:
            if attr not in store:
                raise KeyError(f"nodes {name}: attribute '{attr}' missing (the Boreas format requires it)")
            a = _to_numpy(store[attr])
            if a.dtype != np.float32:
                raise TypeError(f"nodes {name}: {attr} has dtype {a.dtype}, expected float32")
            a = a.reshape(n)  # anemoi stores [N, 1]
            tensors[f"nodes/{name}/{attr}"] = np.ascontiguousarray(a)
        if name not in grids:
            print(f"warning: no grid name given for node set '{name}' (use --grid {name}=...)", file=sys.stderr)
        meta_nodes[name] = {"count": n, "grid": grids.get(name)}

    for src_name, rel, dst_name in graph.edge_types:
        store = graph[(src_name, rel, dst_name)]
        key = f"{src_name}_{rel}_{dst_name}"
        edge_index = _to_numpy(store.edge_index)
        e = int(edge_index.shape[1])
        src_csr, offsets, perm = csr_from_edge_index(edge_index, node_counts[dst_name])
        assert int(edge_index[0].max(initial=-1)) < node_counts[src_name]
        tensors[f"edges/{key}/src"] = src_csr
        tensors[f"edges/{key}/dst_offsets"] = offsets
        for attr in EDGE_ATTRIBUTES:
            if attr not in store:
                raise KeyError(f"edges {key}: attribute '{attr}' missing (the Boreas format requires it)")
            a = _to_numpy(store[attr])
            if a.dtype != np.float32:
                raise TypeError(f"edges {key}: {attr} has dtype {a.dtype}, expected float32")
            a = a.reshape(e, EDGE_ATTRIBUTE_WIDTH[attr])
            tensors[f"edges/{key}/{attr}"] = np.ascontiguousarray(a[perm])
        tensors[f"edges/{key}/perm"] = perm

        anemoi_cls = str(store.edge_type) if "edge_type" in store else None
        builder = {}
        if anemoi_cls is not None and "," not in anemoi_cls:
            builder["type"] = ANEMOI_EDGE_BUILDER_TYPES.get(anemoi_cls, anemoi_cls)
        builder.update(builders.get(key, {}))
        if key not in builders:
            print(f"warning: no builder parameters given for edge set '{key}' (use --builder)", file=sys.stderr)
        meta_edges[key] = {"source": src_name, "target": dst_name, "count": e, "builder": builder}

    for attr in (*EDGE_ATTRIBUTES, *NODE_ATTRIBUTES):
        if attr not in norms:
            print(f"warning: normalisation of '{attr}' not given (use --norm {attr}=...); writing null", file=sys.stderr)
    attributes = {
        "edge_length": {"norm": norms.get("edge_length")},
        # "current" = anemoi-graphs >= 0.8.0 convention: (u_x, u_y)/|.| after rotating the destination to
        # the north pole (Rodrigues); graphs <= 0.7.x used (u_y, -u_x)/|.| (spec/model-audit.md 1.5).
        "edge_dirs": {"norm": norms.get("edge_dirs"), "convention": "current"},
        "area_weight": {"norm": norms.get("area_weight")},
    }

    versions = package_versions()
    source = {**versions, **(extra_source or {})}
    if created_by is None:
        created_by = (
            f"tools/reference/convert_anemoi_graph.py (anemoi-graphs {versions['anemoi_graphs_version']}, "
            f"torch {versions['torch_version']}, torch-geometric {versions['torch_geometric_version']})"
        )
    meta = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "created_by": created_by,
        "nodes": meta_nodes,
        "edges": meta_edges,
        "attributes": attributes,
        "source": source,
    }
    return tensors, meta


def write_boreas_graph(path: str | Path, tensors: dict[str, np.ndarray], meta: dict) -> None:
    from safetensors.numpy import save_file

    for k, v in tensors.items():
        assert v.dtype.byteorder in ("=", "<", "|"), f"{k}: not little-endian"
        assert v.flags["C_CONTIGUOUS"], f"{k}: not C-contiguous"
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata={"boreas": json.dumps(meta, separators=(",", ":"))})


def read_boreas_graph(path: str | Path) -> tuple[dict[str, np.ndarray], dict]:
    """Load a Boreas graph file back (for checks)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        meta = json.loads(f.metadata()["boreas"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    return tensors, meta


def check_boreas_graph(tensors: dict[str, np.ndarray], meta: dict, graph=None) -> None:
    """Structural checks of a Boreas graph; if the anemoi HeteroData is given, also round-trip equality."""
    assert meta["format"] == FORMAT_NAME and meta["format_version"] == FORMAT_VERSION
    for s, m in meta["nodes"].items():
        c = tensors[f"nodes/{s}/coords"]
        assert c.dtype == np.float32 and c.shape == (m["count"], 2), (s, c.dtype, c.shape)
        w = tensors[f"nodes/{s}/area_weight"]
        assert w.dtype == np.float32 and w.shape == (m["count"],)
        if graph is not None:
            assert np.array_equal(c.view(np.uint32), _to_numpy(graph[s].x).view(np.uint32))
            assert np.array_equal(w, _to_numpy(graph[s].area_weight).reshape(-1))
    for x, m in meta["edges"].items():
        e, ndst = m["count"], meta["nodes"][m["target"]]["count"]
        src, off, perm = tensors[f"edges/{x}/src"], tensors[f"edges/{x}/dst_offsets"], tensors[f"edges/{x}/perm"]
        assert src.dtype == np.int32 and src.shape == (e,)
        assert off.dtype == np.int64 and off.shape == (ndst + 1,) and off[0] == 0 and off[-1] == e
        assert np.all(np.diff(off) >= 0)
        assert perm.dtype == np.int64 and np.array_equal(np.sort(perm), np.arange(e))
        assert src.min(initial=0) >= 0 and src.max(initial=-1) < meta["nodes"][m["source"]]["count"]
        assert tensors[f"edges/{x}/edge_length"].shape == (e, 1)
        assert tensors[f"edges/{x}/edge_dirs"].shape == (e, 2)
        if graph is not None:
            (et,) = [t for t in graph.edge_types if "_".join(t) == x]
            store = graph[et]
            ei = _to_numpy(store.edge_index).astype(np.int64)
            dst_csr = np.repeat(np.arange(ndst), np.diff(off))
            assert np.array_equal(ei[0, perm], src) and np.array_equal(ei[1, perm], dst_csr)
            # stable: within one destination perm increases
            same = dst_csr[1:] == dst_csr[:-1]
            assert np.all(perm[1:][same] > perm[:-1][same])
            for attr in EDGE_ATTRIBUTES:
                a = _to_numpy(store[attr]).reshape(e, -1)
                assert np.array_equal(a[perm], tensors[f"edges/{x}/{attr}"])


def _parse_kv(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for it in items or []:
        if "=" not in it:
            raise SystemExit(f"--{what} expects NAME=VALUE, got {it!r}")
        k, v = it.split("=", 1)
        out[k] = v
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("input", help="graph saved by anemoi-graphs (torch.save of a HeteroData, .pt)")
    p.add_argument("output", help="Boreas graph file to write (.safetensors)")
    p.add_argument("--grid", action="append", metavar="NODES=GRID", help="grid name of a node set, e.g. data=O96")
    p.add_argument(
        "--builder",
        action="append",
        metavar="EDGES=JSON",
        help='builder of an edge set, e.g. data_to_hidden=\'{"type": "cutoff", "cutoff_factor": 0.6}\'',
    )
    p.add_argument(
        "--norm", action="append", metavar="ATTR=NORM", help="normalisation of an attribute (NORM 'none' for None)"
    )
    args = p.parse_args(argv)

    import torch

    graph = torch.load(args.input, map_location="cpu", weights_only=False)
    grids = _parse_kv(args.grid, "grid")
    builders = {k: json.loads(v) for k, v in _parse_kv(args.builder, "builder").items()}
    norms = {k: (None if v.lower() in ("none", "null") else v) for k, v in _parse_kv(args.norm, "norm").items()}
    tensors, meta = convert_heterodata(
        graph, grids=grids, builders=builders, norms=norms, extra_source={"converted_from": Path(args.input).name}
    )
    write_boreas_graph(args.output, tensors, meta)
    t2, m2 = read_boreas_graph(args.output)
    check_boreas_graph(t2, m2, graph)
    for x, m in meta["edges"].items():
        print(f"{x}: {m['count']} edges, builder {m['builder']}")
    print(f"wrote {args.output} ({Path(args.output).stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

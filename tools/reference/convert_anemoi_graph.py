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
     "edges": {X: {"source": S1, "target": S2, "count": E, "builder": {"type": ..., ...},
                   "float32_error": {"edge_length": ..., "edge_dirs": ...}  (only with the *_exact tensors)},
               ...},
     "attributes": {"edge_length": {"norm": ...}, "edge_dirs": {"norm": ..., "convention": "current"},
                    "area_weight": {"norm": ...}},
     "source": {"anemoi_graphs_version": ..., ...}}

Tensors:
    nodes/S/coords       F32 [N, 2]   (lat, lon) in radians, bit-identical to anemoi's graph[S].x
    nodes/S/area_weight  F32 [N]      graph[S].area_weight squeezed
    edges/X/src          I32 [E]      source node index of each edge, edges sorted by destination (CSR)
    edges/X/dst_offsets  I64 [Ndst+1] CSR row pointer over destination nodes
    edges/X/edge_length  F32 [E, 1]   in CSR order, bit-identical to anemoi's (float32) edge_length
    edges/X/edge_dirs    F32 [E, 2]   in CSR order, bit-identical to anemoi's (float32) edge_dirs
    edges/X/perm         I64 [E]      optional: perm[p] = column of anemoi's edge_index holding the edge at
                                      CSR position p.  Omitted when it is the identity (anemoi's edge_index
                                      already destination-sorted); absent means identity.
    edges/X/edge_length_exact F32 [E, 1]  optional (written with exact=True / --exact): anemoi's formulas
    edges/X/edge_dirs_exact   F32 [E, 2]  evaluated in float64, see below; in CSR order

The CSR order is a *stable* sort of anemoi's edge_index by destination, i.e. within one destination the
edges keep anemoi's relative order.  Edge set names are "<source>_to_<target>" (anemoi's ("data", "to",
"hidden") becomes "data_to_hidden").

The *_exact tensors: anemoi computes edge_length / edge_dirs in float32 torch; for short edges and for
destinations near the poles float32 cancellation leaves them uncertain by up to ~5e-5 (after unit-std).
The exact tensors evaluate the same anemoi code on the float32 node coordinates cast to float64:
edge_length = anemoi.graphs.utils.haversine_distance, edge_dirs = the general (Rodrigues rotation) branch
of anemoi.graphs.edges.directional.compute_directions for *every* edge -- never its north/south pole
branches, which cannot fire in float32 (dot > 1 - 1e-8 is dot > 1 there), so anemoi's float32 graph always
takes the general path, whereas in float64 the south-pole branch would fire and flip the sign -- then the
normalisation (unit-std: values / torch.std(values), unbiased, pooled over all columns) in float64, and
finally rounding to float32.  The edge set's metadata then also has
``"float32_error": {"edge_length": max|f32 - f64|, "edge_dirs": max|f32 - f64|}`` (absolute, after
normalisation, f32 = the edge_length / edge_dirs tensors, f64 = the float64 values before rounding).

Nothing about the builders or the attribute normalisation is stored in a HeteroData (only the class names
in node_type / edge_type), so pass them on the command line (--grid, --builder, --norm); anything not given
is written as null and a warning is printed.

Example:
    python tools/reference/convert_anemoi_graph.py graph.pt out.safetensors \\
        --grid data=O16 --grid hidden=O4 \\
        --builder 'data_to_hidden={"type": "cutoff", "cutoff_factor": 0.6}' \\
        --builder 'hidden_to_data={"type": "knn", "k": 3}' \\
        --norm edge_length=unit-std --norm edge_dirs=unit-std --norm area_weight=unit-max --exact
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


def edge_perm(tensors: dict[str, np.ndarray], key: str, count: int) -> np.ndarray:
    """edges/<key>/perm of a Boreas graph, or the identity when the file omits it."""
    name = f"edges/{key}/perm"
    return tensors[name] if name in tensors else np.arange(count, dtype=np.int64)


def _normalise_like_anemoi(values, norm: str | None):
    """anemoi.graphs.normalise.NormaliserMixin.normalise (non-grouped) for the norms used on edge attributes,
    in the dtype of `values`."""
    import torch

    if norm is None:
        return values
    if norm == "unit-std":
        std = torch.std(values)  # unbiased, over all elements (both columns of edge_dirs)
        return values if std == 0 else values / std
    raise ValueError(f"normalisation {norm!r} not supported for the exact edge attributes (None or 'unit-std')")


def anemoi_general_path_directions(source_coords, target_coords):
    """The general ("normal", Rodrigues rotation) branch of anemoi.graphs.edges.directional.compute_directions,
    applied to every edge, in the dtype of the inputs, with anemoi's own latlon_rad_to_cartesian and
    rotate_vectors.  The north/south pole branches are deliberately not used: in float32 they never fire
    (dot > 1 - 1e-8 is dot > 1), so anemoi's float32 graphs always take this path; in float64 they would."""
    import torch
    from anemoi.graphs.edges.directional import NORTH_POLE
    from anemoi.graphs.edges.directional import rotate_vectors
    from anemoi.graphs.generate.transforms import latlon_rad_to_cartesian

    epsilon = 1e-8
    source_xyz = latlon_rad_to_cartesian(source_coords, 1.0)
    target_xyz = latlon_rad_to_cartesian(target_coords, 1.0)
    north_pole = torch.tensor([NORTH_POLE], dtype=source_coords.dtype, device=source_coords.device)
    axis = torch.cross(target_xyz, north_pole.expand_as(target_xyz), dim=1)
    sin_theta = torch.linalg.norm(axis, dim=1, keepdim=True)
    cos_theta = torch.clamp((target_xyz * north_pole).sum(dim=1, keepdim=True), -1.0, 1.0)
    theta = torch.atan2(sin_theta, cos_theta).squeeze(1)
    axis_unit = axis / torch.clamp(sin_theta, min=epsilon)
    rotated = rotate_vectors(source_xyz, axis_unit, theta)
    xy = rotated[:, :2]
    return xy / torch.clamp(torch.linalg.norm(xy, dim=1, keepdim=True), min=epsilon)


def anemoi_edge_attributes(x_src, x_dst, edge_index, norms: dict[str, str | None], dtype) -> dict:
    """anemoi's EdgeLength / EdgeDirection of one edge set in anemoi's edge order, evaluated in `dtype`
    (torch.float32 or torch.float64) from the float32 node coordinates x_src, x_dst ([N, 2] lat/lon rad).

    Like anemoi's MessagePassing: x_i = target coordinates, x_j = source coordinates;
    EdgeLength = haversine_distance(x_i, x_j), EdgeDirection = compute_directions(source=x_j, target=x_i)
    (general path only, see anemoi_general_path_directions); then the normalisation.
    Returns {"edge_length": [E, 1], "edge_dirs": [E, 2]} torch tensors of `dtype`.
    """
    import torch
    from anemoi.graphs.utils import haversine_distance

    xs = torch.as_tensor(np.asarray(x_src)).to(dtype)
    xd = torch.as_tensor(np.asarray(x_dst)).to(dtype)
    ei = torch.as_tensor(np.asarray(edge_index)).long()
    x_j, x_i = xs.index_select(0, ei[0]), xd.index_select(0, ei[1])
    length = haversine_distance(x_i, x_j).unsqueeze(-1)
    dirs = anemoi_general_path_directions(source_coords=x_j, target_coords=x_i)
    return {
        "edge_length": _normalise_like_anemoi(length, norms.get("edge_length")),
        "edge_dirs": _normalise_like_anemoi(dirs, norms.get("edge_dirs")),
    }


def convert_heterodata(
    graph,
    grids: dict[str, str] | None = None,
    builders: dict[str, dict] | None = None,
    norms: dict[str, str | None] | None = None,
    created_by: str | None = None,
    extra_source: dict | None = None,
    exact: bool = False,
) -> tuple[dict[str, np.ndarray], dict]:
    """Convert an anemoi HeteroData into (tensors, metadata) of the Boreas graph format v1.

    grids:    node set -> grid name ("O16", "TRI2", ...)
    builders: edge set ("data_to_hidden") -> builder description; merged over what the HeteroData tells
              (the anemoi class name in edge_type).
    norms:    attribute name -> normalisation used when the graph was built ("unit-std", "unit-max", None)
    exact:    also write edges/X/edge_length_exact and edges/X/edge_dirs_exact (anemoi's formulas in float64)
              and float32_error.  Needs the edge attribute norms (None or "unit-std"); first checks that the
              same code in float32 reproduces the graph's edge_length / edge_dirs bit for bit.
    """
    grids = dict(grids or {})
    builders = dict(builders or {})
    norms = dict(norms or {})
    if exact:
        missing = [a for a in EDGE_ATTRIBUTES if a not in norms]
        if missing:
            raise ValueError(f"exact=True needs the normalisation of {missing} (norms=...)")
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
        f32 = {}
        for attr in EDGE_ATTRIBUTES:
            if attr not in store:
                raise KeyError(f"edges {key}: attribute '{attr}' missing (the Boreas format requires it)")
            a = _to_numpy(store[attr])
            if a.dtype != np.float32:
                raise TypeError(f"edges {key}: {attr} has dtype {a.dtype}, expected float32")
            f32[attr] = a.reshape(e, EDGE_ATTRIBUTE_WIDTH[attr])
            tensors[f"edges/{key}/{attr}"] = np.ascontiguousarray(f32[attr][perm])
        if not np.array_equal(perm, np.arange(e)):  # absent = identity
            tensors[f"edges/{key}/perm"] = perm

        float32_error = None
        if exact:
            import torch

            xs, xd = _to_numpy(graph[src_name].x), _to_numpy(graph[dst_name].x)
            replica = anemoi_edge_attributes(xs, xd, edge_index, norms, torch.float32)
            for attr in EDGE_ATTRIBUTES:
                if not np.array_equal(replica[attr].numpy().view(np.uint32), f32[attr].view(np.uint32)):
                    raise ValueError(
                        f"edges {key}: anemoi's {attr} code in float32 (norm {norms[attr]!r}) does not reproduce "
                        "the graph's values bit for bit; was it built with another anemoi-graphs version, "
                        "normalisation or device?"
                    )
            f64 = anemoi_edge_attributes(xs, xd, edge_index, norms, torch.float64)
            float32_error = {}
            for attr in EDGE_ATTRIBUTES:
                v64 = f64[attr].numpy()
                float32_error[attr] = float(np.abs(f32[attr].astype(np.float64) - v64).max(initial=0.0))
                tensors[f"edges/{key}/{attr}_exact"] = np.ascontiguousarray(v64[perm].astype(np.float32))

        anemoi_cls = str(store.edge_type) if "edge_type" in store else None
        builder = {}
        if anemoi_cls is not None and "," not in anemoi_cls:
            builder["type"] = ANEMOI_EDGE_BUILDER_TYPES.get(anemoi_cls, anemoi_cls)
        builder.update(builders.get(key, {}))
        if key not in builders:
            print(f"warning: no builder parameters given for edge set '{key}' (use --builder)", file=sys.stderr)
        meta_edges[key] = {"source": src_name, "target": dst_name, "count": e, "builder": builder}
        if float32_error is not None:
            meta_edges[key]["float32_error"] = float32_error

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
    """Load a Boreas graph file back (for checks): (tensors as stored, metadata).  Optional tensors may be
    absent: edges/X/perm (identity; use edge_perm) and edges/X/*_exact."""
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
        src, off = tensors[f"edges/{x}/src"], tensors[f"edges/{x}/dst_offsets"]
        perm = edge_perm(tensors, x, e)
        assert src.dtype == np.int32 and src.shape == (e,)
        assert off.dtype == np.int64 and off.shape == (ndst + 1,) and off[0] == 0 and off[-1] == e
        assert np.all(np.diff(off) >= 0)
        assert perm.dtype == np.int64 and np.array_equal(np.sort(perm), np.arange(e))
        assert src.min(initial=0) >= 0 and src.max(initial=-1) < meta["nodes"][m["source"]]["count"]
        for attr in EDGE_ATTRIBUTES:
            a = tensors[f"edges/{x}/{attr}"]
            assert a.dtype == np.float32 and a.shape == (e, EDGE_ATTRIBUTE_WIDTH[attr]), (x, attr, a.dtype, a.shape)
        has_exact = [f"edges/{x}/{attr}_exact" in tensors for attr in EDGE_ATTRIBUTES]
        assert all(has_exact) == any(has_exact) == ("float32_error" in m), (x, has_exact)
        if all(has_exact):
            for attr in EDGE_ATTRIBUTES:
                a, ex = tensors[f"edges/{x}/{attr}"], tensors[f"edges/{x}/{attr}_exact"]
                assert ex.dtype == np.float32 and ex.shape == a.shape and np.all(np.isfinite(ex)), (x, attr)
                # float32_error is max|f32 - f64| before rounding f64 to float32: within half an ulp of this
                d = float(np.abs(a.astype(np.float64) - ex.astype(np.float64)).max(initial=0.0))
                tol = float(np.spacing(np.float32(np.abs(ex).max(initial=0.0))))
                assert abs(d - m["float32_error"][attr]) <= tol, (x, attr, d, m["float32_error"][attr])
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
            if all(has_exact):
                import torch

                norms = {a: meta["attributes"][a]["norm"] for a in EDGE_ATTRIBUTES}
                f64 = anemoi_edge_attributes(_to_numpy(graph[et[0]].x), _to_numpy(graph[et[2]].x), ei, norms, torch.float64)
                for attr in EDGE_ATTRIBUTES:
                    want = f64[attr].numpy()[perm].astype(np.float32)
                    assert np.array_equal(want, tensors[f"edges/{x}/{attr}_exact"]), (x, attr)


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
    p.add_argument(
        "--exact",
        action="store_true",
        help="also write edges/X/edge_length_exact, edges/X/edge_dirs_exact (anemoi's formulas in float64) and "
        "float32_error; needs --norm edge_length=... --norm edge_dirs=...",
    )
    args = p.parse_args(argv)

    import torch

    graph = torch.load(args.input, map_location="cpu", weights_only=False)
    grids = _parse_kv(args.grid, "grid")
    builders = {k: json.loads(v) for k, v in _parse_kv(args.builder, "builder").items()}
    norms = {k: (None if v.lower() in ("none", "null") else v) for k, v in _parse_kv(args.norm, "norm").items()}
    tensors, meta = convert_heterodata(
        graph,
        grids=grids,
        builders=builders,
        norms=norms,
        extra_source={"converted_from": Path(args.input).name},
        exact=args.exact,
    )
    write_boreas_graph(args.output, tensors, meta)
    t2, m2 = read_boreas_graph(args.output)
    check_boreas_graph(t2, m2, graph)
    for x, m in meta["edges"].items():
        err = f", float32_error {m['float32_error']}" if "float32_error" in m else ""
        print(f"{x}: {m['count']} edges, builder {m['builder']}{err}")
    print(f"wrote {args.output} ({Path(args.output).stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

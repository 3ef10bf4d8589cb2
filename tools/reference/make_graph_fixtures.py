#!/usr/bin/env python3
"""Build small reference graphs with anemoi-graphs' own builders and write them as Boreas graph files.

Run from the repository root with the reference environment:

    .venv-ref/bin/python tools/reference/make_graph_fixtures.py [--out tests/data/graphs] [--only o16_o4 ...]

Writes tests/data/graphs/<name>.safetensors (format: tools/reference/convert_anemoi_graph.py) and
tests/data/graphs/VERSIONS.json (package versions, recipes, counts and boundary diagnostics).

What comes from where
---------------------
* Octahedral reduced Gaussian nodes (O4, O8, O16, O32).  anemoi-graphs' ReducedGaussianGridNodes gets its
  coordinates from anemoi.utils.grids, which downloads grid-<name>.npz from get.ecmwf.int at run time; that
  host is not reachable here.  So the coordinates are computed independently in numpy (octahedral_grid below):
  Gaussian latitudes = arcsin of the roots of P_2N (numpy.polynomial.legendre.leggauss), rows north -> south;
  row i counted from the nearer pole (i = 1..N) has 4i+16 points, the southern hemisphere mirrors the northern;
  longitudes 360*j/nlon degrees, j = 0..nlon-1, west -> east from 0.  Latitudes and longitudes are kept in
  float64 degrees, exactly like the grid-<name>.npz files, written to a temporary grid-<name>.npz and fed to
  anemoi-graphs' NPZFileNodes, which (like ReducedGaussianGridNodes) converts degrees -> radians in float64
  (torch.deg2rad) and stores float32.  If eccodes is importable, the coordinates are cross-checked against
  ecCodes' own octahedral grid geometry (the library that produced ECMWF's grid files); the result is
  recorded in VERSIONS.json.
* TriNodes, CutOffEdges, KNNEdges, MultiScaleEdges, EdgeLength, EdgeDirection, SphericalAreaWeights: anemoi-graphs
  itself, through its GraphCreator and a config written like anemoi-training's default graph config
  (training/src/anemoi/training/config/graph/multi_scale.yaml at training-0.16.0):
    - edge attributes edge_length = EdgeLength(norm=unit-std), edge_dirs = EdgeDirection(norm=unit-std)
    - node attribute area_weight = SphericalAreaWeights(norm=unit-max, fill_value=0)
    - hidden->hidden MultiScaleEdges(x_hops=1, scale_resolutions=<hidden resolution>), which anemoi turns
      into the levels 1..r (an int scale_resolutions means range(1, r+1); without it the levels would be 0..r).
* Every edge set also carries edges/X/edge_length_exact and edges/X/edge_dirs_exact (anemoi's formulas in
  float64, see convert_anemoi_graph.py) and float32_error in its metadata; perm is stored only when it is
  not the identity.
* Without torch_cluster (not installed here) anemoi-graphs uses its scikit-learn backend for CutOffEdges
  and KNNEdges; that backend is what the files record (source.torch_cluster = false).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from convert_anemoi_graph import check_boreas_graph  # noqa: E402
from convert_anemoi_graph import anemoi_edge_attributes  # noqa: E402
from convert_anemoi_graph import convert_heterodata  # noqa: E402
from convert_anemoi_graph import edge_perm  # noqa: E402
from convert_anemoi_graph import package_versions  # noqa: E402
from convert_anemoi_graph import read_boreas_graph  # noqa: E402
from convert_anemoi_graph import write_boreas_graph  # noqa: E402

REPO = Path(__file__).resolve().parents[2]

CUTOFF_FACTOR = 0.6
KNN_K = 3
EDGE_NORM = "unit-std"  # anemoi-training default graph config (multi_scale.yaml): EdgeLength/EdgeDirection
AREA_NORM = "unit-max"  # ... and SphericalAreaWeights(norm=unit-max, fill_value=0)

# name -> (data grid, hidden grid); "O<n>" = octahedral reduced Gaussian, "TRI<r>" = anemoi TriNodes(resolution=r)
FIXTURES = {
    "o16_o4": ("O16", "O4"),
    "o16_tri2": ("O16", "TRI2"),
    "o32_tri3": ("O32", "TRI3"),
}
# Committed zstd-compressed (tests decompress them): 0.96 MB of edge lists is 0.33 MB packed.
COMPRESSED = {"o32_tri3"}

EXPECTED_COUNTS = {"O4": 208, "O8": 544, "O16": 1600, "O32": 5248, "TRI2": 162, "TRI3": 642}


# --------------------------------------------------------------------------------------------------------------
# octahedral reduced Gaussian grid, independent of anemoi
# --------------------------------------------------------------------------------------------------------------
def octahedral_pl(n: int) -> np.ndarray:
    """Points per latitude row, north -> south: 20, 24, ..., 4N+16, 4N+16, ..., 20."""
    i = np.arange(1, n + 1)
    north = 4 * i + 16
    return np.concatenate([north, north[::-1]])


def octahedral_grid(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(latitudes, longitudes) in float64 degrees of the octahedral grid O<n>, rows north -> south,
    longitudes 0 .. 360 (exclusive) west -> east within each row."""
    roots, _ = np.polynomial.legendre.leggauss(2 * n)  # ascending: south -> north
    row_lat = np.degrees(np.arcsin(roots))[::-1]  # north -> south
    pl = octahedral_pl(n)
    lats = np.repeat(row_lat, pl)
    lons = np.concatenate([360.0 * np.arange(m) / m for m in pl])
    return lats, lons


def eccodes_cross_check(n: int, lats: np.ndarray, lons: np.ndarray) -> dict:
    """Compare with ecCodes' geometry of the same octahedral grid (if eccodes is available)."""
    try:
        import eccodes
    except Exception as exc:  # pragma: no cover - optional
        return {"available": False, "reason": f"{type(exc).__name__}: {exc}"}
    pl = octahedral_pl(n)
    h = eccodes.codes_grib_new_from_samples("reduced_gg_pl_32_grib2")
    try:
        eccodes.codes_set(h, "N", n)
        eccodes.codes_set_array(h, "pl", pl.tolist())
        eccodes.codes_set(h, "latitudeOfFirstGridPointInDegrees", float(lats[0]))
        eccodes.codes_set(h, "latitudeOfLastGridPointInDegrees", float(lats[-1]))
        eccodes.codes_set(h, "longitudeOfLastGridPointInDegrees", 360.0 - 360.0 / int(pl.max()))
        eccodes.codes_set_values(h, np.zeros(int(pl.sum())))
        ela = np.asarray(eccodes.codes_get_array(h, "latitudes"), dtype=np.float64)
        elo = np.asarray(eccodes.codes_get_array(h, "longitudes"), dtype=np.float64)
    finally:
        eccodes.codes_release(h)
    same_f32 = bool(
        ela.shape == lats.shape
        and np.array_equal(np.float32(np.deg2rad(ela)), np.float32(np.deg2rad(lats)))
        and np.array_equal(np.float32(np.deg2rad(elo)), np.float32(np.deg2rad(lons)))
    )
    return {
        "available": True,
        "eccodes_version": eccodes.codes_get_api_version(),
        "count": int(ela.size),
        "max_abs_dlat_deg": float(np.abs(ela - lats).max()),
        "max_abs_dlon_deg": float(np.abs(elo - lons).max()),
        "float32_radians_identical": same_f32,
    }


# --------------------------------------------------------------------------------------------------------------
# anemoi graph config
# --------------------------------------------------------------------------------------------------------------
def node_builder_cfg(grid: str, tmpdir: Path, grid_checks: dict) -> dict:
    if grid.startswith("O"):
        n = int(grid[1:])
        lats, lons = octahedral_grid(n)
        assert lats.size == EXPECTED_COUNTS.get(grid, lats.size), (grid, lats.size)
        path = tmpdir / f"grid-{grid.lower()}.npz"
        np.savez(path, latitudes=lats, longitudes=lons)
        if grid not in grid_checks:
            grid_checks[grid] = {
                "coordinates": "numpy (leggauss) -> NPZFileNodes",
                "sha256_latlon_f64": hashlib.sha256(lats.tobytes() + lons.tobytes()).hexdigest(),
                "eccodes": eccodes_cross_check(n, lats, lons),
            }
        return {"_target_": "anemoi.graphs.nodes.NPZFileNodes", "npz_file": str(path)}
    if grid.startswith("TRI"):
        return {"_target_": "anemoi.graphs.nodes.TriNodes", "resolution": int(grid[3:])}
    raise ValueError(grid)


def graph_config(data_grid: str, hidden_grid: str, tmpdir: Path, grid_checks: dict) -> tuple[dict, dict]:
    """anemoi-graphs config (as a plain dict) and the Boreas builder descriptions."""
    node_attrs = {
        "area_weight": {
            "_target_": "anemoi.graphs.nodes.attributes.SphericalAreaWeights",
            "norm": AREA_NORM,
            "fill_value": 0,
        }
    }
    edge_attrs = {
        "edge_length": {"_target_": "anemoi.graphs.edges.attributes.EdgeLength", "norm": EDGE_NORM},
        "edge_dirs": {"_target_": "anemoi.graphs.edges.attributes.EdgeDirection", "norm": EDGE_NORM},
    }
    cfg = {
        "nodes": {
            "data": {"node_builder": node_builder_cfg(data_grid, tmpdir, grid_checks), "attributes": node_attrs},
            "hidden": {"node_builder": node_builder_cfg(hidden_grid, tmpdir, grid_checks), "attributes": node_attrs},
        },
        "edges": [
            {
                "source_name": "data",
                "target_name": "hidden",
                "edge_builders": [{"_target_": "anemoi.graphs.edges.CutOffEdges", "cutoff_factor": CUTOFF_FACTOR}],
                "attributes": edge_attrs,
            },
        ],
    }
    builders = {
        # max_num_neighbours: anemoi's default cap per destination (never reached by these graphs)
        "data_to_hidden": {"type": "cutoff", "cutoff_factor": CUTOFF_FACTOR, "max_num_neighbours": 64},
        "hidden_to_data": {"type": "knn", "k": KNN_K},
    }
    if hidden_grid.startswith("TRI"):
        r = int(hidden_grid[3:])
        cfg["edges"].append(
            {
                "source_name": "hidden",
                "target_name": "hidden",
                "edge_builders": [
                    # like anemoi-training's multi_scale.yaml: scale_resolutions = node resolution (int)
                    {"_target_": "anemoi.graphs.edges.MultiScaleEdges", "x_hops": 1, "scale_resolutions": r}
                ],
                "attributes": edge_attrs,
            }
        )
        builders["hidden_to_hidden"] = {"type": "multiscale", "x_hops": 1, "scale_resolutions": list(range(1, r + 1))}
    cfg["edges"].append(
        {
            "source_name": "hidden",
            "target_name": "data",
            "edge_builders": [{"_target_": "anemoi.graphs.edges.KNNEdges", "num_nearest_neighbours": KNN_K}],
            "attributes": edge_attrs,
        }
    )
    return cfg, builders


# --------------------------------------------------------------------------------------------------------------
# diagnostics (how close the graph is to a decision boundary a C++ rebuild could flip)
# --------------------------------------------------------------------------------------------------------------
def _xyz(x_f32):
    """Cartesian coordinates exactly as anemoi-graphs computes them for edge building (float32 torch)."""
    from anemoi.graphs.generate.transforms import latlon_rad_to_cartesian

    return latlon_rad_to_cartesian(x_f32).numpy().astype(np.float64)


def _pairwise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean (chord) distances in float64, [len(a), len(b)]."""
    d = a[:, None, :] - b[None, :, :]
    return np.sqrt((d * d).sum(-1))


def _summary(indices: np.ndarray, examples: int = 4) -> dict:
    """A list of node indices as its count and the first few (keeps VERSIONS.json small)."""
    return {"count": int(indices.size), "first": [int(i) for i in indices[:examples]]}


def diagnostics(graph, hidden_grid: str) -> dict:
    import torch
    from anemoi.graphs.utils import get_grid_reference_distance

    out: dict = {}
    xd, xh = graph["data"].x, graph["hidden"].x
    pd, ph = _xyz(xd), _xyz(xh)

    # --- cutoff data -> hidden
    ref = float(get_grid_reference_distance(xh))
    radius = ref * CUTOFF_FACTOR
    ei = graph["data", "to", "hidden"].edge_index.numpy().astype(np.int64)
    dist = _pairwise(ph, pd)  # [hidden, data]
    brute = dist <= radius
    got = np.zeros_like(brute)
    got[ei[1], ei[0]] = True
    inside = dist[brute]
    outside = dist[~brute]
    out["data_to_hidden"] = {
        "hidden_reference_distance_chord": ref,
        "radius_chord": radius,
        "radius_arc_rad": float(2 * np.arcsin(radius / 2)),
        "equals_bruteforce_float64_chord_le_radius": bool(np.array_equal(brute, got)),
        "min_rel_margin_inside": float((radius - inside.max()) / radius),
        "min_rel_margin_outside": float((outside.min() - radius) / radius),
        "pairs_within_1e-6_rel_of_radius": int((np.abs(dist - radius) <= 1e-6 * radius).sum()),
        "data_nodes_without_edge": int((np.bincount(ei[0], minlength=len(pd)) == 0).sum()),
    }
    order_sorted = []
    for h in range(len(ph)):
        sel = ei[0][ei[1] == h]
        order_sorted.append(bool(np.all(np.diff(dist[h, sel]) >= 0)))
    out["data_to_hidden"]["within_dst_order_is_ascending_distance"] = bool(all(order_sorted))
    # the same rule with great-circle (arc) distances, as anemoi-graphs <= 0.4 did: radius = f * max NN arc
    arc = 2 * np.arcsin(np.clip(dist / 2, 0, 1))
    nn_arc = np.sort(2 * np.arcsin(np.clip(_pairwise(ph, ph) / 2, 0, 1)), axis=1)[:, 1]
    arc_edges = arc <= CUTOFF_FACTOR * nn_arc.max()
    out["data_to_hidden"]["edges_that_differ_if_arc_metric_used"] = int((arc_edges != got).sum())

    # --- knn hidden -> data
    ei = graph["hidden", "to", "data"].edge_index.numpy().astype(np.int64)
    dist = _pairwise(pd, ph)  # [data, hidden]
    srt = np.sort(dist, axis=1)
    kth, nxt = srt[:, KNN_K - 1], srt[:, KNN_K]
    chosen = ei[0].reshape(len(pd), KNN_K)  # anemoi: dst-major, k per dst
    assert np.array_equal(ei[1].reshape(len(pd), KNN_K), np.repeat(np.arange(len(pd))[:, None], KNN_K, 1))
    chosen_d = np.take_along_axis(dist, chosen, 1)
    brute_idx = np.argsort(dist, axis=1, kind="stable")[:, :KNN_K]
    out["hidden_to_data"] = {
        "chosen_are_k_nearest": bool(np.all(np.sort(chosen_d, 1) <= kth[:, None] * (1 + 1e-12))),
        "within_dst_order_is_ascending_distance": bool(np.all(np.diff(chosen_d, axis=1) >= 0)),
        "same_sets_as_stable_argsort": bool(np.array_equal(np.sort(chosen, 1), np.sort(brute_idx, 1))),
        "same_order_as_stable_argsort": bool(np.array_equal(chosen, brute_idx)),
        "min_rel_gap_kth_to_next": float(((nxt - kth) / kth).min()),
        "dst_with_rel_gap_kth_to_next_below": {
            f"{t:g}": int(((nxt - kth) <= t * kth).sum()) for t in (0.0, 1e-9, 1e-7, 1e-6, 1e-5, 1e-4)
        },
        # destinations whose k nearest set is ambiguous: the k-th and (k+1)-th distances are exactly equal
        # (float64 chord distance between anemoi's float32 Cartesian points); anemoi keeps whichever the
        # scikit-learn KD-tree met first, which is neither the lower nor the higher index consistently.
        "dst_exact_tie_at_k_boundary": _summary(np.flatnonzero(nxt == kth)),
        "dst_near_tie_at_k_boundary_rel_1e-6": _summary(np.flatnonzero((nxt - kth) <= 1e-6 * kth)),
        "dst_with_exact_tie_among_chosen": int((np.diff(np.sort(chosen_d, 1), axis=1) == 0).any(1).sum()),
    }

    # --- destinations at the poles (EdgeDirection special cases)
    pole = {}
    for et in graph.edge_types:
        xdst = graph[et[2]].x
        z = torch.sin(xdst[:, 0])  # float32, as compute_directions sees it
        dst = graph[et].edge_index[1].long()
        pole["_".join(et)] = {
            "edges_with_dst_z_eq_+1_float32": int((z[dst] >= 1.0).sum()),
            "edges_with_dst_z_eq_-1_float32": int((z[dst] <= -1.0).sum()),
        }
    # EdgeDirection for destinations at the poles: compute_directions' special branches test
    # dot > 1 - 1e-8 / dot < -1 + 1e-8 in float32, i.e. dot > 1 / dot < -1, which never holds, so the general
    # Rodrigues path runs: at the north pole it is ~ (x_s, y_s)/|.|, at the south pole (lon 0) it rotates by
    # ~pi about +y and gives ~ (-x_s, y_s)/|.| -- the opposite sign of the branch's (x_s, -y_s)/|.|.
    # The *_exact tensors evaluate that general path in float64 for every edge; here it is compared, for the
    # pole destinations, with anemoi's float32 values (raw and as stored, i.e. after the normalisation).
    from anemoi.graphs.edges.directional import compute_directions

    for et in graph.edge_types:
        xs, xt = graph[et[0]].x, graph[et[2]].x
        ei = graph[et].edge_index.long()
        zt = torch.sin(xt[ei[1], 0])
        norms = {"edge_length": EDGE_NORM, "edge_dirs": EDGE_NORM}
        f64 = anemoi_edge_attributes(xs.numpy(), xt.numpy(), ei.numpy(), norms, torch.float64)["edge_dirs"].numpy()
        stored = graph[et].edge_dirs.numpy().astype(np.float64)
        for tag, sel in (("north", zt >= 1.0), ("south", zt <= -1.0)):
            if not bool(sel.any()):
                continue
            s, t = xs[ei[0][sel]], xt[ei[1][sel]]
            raw = compute_directions(source_coords=s, target_coords=t).numpy().astype(np.float64)
            raw64 = anemoi_edge_attributes(
                xs.numpy(), xt.numpy(), ei[:, sel].numpy(), {"edge_length": None, "edge_dirs": None}, torch.float64
            )["edge_dirs"].numpy()
            sx = (torch.cos(s[:, 0]) * torch.cos(s[:, 1])).numpy().astype(np.float64)
            sy = (torch.cos(s[:, 0]) * torch.sin(s[:, 1])).numpy().astype(np.float64)
            n = np.hypot(sx, sy)
            rule = np.stack([sx, sy], 1) / n[:, None] if tag == "north" else np.stack([-sx, sy], 1) / n[:, None]
            branch = np.stack([sx, sy], 1) / n[:, None] if tag == "north" else np.stack([sx, -sy], 1) / n[:, None]
            sel_np = sel.numpy()
            pole["_".join(et)][f"{tag}_pole_dst_lon"] = sorted({float(v) for v in t[:, 1].tolist()})
            pole["_".join(et)][f"{tag}_max_abs_diff_raw_vs_rule"] = float(np.abs(raw - rule).max())
            pole["_".join(et)][f"{tag}_max_abs_diff_raw_vs_dead_branch"] = float(np.abs(raw - branch).max())
            pole["_".join(et)][f"{tag}_max_abs_diff_raw_f32_vs_f64_general_path"] = float(np.abs(raw - raw64).max())
            pole["_".join(et)][f"{tag}_max_abs_diff_stored_f32_vs_exact_f64"] = float(
                np.abs(stored[sel_np] - f64[sel_np]).max()
            )
    out["pole_destinations"] = pole

    if ("hidden", "to", "hidden") in graph.edge_types:
        ei = graph["hidden", "to", "hidden"].edge_index.numpy().astype(np.int64)
        pairs = set(map(tuple, ei.T.tolist()))
        out["hidden_to_hidden"] = {
            "duplicates": int(ei.shape[1] - len(pairs)),
            "self_loops": int((ei[0] == ei[1]).sum()),
            "symmetric": all((b, a) in pairs for a, b in pairs),
            "dst_sorted_in_anemoi_order": bool(np.all(np.diff(ei[1]) >= 0)),
        }
    return out


def degree_stats(tensors: dict, meta: dict) -> dict:
    out = {}
    for x, m in meta["edges"].items():
        indeg = np.diff(tensors[f"edges/{x}/dst_offsets"])
        outdeg = np.bincount(tensors[f"edges/{x}/src"], minlength=meta["nodes"][m["source"]]["count"])
        perm = edge_perm(tensors, x, m["count"])
        out[x] = {
            "count": m["count"],
            "in_degree_min": int(indeg.min()),
            "in_degree_max": int(indeg.max()),
            "out_degree_min": int(outdeg.min()),
            "out_degree_max": int(outdeg.max()),
            "perm_is_identity": bool(np.array_equal(perm, np.arange(perm.size))),
            "perm_stored": f"edges/{x}/perm" in tensors,
            "float32_error": m.get("float32_error"),
        }
    return out


# --------------------------------------------------------------------------------------------------------------
def build_fixture(name: str, out_dir: Path, tmpdir: Path, grid_checks: dict) -> dict:
    import torch
    from anemoi.graphs.create import GraphCreator
    from anemoi.utils.config import DotDict

    data_grid, hidden_grid = FIXTURES[name]
    cfg, builders = graph_config(data_grid, hidden_grid, tmpdir, grid_checks)
    pt_path = tmpdir / f"{name}.pt"
    GraphCreator(DotDict(cfg)).create(save_path=pt_path, overwrite=True)
    graph = torch.load(pt_path, map_location="cpu", weights_only=False)  # what the converter CLI reads

    assert graph["data"].num_nodes == EXPECTED_COUNTS[data_grid], (name, graph["data"].num_nodes)
    assert graph["hidden"].num_nodes == EXPECTED_COUNTS[hidden_grid], (name, graph["hidden"].num_nodes)
    assert graph["hidden", "to", "data"].edge_index.shape[1] == KNN_K * EXPECTED_COUNTS[data_grid]

    v = package_versions()
    tensors, meta = convert_heterodata(
        graph,
        grids={"data": data_grid, "hidden": hidden_grid},
        builders=builders,
        norms={"edge_length": EDGE_NORM, "edge_dirs": EDGE_NORM, "area_weight": AREA_NORM},
        created_by=(
            f"tools/reference/make_graph_fixtures.py (anemoi-graphs {v['anemoi_graphs_version']}, "
            f"torch {v['torch_version']}, torch-geometric {v['torch_geometric_version']}, "
            f"scikit-learn {v['sklearn_version']}, trimesh {v['trimesh_version']})"
        ),
        extra_source={
            "edge_backend": "torch_cluster" if v["torch_cluster"] else "sklearn",
            "node_coords": {
                g: ("numpy octahedral grid via NPZFileNodes" if g.startswith("O") else f"TriNodes(resolution={g[3:]})")
                for g in (data_grid, hidden_grid)
            },
            "recipe": f"tools/reference/make_graph_fixtures.py:{name}",
        },
        exact=True,
    )
    path = out_dir / f"{name}.safetensors"
    write_boreas_graph(path, tensors, meta)

    t2, m2 = read_boreas_graph(path)
    check_boreas_graph(t2, m2, graph)
    assert m2 == meta
    recipe = {
        "data": {"grid": data_grid, "anemoi": cfg["nodes"]["data"]["node_builder"]["_target_"]},
        "hidden": {"grid": hidden_grid, "anemoi": cfg["nodes"]["hidden"]["node_builder"]["_target_"]},
        "edges": {
            f"{e['source_name']}_to_{e['target_name']}": {
                k: v for k, v in e["edge_builders"][0].items() if k not in ("npz_file",)
            }
            for e in cfg["edges"]
        },
        "edge_attributes": {"edge_length": f"EdgeLength(norm={EDGE_NORM})", "edge_dirs": f"EdgeDirection(norm={EDGE_NORM})"},
        "node_attributes": {"area_weight": f"SphericalAreaWeights(norm={AREA_NORM}, fill_value=0)"},
    }
    info = {
        "file": path.name,
        "bytes": path.stat().st_size,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "recipe": recipe,
        "nodes": {s: m["count"] for s, m in meta["nodes"].items()},
        "edges": degree_stats(t2, m2),
        "diagnostics": diagnostics(graph, hidden_grid),
    }
    if name in COMPRESSED:  # the fixture budget (10 MB): committed as .safetensors.zst
        subprocess.run(["zstd", "-19", "-q", "-f", "--rm", str(path)], check=True)
        info["committed_as"] = path.name + ".zst"
    return info


def environment() -> dict:
    v = package_versions()
    env = {k.replace("_version", ""): val for k, val in v.items()}
    try:
        from numpy._core._multiarray_umath import __cpu_features__

        env["numpy_cpu_features"] = sorted(k for k, on in __cpu_features__.items() if on and k.startswith("AVX"))
    except Exception:  # pragma: no cover
        pass
    env["machine"] = platform.machine()
    return env


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Build Boreas graph fixtures with anemoi-graphs.")
    p.add_argument("--out", default=str(REPO / "tests" / "data" / "graphs"))
    p.add_argument("--only", nargs="*", choices=sorted(FIXTURES), help="build only these fixtures")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.ERROR)

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = args.only or list(FIXTURES)
    versions_path = out_dir / "VERSIONS.json"
    previous = json.loads(versions_path.read_text()) if versions_path.exists() else {}

    # keep earlier results only for fixtures (and their grids) that are still in FIXTURES
    used_grids = {g for pair in FIXTURES.values() for g in pair}
    grid_checks: dict = {g: v for g, v in previous.get("grids", {}).items() if g in used_grids}
    fixtures: dict = {n: v for n, v in previous.get("fixtures", {}).items() if n in FIXTURES}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            info = build_fixture(name, out_dir, Path(tmp), grid_checks)
            fixtures[name] = info
            e = info["edges"]
            print(
                f"{name}: {info['bytes']} bytes, nodes {info['nodes']}, "
                + ", ".join(f"{k} {v['count']} (in-deg {v['in_degree_min']}..{v['in_degree_max']})" for k, v in e.items())
            )

    doc = {
        "generator": "tools/reference/make_graph_fixtures.py",
        "format": "boreas-graph v1 (see tools/reference/convert_anemoi_graph.py)",
        "environment": environment(),
        "notes": [
            "Octahedral node coordinates: computed in numpy (ReducedGaussianGridNodes would download "
            "grid-<name>.npz from get.ecmwf.int) and fed through anemoi-graphs' NPZFileNodes.",
            "CutOffEdges/KNNEdges used the scikit-learn backend (torch_cluster not installed).",
            "Attributes as in anemoi-training's default graph config (graph/multi_scale.yaml): EdgeLength and "
            "EdgeDirection norm unit-std, SphericalAreaWeights norm unit-max fill_value 0; hidden->hidden "
            "MultiScaleEdges(x_hops=1, scale_resolutions=r) = refinement levels 1..r.",
            "TriNodes order within equal latitudes comes from numpy's non-stable argsort and may depend on the "
            "numpy build and CPU (see environment.numpy_cpu_features): read node order from the files.",
            "edges/X/edge_length and edge_dirs are anemoi's float32 output; edges/X/*_exact are anemoi's formulas "
            "(haversine_distance; compute_directions' general rotation path for every edge) and unit-std "
            "evaluated in float64 on the float32 coordinates, rounded to float32; metadata float32_error = "
            "max|f32 - f64| per edge set.  edges/X/perm is omitted when it is the identity.",
        ],
        "grids": dict(sorted(grid_checks.items())),
        "fixtures": dict(sorted(fixtures.items())),
        "total_bytes": int(sum(f["bytes"] for f in fixtures.values())),
    }
    versions_path.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"total {doc['total_bytes']} bytes; wrote {versions_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

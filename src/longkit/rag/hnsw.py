"""The HNSW graph of an `hnsw` index: derived data, rebuilt from the vectors whenever it is stale or damaged."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

GRAPH_FILE = "hnsw.faiss"


def build_graph(vectors: np.ndarray, cfg: dict[str, Any]) -> Any:  # Any: a faiss IndexHNSWFlat
    """A fresh inner-product HNSW graph over the vectors, with the manifest's construction settings."""
    import faiss

    graph = faiss.IndexHNSWFlat(vectors.shape[1], int(cfg["m"]), faiss.METRIC_INNER_PRODUCT)
    graph.hnsw.efConstruction = int(cfg["ef_construction"])
    if len(vectors):
        graph.add(np.ascontiguousarray(vectors))
    return graph


def read_graph(root: Path, manifest: dict[str, Any], fingerprint: str, n_rows: int) -> Any | None:  # Any: faiss index
    """The saved graph when it was built from exactly the current segments and is intact, else None."""
    import faiss

    fpath = root / GRAPH_FILE
    size = manifest.get("hnsw_bytes")
    if not fpath.is_file() or manifest.get("hnsw_state") != fingerprint:
        return None
    if size is not None and fpath.stat().st_size != size:
        return None
    try:
        graph = faiss.read_index(str(fpath))
    except RuntimeError:  # a damaged graph file: it is derived data, so the caller rebuilds it
        return None
    if not hasattr(graph, "hnsw") or graph.ntotal != n_rows:
        return None
    return graph


def write_graph(root: Path, graph: Any) -> int:  # Any: a faiss index
    """Save the graph atomically; returns its size in bytes (recorded in the manifest)."""
    import faiss

    tmp = root / f".{GRAPH_FILE}.tmp"
    faiss.write_index(graph, str(tmp))
    os.replace(tmp, root / GRAPH_FILE)
    return (root / GRAPH_FILE).stat().st_size

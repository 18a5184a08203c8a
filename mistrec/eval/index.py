"""Nearest-neighbour indexes of a retrieval model's item vectors, one per scenario, stored with the run
(`mistrec index RUN_DIR`; docs/serving.md, "Retrieval").

A scenario's catalogue (every item that occurs in it in the prepared data, as full-catalogue ranking has it) is
embedded by the item tower and indexed by faiss for inner-product search: exactly (IndexFlatIP) when it has at
most `flat_max` items, else by HNSW (IndexHNSWFlat), whose efSearch is the smallest of a ladder whose recall@k
against the exact search reaches `recall`, measured on the user vectors of the scenario's test rows (their
histories as evaluation builds them). What was chosen and measured is written to index/index.json.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch

from mistrec.data.atomic import atomic_dir
from mistrec.data.prepared import PreparedDataset
from mistrec.errors import ArtifactError, ConfigError
from mistrec.eval.evaluate import load_run_and_data
from mistrec.features import EncodedRows, FeatureEncoder
from mistrec.models.base import Model, Retrieves

__all__ = ["EF_LADDER", "IndexReport", "build_index", "load_index"]

EF_LADDER = (16, 32, 64, 128, 256, 512, 1024, 2048)  # HNSW efSearch values tried, smallest first
INDEX_DIR = "index"


@dataclass
class IndexReport:
    """One scenario's index: its kind, size, the efSearch chosen (HNSW) and its recall@k against exact search on
    `queries` user vectors."""

    scenario: str
    kind: str  # "flat" (exact inner product) or "hnsw"
    items: int
    dim: int
    k: int
    recall_at_k: float
    queries: int
    ef_search: int | None
    m: int | None
    build_seconds: float


def _faiss() -> Any:
    try:
        import faiss
    except ImportError:
        raise ConfigError("mistrec index needs faiss: pip install 'mistrec[retrieval]' (faiss-cpu).") from None
    return faiss


def _vectors(fn: Any, batches: list[Any]) -> np.ndarray:
    with torch.no_grad():
        return np.ascontiguousarray(torch.cat([fn(b) for b in batches]).numpy(), dtype=np.float32)


def _catalogue(ds: PreparedDataset, s_idx: int) -> np.ndarray:
    df = ds.interactions
    if "sampled" in df.columns:
        df = df.filter(~pl.col("sampled"))
    return np.unique(df.filter(pl.col("scenario") == s_idx)["item"].to_numpy())


def _query_vectors(model: Model, enc: FeatureEncoder, rows: EncodedRows, s_idx: int, n: int, seed: int
                   ) -> np.ndarray:
    """User vectors of up to n of the test `rows` in the scenario (their histories as evaluation has them)."""
    assert isinstance(model, Retrieves)
    idx = np.flatnonzero(rows.scenario == s_idx)
    if idx.size > n:
        idx = np.sort(np.random.default_rng(seed).choice(idx, size=n, replace=False))
    batches = [enc.batch(rows, idx[a:a + 4096], history=model.reads_history, history_side=model.reads_history_side)
               for a in range(0, idx.size, 4096)]
    return _vectors(model.user_vector, batches) if batches else np.zeros((0, 1), np.float32)


def _recall(found: np.ndarray, exact: np.ndarray) -> float:
    """Mean share of each query's exact top k that the approximate search found."""
    hits = [np.intersect1d(f[f >= 0], e[e >= 0]).size / max((e >= 0).sum(), 1) for f, e in zip(found, exact,
                                                                                               strict=True)]
    return float(np.mean(hits)) if hits else float("nan")


def build_index(run_dir: str | Path, data: str | Path | None = None, kind: str = "auto", recall: float = 0.95,
                flat_max: int = 20_000, m: int = 32, k: int = 100, n_queries: int = 1000, seed: int = 0,
                quiet: bool = True) -> list[IndexReport]:
    """Builds and writes every scenario's index into RUN_DIR/index (replacing one there); returns the reports."""
    if kind not in ("auto", "flat", "hnsw"):
        raise ConfigError(f"kind must be auto, flat or hnsw. Got {kind!r}.")
    if not 0 < recall <= 1:
        raise ConfigError(f"recall must be in (0, 1]. Got {recall}.")
    faiss = _faiss()
    model, enc, meta, ds = load_run_and_data(run_dir, data)
    if not isinstance(model, Retrieves):
        raise ConfigError(f"{run_dir} holds a {meta['model']} run, which scores a (user, item) pair as a whole: "
                          "an index needs item vectors scored by an inner product with a user vector. Train "
                          "two_tower (the retrieval model) and index that run.")
    faiss.omp_set_num_threads(torch.get_num_threads())
    with atomic_dir(Path(run_dir) / INDEX_DIR, is_result=lambda p: (p / "index.json").is_file(), what="index",
                    force=True) as out:
        reports = _build(faiss, model, enc, ds, out, kind, recall, flat_max, m, k, n_queries, seed, quiet)
        (out / "index.json").write_text(json.dumps({"model": meta["model"], "recall_target": recall,
                                                    "scenarios": [asdict(r) for r in reports]}, indent=2))
    return reports


def _build(faiss: Any, model: Any, enc: FeatureEncoder, ds: PreparedDataset, out: Path, kind: str, recall: float,
           flat_max: int, m: int, k: int, n_queries: int, seed: int, quiet: bool) -> list[IndexReport]:
    reports = []
    test = enc.rows(ds, "test")  # the queries recall is measured on, every scenario's
    for s_idx, s_name in enumerate(ds.scenarios, start=1):
        start = time.perf_counter()
        catalogue = _catalogue(ds, s_idx)
        if catalogue.size == 0:
            continue
        batches = [enc.item_batch(catalogue[a:a + 16384]) for a in range(0, catalogue.size, 16384)]
        vectors = _vectors(model.item_vector, batches)
        dim = vectors.shape[1]
        exact = faiss.IndexFlatIP(dim)
        exact.add(vectors)
        queries = _query_vectors(model, enc, test, s_idx, n_queries, seed)
        k_eff = min(k, catalogue.size)
        index, ef, rec = exact, None, 1.0
        if kind == "hnsw" or (kind == "auto" and catalogue.size > flat_max):
            index = faiss.IndexHNSWFlat(dim, m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = max(200, 2 * m)
            index.add(vectors)
            truth = exact.search(queries, k_eff)[1] if len(queries) else np.zeros((0, k_eff), np.int64)
            for ef in EF_LADDER:
                index.hnsw.efSearch = max(ef, k_eff)
                rec = _recall(index.search(queries, k_eff)[1], truth) if len(queries) else float("nan")
                if not rec < recall:  # reached (or nothing to measure it on)
                    break
            ef = int(index.hnsw.efSearch)
        faiss.write_index(index, str(out / f"{s_name}.faiss"))
        np.save(out / f"{s_name}.items.npy", catalogue)
        report = IndexReport(scenario=s_name, kind="flat" if ef is None else "hnsw", items=int(catalogue.size),
                             dim=int(dim), k=k_eff, recall_at_k=rec, queries=len(queries), ef_search=ef,
                             m=None if ef is None else m, build_seconds=round(time.perf_counter() - start, 3))
        reports.append(report)
        if not quiet:
            print(f"  {s_name}: {report.kind}, {report.items:,} items, recall@{k_eff} {rec:.4f} on {len(queries):,} "
                  f"queries" + (f", efSearch {ef}" if ef is not None else "") + f" ({report.build_seconds:.1f} s)")
    return reports


def load_index(run_dir: str | Path) -> dict[str, tuple[Any, np.ndarray]]:
    """Scenario -> (faiss index, the dataset item index of each of its rows), from RUN_DIR/index."""
    faiss = _faiss()
    root = Path(run_dir) / INDEX_DIR
    if not (root / "index.json").is_file():
        raise ArtifactError(f"{run_dir} has no index: run `mistrec index {run_dir}` first.")
    doc = json.loads((root / "index.json").read_text())
    return {r["scenario"]: (faiss.read_index(str(root / f"{r['scenario']}.faiss")),
                            np.load(root / f"{r['scenario']}.items.npy")) for r in doc["scenarios"]}

"""Reading a prepared directory back: checked for completeness and schema version."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from mistrec.data.atomic import read_json
from mistrec.data.content import CONTENT_DIR
from mistrec.data.history import HistoryBatch, HistoryEvents
from mistrec.data.prepare import SCHEMA_VERSION
from mistrec.data.shards import Shards
from mistrec.errors import ArtifactError

__all__ = ["PreparedDataset"]

_REQUIRED = ("manifest.json", "interactions.parquet", "history_events.parquet", "vocab/user_id.parquet",
             "vocab/item_id.parquet", "vocab/scenario.parquet")


def _parquet(path: Path, columns: tuple[str, ...] = (), rows: bool = True) -> pl.DataFrame:
    """A prepared directory's Parquet file (without `rows`: none of its rows, its columns only), or an
    ArtifactError naming it as damaged (truncated, overwritten, or without the columns prepare writes)."""
    try:
        df = pl.read_parquet(path) if rows else pl.DataFrame(schema=pl.read_parquet_schema(path))
    except (pl.exceptions.PolarsError, OSError) as exc:
        first = " ".join(str(exc).splitlines()[:1])
        raise ArtifactError(f"{path} is damaged: not a readable Parquet file ({first}). Run `mistrec prepare` "
                            f"again.") from exc
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ArtifactError(f"{path} is damaged: it has no column {', '.join(missing)}. Run `mistrec prepare` again.")
    return df


@dataclass(frozen=True)
class PreparedDataset:
    """A prepared dataset: interactions with splits and history windows, events, vocabularies, side tables.

    Example:
        >>> ds = PreparedDataset.load("demo_out/prepared")      # doctest: +SKIP
        >>> h = ds.histories(np.arange(4))                       # doctest: +SKIP
        >>> h.items.shape                                         # doctest: +SKIP
        (4, 50)
    """

    path: Path
    manifest: dict[str, Any]
    interactions: pl.DataFrame
    events: HistoryEvents
    vocab: dict[str, pl.DataFrame]
    tables: dict[str, pl.DataFrame]

    streamed: bool = False  # loaded without its rows and events, which are read shard by shard (`shards`)

    @classmethod
    def load(cls, path: str | Path, rows: bool = True) -> PreparedDataset:
        """The prepared dataset in `path`; with `rows=False` its interactions and events are left on disk (empty
        here) for streamed training, which reads them a shard at a time (`shards`)."""
        path = Path(path)
        if not path.is_dir():
            raise ArtifactError(f"Prepared dataset not found: {path}. Create it with `mistrec prepare CONFIG.yaml "
                                f"--out {path}`.")
        missing = [f for f in _REQUIRED if not (path / f).is_file()]
        if missing:
            raise ArtifactError(f"{path} is not a complete prepared dataset: missing {', '.join(missing)}. "
                                "Run `mistrec prepare` again.")
        manifest = read_json(path / "manifest.json", "Run `mistrec prepare` again.")
        version = manifest.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ArtifactError(f"{path} was prepared with schema version {version} (by mistrec "
                                f"{manifest.get('mistrec_version', '?')}); this mistrec reads version "
                                f"{SCHEMA_VERSION}. Run `mistrec prepare` again with this version.")
        ev = _parquet(path / "history_events.parquet", ("user", "timestamp", "item", "scenario", "label", "row",
                                                         "value"), rows=rows)
        events = HistoryEvents(user=ev["user"].to_numpy(), ts=ev["timestamp"].to_numpy(), item=ev["item"].to_numpy(),
                               scenario=ev["scenario"].to_numpy(), label=ev["label"].to_numpy(),
                               row=ev["row"].to_numpy(), value=ev["value"].to_numpy())
        vocab = {p.stem: _parquet(p) for p in sorted((path / "vocab").glob("*.parquet"))}
        tables = {k: _parquet(path / f"{k}.parquet") for k in manifest.get("side_tables", [])}
        return cls(path=path, manifest=manifest, events=events, vocab=vocab, tables=tables,
                   interactions=_parquet(path / "interactions.parquet", ("split",), rows=rows), streamed=not rows)

    @property
    def shards(self) -> Shards:
        """The shards of whole users the rows and events were written in (data/shards.py)."""
        return Shards.of(self.path, self.manifest)

    def scan(self, name: str = "interactions") -> pl.LazyFrame:
        """A lazy scan of interactions.parquet or history_events.parquet (polars' streaming engine can run it in
        bounded memory)."""
        return pl.scan_parquet(self.path / f"{name}.parquet")

    @property
    def history_length(self) -> int:
        return int(self.manifest["history"]["length"])

    @property
    def scenarios(self) -> list[str]:
        return list(self.manifest["scenarios"])

    def content(self, kind: str) -> np.ndarray | None:
        """The content vectors of 'items' or 'users' (n_index, D) float32, row = the id's index (data/content.py),
        or None when the dataset's YAML names no text, image or vector column for them."""
        if kind not in (self.manifest.get("content") or {}):
            return None
        f = self.path / CONTENT_DIR / f"{kind}.npy"
        try:
            m = np.load(f)
        except (OSError, ValueError) as exc:
            raise ArtifactError(f"{f} is missing or damaged ({type(exc).__name__}). Run `mistrec prepare` "
                                "again.") from None
        if m.ndim != 2 or m.shape[0] != self.vocab["item_id" if kind == "items" else "user_id"].height + 1:
            raise ArtifactError(f"{f} has shape {m.shape}, not one row per {kind[:-1]} index. Run `mistrec "
                                "prepare` again.")
        return m.astype(np.float32, copy=False)

    def split(self, name: str) -> pl.DataFrame:
        """The rows of one split: 'train', 'valid' or 'test'."""
        return self.interactions.filter(pl.col("split") == name)

    def histories(self, rows: np.ndarray, length: int | None = None) -> HistoryBatch:
        """Padded (B, L) histories of the given interaction rows (positions in `interactions`)."""
        inter = self.interactions
        start = inter["hist_start"].to_numpy()[rows]
        end = inter["hist_end"].to_numpy()[rows]
        ts = inter["timestamp"].to_numpy()[rows]
        length = length or self.history_length
        return self.events.gather(np.maximum(start, end - length), end, ts, length)

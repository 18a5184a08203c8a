"""`mistrec prepare`: dataset YAML -> validated, cleaned, encoded, split directory with histories.

The prepared directory (docs/data.md):
    interactions.parquet    one row per sample: encoded ids, timestamp, label, split, sampled flag,
                            conversion (when the data has one; null where a source does not say),
                            history window [hist_start, hist_end) into history_events.parquet, context
    history_events.parquet  the training events, sorted by (user, time): the only pool histories use
    users.parquet, items.parquet, scenarios.parquet   encoded side features (when the YAML has them)
    vocab/*.parquet         value -> index maps (index 0 = unknown) with training counts
    manifest.json           schema version, fingerprints, counts, cleaning report, protocol, checks
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from tqdm import tqdm

from mistrec.data import leakage
from mistrec.data.atomic import atomic_dir
from mistrec.data.cleaning import NumericPreprocessor, deduplicate, kcore, scenario_counts
from mistrec.data.config import DatasetConfig, ProtocolConfig, TableConfig
from mistrec.data.content import CONTENT_DIR, align_to_cooccurrence, table_content
from mistrec.data.history import HistoryEvents
from mistrec.data.negatives import ScenarioPools, sample_negatives, staged_pools
from mistrec.data.parts import check_partable, part_filter, sum_facts, user_bounds
from mistrec.data.readers import LINE, location, source_fingerprint, such_rows
from mistrec.data.shards import SHARD_ROWS, ShardWriter
from mistrec.data.sources import ITEM_SCOPED, SOURCE, InvalidRows, float32_number, load_interactions
from mistrec.data.splits import EXCLUDED, SPLIT_NAMES, TRAIN, split_interactions
from mistrec.data.tables import derive_scenarios, read_table
from mistrec.data.vocab import build_vocab, collisions, encode, hash_buckets
from mistrec.errors import ConfigError, DataError

__all__ = ["SCHEMA_VERSION", "prepare"]

SCHEMA_VERSION = 2  # 2: label_value in interactions, value in history events
SPLIT_ENUM = pl.Enum(["train", "valid", "test"])


def prepare(
    cfg: DatasetConfig,
    out: str | Path,
    *,
    protocol: ProtocolConfig | None = None,
    history_length: int | None = None,
    quiet: bool = True,
    force: bool = False,
    shard_rows: int = SHARD_ROWS,
    parts: int = 1,
) -> dict[str, Any]:
    """Runs the whole preparation and writes the prepared directory; returns its manifest.

    Args:
        cfg: the validated dataset configuration (see `load_dataset_config`).
        out: the directory to write, whole or not at all (mistrec.data.atomic); an earlier prepared dataset
            there is an error unless `force`, checked before any work.
        protocol: overrides the YAML's protocol section.
        history_length: overrides history.length.
        quiet: no progress bar.
        force: replace a prepared dataset already in `out` (the runs trained on it will no longer load).
        shard_rows: about this many interactions per shard: the interactions and history events are written in
            row groups of whole users, a shard each, which streamed training reads one at a time (data/shards.py).
        parts: prepare the users in this many parts, each read by polars' streaming engine and prepared on its own
            (data/parts.py): memory holds one part's rows, for inputs larger than memory. The result is the one
            prepared in a piece, except the seeded draws (random splits, cold users, negatives), drawn per part.
    """
    if shard_rows < 1:
        raise ConfigError(f"shard_rows must be >= 1. Got {shard_rows}.")
    if parts < 1:
        raise ConfigError(f"parts must be >= 1. Got {parts}.")
    if parts > 1:
        check_partable(cfg, protocol or cfg.protocol, parts)
    t0 = time.perf_counter()
    out = Path(out)
    # disable=None: no bar when stderr is not a terminal (logs, CI); leave=False: an error starts a clean line.
    steps = tqdm(total=9, desc="prepare", disable=True if quiet else None, unit="step", leave=False)
    try:
        with atomic_dir(out, is_result=lambda p: (p / "manifest.json").is_file(), what="prepared dataset",
                        force=force) as tmp:
            job = _Job(cfg, protocol, history_length, quiet)
            job.shard_rows, job.parts = shard_rows, parts
            return _run(job, tmp, steps, t0, previous=out / CONTENT_DIR)
    finally:
        steps.close()


def _run(job: _Job, out: Path, steps: tqdm, t0: float, previous: Path) -> dict[str, Any]:
    """The stages, over the parts of users in turn (one part: the whole data): read and clean each part (kept on
    disk between the passes when there are several), the vocabularies from every part, then each part encoded,
    split, windowed, checked and written as shards; the side tables, content and manifest last."""
    cfg = job.cfg
    steps.total = 4 + 6 * job.parts
    spill = out / ".parts"

    def step(name: str, k: int) -> None:
        steps.set_postfix_str(name if job.parts == 1 else f"{name}, part {k + 1}/{job.parts}")
        steps.update(1)

    job.read_tables()
    bounds = user_bounds(cfg, job.parts) if job.parts > 1 else [None]
    cleaned: list[pl.DataFrame | Path] = []
    for k, bound in enumerate(bounds):
        job.read(None if bound is None else part_filter(bound, first=k == 0))
        step("read", k)
        if job.parts > 1:
            spill.mkdir(exist_ok=True)
        job.clean(spill / f"read-{k}.parquet" if job.parts > 1 else None)
        step("clean", k)
        if job.parts == 1:
            cleaned.append(job.df)
        else:  # on disk until its second pass: memory holds one part
            path = spill / f"{k}.parquet"
            job.df.write_parquet(path)
            cleaned.append(path)
            job.df = pl.DataFrame()
    job.build_vocabs([c.lazy() if isinstance(c, pl.DataFrame) else pl.scan_parquet(c) for c in cleaned])
    steps.update(1)
    split_first = job.parts > 1 and cfg.implicit  # the negatives' pools by split need every part's split
    if split_first:
        seen: list[pl.DataFrame] = []
        for k, spilled in enumerate(cleaned):
            assert isinstance(spilled, Path)  # several parts: each on disk
            job.df = pl.read_parquet(spilled)
            job.encode_ids()
            job.split(k)
            step("split", k)
            seen.append(job.df.select("scenario_idx", "item", "split_code").unique())
            job.df.write_parquet(spilled)
            job.df = pl.DataFrame()
        pairs = pl.concat(seen).unique()
        job.pools = staged_pools(pairs["scenario_idx"].to_numpy(), pairs["item"].to_numpy(),
                                 pairs["split_code"].to_numpy())
        del seen, pairs
    writer = ShardWriter(out, job.shard_rows)
    for k in range(len(cleaned)):
        part, cleaned[k] = cleaned[k], Path()  # the list keeps no frame alive past its part
        job.df = part if isinstance(part, pl.DataFrame) else pl.read_parquet(part)
        del part
        if not split_first:
            job.encode_ids()
            job.split(k)
            step("split", k)
        job.add_negatives(k)
        job.build_histories(writer.rows)
        job.collect_liked()
        step("histories", k)
        job.check_leakage()
        step("checks", k)
        if job.df.height:  # a part whose rows were all invalid adds nothing (nor its schema)
            writer.add(*job.part_frames())
        step("write", k)
        job.df = pl.DataFrame()
    writer.close()
    job.shards = writer.shards
    shutil.rmtree(spill, ignore_errors=True)
    tables = {tc.kind: job.encode_table(tc, out) for tc in (cfg.users, cfg.items, cfg.scenarios) if tc is not None}
    job.embed_content(out / CONTENT_DIR, previous if previous.is_dir() else None)
    steps.update(1)
    manifest = job.write(out, tables, seconds=time.perf_counter() - t0)
    steps.update(2)
    return manifest


class _Job:
    """The state of one preparation, step by step (each method is one stage of `prepare`)."""

    def __init__(self, cfg: DatasetConfig, protocol: ProtocolConfig | None, history_length: int | None,
                 quiet: bool = True) -> None:
        self.cfg = cfg
        self.quiet = quiet
        self.indexed_tables: dict[str, pl.DataFrame] = {}
        self.content_report: dict[str, Any] = {}
        self.liked: list[tuple[np.ndarray, np.ndarray]] = []  # (user, item) of the liked training rows, per part
        self.protocol = protocol or cfg.protocol
        self.length = history_length or cfg.history.length
        self.notes: list[str] = []
        self.hashing_report: dict[str, float | int] | None = None  # with hashed user ids: their collisions
        self.shard_rows = SHARD_ROWS
        self.parts = 1
        self.shards: list[dict[str, Any]] = []
        self.report: dict[str, Any] = {}
        self.facts: dict[str, Any] = {}
        self.raw_tables: dict[str, pl.DataFrame] = {}
        self.invalid = InvalidRows(policy=cfg.cleaning.invalid_rows)
        self.df = pl.DataFrame()
        # what the parts add up to (one part: the whole data)
        self.valid_rows, self.dups, self.excluded = 0, 0, 0
        self.source_counts: list[pl.DataFrame] = []
        self.before: list[pl.LazyFrame] = []  # the rows as read, for the counts before cleaning
        self.neg_facts: dict[str, Any] | None = None
        # the negatives' item pools by split (negatives.staged_pools), from every part when there are several
        self.pools: tuple[ScenarioPools, ...] | None = None
        self.hist_sums = {"events": 0, "samples": 0, "length": 0, "empty": 0}
        self.from_file_order = False

    def _part_seed(self, k: int) -> int | list[int]:
        """The generator's seed for part k: the protocol's seed in one piece; (seed, k) in parts."""
        return self.protocol.seed if self.parts == 1 else [self.protocol.seed, k]

    # -- read, derive scenarios ---------------------------------------------------------------------------
    def read_tables(self) -> None:
        cfg, sf = self.cfg, self.cfg.scenario_from
        for tc in (cfg.users, cfg.items, cfg.scenarios):
            if tc is not None:
                extra = (sf.column,) if sf is not None and sf.table == tc.kind else ()
                self.raw_tables[tc.kind] = read_table(tc, extra)

    def read(self, keep: pl.Expr | None) -> None:
        """Reads the interactions (those where `keep` holds, scanned: a part of the users)."""
        cfg = self.cfg
        df, _ = load_interactions(cfg, keep, self.invalid)
        if cfg.scenario_from is not None:
            tc = cfg.table(cfg.scenario_from.table)
            assert tc is not None  # DatasetConfig checked it
            df = derive_scenarios(df, cfg.scenario_from, self.raw_tables[tc.kind], tc, self.invalid)
        if df.height == 0 and self.parts == 1:
            raise DataError("No valid interactions are left after removing invalid rows: see the cleaning report "
                            "reasons, or check the column mapping.")
        self.valid_rows += df.height
        self.source_counts.append(df.group_by(SOURCE).len())
        # Items of a source with item_id_scope: scenario are distinct per scenario.
        self.df = df.with_columns(
            pl.when(pl.col(ITEM_SCOPED)).then(pl.col("scenario")).otherwise(None).alias("item_scope")
        )

    # -- clean --------------------------------------------------------------------------------------------
    def clean(self, spill: Path | None = None) -> None:
        """Deduplication and k-core; the rows as read are kept for the counts before cleaning (on disk under
        `spill` when there are several parts)."""
        cfg, df = self.cfg, self.df
        before = df.select("scenario", "user_id", "item_id", "label")
        if spill is not None:
            before.write_parquet(spill)
            self.before.append(pl.scan_parquet(spill))
        else:
            self.before.append(before.lazy())
        self.from_file_order = self.parts == 1 and df["timestamp"].null_count() == df.height
        if cfg.cleaning.deduplicate:
            # With timestamps an event is (user, item, scenario, time): a repeat is a duplicate, the last one wins.
            # Without them only wholly identical rows are duplicates (a repeated impression looks the same).
            # split is part of the key: the same event in train and test is a leak to report, not to hide.
            keys = ["user_id", "item_id", "item_scope", "scenario", "timestamp", "split"]
            if self.from_file_order:
                keys = [c for c in df.columns if c not in (SOURCE, LINE)]
            df, dups = deduplicate(df, keys)
            self.dups += dups
        if self.from_file_order:
            # Without timestamps, file order is the time order; predefined splits say more: whatever is in a
            # train file happened before the valid and test files (so a test sample's history holds every
            # training event of the user, in every scenario).
            rank = pl.col("split").replace_strict({"train": 0, "valid": 1, "test": 2}, default=0, return_dtype=pl.Int8)
            df = df.with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias("timestamp"))
            df = df.with_columns(pl.struct(rank, "timestamp").rank("ordinal").cast(pl.Int64).alias("timestamp") - 1)
            self.notes.append("No timestamps in the data: file order (sources in YAML order; train files before "
                              "valid and test files) is the time order.")
        removed_kcore, rounds = 0, 0
        if cfg.cleaning.kcore_user or cfg.cleaning.kcore_item:  # one part only (data/parts.py refuses it)
            df, removed_kcore, rounds = kcore(df, cfg.cleaning.kcore_user, cfg.cleaning.kcore_item)
        self.report["kcore"] = {"user": cfg.cleaning.kcore_user, "item": cfg.cleaning.kcore_item,
                                "rows_removed": removed_kcore, "rounds": rounds}
        self.df = df

    # -- vocabularies, from every part --------------------------------------------------------------------
    def build_vocabs(self, parts: list[pl.LazyFrame]) -> None:
        """The id vocabularies, the protocol resolved for the data, the counts before cleaning and (in parts) the
        negatives' item pools: what needs every part's cleaned rows."""
        if self.valid_rows == 0:
            raise DataError("No valid interactions are left after removing invalid rows: see the cleaning report "
                            "reasons, or check the column mapping.")
        self.counts_before = scenario_counts(pl.concat(self.before), item="item_id")
        self.before = []
        self.rows_read = self.valid_rows + sum(self.invalid.counts.values())
        self.source_rows = pl.concat(self.source_counts).group_by(SOURCE).agg(pl.col("len").sum()).sort(SOURCE)
        self.report.update({"invalid_rows": self.invalid.to_dict(), "duplicates_removed": self.dups})
        cols = pl.concat([p.select("user_id", "item_id", "item_scope", "scenario", "split", "conversion")
                          for p in parts])
        first = cols.select(pl.col("split").is_not_null().any().alias("has_split"),
                            pl.col("conversion").is_not_null().any().alias("has_conversion")).collect()
        self.has_split, self.has_conversion = bool(first["has_split"][0]), bool(first["has_conversion"][0])
        users = cols.select("user_id").unique().collect(engine="streaming")["user_id"]
        self.vocab: dict[str, pl.DataFrame] = {"user_id": build_vocab(users)}
        if self.cfg.hashing.users:  # each user's embedding row: a bucket of the hashed id (FeatureEncoder reads it)
            self.vocab["user_id"] = self.vocab["user_id"].with_columns(hash_buckets(
                pl.col("value"), self.cfg.hashing.users))
        items = cols.select("item_id", "item_scope").unique().collect(engine="streaming").sort(
            "item_scope", "item_id", nulls_last=False)
        self.vocab["item_id"] = items.with_columns(pl.int_range(1, pl.len() + 1, dtype=pl.Int32).alias("index"))
        scen = cols.select("scenario").unique().collect()["scenario"]
        logged = set(scen.to_list())
        if "scenarios" in self.raw_tables:  # scenarios described but never logged are new scenarios
            scen = pl.concat([scen, self.raw_tables["scenarios"]["scenario"]])
        self.vocab["scenario"] = build_vocab(scen)
        self.scenario_names = self.vocab["scenario"]["value"].to_list()
        self._resolve_protocol([n for n in self.scenario_names if n in logged])

    def _resolve_protocol(self, logged: list[str]) -> None:
        p = self.protocol.resolved(self.has_split)
        if self.has_split and p.name != "predefined":
            raise ConfigError(f"The data carries predefined splits (a source's split: or a split column), so "
                              f"protocol '{p.name}' would re-split it: use --protocol predefined, or drop the "
                              "predefined splits.")
        p.validate_for(logged)
        if p.name == "cold-item" and self.cfg.implicit:
            raise ConfigError("Protocol 'cold-item' needs logged negatives (a label column with 0s): on implicit "
                              "data the training rows' sampled negatives would be drawn from the held-out items too.")
        self.protocol = p

    def _encoded(self, df: pl.DataFrame) -> pl.DataFrame:
        """user_id, scenario and (item_id, item_scope) as their indices (user, scenario_idx, item)."""
        out = df.with_columns(encode(pl.col("scenario"), self.vocab["scenario"]).alias("scenario_idx"))
        if "user_id" in df.columns:
            out = out.with_columns(encode(pl.col("user_id"), self.vocab["user_id"]).alias("user"))
        return out.join(self.vocab["item_id"].rename({"index": "item"}), on=["item_id", "item_scope"], how="left",
                        nulls_equal=True)

    # -- encode ids ---------------------------------------------------------------------------------------
    def encode_ids(self) -> None:
        # the raw ids, as strings, are the largest columns of the table; from here on the indices stand for them
        self.df = self._encoded(self.df).drop("user_id", "item_id", "item_scope", "scenario", ITEM_SCOPED)
        if not self.has_conversion:  # no source maps a conversion: one task, clicks
            self.df = self.df.drop("conversion")

    # -- split --------------------------------------------------------------------------------------------
    def split(self, k: int) -> None:
        df, p = self.df, self.protocol
        if p.name == "predefined" and df["split"].null_count():
            missing = df.filter(pl.col("split").is_null()).row(0, named=True)
            src = self.cfg.interactions[missing[SOURCE]]
            raise DataError(f"Protocol 'predefined': {location(src.path, src.format, missing[LINE])} has no split. "
                            "Give every source a split: or a split column.")
        target: int | tuple[int, ...] | None = None
        if p.targets:
            idx = tuple(self.scenario_names.index(t) + 1 for t in p.targets)
            target = idx[0] if len(idx) == 1 else idx
        predefined = None
        if p.name == "predefined":
            codes_given = df["split"].replace_strict({"train": 0, "valid": 1, "test": 2}, return_dtype=pl.Int8)
            predefined = codes_given.to_numpy()
        codes, facts, moved = split_interactions(p, df["user"].to_numpy(), df["timestamp"].to_numpy(),
                                                 df["scenario_idx"].to_numpy(), target, predefined,
                                                 item=df["item"].to_numpy(), seed=self._part_seed(k))
        if moved is not None:  # cold-user with cold_order "last": the cold rows after the user's other rows
            df = df.with_columns(pl.Series("timestamp", moved, dtype=df.schema["timestamp"]))
        if "by_target" in facts:  # several cold-user targets: name them
            facts["by_target"] = {self.scenario_names[i - 1]: v for i, v in facts["by_target"].items()}
        self.facts = sum_facts(self.facts, facts)
        self.excluded += int((codes == EXCLUDED).sum())
        # where a row came from (source, line) is for the messages up to here: dropped with the excluded rows
        df = df.with_columns(pl.Series("split_code", codes)).filter(pl.col("split_code") != EXCLUDED).drop(
            SOURCE, LINE)
        names = pl.Series([SPLIT_NAMES[0], SPLIT_NAMES[1], SPLIT_NAMES[2]])
        self.df = df.with_columns(
            pl.col("split_code").replace_strict([0, 1, 2], names, return_dtype=SPLIT_ENUM).alias("split"),
            pl.lit(False).alias("sampled"),
        )

    # -- negatives ----------------------------------------------------------------------------------------
    def add_negatives(self, k: int) -> None:
        if not self.cfg.implicit:
            return
        n = self.cfg.negatives
        df = self.df
        neg = sample_negatives(df["user"].to_numpy(), df["item"].to_numpy(), df["scenario_idx"].to_numpy(),
                               n.per_positive, seed=self._part_seed(k), max_rounds=n.max_rounds, pools=self.pools,
                               split=df["split_code"].to_numpy())
        base = df.select(pl.exclude("item", "label", "label_value", "sampled"))[neg.source]
        negs = base.with_columns(pl.Series("item", neg.item, dtype=pl.Int32), pl.lit(0.0).alias("label"),
                                 pl.lit(0.0).alias("label_value"), pl.lit(True).alias("sampled"))
        if "conversion" in negs.columns:  # no click, no conversion
            negs = negs.with_columns(pl.lit(0.0).alias("conversion"))
        self.df = pl.concat([df, negs], how="diagonal_relaxed")
        sampled, unfilled = len(neg.item), neg.unfilled
        if self.neg_facts is not None:
            sampled, unfilled = sampled + self.neg_facts["sampled"], unfilled + self.neg_facts["unfilled"]
        self.neg_facts = {"per_positive": n.per_positive, "sampled": sampled, "unfilled": unfilled,
                          "pool": "the distinct items of the positive's scenario with a positive in the positive's "
                                  "split or an earlier one (train: train's; valid: train's and valid's; test: all)",
                          "excludes": "every item the user interacted with positively, in any split or scenario"}

    # -- histories ----------------------------------------------------------------------------------------
    def build_histories(self, first_row: int) -> None:
        """The part's history events and windows (windows into the part's events; its rows numbered from
        `first_row`, the rows written before it)."""
        # Rows in (user, time) order: the file reads naturally and row ids are stable for a given input.
        df = self.df.sort("user", "timestamp", "sampled", maintain_order=True).with_row_index("row", offset=first_row)
        hc = self.cfg.history
        ev_rows = df.filter((pl.col("split_code") == TRAIN) & ~pl.col("sampled"))
        if hc.positives_only:
            ev_rows = ev_rows.filter(pl.col("label") > 0)
        self.events = HistoryEvents.build(
            user=ev_rows["user"].to_numpy(), ts=ev_rows["timestamp"].to_numpy(),
            item=ev_rows["item"].to_numpy(), scenario=ev_rows["scenario_idx"].to_numpy(),
            label=ev_rows["label"].to_numpy().astype(np.float32), row=ev_rows["row"].to_numpy(),
            value=ev_rows["label_value"].to_numpy().astype(np.float32),
        )
        start, end = self.events.windows(df["user"].to_numpy(), df["timestamp"].to_numpy(), self.length)
        self.df = df.with_columns(pl.Series("hist_start", start), pl.Series("hist_end", end))
        lens = end - start
        sums = self.hist_sums
        sums["events"] += len(self.events)
        sums["samples"] += len(lens)
        sums["length"] += int(lens.sum())
        sums["empty"] += int((lens == 0).sum())

    # -- leakage ------------------------------------------------------------------------------------------
    def check_leakage(self) -> None:
        if not self.protocol.check_leakage:
            self.checks = {"skipped": "protocol.check_leakage is false"}
            self.notes.append("Leakage checks were switched off (protocol.check_leakage: false).")
            return
        df = self.df
        checks: dict[str, str] = {}
        if not self.from_file_order:
            leakage.check_no_eval_in_train(df, ["user", "item", "scenario_idx", "timestamp"])
            checks["no_eval_interaction_in_train"] = "passed"
        elif self.cfg.implicit:
            # An implicit positive is a fact about a (user, item) pair: the pair in train answers the test.
            leakage.check_no_eval_in_train(df, ["user", "item", "scenario_idx"])
            checks["no_eval_pair_in_train"] = "passed"
        else:
            # Impression logs without timestamps (Ali-CCP): a repeated (user, item) impression cannot be told
            # from a duplicated row, so it is counted, not refused.
            repeats = leakage.count_eval_pairs_in_train(df)
            checks["no_eval_interaction_in_train"] = f"not checkable without timestamps ({repeats} valid/test " \
                                                     "impressions repeat a (user, item, scenario) of train)"
        if self.protocol.name == "temporal":
            sequence = df["user"].to_numpy().astype(np.int64)
            if self.protocol.per_scenario:  # each (user, scenario) sequence was split by itself
                scenario = df["scenario_idx"].to_numpy().astype(np.int64)
                sequence = sequence * (int(scenario.max(initial=0)) + 1) + scenario
            leakage.check_temporal_order(sequence, df["timestamp"].to_numpy(), df["split_code"].to_numpy())
            checks["train_before_eval_per_user" + ("_and_scenario" if self.protocol.per_scenario else "")] = "passed"
        is_train = ((df["split_code"] == TRAIN) & ~df["sampled"]).to_numpy()
        leakage.check_histories(self.events, is_train, df["user"].to_numpy(), df["timestamp"].to_numpy(),
                                df["hist_start"].to_numpy(), df["hist_end"].to_numpy(),
                                first_row=int(df["row"][0]) if df.height else 0)
        checks["history_strictly_before_and_train_only"] = "passed"
        if self.neg_facts is not None:
            leakage.check_negatives(df["user"].to_numpy(), df["item"].to_numpy(), df["label"].to_numpy(),
                                    df["sampled"].to_numpy())
            checks["negatives_not_known_positives"] = "passed"
            leakage.check_negative_splits(df["scenario_idx"].to_numpy(), df["item"].to_numpy(),
                                          df["split_code"].to_numpy(), df["sampled"].to_numpy(), self.pools)
            checks["negatives_name_items_known_by_their_split"] = "passed"
        self.checks = checks

    # -- side tables --------------------------------------------------------------------------------------
    def encode_table(self, tc: TableConfig, written: Path) -> pl.DataFrame:
        """A side table's features as indices and fitted numbers (the numbers fitted on the entities of the
        training rows written to `written`)."""
        raw = self.raw_tables[tc.kind]
        key_vocab = self.vocab["scenario" if tc.kind == "scenarios" else tc.key]
        if tc.kind == "items":
            key_vocab = key_vocab.filter(pl.col("item_scope").is_null()).select(
                pl.col("item_id").alias("value"), "index")
        idx = raw.join(key_vocab.rename({"value": tc.key}), on=tc.key, how="left")
        unknown = idx.filter(pl.col("index").is_null()).height
        idx = idx.filter(pl.col("index").is_not_null()).sort("index")
        self.indexed_tables[tc.kind] = idx
        exprs: list[pl.Expr] = [pl.col("index").alias({"users": "user", "items": "item",
                                                        "scenarios": "scenario"}[tc.kind])]
        for col in tc.categorical:
            self.vocab[f"{tc.kind}.{col}"] = build_vocab(idx[col])
            exprs.append(encode(pl.col(col), self.vocab[f"{tc.kind}.{col}"]).alias(col))
        for col in tc.sequence:
            tokens = idx[col].str.split(tc.sequence_sep).explode()
            v = self.vocab[f"{tc.kind}.{col}"] = build_vocab(tokens.filter(tokens != ""))
            exprs.append(pl.col(col).str.split(tc.sequence_sep).list.eval(
                pl.element().replace_strict(v["value"], v["index"], default=0, return_dtype=pl.Int32)).alias(col))
        exprs += [pl.col(c).fill_null("").alias(c) for c in tc.text if c not in (*tc.categorical, *tc.sequence)]
        out = idx.select(exprs)
        if tc.numeric:
            out = out.with_columns(self._numeric(tc, idx, written))
        ids_without_row = key_vocab.height - idx.height
        if ids_without_row:
            self.notes.append(f"{ids_without_row} {tc.key} values of the interactions have no row in the {tc.kind} "
                              f"table: their features are the unknown index (categorical) or missing (numeric).")
        self.report.setdefault("side_tables", {})[tc.kind] = {
            "rows": raw.height, "rows_without_interactions": unknown, "ids_without_row": ids_without_row,
            "features": tc.features}
        return out

    def collect_liked(self) -> None:
        """The part's liked training rows (user, item indices), kept for `content: {align: cooccurrence}` only."""
        if self.cfg.content.align == "none" or self.cfg.items is None:
            return
        liked = self.df.filter((pl.col("split_code") == TRAIN) & ~pl.col("sampled") & (pl.col("label") > 0))
        self.liked.append((liked["user"].to_numpy(), liked["item"].to_numpy()))

    def embed_content(self, out: Path, previous: Path | None) -> None:
        """content/<kind>.npy of the users' and items' text, image and vector columns (data/content.py)."""
        for tc in (self.cfg.users, self.cfg.items):
            if tc is None:
                continue
            n_index = self.vocab[tc.key].height + 1
            c = self.cfg.content
            got = table_content(tc, self.indexed_tables[tc.kind], n_index, previous=previous, out=out,
                                embed_text=c.embed_text, text_encoder=c.text_encoder, text_dims=c.text_dims,
                                quiet=self.quiet)
            if got is None:
                continue
            matrix, report = got
            if tc.kind == "items" and c.align == "cooccurrence":
                matrix = self._aligned(matrix, report)
            out.mkdir(exist_ok=True)
            np.save(out / f"{tc.kind}.npy", matrix)
            self.content_report[tc.kind] = report
            for block in report["blocks"]:
                if block.get("unreadable"):
                    self.notes.append(f"{block['unreadable']} {tc.kind} images of column {block['columns'][0]!r} "
                                      f"could not be read (first: {block['unreadable_first'][0]}); their image "
                                      "vectors are zero. See the manifest's content report.")

    def _aligned(self, matrix: np.ndarray, report: dict[str, Any]) -> np.ndarray:
        """The items' content aligned to the training split's co-occurrence (data/content.py), its report added
        to the content report; the content as it was, with a note saying why, where nothing could be aligned."""
        user = np.concatenate([u for u, _ in self.liked]) if self.liked else np.zeros(0, dtype=np.int64)
        item = np.concatenate([i for _, i in self.liked]) if self.liked else np.zeros(0, dtype=np.int64)
        aligned, rep = align_to_cooccurrence(matrix, item, user)
        report["aligned"] = rep
        if aligned is None:
            self.notes.append(f"content.align: {rep['result']}.")
            return matrix
        report["dims"] = int(aligned.shape[1])
        return aligned

    def _numeric(self, tc: TableConfig, idx: pl.DataFrame, written: Path) -> list[pl.Series]:
        values = idx.select(float32_number(pl.col(c)).alias(c) for c in tc.numeric)
        for c in tc.numeric:
            bad = idx.filter(pl.col(c).is_not_null() & values[c].is_null())
            if bad.height:
                raise DataError(f"{location(tc.path, tc.format, int(bad[LINE][0]))}, column '{c}': value "
                                f"{bad[c][0]!r} is not a finite number within float32's range "
                                f"({such_rows(bad.height)}). Fix it (an empty cell is a missing value, filled as "
                                "cleaning.numeric says), or list the column as categorical.")
        x = values.to_numpy().astype(np.float64)
        if tc.kind == "scenarios":
            fit_mask = np.ones(len(x), dtype=bool)
        else:
            col = "user" if tc.kind == "users" else "item"
            train_ids = pl.scan_parquet(written / "interactions.parquet").filter(pl.col("split") == "train").select(
                pl.col(col).unique()).collect(engine="streaming")[col].to_numpy()
            fit_mask = np.isin(idx["index"].to_numpy(), train_ids)
        if not fit_mask.any():
            raise DataError(f"The {tc.kind} table has no row for any training {tc.kind[:-1]}: its numeric "
                            "features cannot be fitted.")
        pre = NumericPreprocessor(self.cfg.cleaning.numeric).fit(x[fit_mask])
        y = pre.transform(x)
        self.report.setdefault("numeric", {})[tc.kind] = {
            "columns": tc.numeric, "fitted_on_rows": int(fit_mask.sum()), "fitted_on": "training entities only",
            "missing_filled": {c: int(n) for c, n in zip(tc.numeric, np.isnan(x).sum(axis=0), strict=True)},
            "values_clipped": pre.n_clipped_, **pre.state(), "config": self.cfg.cleaning.numeric.__dict__}
        return [pl.Series(c, y[:, j].astype(np.float32)) for j, c in enumerate(tc.numeric)]

    # -- write --------------------------------------------------------------------------------------------
    def part_frames(self) -> tuple[pl.DataFrame, pl.DataFrame]:
        """The part's interactions as written (row, ids, label, split, window, context) and its history events."""
        df = self.df
        context = [c for c in df.columns if c not in _INTERNAL]
        inter = df.select(
            pl.col("row").cast(pl.Int64), pl.col("user"), pl.col("item"), pl.col("scenario_idx").alias("scenario"),
            "timestamp", pl.col("label").cast(pl.Float32), pl.col("label_value").cast(pl.Float32), "split", "sampled",
            "hist_start", "hist_end", *([pl.col("conversion").cast(pl.Float32)] if "conversion" in df.columns else []),
            *context,
        )
        ev = self.events
        events = pl.DataFrame({"user": ev.user, "timestamp": ev.ts, "item": ev.item, "scenario": ev.scenario,
                               "label": ev.label, "value": ev.value, "row": ev.row})
        return inter, events

    def write(self, out: Path, tables: dict[str, pl.DataFrame], seconds: float) -> dict[str, Any]:
        """The vocabularies (with training counts), side tables and manifest, counted from the interactions
        written (a streaming scan: the rows are not in memory again)."""
        (out / "vocab").mkdir(parents=True)
        rows = pl.scan_parquet(out / "interactions.parquet")
        train = rows.filter(pl.col("split") == "train")
        counts = {name: train.group_by(col).len().rename({col: "index"}).collect(engine="streaming")
                  for name, col in (("user_id", "user"), ("item_id", "item"), ("scenario", "scenario"))}
        if "bucket" in self.vocab["user_id"].columns:
            self.hashing_report = collisions(self.vocab["user_id"], counts["user_id"], self.cfg.hashing.users)
            self.notes.append(f"User ids hashed into {self.cfg.hashing.users:,} rows: "
                              f"{self.hashing_report['share_of_ids']:.2%} of the users share theirs with another "
                              f"user ({self.hashing_report['share_of_training_rows']:.2%} of the training rows).")
        for name, vocab in self.vocab.items():
            if name in counts:
                vocab = vocab.join(counts[name].rename({"len": "train_count"}), on="index", how="left").with_columns(
                    pl.col("train_count").fill_null(0).cast(pl.Int64))
            vocab.write_parquet(out / "vocab" / f"{name}.parquet")
        for kind, table in tables.items():
            table.write_parquet(out / f"{kind}.parquet")
        manifest = self._manifest(rows, seconds, sorted(tables))
        (out / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str) + "\n")
        return manifest

    def _manifest(self, inter: pl.LazyFrame, seconds: float, tables: list[str]) -> dict[str, Any]:
        from mistrec import __version__

        cfg = self.cfg
        # the columns the counts read, the scenario by name (an Enum: a code a row, not a string)
        names = self.vocab["scenario"]
        named = inter.select(pl.col("scenario").replace_strict(names["index"], names["value"],
                                                               return_dtype=pl.Enum(names["value"])),
                             "user", "item", "label", "timestamp", "split", "sampled")
        real = named.filter(~pl.col("sampled"))
        by_split = {s: scenario_counts(real.filter(pl.col("split") == s), user="user", item="item")
                    for s in ("train", "valid", "test")}
        if by_split["train"]["ALL"]["rows"] == 0:
            raise DataError(f"Protocol '{self.protocol.name}' left no training rows: check its options or the "
                            "data's splits.")
        for name in ("valid", "test"):
            if by_split[name]["ALL"]["rows"] == 0:
                self.notes.append(f"The {name} split is empty under protocol '{self.protocol.name}'.")
        if self.neg_facts is not None and self.neg_facts["unfilled"]:
            self.notes.append(f"{self.neg_facts['unfilled']} negatives could not be drawn: those users' positives "
                              "cover their scenario's item pool.")
        hs = self.hist_sums
        hist_facts = {"length": self.length, "positives_only": self.cfg.history.positives_only, "events": hs["events"],
                      "mean_length": round(hs["length"] / hs["samples"], 3) if hs["samples"] else 0.0,
                      "samples_with_empty_history": hs["empty"],
                      "rule": "the user's last L training events strictly before the sample's time, across all "
                              "scenarios"}
        self.report["protocol_excluded_rows"] = self.excluded
        sources = []
        for i, src in enumerate(cfg.interactions):
            kept = self.source_rows.filter(pl.col(SOURCE) == i)["len"]
            sources.append({"name": src.name, "path": str(src.path), "format": src.format,
                            **source_fingerprint(src.path, src.format, src.store),
                            "rows_valid": int(kept[0]) if kept.len() else 0})
        protocol = self.protocol.describe()
        fp = hashlib.sha256(json.dumps([[s["sha256"] for s in sources], cfg.raw, protocol, self.length],
                                       sort_keys=True, default=str).encode()).hexdigest()[:16]
        return {
            "schema_version": SCHEMA_VERSION,
            "mistrec_version": __version__,
            "name": cfg.name,
            "fingerprint": fp,
            "created_seconds": round(seconds, 3),
            "config": cfg.raw,
            "sources": sources,
            "label": (cfg.interactions[0].label or cfg.label).describe(),
            "implicit": cfg.implicit,
            "tasks": ["click", "conversion"] if "conversion" in inter.collect_schema().names() else ["click"],
            "timestamp": {"unit": cfg.timestamp.unit, "from_file_order": self.from_file_order},
            "scenarios": self.scenario_names,
            "rows_read": self.rows_read,
            "counts": {
                "before_cleaning": self.counts_before,
                "after_cleaning": scenario_counts(real, user="user", item="item"),
                "by_split": by_split,
            },
            "cleaning": self.report,
            "protocol": {**protocol, **self.facts},
            "history": hist_facts,
            "negatives": None if self.neg_facts is None else {**self.neg_facts, "by_split": {
                s: int(n) for s, n in named.filter(pl.col("sampled")).group_by("split").len().collect(
                    engine="streaming").iter_rows()}},
            "leakage_checks": self.checks,
            "side_tables": tables,
            "content": self.content_report,
            "hashing": self.hashing_report,
            "shards": self.shards,
            "vocab_sizes": {k: v.height + 1 for k, v in self.vocab.items()},
            "notes": list(dict.fromkeys(self.notes)),  # a note each part made once
            "warnings": _warnings(real, cfg.implicit, self.from_file_order),
        }


_YEAR_1990 = 631152000  # 1990-01-01 00:00:00 UTC


def _date(t: int) -> str:
    try:
        return f"{datetime.fromtimestamp(t, tz=UTC):%Y-%m-%d}"
    except (ValueError, OverflowError, OSError):  # beyond what a date can say (year 10000 and on)
        return f"{t:,} s after 1970"


def _warnings(real: pl.LazyFrame, implicit: bool, from_file_order: bool) -> list[str]:
    """What looks wrong in the prepared rows, one line each: dates that suggest a wrong timestamp unit, scenarios
    too small for their own metrics or with one label value (AUC undefined there)."""
    out = []
    span = real.select(pl.len().alias("n"), pl.col("timestamp").min().alias("lo"),
                       pl.col("timestamp").max().alias("hi")).collect(engine="streaming").row(0, named=True)
    if not from_file_order and span["n"]:
        lo, hi = int(span["lo"]), int(span["hi"])
        after_next_year = datetime(datetime.now(tz=UTC).year + 2, 1, 1, tzinfo=UTC).timestamp()
        if lo < _YEAR_1990 or hi >= after_next_year:
            out.append(f"timestamps run from {_date(lo)} to {_date(hi)}: dates before 1990 or after next "
                       "year suggest a wrong timestamp unit (seconds declared as ms puts every date in 1970, and "
                       "merges events that were apart); check timestamp.unit.")
    counts = real.group_by("scenario").agg(pl.len().alias("rows"), pl.col("label").mean().alias("rate")).collect(
        engine="streaming")
    for scenario, rows, rate in counts.sort("scenario").iter_rows():
        if rows < 50:
            out.append(f"scenario {scenario} has {rows} rows: too few for metrics of its own.")
        if not implicit and rate in (0.0, 1.0):
            out.append(f"scenario {scenario}: every label is {int(rate)}: its AUC and gAUC are undefined.")
    return out


_INTERNAL = {"row", "user", "item", "scenario_idx", "timestamp", "label", "label_value", "split", "split_code",
             "sampled", "hist_start", "hist_end", "conversion", "user_id", "item_id", "item_scope", "scenario", SOURCE,
             LINE, ITEM_SCOPED}

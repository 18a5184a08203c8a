"""The event store: what users did with what they were shown, through SQLAlchemy 2. `mistrec serve` writes it;
`mistrec prepare` reads it as an interactions source (`interactions: [{store: URL}]`), to retrain on feedback.

SQLite in WAL mode is the embedded default (readers never wait for the writer), PostgreSQL the production choice
(`postgresql+psycopg://...`). One table of events, keyed by the client's `event_id`, so that a retried batch is
stored once; a schema-version table says which layout a store has: a store of another version is refused with
the two versions named, never read as if it were this one.

    store = EventStore("sqlite:///events.db")
    store.add([Event("e1", user="u1", item="i9", scenario="home_feed", type="click", time=1767225600.0)])
    store.history("u1", limit=50)       # the user's events, oldest first, the newest `limit`
    store.frame()                       # every event as a polars DataFrame, in arrival order (for prepare)
"""

from __future__ import annotations

import math
import time as _time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

import polars as pl
from sqlalchemy import (
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    event,
    func,
    inspect,
    select,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine

from mistrec.errors import ArtifactError, ConfigError

__all__ = ["EVENT_TYPES", "SCHEMA_VERSION", "Event", "EventStore", "event_label"]

SCHEMA_VERSION = 1
EventType = Literal["impression", "click", "conversion", "rating"]
EVENT_TYPES: tuple[str, ...] = get_args(EventType)
MAX_ID = 200  # characters of an id (event, user, item, scenario)

_metadata = MetaData()
_events = Table(
    "mistrec_events", _metadata,
    Column("event_id", String(MAX_ID), primary_key=True),
    # arrival order, a tie-break for equal times (two concurrent writers may share a value: only an order hint)
    Column("seq", Integer, nullable=False, index=True),
    Column("user_id", String(MAX_ID), nullable=False, index=True),
    Column("item_id", String(MAX_ID), nullable=False),
    Column("scenario", String(MAX_ID), nullable=False),
    Column("type", String(16), nullable=False),
    Column("value", Float, nullable=True),
    Column("time", Float, nullable=False),  # seconds since 1970 (UTC)
)
_schema = Table("mistrec_schema", _metadata, Column("version", Integer, nullable=False))


@dataclass(frozen=True)
class Event:
    """One logged action: a user met (impression), clicked, converted on or rated an item in a scenario."""

    event_id: str
    user: str
    item: str
    scenario: str
    type: str
    time: float
    value: float | None = None

    @property
    def label(self) -> float:
        """The label the event's history token carries and retraining learns (`event_label`)."""
        return event_label(self.type, self.value)

    def check(self) -> None:
        """Refuses what must not enter a history, naming the field."""
        for name in ("event_id", "user", "item", "scenario"):
            text = getattr(self, name)
            if not isinstance(text, str) or not text or len(text) > MAX_ID:
                raise ConfigError(f"event {self.event_id!r}: '{name}' must be a non-empty string of at most "
                                  f"{MAX_ID} characters. Got {text!r}.")
        if self.type not in EVENT_TYPES:
            raise ConfigError(f"event {self.event_id!r}: 'type' must be one of {', '.join(EVENT_TYPES)}. "
                              f"Got {self.type!r}.")
        if not isinstance(self.time, int | float) or not math.isfinite(self.time):
            raise ConfigError(f"event {self.event_id!r}: 'time' must be a finite number of seconds. Got {self.time!r}.")
        if self.value is not None and (not isinstance(self.value, int | float) or not math.isfinite(self.value)):
            raise ConfigError(f"event {self.event_id!r}: 'value' must be a finite number. Got {self.value!r}.")


class EventStore:
    """Logged events by user, in a SQLAlchemy database (`url`)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = create_engine(url)
        dialect = self.engine.dialect.name
        if dialect == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
            self._insert: Any = sqlite_insert
        elif dialect == "postgresql":
            self._insert = postgresql_insert
        else:
            raise ConfigError(f"--db {url}: the event store runs on SQLite (sqlite:///FILE) or PostgreSQL "
                              f"(postgresql+psycopg://USER@HOST/DB), not {dialect}.")
        self._open()

    def _open(self) -> None:
        tables = set(inspect(self.engine).get_table_names())
        if "mistrec_schema" not in tables:
            if "mistrec_events" in tables:
                raise ArtifactError(f"{self.url} has mistrec events but no schema version: it was not written by "
                                    "this mistrec. Give another --db, or move that store away.")
            _metadata.create_all(self.engine)
            with self.engine.begin() as conn:
                conn.execute(_schema.insert().values(version=SCHEMA_VERSION))
            return
        with self.engine.connect() as conn:
            versions = [row[0] for row in conn.execute(select(_schema.c.version))]
        if versions != [SCHEMA_VERSION]:
            raise ArtifactError(f"{self.url} holds event store schema {versions or 'none'}; this mistrec reads "
                                f"version {SCHEMA_VERSION}. Use the mistrec that wrote it, or start a new store.")

    def add(self, events: Sequence[Event]) -> int:
        """Stores the events whose id is new, in one transaction (a retried batch is stored once); returns how many
        were new. Every event is checked before any is written."""
        for e in events:
            e.check()
        ids = [e.event_id for e in events]
        if len(set(ids)) != len(ids):
            raise ConfigError("a batch repeats an event_id: each event needs its own.")
        if not events:
            return 0
        # INSERT ... ON CONFLICT (event_id) DO NOTHING RETURNING event_id: a known id is skipped by the database
        # itself, so two writers racing with the same new id (a client retrying through another worker) store it
        # once and neither fails; the ids returned are the ones this call stored.
        insert = self._insert(_events).on_conflict_do_nothing(index_elements=["event_id"])
        with self.engine.begin() as conn:
            start = conn.execute(select(_events.c.seq).order_by(_events.c.seq.desc()).limit(1)).scalar() or 0
            stored = conn.execute(insert.returning(_events.c.event_id),
                                  [_row(e, start + i + 1) for i, e in enumerate(events)]).scalars().all()
        return len(stored)

    def history(self, user: str, limit: int = 50) -> list[Event]:
        """The user's latest `limit` events, oldest first (ties in time in arrival order)."""
        query = (select(_events).where(_events.c.user_id == user)
                 .order_by(_events.c.time.desc(), _events.c.seq.desc()).limit(limit))
        with self.engine.connect() as conn:
            rows = list(conn.execute(query).mappings())
        return [Event(event_id=r["event_id"], user=r["user_id"], item=r["item_id"], scenario=r["scenario"],
                      type=r["type"], time=r["time"], value=r["value"]) for r in reversed(rows)]

    def frame(self) -> pl.DataFrame:
        """Every event, in arrival order: event_id, user_id, item_id, scenario, type, value, time (seconds since
        1970, UTC), label (`Event.label`) and seq (the arrival number)."""
        query = select(_events).order_by(_events.c.seq, _events.c.event_id)
        with self.engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(query).mappings()]
        schema = {"event_id": pl.String, "seq": pl.Int64, "user_id": pl.String, "item_id": pl.String,
                  "scenario": pl.String, "type": pl.String, "value": pl.Float64, "time": pl.Float64}
        df = pl.DataFrame(rows, schema=schema)
        return df.with_columns(pl.Series("label", [event_label(r["type"], r["value"]) for r in rows],
                                         dtype=pl.Float64))

    def count(self) -> int:
        """Events stored."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(_events)).scalar() or 0)

    def close(self) -> None:
        self.engine.dispose()


def event_label(kind: str, value: float | None) -> float:
    """The one rule for a logged event's label: clicks and conversions 1, impressions 0, a rating 1 above 3."""
    if kind == "rating":
        return 1.0 if value is not None and value > 3 else 0.0
    return 0.0 if kind == "impression" else 1.0


def now() -> float:
    """Seconds since 1970 (UTC): the time of an event that does not say."""
    return _time.time()


def _row(e: Event, seq: int) -> dict[str, Any]:
    return {"event_id": e.event_id, "seq": seq, "user_id": e.user, "item_id": e.item, "scenario": e.scenario,
            "type": e.type, "value": e.value, "time": float(e.time)}


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers do not wait for the writer
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()

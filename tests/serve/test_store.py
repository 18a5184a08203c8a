"""The event store, on SQLite and on PostgreSQL (a throw-away cluster, tests/postgres.py): idempotent batches,
concurrent writers of the same ids, histories newest last, WAL on SQLite, versioned schema refused when foreign,
every field checked before anything is written."""

from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from mistrec.data.store import Event, EventStore
from mistrec.errors import ArtifactError, ConfigError
from tests.serve.conftest import execute


def _e(event_id: str, user: str = "u1", scenario: str = "home_feed", time: float = 100.0, **kw: object) -> Event:
    return Event(event_id=event_id, user=user, item=kw.pop("item", "i1"), scenario=scenario,  # type: ignore[arg-type]
                 type=kw.pop("type", "click"), time=time, **kw)  # type: ignore[arg-type]


def test_a_retried_batch_is_stored_once_and_histories_come_oldest_first(store_url: str) -> None:
    store = EventStore(store_url)
    batch = [_e("a", time=300.0, item="late"), _e("b", time=100.0, item="early"), _e("c", user="u2")]
    assert store.add(batch) == 3
    assert store.add(batch) == 0 and store.count() == 3  # the retry stores nothing new
    store.add([_e("d", time=300.0, item="same time, later", scenario="vr_showroom")])
    assert [e.item for e in store.history("u1")] == ["early", "late", "same time, later"]
    assert [e.item for e in store.history("u1", limit=2)] == ["late", "same time, later"]  # the newest 2
    assert store.history("nobody") == []
    store.close()
    reopened = EventStore(store_url)  # the same store, opened again
    assert reopened.count() == 4 and reopened.history("u2")[0].event_id == "c"


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    EventStore(f"sqlite:///{tmp_path / 'events.db'}").add([_e("a")])
    with sqlite3.connect(tmp_path / "events.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.parametrize(("event", "message"), [
    (_e("x", type="like"), "'type' must be one of impression, click, conversion, rating. Got 'like'"),
    (_e("x", user=""), "'user' must be a non-empty string"),
    (_e("x", time=float("nan")), "'time' must be a finite number of seconds"),
    (_e("x", value=float("inf")), "'value' must be a finite number"),
    (_e("x" * 201), "'event_id' must be a non-empty string of at most 200 characters"),
])
def test_a_bad_event_is_named_and_nothing_of_its_batch_is_written(event: Event, message: str, store_url: str) -> None:
    store = EventStore(store_url)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        store.add([_e("good"), event])
    assert store.count() == 0


def test_a_batch_that_repeats_an_id_is_refused(store_url: str) -> None:
    store = EventStore(store_url)
    with pytest.raises(ConfigError, match="repeats an event_id"):
        store.add([_e("a"), _e("a", item="other")])


def test_a_store_of_another_schema_version_is_refused(store_url: str) -> None:
    EventStore(store_url).add([_e("a")])
    execute(store_url, "UPDATE mistrec_schema SET version = 99")
    with pytest.raises(ArtifactError, match=r"holds event store schema \[99\]; this mistrec reads version 1"):
        EventStore(store_url)
    execute(store_url, "DROP TABLE mistrec_schema")
    with pytest.raises(ArtifactError, match="has mistrec events but no schema version"):
        EventStore(store_url)


def test_concurrent_writers_of_the_same_ids_store_each_event_once(store_url: str) -> None:
    """Eight threads post overlapping batches at once (as clients retrying through several workers would): no
    error, every event stored once, and the counts of new events returned add up to the events stored."""
    store = EventStore(store_url)
    batches = [[_e(f"e{j}", user=f"u{j % 5}", time=float(j)) for j in range(i * 10, i * 10 + 40)] for i in range(8)]
    with ThreadPoolExecutor(8) as pool:
        new = list(pool.map(store.add, batches))
    assert store.count() == 110 and sum(new) == 110
    assert sorted(e.event_id for u in range(5) for e in store.history(f"u{u}", limit=100)) == \
        sorted(f"e{j}" for j in range(110))

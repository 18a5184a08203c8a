"""The served run, and the event-store URL: every store test runs on SQLite and on a throw-away PostgreSQL
cluster."""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from sqlalchemy import create_engine, text

from mistrec.eval.fit import fit_run
from mistrec.train import TrainConfig
from tests.conftest import prepared_synthetic
from tests.postgres import Unavailable, throwaway_cluster

_databases = itertools.count()


@pytest.fixture(scope="session")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small mist run on the synthetic platform, served by the app and page tests."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("serve")
    prepared_synthetic(root, n_users=150, events_per_user=25, seed=6)
    fit_run(root / "prepared", "mist", root / "run", model_values={"embedding_dim": 8},
            train_cfg=TrainConfig(epochs=2, batch_size=512, seed=1), quiet=True)
    return root / "run"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The cluster's URL (its `postgres` database); started once per session."""
    try:
        with throwaway_cluster() as url:
            yield url
    except Unavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL could not be started on CI: {exc}")
        print(f"\nPostgreSQL store tests skipped: {exc}", file=sys.stderr)
        pytest.skip(f"no PostgreSQL server here: {exc}")


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty store: a SQLite file, or a new database in the PostgreSQL cluster."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'events.db'}"
    server: str = request.getfixturevalue("postgres_server")
    name = f"store_{os.getpid()}_{next(_databases)}"
    engine = create_engine(server, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return server.rsplit("/", 1)[0] + f"/{name}"


def execute(url: str, statement: str) -> None:
    """Runs one SQL statement on a store's database (to damage it on purpose)."""
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(statement))
    engine.dispose()

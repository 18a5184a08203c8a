"""Shared fixtures: tiny datasets written on the fly, and the path to ../shared/data for integration tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

# CI lays shared/ beside the clone; MISTREC_SHARED_DATA points elsewhere when it is not there.
SHARED_DATA = Path(os.environ.get("MISTREC_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data; CI has it, so there a missing folder is a failure, elsewhere a skip."""
    if not SHARED_DATA.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"{SHARED_DATA} is missing on CI: the integration tests read real data from it.")
        pytest.skip(f"{SHARED_DATA} not found (integration data)")
    return SHARED_DATA


def chromium_path() -> str:
    """Debian's Chromium for the browser tests (the report, the service's page): `make test` installs it as root;
    on CI a missing one is a failure, elsewhere a skip."""
    import shutil

    path = os.environ.get("MISTREC_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing on CI: `make test` installs Debian's chromium package.")
        pytest.skip("no Chromium here (apt-get install chromium)")
    return path


@contextmanager
def headless_page(width: int, height: int) -> Iterator[tuple[Any, list[str]]]:
    """A page in headless Chromium (through Playwright) and the list its console errors and warnings, page errors
    and failed requests are collected in: the browser tests assert it is empty at the end."""
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
            yield page, problems
        finally:
            browser.close()


def write_yaml(path: Path, cfg: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


@pytest.fixture
def tiny(tmp_path: Path) -> dict[str, Any]:
    """A two-source dataset (comma csv with header, positional tsv), users and items tables.

    Users u1..u4 act in home and search; ratings > 3 are positives.
    """
    (tmp_path / "home.csv").write_text(
        "uid,iid,ts,rating\n"
        "u1,a,100,5\nu1,b,200,2\nu1,c,300,4\nu1,d,400,5\nu1,e,500,1\n"
        "u2,a,110,4\nu2,c,210,5\nu2,f,310,3\nu2,b,410,4\n"
        "u3,b,120,5\nu3,d,220,2\nu3,e,320,4\nu3,a,420,5\n"
        "u4,f,130,1\nu4,a,230,5\nu4,c,330,4\n"
    )
    (tmp_path / "search.tsv").write_text(
        "u1\tq1\t4\t150\tsearch\nu1\tq2\t2\t350\tsearch\nu2\tq1\t5\t250\tsearch\n"
        "u3\tq3\t5\t260\tsearch\nu4\tq2\t4\t240\tsearch\nu4\tq3\t1\t340\tsearch\n"
    )
    (tmp_path / "users.csv").write_text("uid,age,gender,spend\nu1,18,F,10\nu2,25,M,\nu3,40,F,30\nu4,31,M,1000\n")
    (tmp_path / "items.csv").write_text(
        "iid,genre,price,title\na,Comedy|Drama,1.0,A film\nb,Action,2.0,B film\nc,Drama,3.0,C film\n"
        "d,Action|Comedy,4.0,D film\ne,Comedy,5.0,E film\nf,Drama,,F film\n"
        "q1,Action,1.5,Q one\nq2,Comedy,2.5,Q two\nq3,Drama,3.5,Q three\n"
    )
    cfg: dict[str, Any] = {
        "name": "tiny",
        "interactions": [
            {"path": "home.csv", "format": "csv", "sep": ",", "header": True, "scenario": "home",
             "columns": {"user_id": "uid", "item_id": "iid", "timestamp": "ts", "rating": "rating"}},
            {"path": "search.tsv", "format": "csv", "sep": "\t", "header": False,
             "columns": {"user_id": 0, "item_id": 1, "rating": 2, "timestamp": 3, "scenario": 4}},
        ],
        "label": {"column": "rating", "rule": "> 3"},
        "timestamp": {"unit": "s"},
        "users": {"path": "users.csv", "columns": {"user_id": "uid"}, "categorical": ["gender"],
                  "numeric": ["spend"]},
        "items": {"path": "items.csv", "columns": {"item_id": "iid"}, "sequence": ["genre"],
                  "sequence_sep": "|", "numeric": ["price"], "text": ["title"]},
        "history": {"length": 3},
    }
    return {"dir": tmp_path, "cfg": cfg, "yaml": write_yaml(tmp_path / "dataset.yaml", cfg)}


def prepared_synthetic(root: Path, protocol: str = "temporal", history_length: int = 10, protocol_seed: int = 2022,
                       **synthetic: Any) -> Path:
    """The synthetic platform (SyntheticConfig(**synthetic)) written under root/raw and prepared to
    root/prepared with the given protocol; returns the prepared directory."""
    from mistrec.data import ProtocolConfig, SyntheticConfig, generate, load_dataset_config, prepare

    yaml_path = generate(SyntheticConfig(**synthetic)).write(root / "raw")
    prepare(load_dataset_config(yaml_path), root / "prepared",
            protocol=ProtocolConfig(name=protocol, seed=protocol_seed), history_length=history_length, quiet=True)
    return root / "prepared"


def prepared_implicit(root: Path, n_users: int, b_items: range, per_user: int | None = 6, per_positive: int = 1,
                      protocol: str = "random", history_length: int | None = None) -> Path:
    """Implicit data (every row a positive; negatives sampled when prepared) in two scenarios, "a" over items 0-29
    and "b" over `b_items`, written under root and prepared to root/out; returns the prepared directory.
    `per_user`: each user's events per scenario, or None for 1-11 at random with random integer times (a temporal
    protocol then gives users of every activity in each scenario)."""
    import numpy as np

    from mistrec.data import load_dataset_config
    from mistrec.data import prepare as prepare_data

    rng = np.random.default_rng(0)

    def item(s: str) -> int:
        return int(rng.integers(0, 30)) if s == "a" else int(rng.choice(b_items))

    timed = per_user is None
    lines = ["u,i,s" + (",t" if timed else "")]
    for u in range(n_users):
        for s in ("a", "b"):
            for _ in range(int(rng.integers(1, 12)) if per_user is None else per_user):
                lines.append(f"u{u},{item(s)},{s}" + (f",{rng.integers(0, 10**6)}" if timed else ""))
    (root / "x.csv").write_text("\n".join(lines) + "\n")
    columns = {"user_id": "u", "item_id": "i", "scenario": "s", **({"timestamp": "t"} if timed else {})}
    split = {"valid": 0.2, "test": 0.2} if protocol == "temporal" else {"valid": 0.1, "test": 0.1}
    cfg = {"name": "implicit", "label": {"implicit": True}, "negatives": {"per_positive": per_positive},
           "interactions": [{"path": "x.csv", "columns": columns}], "protocol": {"name": protocol, **split}}
    write_yaml(root / "x.yaml", cfg)
    prepare_data(load_dataset_config(root / "x.yaml"), root / "out", history_length=history_length, quiet=True)
    return root / "out"


def small_run(prepared: Path, model: str, out: Path, epochs: int = 2, batch_size: int = 512) -> Path:
    """A run of `model` with 8-dimensional embeddings trained briefly (seed 1, 1 thread) on `prepared`, written to
    `out`: the trained run a test of what reads runs (ranking, indexes, export, serving) needs."""
    import torch

    from mistrec.eval.fit import fit_run
    from mistrec.train import TrainConfig

    torch.set_num_threads(1)
    fit_run(prepared, model, out, model_values={"embedding_dim": 8},
            train_cfg=TrainConfig(epochs=epochs, batch_size=batch_size, seed=1), quiet=True)
    return out

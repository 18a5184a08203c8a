"""Recipes: dataset YAMLs for public datasets, over the user's own local copy (nothing is downloaded).

Each recipe is a small function `(data, out_dir, **options) -> dict` that looks at the user's files
and returns the dataset configuration; `write_recipe` saves it as YAML next to any helper file the
recipe derived (the user's data directory is never written to). See docs/recipes.md for the list,
the expected files and the scenario definitions.

Example:
    >>> path = write_recipe("ml-1m-age", Path("../shared/data/ml-1m"), Path("/tmp/ml1m.yaml"))  # doctest: +SKIP
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mistrec.errors import ConfigError, DataError

__all__ = ["GENRE_SHELVES", "ML_AGE_GROUPS", "RECIPES", "Recipe", "recipe_config", "write_recipe"]

# Scenario-Wise-Rec's MovieLens setting: age code {1, 18} -> 0, {25} -> 1, {35, 45, 50, 56} -> 2.
ML_AGE_GROUPS = {"1": "0", "18": "0", "25": "1", "35": "2", "45": "2", "50": "2", "56": "2"}
# Genre shelves: the item's first listed genre decides its shelf, so one user acts on several shelves.
GENRE_SHELVES = {
    "Action": "action", "Adventure": "action", "War": "action", "Western": "action", "Sci-Fi": "action",
    "Fantasy": "action", "Comedy": "comedy", "Romance": "comedy", "Musical": "comedy", "Drama": "drama",
    "Documentary": "drama", "Crime": "thriller", "Thriller": "thriller", "Mystery": "thriller",
    "Film-Noir": "thriller", "Horror": "thriller", "Animation": "family", "Children's": "family",
    "unknown": "other",
}
# Impression logs without timestamps or impression ids: two identical rows are two impressions, as the
# published benchmarks count them, so de-duplication is off for those recipes.
NO_DEDUP: dict[str, Any] = {"deduplicate": False}
ML100K_GENRES = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
                 "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
                 "War", "Western"]


@dataclass(frozen=True)
class Recipe:
    """A known public dataset's YAML builder (`mistrec prepare --recipe NAME`), with a one-line description."""

    description: str
    build: Callable[..., dict[str, Any]]


def _need(path: Path, what: str) -> Path:
    if not path.exists():
        raise DataError(f"{path} not found: {what}.")
    return path


def _ml_recbole(name: str, scenario: str) -> Callable[..., dict[str, Any]]:
    def build(data: Path, out_dir: Path) -> dict[str, Any]:
        inter = _need(data / f"{name}.inter",
                      f"the {name} recipe expects RecBole atomic files {name}.inter/.user/.item")
        items_genre = "genre" if name == "ml-1m" else "class"
        cfg: dict[str, Any] = {
            "name": f"{name}-{scenario}",
            "interactions": [{"path": str(inter.resolve()), "format": "recbole",
                              "columns": {"user_id": "user_id", "item_id": "item_id", "rating": "rating",
                                          "timestamp": "timestamp"}}],
            "label": {"column": "rating", "rule": "> 3"},
            "timestamp": {"unit": "s"},
            "users": {"path": str(_need(data / f"{name}.user", "user file").resolve()), "format": "recbole",
                      "columns": {"user_id": "user_id"}, "categorical": ["age", "gender", "occupation", "zip_code"]},
            "items": {"path": str(_need(data / f"{name}.item", "item file").resolve()), "format": "recbole",
                      "columns": {"item_id": "item_id"}, "sequence": [items_genre], "text": ["movie_title"]},
        }
        if scenario == "age":
            cfg["scenario_from"] = ({"table": "users", "column": "age", "map": ML_AGE_GROUPS} if name == "ml-1m"
                                    else {"table": "users", "column": "age", "bins": [25, 35],
                                          "labels": ["0", "1", "2"]})
        else:
            cfg["scenario_from"] = {"table": "items", "column": items_genre, "token": "first", "map": GENRE_SHELVES}
            cfg["scenarios"] = _genre_shelf_descriptions(out_dir)
        return cfg

    return build


def _ml_grouplens(size: str, scenario: str) -> Callable[..., dict[str, Any]]:
    def build(data: Path, out_dir: Path) -> dict[str, Any]:
        if size == "1m":
            ratings = _need(data / "ratings.dat",
                            "the GroupLens ml-1m recipe expects ratings.dat, users.dat, movies.dat")
            cfg: dict[str, Any] = {
                "name": f"ml-1m-{scenario}",
                "interactions": [{"path": str(ratings.resolve()), "format": "csv", "sep": "::", "header": False,
                                  "columns": {"user_id": 0, "item_id": 1, "rating": 2, "timestamp": 3}}],
                "users": {"path": str(_need(data / "users.dat", "users.dat").resolve()), "format": "csv", "sep": "::",
                          "header": False,
                          "columns": {"user_id": 0, "gender": 1, "age": 2, "occupation": 3, "zip_code": 4},
                          "categorical": ["age", "gender", "occupation", "zip_code"]},
                "items": {"path": str(_need(data / "movies.dat", "movies.dat").resolve()), "format": "csv", "sep": "::",
                          "header": False, "encoding": "latin-1", "columns": {"item_id": 0, "title": 1, "genre": 2},
                          "sequence": ["genre"], "sequence_sep": "|", "text": ["title"]},
            }
            age: dict[str, Any] = {"table": "users", "column": "age", "map": ML_AGE_GROUPS}
            genre: dict[str, Any] = {"table": "items", "column": "genre", "token": "first", "sep": "|",
                                     "map": GENRE_SHELVES}
        else:
            ratings = _need(data / "u.data", "the GroupLens ml-100k recipe expects u.data, u.user, u.item")
            genre_file = _ml100k_genres(_need(data / "u.item", "u.item"), out_dir)
            cfg = {
                "name": f"ml-100k-{scenario}",
                "interactions": [{"path": str(ratings.resolve()), "format": "csv", "sep": "\t", "header": False,
                                  "columns": {"user_id": 0, "item_id": 1, "rating": 2, "timestamp": 3}}],
                "users": {"path": str(_need(data / "u.user", "u.user").resolve()), "format": "csv", "sep": "|",
                          "header": False,
                          "columns": {"user_id": 0, "age": 1, "gender": 2, "occupation": 3, "zip_code": 4},
                          "categorical": ["age", "gender", "occupation", "zip_code"]},
                "items": {"path": str(genre_file.resolve()), "format": "csv", "sep": "\t", "header": True,
                          "columns": {"item_id": "item_id"}, "sequence": ["genre"], "sequence_sep": "|",
                          "text": ["title"]},
            }
            age = {"table": "users", "column": "age", "bins": [25, 35], "labels": ["0", "1", "2"]}
            genre = {"table": "items", "column": "genre", "token": "first", "sep": "|", "map": GENRE_SHELVES}
        cfg["label"] = {"column": "rating", "rule": "> 3"}
        cfg["timestamp"] = {"unit": "s"}
        cfg["scenario_from"] = age if scenario == "age" else genre
        if scenario != "age":
            cfg["scenarios"] = _genre_shelf_descriptions(out_dir)
        return cfg

    return build


def _genre_shelf_descriptions(out_dir: Path) -> dict[str, Any]:
    """Writes genre_shelves.csv next to the YAML: each shelf described by the genres it holds (what a platform
    would write for its shelves), so that a shelf left out of training is read through its description
    (docs/models.md, mist step 6). The catch-all 'other' shelf is left undescribed."""
    import polars as pl

    shelves: dict[str, list[str]] = {}
    for genre, shelf in GENRE_SHELVES.items():
        if shelf != "other":
            shelves.setdefault(shelf, []).append(genre)
    text = [f"{', '.join(g[:-1])} and {g[-1]} films" if len(g) > 1 else f"{g[0]} films" for g in shelves.values()]
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "genre_shelves.csv"
    pl.DataFrame({"scenario": list(shelves), "description": text}).write_csv(path)
    return {"path": str(path.resolve()), "format": "csv", "sep": ",", "header": True,
            "columns": {"scenario": "scenario"}, "text": ["description"]}


def _ml100k_genres(u_item: Path, out_dir: Path) -> Path:
    """u.item keeps genres as 19 0/1 flag columns; derive one '|'-joined genre list per item."""
    import polars as pl

    raw = pl.read_csv(u_item, separator="|", has_header=False, infer_schema=False, quote_char=None,
                      encoding="utf8-lossy")
    if raw.width != 24:
        raise DataError(f"{u_item}: expected 24 '|'-separated columns (id, title, dates, url, 19 genre flags); "
                        f"got {raw.width}.")
    flags = raw.columns[5:]
    genres = pl.concat_list([pl.when(pl.col(c) == "1").then(pl.lit(g)).otherwise(None)
                             for c, g in zip(flags, ML100K_GENRES, strict=True)]).list.drop_nulls().list.join("|")
    out = raw.select(pl.col(raw.columns[0]).alias("item_id"), pl.col(raw.columns[1]).alias("title"),
                     genres.alias("genre"))
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "ml-100k-items-derived.tsv"
    out.write_csv(path, separator="\t")
    return path


def _kuairand(data: Path, out_dir: Path) -> dict[str, Any]:
    files = sorted(data.glob("log_*.csv")) if data.is_dir() else [data]
    if not files:
        raise DataError(f"{data}: no KuaiRand log files (log_*.csv) found.")
    sources = []
    for f in files:
        header = _header(f)
        cols: dict[str, Any] = {"user_id": "user_id", "item_id": "video_id", "label": "is_click", "scenario": "tab"}
        if "time_ms" in header:
            cols["timestamp"] = "time_ms"
        # play_time_ms and the *_stay_time columns are measured after the click: not features (leakage).
        sources.append({"path": str(f.resolve()), "columns": cols, "timestamp": {"unit": "ms"}})
    cfg: dict[str, Any] = {"name": "kuairand", "interactions": sources, "label": {"column": "label"}}
    if not all("timestamp" in s["columns"] for s in sources):
        cfg["cleaning"] = NO_DEDUP
    return cfg


def _aliccp(data: Path, out_dir: Path, scenario_field: str = "301") -> dict[str, Any]:
    sources = []
    for split, pattern in (("train", "*train*.csv"), ("valid", "*val*.csv"), ("test", "*test*.csv")):
        for f in sorted(data.glob(pattern)):
            sources.append({"path": str(f.resolve()), "split": split, "columns": {
                "user_id": "101", "item_id": "205", "scenario": scenario_field, "label": "click",
                "conversion": "purchase", "category": "206", "shop": "207", "brand": "216"}})
    if not sources:
        raise DataError(f"{data}: no Ali-CCP csv files (*train*.csv, *val*.csv, *test*.csv) found.")
    return {"name": f"aliccp-{scenario_field}", "interactions": sources, "label": {"column": "label"},
            "cleaning": NO_DEDUP}


def _aliccp_aread(data: Path, out_dir: Path, scenario_field: str = "domain") -> dict[str, Any]:
    files = sorted(data.glob("*.csv")) if data.is_dir() else [data]
    files = [f for f in files if "_aug" not in f.name]  # the *_aug files hold generated rows
    if not files:
        raise DataError(f"{data}: no AREAD Ali-CCP csv found.")
    return {"name": f"aliccp-aread-{scenario_field}",
            "interactions": [{"path": str(f.resolve()), "columns": {
                "user_id": "userid", "item_id": "itemid", "scenario": scenario_field, "label": "click",
                "conversion": "purchase", "split": "train_tag"}} for f in files],
            "label": {"column": "label"}, "split_values": {"0": "train", "1": "valid", "2": "test"},
            "cleaning": NO_DEDUP}


def _aliexpress(data: Path, out_dir: Path) -> dict[str, Any]:
    files = sorted(data.glob("*.csv")) if data.is_dir() else [data]
    sources = []
    for f in files:
        m = re.search(r"_([A-Z]{2})_", f.name)
        split = "test" if "test" in f.name else "train"
        header = _header(f)
        cols: dict[str, Any] = {"user_id": "search_id", "item_id": "@row", "label": "click",
                                "conversion": "conversion"}
        cols.update({c: c for c in header if c.startswith("categorical_")})
        # AliExpress ships no item id: each row is one impression, numbered by its line; the country of a
        # file is its scenario (the sample files name no country: 'unknown').
        sources.append({"path": str(f.resolve()), "split": split, "scenario": m.group(1) if m else "unknown",
                        "columns": cols, "item_id_scope": "scenario", "name": f.name})
    if not sources:
        raise DataError(f"{data}: no AliExpress csv files found.")
    return {"name": "aliexpress", "interactions": sources, "label": {"column": "label"}, "cleaning": NO_DEDUP}


def _mind(data: Path, out_dir: Path) -> dict[str, Any]:
    f = data if data.is_file() else _need(data / "mind_sample.csv", "the MIND recipe expects the benchmark csv")
    return {"name": "mind", "interactions": [{"path": str(f.resolve()), "columns": {
        "user_id": "User_ID", "item_id": "News_ID", "label": "label", "scenario": "Category",
        "subcategory": "SubCategory"}}], "label": {"column": "label"}, "cleaning": NO_DEDUP}


def _amazon_categories(data: Path, out_dir: Path) -> dict[str, Any]:
    files = sorted(data.glob("*.csv"))
    if not files:
        raise DataError(f"{data}: expected one ratings-only csv per category (item,user,rating,timestamp).")
    return {"name": "amazon-categories", "label": {"column": "rating", "rule": "> 3"},
            "interactions": [{"path": str(f.resolve()), "header": False, "scenario": f.stem,
                              "columns": {"item_id": 0, "user_id": 1, "rating": 2, "timestamp": 3}} for f in files]}


def _amazon_aread(data: Path, out_dir: Path) -> dict[str, Any]:
    f = data if data.is_file() else _need(data / "prepare2train_filter_12month.csv", "the AREAD Amazon csv")
    return {"name": "amazon-aread", "interactions": [{"path": str(f.resolve()), "columns": {
        "user_id": "userid", "item_id": "itemid", "scenario": "domain", "label": "label",
        "timestamp": "timestamp", "brand": "brand", "price": "price"}}], "label": {"column": "label"}}


def _cdr_pair(data: Path, out_dir: Path, pair: str = "", seed: str = "2022") -> dict[str, Any]:
    """A DisenCDR pair X_Y as one multi-scenario dataset (docs/recipes.md): every user's events of both domains
    in one sequence, the held-out event of each domain last, leave-one-out per user and domain."""
    if not pair:
        pairs = sorted(p.name for p in data.iterdir() if p.is_dir() and "_" in p.name)
        raise ConfigError(f"The cdr-pair recipe needs --set pair=X_Y; pairs under {data}: {', '.join(pairs)}.")
    a, _, b = pair.partition("_")
    path = _cdr_sequence(data, out_dir, pair, (a, b), int(seed))
    return {"name": f"cdr-{pair}", "label": {"implicit": True}, "negatives": {"per_positive": 1},
            "timestamp": {"unit": "s"},
            "interactions": [{"path": str(path.resolve()), "format": "csv", "sep": "\t", "header": True,
                              "item_id_scope": "scenario",
                              "columns": {"user_id": "user_id", "item_id": "item_id", "scenario": "scenario",
                                          "timestamp": "position"}}],
            "protocol": {"name": "temporal", "per_scenario": True, "valid": 1, "test": 1}}


def _cdr_sequence(data: Path, out_dir: Path, pair: str, domains: tuple[str, str], seed: int) -> Path:
    """Writes the pair's events as one file with a position per user (the data have no timestamps): each user's
    training events of the two domains interleaved at random (seeded; each domain's own events keep their file
    order), then their held-out events (test_original.txt: one per domain, in random order, including those
    whose item never occurs in training, which DisenCDR's test.txt drops). The position is each event's rank in
    the user's sequence and stands in for time."""
    import numpy as np
    import polars as pl

    a, b = domains
    parts = []
    for d, scen in ((data / f"{a}_{b}", a), (data / f"{b}_{a}", b)):
        for held_out, name in ((0, "train.txt"), (1, "test_original.txt")):
            f = _need(d / name, "a cross-domain pair directory holds train.txt and test_original.txt per domain")
            raw = pl.read_csv(f, separator="\t", has_header=False, infer_schema=False, new_columns=["u", "i", "l"])
            parts.append(raw.select(pl.col("u").alias("user_id"), pl.col("i").alias("item_id"),
                                    pl.lit(scen).alias("scenario"), pl.lit(held_out).alias("held_out"),
                                    pl.int_range(pl.len()).alias("line")))
    df = pl.concat(parts)
    # a random key per event, sorted within (user, held_out, scenario) so each domain keeps its file order, then
    # every event of the user ordered by (held_out, key): the domains interleave at random
    rng = np.random.default_rng(seed)
    df = df.with_columns(pl.Series("key", rng.random(df.height)))
    df = df.with_columns(pl.col("key").sort().over("user_id", "held_out", "scenario", order_by="line"))
    df = df.sort("user_id", "held_out", "key").with_columns(pl.int_range(pl.len()).over("user_id").alias("position"))
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"cdr-{pair}-sequence.tsv"
    df.select("user_id", "item_id", "scenario", "position").write_csv(path, separator="\t")
    return path


def _tenrec(data: Path, out_dir: Path) -> dict[str, Any]:
    names = ("QK-video", "QK-article", "QB-video", "QB-article")
    files = [data / f"{n}.csv" for n in names if (data / f"{n}.csv").is_file()]
    if not files:
        raise DataError(f"{data}: no Tenrec scenario files ({', '.join(n + '.csv' for n in names)}) found.")
    return {"name": "tenrec", "label": {"column": "label"}, "interactions": [
        {"path": str(f.resolve()), "scenario": f.stem,
         "columns": {"user_id": "user_id", "item_id": "item_id", "label": "click", "gender": "gender",
                     "age": "age", "video_category": "video_category"}} for f in files]}


def _header(path: Path) -> list[str]:
    with _need(path, "file").open(encoding="utf-8", errors="replace") as fh:
        return fh.readline().rstrip("\r\n").split(",")


RECIPES: dict[str, Recipe] = {
    "ml-1m-age": Recipe("MovieLens-1M, RecBole atomic files; scenario = age group (Scenario-Wise-Rec)",
                        _ml_recbole("ml-1m", "age")),
    "ml-1m-genre": Recipe("MovieLens-1M, RecBole atomic files; scenario = genre shelf of the item",
                          _ml_recbole("ml-1m", "genre")),
    "ml-100k-age": Recipe("MovieLens-100K, RecBole atomic files; scenario = age group (<25, 25-34, >=35)",
                          _ml_recbole("ml-100k", "age")),
    "ml-100k-genre": Recipe("MovieLens-100K, RecBole atomic files; scenario = genre shelf",
                            _ml_recbole("ml-100k", "genre")),
    "ml-1m-age-grouplens": Recipe("MovieLens-1M, GroupLens files (ratings.dat ...); scenario = age group",
                                  _ml_grouplens("1m", "age")),
    "ml-1m-genre-grouplens": Recipe("MovieLens-1M, GroupLens files; scenario = genre shelf",
                                    _ml_grouplens("1m", "genre")),
    "ml-100k-age-grouplens": Recipe("MovieLens-100K, GroupLens files (u.data ...); scenario = age group",
                                    _ml_grouplens("100k", "age")),
    "ml-100k-genre-grouplens": Recipe("MovieLens-100K, GroupLens files; scenario = genre shelf",
                                      _ml_grouplens("100k", "genre")),
    "kuairand": Recipe("KuaiRand logs (log_*.csv or one csv); scenario = tab", _kuairand),
    "aliccp": Recipe("Ali-CCP, torch-rechub csv (train/val/test); scenario = field 301", _aliccp),
    "aliccp-aread": Recipe("Ali-CCP, AREAD csv with train_tag; scenario = domain (or --set scenario_field=301)",
                           _aliccp_aread),
    "aliexpress": Recipe("AliExpress, one train/test csv pair per country; scenario = country", _aliexpress),
    "mind": Recipe("MIND, Scenario-Wise-Rec csv (User_ID, News_ID, label, Category); scenario = category", _mind),
    "amazon-categories": Recipe("Amazon reviews, one ratings-only csv per category; scenario = category",
                                _amazon_categories),
    "amazon-aread": Recipe("Amazon 2018, AREAD csv; scenario = top-level category (domain)", _amazon_aread),
    "cdr-pair": Recipe("Cross-domain pair directories X_Y/{train,test_original}.txt (DisenCDR); --set pair=X_Y",
                       _cdr_pair),
    "tenrec": Recipe("Tenrec QK/QB video/article csv files; scenario = file", _tenrec),
}


def recipe_config(name: str, data: Path, out_dir: Path, **options: str) -> dict[str, Any]:
    """The dataset configuration (a dict, as the YAML holds it) of recipe `name` over `data`."""
    if name not in RECIPES:
        raise ConfigError(f"Unknown recipe '{name}'. Known recipes: {', '.join(RECIPES)}.")
    if not data.exists():
        raise DataError(f"{data} not found: give --data the path of your local copy of the dataset.")
    try:
        return RECIPES[name].build(data, out_dir, **options)
    except TypeError as exc:
        if "unexpected keyword" in str(exc):
            raise ConfigError(f"Recipe '{name}' does not take option(s) {', '.join(options)}.") from None
        raise


def write_recipe(name: str, data: Path, out: Path, **options: str) -> Path:
    """Writes recipe `name` over `data` as a dataset YAML at `out`; returns `out`."""
    cfg = recipe_config(name, data, out.parent, **options)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(f"# mistrec recipe '{name}' over {data.resolve()}\n" + yaml.safe_dump(cfg, sort_keys=False))
    return out

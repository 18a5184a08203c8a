"""Content vectors at `prepare`: text, images and precomputed vectors, their cache, and bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
import yaml

from mistrec.data import PreparedDataset, load_dataset_config, prepare
from mistrec.data import content as content_module
from mistrec.data.content import _word_counts, align_to_cooccurrence, embed_text_block, image_available, parallel_rank
from mistrec.errors import ConfigError, DataError
from tests.conftest import write_yaml


def _dataset(tmp_path: Path, items: str, extra: dict[str, Any], content: dict[str, Any] | None = None) -> Path:
    (tmp_path / "clicks.csv").write_text("uid,iid,ts,clicked\n" + "".join(
        f"u{u},{i},{100 * u + 10 * k},{(u + k) % 2}\n" for u in range(1, 7) for k, i in enumerate("abcdef")))
    (tmp_path / "items.csv").write_text(items)
    cfg = {"name": "c", "interactions": [{"path": "clicks.csv", "scenario": "home", "columns": {
        "user_id": "uid", "item_id": "iid", "timestamp": "ts", "label": "clicked"}}],
        "items": {"path": "items.csv", "columns": {"item_id": "iid"}, **extra},
        "content": content or {"embed_text": True, "text_encoder": "tfidf", "text_dims": 4, "align": "none"}}
    return write_yaml(tmp_path / "d.yaml", cfg)


ITEMS = ("iid,title,vec\na,red sports car,1 0 0\nb,blue sports car,\"[0, 1, 0]\"\nc,green tea,\n"
         "d,black tea with milk,0;0;2\ne,,\nf,car wash and tea,1 1 0\n")


def test_text_and_vectors_become_one_row_per_item_index(tmp_path: Path) -> None:
    m = prepare(load_dataset_config(_dataset(tmp_path, ITEMS, {"text": ["title"], "vector": ["vec"]})),
                tmp_path / "out")
    report = m["content"]["items"]
    assert [b["kind"] for b in report["blocks"]] == ["text", "vector"]
    text, vec = report["blocks"]
    assert (text["encoder"], text["rows_with"], text["rows_without"]) == ("tfidf", 5, 1)
    assert (vec["dims"], vec["rows_with"], vec["rows_without"]) == (3, 4, 2)
    ds = PreparedDataset.load(tmp_path / "out")
    c = ds.content("items")
    assert c is not None and c.shape == (7, text["dims"] + 3)
    index = dict(zip(ds.vocab["item_id"]["item_id"], ds.vocab["item_id"]["index"], strict=True))
    assert not c[0].any() and not c[index["e"]].any()  # the unknown index and an item with no content
    np.testing.assert_allclose(c[index["d"], -3:], [0, 0, 1])  # each block L2-normalised
    np.testing.assert_allclose(c[index["f"], -3:], [2 ** -0.5, 2 ** -0.5, 0], rtol=1e-6)
    sim = c[:, :-3] @ c[:, :-3].T  # the texts that share words are the closer ones
    assert sim[index["a"], index["b"]] > sim[index["a"], index["c"]]
    assert ds.content("users") is None


def test_text_is_embedded_only_when_asked(tmp_path: Path) -> None:
    m = prepare(load_dataset_config(_dataset(tmp_path, ITEMS, {"text": ["title"]}, content={"embed_text": False})),
                tmp_path / "out")
    assert m["content"] == {}
    assert PreparedDataset.load(tmp_path / "out").content("items") is None


def _topic_texts(topics: int, seed: int = 1, n: int = 600) -> list[str]:
    """Texts of 8 words each from one of `topics` disjoint 20-word lists: a TF-IDF of rank `topics`."""
    rng = np.random.default_rng(seed)
    lists = [[f"t{t}w{j}" for j in range(20)] for t in range(topics)]
    return [" ".join(rng.choice(lists[rng.integers(topics)], 8)) for _ in range(n)]


@pytest.mark.parametrize("topics", [3, 8, 20])
def test_auto_text_dims_find_the_planted_number_of_topics(topics: int) -> None:
    assert parallel_rank(_word_counts(_topic_texts(topics))) == topics
    assert parallel_rank(_word_counts(_topic_texts(topics)), cap=5) == min(topics, 5)


@pytest.mark.parametrize("seed", range(4))
def test_auto_text_dims_keep_one_dimension_of_texts_of_random_words(seed: int) -> None:
    # words dealt at random to texts of random lengths: the shuffles' own distribution, so nothing beyond the
    # mean direction rises above their floor (a count of every component above it would keep ~1 in 4 here)
    rng = np.random.default_rng(seed)
    texts = [" ".join(f"w{j}" for j in rng.integers(0, 200, rng.integers(3, 12))) for _ in range(600)]
    assert parallel_rank(_word_counts(texts)) == 1


@pytest.mark.parametrize("texts", [["red car", "blue car", "green tea"], ["car", "car"], ["one"], ["a b", "c d"]])
def test_few_texts_sharing_one_word_or_none_are_embedded(texts: list[str]) -> None:
    m, report = embed_text_block(texts, encoder="tfidf")
    assert m.shape[0] == len(texts) and report["dims"] == m.shape[1] >= 1
    np.testing.assert_allclose(np.linalg.norm(m, axis=1), 1.0, rtol=1e-5)  # every text has a vector
    m2, _ = embed_text_block(texts, encoder="tfidf", dims=2)
    # 2 dimensions where two texts and two words allow a reduction: "car" alone would not, so all words are read
    assert m2.shape == (len(texts), 2 if len(texts) > 2 else m.shape[1]) and np.isfinite(m2).all()


def test_text_dims_auto_is_the_default_and_reported(tmp_path: Path) -> None:
    texts = _topic_texts(5, n=120)
    items = "iid,title\n" + "".join(f"i{k},{t}\n" for k, t in enumerate(texts))
    (tmp_path / "clicks.csv").write_text("uid,iid,ts,clicked\n" + "".join(
        f"u{u},i{(7 * u + k) % 120},{100 * u + 10 * k},{(u + k) % 2}\n" for u in range(1, 31) for k in range(8)))
    (tmp_path / "items.csv").write_text(items)
    cfg = {"name": "c", "interactions": [{"path": "clicks.csv", "scenario": "home", "columns": {
        "user_id": "uid", "item_id": "iid", "timestamp": "ts", "label": "clicked"}}],
        "items": {"path": "items.csv", "columns": {"item_id": "iid"}, "text": ["title"]},
        "content": {"embed_text": True, "text_encoder": "tfidf", "align": "none"}}
    dataset = load_dataset_config(write_yaml(tmp_path / "d.yaml", cfg))
    assert dataset.content.text_dims is None
    block = prepare(dataset, tmp_path / "out")["content"]["items"]["blocks"][0]
    assert (block["dims"], block["dims_rule"]) == (5, "parallel analysis")
    cfg["content"]["text_dims"] = 3
    block = prepare(load_dataset_config(write_yaml(tmp_path / "d.yaml", cfg)), tmp_path / "out", force=True)[
        "content"]["items"]["blocks"][0]
    assert (block["dims"], block["dims_rule"]) == (3, "given")
    for bad in ("12", 0, True):
        cfg["content"]["text_dims"] = bad
        with pytest.raises(ConfigError, match=r"content\.text_dims"):
            load_dataset_config(write_yaml(tmp_path / "d.yaml", cfg))


@pytest.mark.parametrize(("items", "column", "expected"), [
    ("iid,vec\na,1 2\nb,1 2 3\n", "vec", r"items.csv line 3, column 'vec': a vector of 3 numbers where the first "
                                         r"one \(line 2\) has 2"),
    ("iid,vec\na,1 x\nb,1 2\n", "vec", r"line 2, column 'vec': '1 x' is not a vector of numbers"),
    ("iid,vec\na,1 nan\nb,1 2\n", "vec", r"line 2, column 'vec': the vector holds a value that is not finite"),
    ("iid,vec\na,\nb,\n", "vec", r"column 'vec': every row's vector is empty"),
])
def test_bad_vectors_name_the_file_line_and_column(tmp_path: Path, items: str, column: str, expected: str) -> None:
    with pytest.raises(DataError, match=expected):
        prepare(load_dataset_config(_dataset(tmp_path, items, {"vector": [column]})), tmp_path / "out")


def test_a_text_column_empty_for_every_item_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"column 'title': the text is empty on every row of the items table"):
        prepare(load_dataset_config(_dataset(tmp_path, "iid,title\na,\nb, \n", {"text": ["title"]})),
                tmp_path / "out")


@pytest.mark.skipif(not image_available(), reason="the image extra (efficientnet-lite-pytorch) is not installed")
def test_images_are_embedded_bad_files_counted_and_the_cache_reused(tmp_path: Path) -> None:
    from PIL import Image

    Image.new("RGB", (40, 30), (200, 10, 10)).save(tmp_path / "red.png")
    Image.new("RGB", (64, 64), (10, 10, 200)).save(tmp_path / "blue.jpg")
    (tmp_path / "bad.png").write_text("not an image")
    items = "iid,pic\na,red.png\nb,missing.png\nc,bad.png\nd,blue.jpg\ne,\nf,red.png\n"
    cfg = load_dataset_config(_dataset(tmp_path, items, {"image": ["pic"]}))
    m = prepare(cfg, tmp_path / "out")
    block = m["content"]["items"]["blocks"][0]
    assert (block["dims"], block["rows_with"], block["unreadable"], block["embedded"]) == (1280, 3, 2, 2)
    assert any("missing.png" in s for s in block["unreadable_first"])
    assert any("bad.png (not an image" in s for s in block["unreadable_first"])
    assert any("could not be read" in n for n in m["notes"])
    ds = PreparedDataset.load(tmp_path / "out")
    index = dict(zip(ds.vocab["item_id"]["item_id"], ds.vocab["item_id"]["index"], strict=True))
    c = ds.content("items")
    assert c is not None
    np.testing.assert_array_equal(c[index["a"]], c[index["f"]])  # the same picture, the same vector
    assert not c[index["b"]].any() and not c[index["c"]].any()
    assert np.isclose(np.linalg.norm(c[index["d"]]), 1.0)
    again = prepare(cfg, tmp_path / "out", force=True)  # the second preparation embeds nothing
    block2 = again["content"]["items"]["blocks"][0]
    assert (block2["embedded"], block2["cached"], block2["unreadable"]) == (0, 3, 2)
    np.testing.assert_array_equal(PreparedDataset.load(tmp_path / "out").content("items"), c)
    json.dumps(again["content"])  # the report is plain JSON


def test_vectors_from_a_parquet_list_column_and_from_a_npy_file(tmp_path: Path) -> None:
    import polars as pl

    pl.DataFrame({"iid": list("abcdef"), "emb": [[1.0, 0.0], [0.0, 2.0], None, [1.0, 1.0], [3.0, 0.0], [0.0, 0.5]]}
                 ).write_parquet(tmp_path / "items.parquet")
    np.save(tmp_path / "audio.npy", np.array([[0, 0, 1], [0, 1, 0], [1, 0, 0], [0, 0, 0], [2, 0, 0], [0, 3, 0]],
                                             dtype=np.float32))
    path = _dataset(tmp_path, "unused", {"vector": ["emb"], "vector_files": ["audio.npy"]})
    cfg = yaml.safe_load(path.read_text())
    cfg["items"]["path"] = "items.parquet"
    path.write_text(yaml.safe_dump(cfg))
    m = prepare(load_dataset_config(path), tmp_path / "out")
    blocks = m["content"]["items"]["blocks"]
    assert [(b["kind"], b["dims"], b["rows_with"]) for b in blocks] == [("vector", 2, 5), ("vector", 3, 5)]
    ds = PreparedDataset.load(tmp_path / "out")
    index = dict(zip(ds.vocab["item_id"]["item_id"], ds.vocab["item_id"]["index"], strict=True))
    c = ds.content("items")
    assert c is not None
    np.testing.assert_allclose(c[index["b"]], [0, 1, 0, 1, 0])  # list column, then the .npy's row 2
    np.testing.assert_allclose(c[index["c"]], [0, 0, 1, 0, 0])  # no list; the .npy's row 3
    np.testing.assert_allclose(c[index["d"]], [2 ** -0.5, 2 ** -0.5, 0, 0, 0], rtol=1e-6)  # an all-zero .npy row
    np.save(tmp_path / "audio.npy", np.zeros((4, 3), dtype=np.float32))
    with pytest.raises(DataError, match=r"audio.npy has 4 rows but .*items.parquet has rows up to 6"):
        prepare(load_dataset_config(path), tmp_path / "out2")


def _liked_groups(content_of_group: bool, seed: int = 0, n: int = 200, groups: int = 4, users: int = 150
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Items 1..n in `groups` groups; each user likes 12 items of one group, items 1..20 never (held out, as new
    items are); content: the group (noisy one-hot) and 4 dimensions of noise, or, as the control, noise only."""
    rng = np.random.default_rng(seed)
    group = np.r_[-1, rng.integers(groups, size=n)]
    content = np.zeros((n + 1, groups + 4))
    noise = rng.normal(size=(n, groups + 4))
    content[1:] = noise + (np.hstack([3 * np.eye(groups)[group[1:]], np.zeros((n, 4))]) if content_of_group else 0)
    content[30] = 0  # an item (with liked rows) without content
    user, item = [], []
    for u in range(1, users + 1):
        pool = np.flatnonzero(group == rng.integers(groups))
        pool = pool[pool > 20]
        item.extend(rng.choice(pool, 12, replace=False))
        user.extend([u] * 12)
    return content.astype(np.float32), np.array(item), np.array(user), group, np.arange(1, 21)


def test_content_aligned_to_cooccurrence_places_held_out_items_among_their_group() -> None:
    content, item, user, group, held = _liked_groups(content_of_group=True)
    aligned, report = align_to_cooccurrence(content, item, user)
    assert aligned is not None and report["result"] == "aligned"
    # the groups' co-occurrence has groups - 1 directions beyond the mean one, and the content predicts them
    assert 1 <= len(report["kept"]) <= 2 * (4 - 1) and aligned.shape == (len(content), len(report["kept"]))
    assert 30 in item and report["items_fitted"] == len(np.unique(item)) - 1  # every liked item with content
    assert not aligned[0].any() and not aligned[30].any()  # no content: zero
    with_content = np.abs(content).sum(axis=1) > 0
    np.testing.assert_allclose(np.linalg.norm(aligned[with_content], axis=1), 1.0, rtol=1e-5)
    # from content alone, a new item sits with the liked items of its group (chance: 1 in 4)
    trained = np.setdiff1d(np.unique(item), [30])
    centroids = np.stack([aligned[trained][group[trained] == g].mean(axis=0) for g in range(4)])
    assert np.mean([np.argmax(centroids @ aligned[i]) == group[i] for i in held]) >= 0.8


def test_content_that_predicts_no_behaviour_is_kept_as_it_was_and_said() -> None:
    content, item, user, _, _ = _liked_groups(content_of_group=False)
    aligned, report = align_to_cooccurrence(content, item, user)
    assert aligned is None and report["kept"] == [] and "predicts none" in report["result"]
    aligned, report = align_to_cooccurrence(content, item[:10], user[:10])
    assert aligned is None and "at least 20 needed" in report["result"]


def _aligned_dataset(tmp_path: Path, flip: set[tuple[str, int]], titles_say_topic: bool = True) -> Path:
    """120 items of 5 topics (their titles), 60 users each liking mostly one topic; `flip`: the (user, time) of the
    rows whose label is flipped; `titles_say_topic` False: the titles dealt out to the items at random (the
    control: content that says nothing of what users like)."""
    rng = np.random.default_rng(3)
    texts = _topic_texts(5, n=120)
    topic = [int(t.split("w")[0][1:]) for t in texts]
    if not titles_say_topic:
        texts = list(np.random.default_rng(4).permutation(texts))
    rows = []
    for u in range(1, 61):
        mine = rng.integers(5)
        for k in range(10):
            i = int(rng.choice(np.flatnonzero(np.array(topic) == mine)) if rng.random() < 0.6 else rng.integers(120))
            label = int(topic[i] == mine)
            label = 1 - label if (f"u{u}", 100 * u + k) in flip else label
            rows.append(f"u{u},i{i},{100 * u + k},{label}\n")
    (tmp_path / "clicks.csv").write_text("uid,iid,ts,clicked\n" + "".join(rows))
    (tmp_path / "items.csv").write_text("iid,title\n" + "".join(f"i{k},{t}\n" for k, t in enumerate(texts)))
    cfg = {"name": "c", "interactions": [{"path": "clicks.csv", "scenario": "home", "columns": {
        "user_id": "uid", "item_id": "iid", "timestamp": "ts", "label": "clicked"}}],
        "items": {"path": "items.csv", "columns": {"item_id": "iid"}, "text": ["title"]},
        "content": {"embed_text": True, "text_encoder": "tfidf"}}  # align: cooccurrence, the default
    return write_yaml(tmp_path / "d.yaml", cfg)


def test_alignment_reads_a_bounded_sample_of_users_and_items(monkeypatch: pytest.MonkeyPatch) -> None:
    content, item, user, group, held = _liked_groups(content_of_group=True, users=300)
    monkeypatch.setattr(content_module, "ALIGN_MAX_PAIRS", 1200)  # 100 of the 300 users' 12 likes
    monkeypatch.setattr(content_module, "ALIGN_MAX_FIT", 60)
    aligned, report = align_to_cooccurrence(content, item, user)
    assert report["users"] == 300 and report["users_read"] == 100 and report["pairs_read"] == 1200
    assert report["items_with_both"] > 60 and report["items_fitted"] == 60
    assert aligned is not None and report["result"] == "aligned"
    trained = np.setdiff1d(np.unique(item), [30])
    centroids = np.stack([aligned[trained][group[trained] == g].mean(axis=0) for g in range(4)])
    assert np.mean([np.argmax(centroids @ aligned[i]) == group[i] for i in held]) >= 0.8
    again, _ = align_to_cooccurrence(content, item, user)  # the samples are seeded
    np.testing.assert_array_equal(again, aligned)


def test_content_aligned_to_nothing_is_kept_and_prepare_says_so(tmp_path: Path) -> None:
    m = prepare(load_dataset_config(_aligned_dataset(tmp_path, set(), titles_say_topic=False)), tmp_path / "a")
    report = m["content"]["items"]
    assert report["aligned"]["kept"] == [] and report["aligned"]["result"] != "aligned"
    assert any(n.startswith("content.align: the content predicts none") for n in m["notes"])
    assert PreparedDataset.load(tmp_path / "a").content("items").shape[1] == report["dims"] > 0  # as embedded


def test_alignment_reads_training_rows_only(tmp_path: Path) -> None:
    dataset = load_dataset_config(_aligned_dataset(tmp_path, set()))
    assert dataset.content.align == "cooccurrence"  # the default: the YAML does not name it
    m = prepare(dataset, tmp_path / "a")
    report = m["content"]["items"]
    assert report["aligned"]["result"] == "aligned" and report["dims"] == len(report["aligned"]["kept"]) >= 1
    ds = PreparedDataset.load(tmp_path / "a")
    users = dict(zip(ds.vocab["user_id"]["index"], ds.vocab["user_id"]["value"], strict=True))
    held = ds.interactions.filter(pl.col("split") != "train")
    assert held.height > 0
    # every valid and test label flipped: the same training rows, the same aligned content
    flip = {(users[u], int(t)) for u, t in zip(held["user"], held["timestamp"], strict=True)}
    prepare(load_dataset_config(_aligned_dataset(tmp_path, flip)), tmp_path / "b")
    assert PreparedDataset.load(tmp_path / "b").split("train").equals(ds.split("train"))
    np.testing.assert_array_equal(PreparedDataset.load(tmp_path / "b").content("items"), ds.content("items"))
    # the control: one liked training row flipped (of a user and item liked once) moves it
    liked = ds.split("train").filter(pl.col("label") > 0).filter(pl.len().over("user", "item") == 1).row(0, named=True)
    prepare(load_dataset_config(_aligned_dataset(tmp_path, {(users[liked["user"]], int(liked["timestamp"]))})),
            tmp_path / "c")
    assert not np.array_equal(PreparedDataset.load(tmp_path / "c").content("items"), ds.content("items"))
    cfg = yaml.safe_load((tmp_path / "d.yaml").read_text())
    cfg["content"]["align"] = "behaviour"
    with pytest.raises(ConfigError, match=r"content\.align"):
        load_dataset_config(write_yaml(tmp_path / "d.yaml", cfg))

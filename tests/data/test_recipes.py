"""Every recipe against the real files in ../shared/data (counts from their READMEs), or against files in the
original layout written here where ../shared/data has no copy (GroupLens originals, Tenrec, Amazon per category)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

from mistrec.data import PreparedDataset, load_dataset_config, prepare
from mistrec.data.recipes import RECIPES, write_recipe
from mistrec.errors import ConfigError, DataError

pytestmark = pytest.mark.integration


def prepared(tmp_path: Path, name: str, data: Path, **options: str) -> PreparedDataset:
    yaml_path = write_recipe(name, data, tmp_path / f"{name}.yaml", **options)
    prepare(load_dataset_config(yaml_path), tmp_path / f"prepared-{name}")
    return PreparedDataset.load(tmp_path / f"prepared-{name}")


def counts(ds: PreparedDataset, what: str = "rows") -> dict[str, Any]:
    return {s: c[what] for s, c in ds.manifest["counts"]["after_cleaning"].items()}


def test_ml1m_age_groups_reproduce_the_published_counts(tmp_path: Path, shared_data: Path) -> None:
    ds = prepared(tmp_path, "ml-1m-age", shared_data / "ml-1m")
    assert counts(ds) == {"0": 210_747, "1": 395_556, "2": 393_906, "ALL": 1_000_209}
    assert counts(ds, "users") == {"0": 1_325, "1": 2_096, "2": 2_619, "ALL": 6_040}
    assert counts(ds, "items") == {"0": 3_429, "1": 3_508, "2": 3_595, "ALL": 3_706}
    assert counts(ds, "positive_rate")["ALL"] == pytest.approx(0.575, abs=5e-4)
    assert set(ds.tables["users"].columns) == {"user", "age", "gender", "occupation", "zip_code"}
    assert ds.manifest["leakage_checks"]["history_strictly_before_and_train_only"] == "passed"


def test_ml1m_genre_shelves_share_users(tmp_path: Path, shared_data: Path) -> None:
    ds = prepared(tmp_path, "ml-1m-genre", shared_data / "ml-1m")
    assert sorted(ds.scenarios) == ["action", "comedy", "drama", "family", "thriller"]
    per_user = ds.interactions.group_by("user").agg(pl.col("scenario").n_unique())
    assert (per_user["scenario"] >= 2).sum() > 6000 * 0.95
    assert counts(ds)["family"] == 58_427  # the sparsest shelf: Animation and Children's first
    described = dict(zip(*ds.tables["scenarios"].select("scenario", "description").to_dict().values(), strict=True))
    assert described[ds.scenarios.index("family") + 1] == "Animation and Children's films"  # for new shelves


def test_ml100k_recbole_age_and_genre(tmp_path: Path, shared_data: Path) -> None:
    ds = prepared(tmp_path, "ml-100k-age", shared_data / "ml-100k")
    assert counts(ds) == {"0": 26_551, "1": 35_444, "2": 38_005, "ALL": 100_000}
    assert counts(ds, "users") == {"0": 234, "1": 310, "2": 399, "ALL": 943}
    ds = prepared(tmp_path, "ml-100k-genre", shared_data / "ml-100k")
    assert counts(ds)["ALL"] == 100_000 and len(ds.scenarios) == 6


def test_kuairand_and_mind_samples(tmp_path: Path, shared_data: Path) -> None:
    ds = prepared(tmp_path, "kuairand", shared_data / "scenario-wise-samples" / "kuairand_sample.csv")
    assert counts(ds) == {"1": 200, "ALL": 200}
    assert counts(ds, "users")["1"] == 145 and counts(ds, "positive_rate")["1"] == pytest.approx(0.16)
    assert "play_time_ms" not in ds.interactions.columns  # measured after the click: never a feature
    ds = prepared(tmp_path, "mind", shared_data / "scenario-wise-samples")
    assert counts(ds) == {"finance": 1_265, "lifestyle": 1_565, "news": 3_742, "sports": 1_428, "ALL": 8_000}


def test_aliccp_recipes(tmp_path: Path, shared_data: Path) -> None:
    ds = prepared(tmp_path, "aliccp", shared_data / "torch-rechub-samples" / "ali-ccp")
    assert ds.manifest["protocol"]["name"] == "predefined"
    assert counts(ds)["ALL"] == 200 and ds.manifest["cleaning"]["duplicates_removed"] == 0
    assert ds.manifest["tasks"] == ["click", "conversion"]  # purchase: the second task (3 in 12 clicks)
    assert ds.interactions["conversion"].sum() == 3 and ds.interactions["label"].sum() == 12

    ds = prepared(tmp_path, "aliccp-aread", shared_data / "aread-samples" / "aliccp")
    assert len(ds.scenarios) == 30 and counts(ds)["ALL"] == 3_191
    by_split = ds.interactions.group_by("split").len()
    assert dict(by_split.iter_rows()) == {"train": 1_562, "valid": 816, "test": 813}
    ds = prepared(tmp_path / "f301", "aliccp-aread", shared_data / "aread-samples" / "aliccp", scenario_field="301")
    assert counts(ds) == {"1": 1_118, "2": 19, "3": 2_054, "ALL": 3_191}


def test_amazon_aread_and_aliexpress(tmp_path: Path, shared_data: Path) -> None:
    ds = prepared(tmp_path, "amazon-aread", shared_data / "aread-samples" / "amazon")
    assert len(ds.scenarios) == 25 and counts(ds)["ALL"] == 3_092 and counts(ds)["3"] == 509
    ds = prepared(tmp_path, "aliexpress", shared_data / "torch-rechub-samples" / "aliexpress")
    assert dict(ds.interactions.group_by("split").len().iter_rows()) == {"train": 100, "test": 20}
    assert counts(ds, "positive_rate")["ALL"] == pytest.approx(70 / 120)
    assert ds.manifest["tasks"] == ["click", "conversion"] and ds.interactions["conversion"].sum() == 4


def test_cross_domain_pair(tmp_path: Path, shared_data: Path) -> None:
    ds = prepared(tmp_path, "cdr-pair", shared_data / "amazon-cdr-disencdr", pair="sport_cloth")
    real = ds.interactions.filter(~pl.col("sampled"))
    by = {(s, sp): n for s, sp, n in real.group_by("scenario", "split").len().iter_rows()}
    scen = {n: i + 1 for i, n in enumerate(ds.scenarios)}
    # train.txt + test_original.txt (the held-out rows whose item is unseen in training are kept: DisenCDR's
    # test.txt drops them); each user's held-out event of each domain is the test row (leave-one-out per
    # domain), the last training event before it the validation row
    for name, train, users in (("sport", 92_612, 9_928), ("cloth", 87_829, 9_928)):
        s = scen[name]
        assert by[(s, "train")] + by[(s, "valid")] + by[(s, "test")] == train + users
        assert by[(s, "test")] == users
        assert 0 < by[(s, "valid")] <= users
    assert counts(ds, "users") == {"cloth": 9_928, "sport": 9_928, "ALL": 9_928}
    assert ds.manifest["protocol"]["per_scenario"] is True
    held_out = pl.read_csv(shared_data / "amazon-cdr-disencdr" / "sport_cloth" / "test_original.txt", separator="\t",
                           has_header=False, new_columns=["u", "i", "l"])
    vocab = ds.vocab["item_id"].filter(pl.col("item_scope") == "sport")
    test_items = real.filter((pl.col("split") == "test") & (pl.col("scenario") == scen["sport"])).join(
        vocab.rename({"index": "item"}), on="item")
    assert sorted(test_items["item_id"].cast(pl.Int64).to_list()) == sorted(held_out["i"].to_list())
    # the two domains interleave: a test sample's history holds training events of both, and so do training
    # samples' histories (not only the second domain's, as file order would give)
    for split in ("test", "train"):
        rows = ds.interactions.with_row_index("pos").filter((pl.col("split") == split) & ~pl.col("sampled"))
        h = ds.histories(rows["pos"].to_numpy()[:5000])
        for s in (1, 2):
            own = rows["scenario"].to_numpy()[:5000] == s
            assert set(h.scenarios[own][h.mask[own]].tolist()) == {1, 2}, (split, s)
    with pytest.raises(ConfigError, match=r"needs --set pair=X_Y; pairs under .*sport_cloth"):
        write_recipe("cdr-pair", shared_data / "amazon-cdr-disencdr", tmp_path / "x.yaml")


def test_grouplens_original_layouts(tmp_path: Path) -> None:
    ml1m = tmp_path / "ml-1m"
    ml1m.mkdir()
    (ml1m / "ratings.dat").write_text("1::10::5::978300760\n1::20::3::978300761\n2::10::4::978300762\n"
                                      "2::30::2::978300763\n3::20::5::978300764\n")
    (ml1m / "users.dat").write_text("1::F::1::10::48067\n2::M::25::16::70072\n3::M::56::15::55117\n")
    (ml1m / "movies.dat").write_bytes("10::Amélie (2001)::Comedy|Romance\n20::Heat (1995)::Action|Crime|Thriller\n"
                                      "30::Toy Story (1995)::Animation|Children's|Comedy\n".encode("latin-1"))
    ds = prepared(tmp_path, "ml-1m-age-grouplens", ml1m)
    assert counts(ds) == {"0": 2, "1": 2, "2": 1, "ALL": 5}
    ds = prepared(tmp_path, "ml-1m-genre-grouplens", ml1m)
    assert counts(ds) == {"action": 2, "comedy": 2, "family": 1, "ALL": 5}
    titles = ds.tables["items"]["title"].to_list()
    assert "Amélie (2001)" in titles  # latin-1 decoded

    ml100k = tmp_path / "ml-100k"
    ml100k.mkdir()
    (ml100k / "u.data").write_text("1\t1\t5\t874965758\n1\t2\t3\t874965759\n2\t1\t4\t874965760\n3\t2\t4\t874965761\n")
    (ml100k / "u.user").write_text("1|24|M|technician|85711\n2|53|F|other|94043\n3|30|M|writer|32067\n")
    flags = ["0"] * 19
    toy = flags.copy()
    toy[3] = toy[4] = toy[5] = "1"  # Animation, Children's, Comedy
    heat = flags.copy()
    heat[1] = heat[16] = "1"  # Action, Thriller
    (ml100k / "u.item").write_bytes(("1|Toy Story (1995)|01-Jan-1995||http://x|" + "|".join(toy) + "\n"
                                     "2|Heat (1995)|01-Jan-1995||http://y|" + "|".join(heat) + "\n").encode("latin-1"))
    ds = prepared(tmp_path, "ml-100k-age-grouplens", ml100k)
    assert counts(ds) == {"0": 2, "1": 1, "2": 1, "ALL": 4}
    ds = prepared(tmp_path, "ml-100k-genre-grouplens", ml100k)
    assert counts(ds) == {"action": 2, "family": 2, "ALL": 4}
    assert not (ml100k / "ml-100k-items-derived.tsv").exists()  # nothing is written into the user's data


def test_tenrec_and_amazon_categories_layouts(tmp_path: Path) -> None:
    tenrec = tmp_path / "tenrec"
    tenrec.mkdir()
    header = "user_id,item_id,click,follow,like,share,video_category,watching_times,gender,age\n"
    (tenrec / "QK-video.csv").write_text(header + "1,5,1,0,0,0,3,1,1,2\n1,6,0,0,0,0,3,0,1,2\n2,5,1,0,1,0,3,2,2,3\n")
    (tenrec / "QB-article.csv").write_text(header + "1,9,1,0,0,0,1,1,1,2\n")
    ds = prepared(tmp_path, "tenrec", tenrec)
    assert counts(ds) == {"QB-article": 1, "QK-video": 3, "ALL": 4}

    amazon = tmp_path / "amazon"
    amazon.mkdir()
    (amazon / "Books.csv").write_text("B01,A1,5,1400000000\nB02,A1,2,1400000100\nB01,A2,4,1400000200\n")
    (amazon / "Movies_and_TV.csv").write_text("M01,A1,4,1400000300\n")
    ds = prepared(tmp_path, "amazon-categories", amazon)
    assert counts(ds) == {"Books": 3, "Movies_and_TV": 1, "ALL": 4}


def test_recipe_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"Unknown recipe 'ml-2m'\. Known recipes: ml-1m-age"):
        write_recipe("ml-2m", tmp_path, tmp_path / "x.yaml")
    with pytest.raises(DataError, match=r"expects RecBole atomic files ml-1m\.inter"):
        write_recipe("ml-1m-age", tmp_path, tmp_path / "x.yaml")
    with pytest.raises(ConfigError, match="does not take option"):
        write_recipe("mind", tmp_path, tmp_path / "x.yaml", pair="a_b")
    assert len(RECIPES) >= 17

"""Content vectors in the models: a new item's score comes from its content, every scoring path agrees, the vectors
travel with the run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from mistrec.data import PreparedDataset, ProtocolConfig, SyntheticConfig, generate, load_dataset_config, prepare
from mistrec.features import FeatureEncoder
from mistrec.models import build_model
from mistrec.models.layers import FeatureEmbedding, attach_content

# the models that embed items with FeatureEmbedding, so fuse content (sarnet and pepnet read the id table directly)
CONTENT_MODELS = ["mist", "din", "scenario_dnn", "isolated_dnn", "shared_bottom", "star", "mmoe", "ple", "two_tower"]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("content")
    raw = generate(SyntheticConfig(n_users=300, events_per_user=30, description_words=8, seed=2)).write(root / "raw")
    cfg = yaml.safe_load(raw.read_text())
    cfg["content"] = {"embed_text": True, "text_encoder": "tfidf", "text_dims": 12, "align": "none"}  # as embedded
    raw.write_text(yaml.safe_dump(cfg))
    prepare(load_dataset_config(raw), root / "prepared", protocol=ProtocolConfig(name="cold-item", seed=1),
            history_length=10, quiet=True)
    return root / "prepared"


def _model(name: str, enc: FeatureEncoder, values: dict | None = None) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model(name, enc.spec_, {"embedding_dim": 8, **(values or {})})
    attach_content(model, enc.item_content_)
    with torch.no_grad():
        for p in model.parameters():  # away from the initialisations, so every term counts
            p.add_(0.1 * torch.randn_like(p))
    return model.eval()


def test_a_new_item_keeps_its_side_features_and_content(prepared: Path) -> None:
    ds = PreparedDataset.load(prepared)
    enc = FeatureEncoder().fit(ds)
    assert enc.spec_.item_content_dim == 12
    rows = enc.rows(ds, "test")
    b = enc.batch(rows, np.arange(len(rows)))
    new = (b.item == 0) & (b.item_key > 0)
    assert new.any()  # the cold-item protocol's held-out items are in test, unknown to the model
    assert (b.item_cat[new] > 0).all()  # their category is known content, not an unknown id
    content = torch.from_numpy(enc.item_content_)
    assert (content[b.item_key[new]].abs().sum(1) > 0).all()
    # no training row and no history event names a held-out item
    train = enc.rows(ds, "train")
    assert not np.isin(rows.item[new.numpy()], train.item).any()
    assert not np.isin(rows.item[new.numpy()], ds.events.item).any()


@pytest.mark.parametrize("name", CONTENT_MODELS)
def test_content_reaches_the_score_of_a_new_item(name: str, prepared: Path) -> None:
    """Two new items (both model index 0) score differently when their content differs, and alike when the content
    vectors are made equal: the score of an item nobody has clicked yet comes from its content."""
    ds = PreparedDataset.load(prepared)
    enc = FeatureEncoder().fit(ds)
    model = _model(name, enc)
    assert any(isinstance(m, FeatureEmbedding) and m.content_dim for m in model.modules())
    queries = enc.batch(enc.rows(ds, "test"), np.arange(4))
    cold = np.flatnonzero(enc.item_map_ == 0)[1:3]  # two dataset items with no training row
    items = enc.item_batch(cold)
    for side in (items.item_cat, items.item_seq, items.item_num):  # their other features aside: the content
        side.zero_()  # alone must tell them apart
    with torch.no_grad():
        s = model.score_candidates(queries, items)
        assert not torch.allclose(s[:, 0], s[:, 1])
        for m in model.modules():
            if isinstance(m, FeatureEmbedding) and m.content_dim:
                m.item_content[cold[1]] = m.item_content[cold[0]]
        same = model.score_candidates(queries, items)
    torch.testing.assert_close(same[:, 0], same[:, 1])


@pytest.mark.parametrize(("name", "values"), [("mist", {}), ("din", {}), ("star", {}), ("two_tower", {}),
                                             ("mist", {"content_fusion": "gate", "content_dropout": 0.2})])
def test_candidate_scores_with_content_equal_the_crossed_forward(name: str, values: dict, prepared: Path) -> None:
    ds = PreparedDataset.load(prepared)
    enc = FeatureEncoder().fit(ds)
    model = _model(name, enc, values)
    queries = enc.batch(enc.rows(ds, "test"), np.arange(5))
    items = enc.item_batch(np.arange(1, 60))  # trained and held-out items
    with torch.no_grad():
        got = model.score_candidates(queries, items)
        want = model(queries.cross(items)).view(5, 59)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_history_events_embed_their_content_in_place_as_per_distinct_item(prepared: Path) -> None:
    """The per-distinct-item path of history_items (training) and the per-event one (exported graphs) agree."""
    ds = PreparedDataset.load(prepared)
    enc = FeatureEncoder().fit(ds)
    emb = next(m for m in _model("mist", enc).modules() if isinstance(m, FeatureEmbedding))
    b = enc.batch(enc.rows(ds, "train"), np.arange(64))
    with torch.no_grad():
        grouped = emb.history_items(b, side=True)
        emb.per_event = True
        try:
            in_place = emb.history_items(b, side=True)
        finally:
            emb.per_event = False
    torch.testing.assert_close(grouped, in_place)


def test_id_dropout_hides_ids_in_training_only(prepared: Path) -> None:
    ds = PreparedDataset.load(prepared)
    enc = FeatureEncoder().fit(ds)
    emb = next(m for m in _model("mist", enc).modules() if isinstance(m, FeatureEmbedding))
    idx = torch.arange(1, 200)
    key = idx.clone()
    with torch.no_grad():
        evaluated = emb.item_vectors(idx, key)
        emb.train()
        torch.manual_seed(1)
        trained = emb.item_vectors(idx, key)
    changed = ~torch.isclose(evaluated, trained).all(1)
    assert 0.4 < changed.float().mean() < 0.6  # about id_dropout (0.5) of the items
    assert torch.equal(evaluated, emb.eval().item_vectors(idx, key))  # evaluation is deterministic


def test_the_content_table_travels_with_the_run(prepared: Path, tmp_path: Path) -> None:
    from mistrec.train import load_run
    from tests.conftest import small_run

    run = small_run(prepared, "mist", tmp_path / "run", epochs=1)
    model, _, _ = load_run(run)
    table = next(m for m in model.modules() if isinstance(m, FeatureEmbedding)).item_content
    np.testing.assert_array_equal(table.numpy(), PreparedDataset.load(prepared).content("items"))
    with pytest.raises(ValueError, match="content table of shape"):
        attach_content(model, np.zeros((3, 12), dtype=np.float32))

"""The cross-domain baselines against their papers' equations (../shared/CDR.md), on tiny hand-made inputs, and
the staged training they need (pre-training frozen while the transfer trains)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mistrec.data import PreparedDataset
from mistrec.features import FeatureEncoder
from mistrec.models import build_model
from mistrec.models.cdr import EMCDR, PTUPCDR, BiTGCF
from mistrec.train import TrainConfig, train


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[PreparedDataset, FeatureEncoder]:
    from mistrec.data import ProtocolConfig, SyntheticConfig, generate, load_dataset_config, prepare

    root = tmp_path_factory.mktemp("cdr")
    yaml_path = generate(SyntheticConfig(n_users=300, events_per_user=30, seed=6)).write(root / "raw")
    prepare(load_dataset_config(yaml_path), root / "prepared", history_length=10, quiet=True,
            protocol=ProtocolConfig(name="cold-user", target="vr_showroom", cold_fraction=0.3))
    ds = PreparedDataset.load(root / "prepared")
    return ds, FeatureEncoder().fit(ds)


def test_source_vector_weights_the_other_scenarios_by_events(data: tuple[PreparedDataset, FeatureEncoder]) -> None:
    ds, enc = data
    model = build_model("emcdr", enc.spec_, {"embedding_dim": 4})
    assert isinstance(model, EMCDR)
    model.setup(enc.indexed(enc.rows(ds, "train")))
    b = enc.batch(enc.rows(ds, "test"), np.arange(8))
    table = model.user.weight.view(model.n_users, model.n_scenarios, 4)
    for r in range(8):
        u, t = int(b.user[r]), int(b.scenario[r])
        counts = model.events[u].clone()
        counts[t] = 0
        want = (counts.unsqueeze(1) * table[u]).sum(0) / counts.sum()
        torch.testing.assert_close(model.source(b)[r], want)  # (on two domains: exactly the other one's vector)


def test_emcdr_maps_the_source_vector_and_trains_only_the_mapping(data: tuple[PreparedDataset, FeatureEncoder]
                                                                   ) -> None:
    ds, enc = data
    model = build_model("emcdr", enc.spec_, {"embedding_dim": 4, "min_events": 2})
    assert isinstance(model, EMCDR)
    rows, valid = enc.rows(ds, "train"), enc.rows(ds, "valid")
    model.setup(enc.indexed(rows))
    before = {}

    def snapshot(stage: str | None, *args: object) -> object:
        if stage == "map":
            before.update(user=model.user.weight.detach().clone(), item=model.item.weight.detach().clone())
        return EMCDR.begin_stage(model, stage, *args)  # type: ignore[arg-type]

    model.begin_stage = snapshot  # type: ignore[method-assign]
    result = train(model, enc, rows, valid, TrainConfig(epochs=3, batch_size=256, seed=0), quiet=True)
    assert [h.get("stage") for h in result.history].count("map") >= 1
    torch.testing.assert_close(model.user.weight, before["user"])  # the factors are frozen while mapping
    torch.testing.assert_close(model.item.weight, before["item"])
    model.eval()
    b = enc.batch(enc.rows(ds, "test"), np.arange(64))
    cold = b.activity == 0
    assert cold.any() and (~cold).any()
    with torch.no_grad():
        src = model.source(b)
        mapped = torch.stack([model.maps[int(s)](src[i]) for i, s in enumerate(b.scenario)])
        want = torch.where(cold.unsqueeze(1), mapped, model.own(b))
        torch.testing.assert_close(model(b), (want * model.item(b.item)).sum(-1))
    # the mapping's rows: one per overlapping (user, target) with at least min_events target events
    picked = model.transfer_rows(enc.indexed(rows))
    key = enc.user_map_[rows.user[picked]] * model.n_scenarios + enc.scenario_map_[rows.scenario[picked]]
    assert len(np.unique(key)) == len(picked)
    here = model.events.numpy()[enc.user_map_[rows.user[picked]], enc.scenario_map_[rows.scenario[picked]]]
    assert (here >= 2).all()


def test_ptupcdr_bridge_is_personal_and_reads_only_source_positives(data: tuple[PreparedDataset, FeatureEncoder]
                                                                     ) -> None:
    ds, enc = data
    model = build_model("ptupcdr", enc.spec_, {"embedding_dim": 4, "meta_dim": 5, "history": 3})
    assert isinstance(model, PTUPCDR)
    model.setup(enc.indexed(enc.rows(ds, "train")))
    b = enc.batch(enc.rows(ds, "test"), np.arange(32))
    with torch.no_grad():
        got = model.transferred(b)
        for r in range(32):
            source = b.hist_mask[r] & (b.hist_labels[r] > 0) & (b.hist_scenarios[r] != b.scenario[r])
            idx = source.nonzero().squeeze(1)[-3:]  # the last 3 source positives
            v = model.item(b.hist_items[r, idx])
            alpha = model.encoder(v).squeeze(-1).softmax(0) if len(idx) else torch.zeros(0)
            p = (alpha.unsqueeze(1) * v).sum(0) if len(idx) else torch.zeros(4)
            bridge = model.meta(p).view(4, 4)
            want = model.source(b.subset(slice(r, r + 1)))[0] @ bridge  # u^src W_u
            torch.testing.assert_close(got[r], want, atol=1e-6, rtol=1e-5)


def test_bitgcf_one_layer_equals_the_authors_update() -> None:
    from mistrec.features import FeatureSpec

    spec = FeatureSpec(n_users=3, n_items=4, n_scenarios=3, user_cat=(), item_cat=(), item_seq=(), n_user_num=0,
                       n_item_num=0, history_length=2, scenario_names=("a", "b"))
    model = build_model("bitgcf", spec, {"embedding_dim": 2, "layers": 1, "lam": 0.8, "message_dropout": 0.0})
    assert isinstance(model, BiTGCF)
    # user 1: item 1 in domain 1 and item 3 in domain 2; user 2: item 2 in domain 1 only
    edges = [(1, 1, 1), (2, 1, 3), (1, 2, 2)]
    n = 3 + 4
    parts = []
    for d in (1, 2):
        src = [u for dd, u, _ in edges if dd == d] + [3 + i for dd, _, i in edges if dd == d] + list(range(n))
        dst = [3 + i for dd, _, i in edges if dd == d] + [u for dd, u, _ in edges if dd == d] + list(range(n))
        deg = np.bincount(src, minlength=n)
        parts.append((np.full(len(src), d), np.array(src), np.array(dst), 1.0 / deg[src]))
    model.edges = torch.tensor(np.concatenate([np.stack(p[:3]) for p in parts], axis=1))
    model.weights = torch.tensor(np.concatenate([p[3] for p in parts]), dtype=torch.float32)
    model.events = torch.tensor([[0, 0, 0], [0, 2, 2], [0, 2, 0]], dtype=torch.float32)
    model.eval()
    with torch.no_grad():
        users, items = model.propagate()
        e0 = model.user.weight.view(3, 3, 2)
        out = {}
        for d in (1, 2):
            a = torch.zeros(n, n)
            for (_, s, t), w in zip(zip(*model.edges[:, model.edges[0] == d].tolist(), strict=True),
                                    model.weights[model.edges[0] == d].tolist(), strict=True):
                a[s, t] += w
            e = torch.cat([e0[:, d], model.item.weight])
            h = a @ e
            out[d] = h + e * h  # E(1) = H + E(0) * H
        share = model.events / model.events.sum(1, keepdim=True).clamp_min(1)
        u1, u2 = out[1][:3], out[2][:3]
        c = share[:, 1:2] * u1 + share[:, 2:3] * u2
        m1, m2 = 0.8 * u1 + 0.2 * u2, 0.8 * u2 + 0.2 * u1  # m_u^D: lambda e^D + (1 - lambda) e^other
        want1, want2 = (c + m1) / 2, (c + m2) / 2
        norm = torch.nn.functional.normalize
        torch.testing.assert_close(users[:, 1, 2:], norm(want1, dim=-1), atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(users[:, 2, 2:], norm(want2, dim=-1), atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(users[:, :, :2], e0)  # the read-out starts with E(0)
        # items 1 and 2 live in domain 1, item 3 in domain 2: each read from its own domain's graph
        torch.testing.assert_close(items[1, 2:], norm(out[1][3 + 1], dim=-1), atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(items[3, 2:], norm(out[2][3 + 3], dim=-1), atol=1e-6, rtol=1e-5)


def test_training_stages_run_in_order_with_their_own_settings(data: tuple[PreparedDataset, FeatureEncoder],
                                                              tmp_path: Path) -> None:
    ds, enc = data
    model = build_model("ptupcdr", enc.spec_, {"embedding_dim": 4})
    result = train(model, enc, enc.rows(ds, "train"), enc.rows(ds, "valid"),
                   TrainConfig(epochs=2, batch_size=4096, seed=0, patience=5), quiet=True)
    stages = [h["stage"] for h in result.history]
    assert stages == ["mf", "mf", "meta", "meta"]
    assert [h["epoch"] for h in result.history] == [1, 2, 3, 4]
    assert all(p.requires_grad for p in model.parameters())  # every parameter trainable again after training
    assert model.stage_options("mf") == {"lr": 0.01, "batch_size": 512, "early_stopping": False}


def test_train_settings_resolve_given_then_the_models_own_then_the_defaults(
        data: tuple[PreparedDataset, FeatureEncoder]) -> None:
    from mistrec.train.loop import DEFAULT_BATCH_SIZE, DEFAULT_LR

    _, enc = data
    mist = build_model("mist", enc.spec_, {"embedding_dim": 4})
    star = build_model("star", enc.spec_, {"embedding_dim": 4})
    assert mist.train_defaults and not star.train_defaults
    unset = TrainConfig()
    assert (unset.resolved(star).lr, unset.resolved(star).batch_size) == (DEFAULT_LR, DEFAULT_BATCH_SIZE)
    own = unset.resolved(mist)
    assert (own.lr, own.batch_size) == (mist.train_defaults["lr"], mist.train_defaults["batch_size"])
    given = TrainConfig(lr=0.5, batch_size=7).resolved(mist)
    assert (given.lr, given.batch_size) == (0.5, 7)
    with pytest.raises(ValueError, match="unresolved"):
        _ = unset.learning_rate

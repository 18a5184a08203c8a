"""A synthetic multi-scenario platform with a planted, known scenario-to-scenario transfer matrix.

The generative story (docs/synthetic.md):
- every user u has an independent latent interest b[u, s] in R^d for each scenario s;
  items live in one latent space (v[i] in R^d) and each scenario has its own item pool;
- a user's events are spread over scenarios by a per-user activity mix, at random times;
- the item a user engages with in scenario s is chosen by b[u, s] alone (softmax over the pool),
  so behaviour in s reveals the interest b[u, s];
- whether the user clicks item i in target scenario t depends on the *transferred* interest
  c[u, t] = sum_s T[t, s] b[u, s]: T is the planted transfer matrix (rows sum to 1), i.e. how much
  the behaviour in each source scenario predicts clicks in each target scenario.

A model that reads scenario-tagged histories can recover T; one that reads only the target
scenario's events cannot see the part of c[u, t] that comes from the other scenarios.

Example:
    >>> data = generate(SyntheticConfig(n_users=50, events_per_user=20, seed=1))
    >>> sorted(data.interactions["scenario"].unique().to_list())
    ['game_lobby', 'home_feed', 'search', 'vr_showroom']
    >>> data.transfer.shape
    (4, 4)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import yaml

from mistrec.errors import ConfigError

__all__ = ["DEFAULT_TRANSFER", "MALL_SCENES", "SyntheticConfig", "SyntheticData", "generate", "planted_offdiag",
           "transfer_platform", "virtual_mall"]

SCENARIOS = ("home_feed", "search", "game_lobby", "vr_showroom")
# T[target, source]; rows sum to 1. The sparse vr_showroom leans on home_feed and game_lobby.
DEFAULT_TRANSFER = np.array([
    [0.70, 0.20, 0.10, 0.00],
    [0.30, 0.60, 0.00, 0.10],
    [0.10, 0.00, 0.50, 0.40],
    [0.45, 0.05, 0.30, 0.20],
])
DESCRIPTIONS = {
    "home_feed": "personalised feed on the app's home screen, mixed content",
    "search": "results of a typed search query",
    "game_lobby": "games offered in the multiplayer lobby",
    "vr_showroom": "3D products shown in the virtual-reality showroom",
    "vr_arcade": "multiplayer games played in virtual reality",
    "showroom": "3D products on the shelves of a virtual-reality showroom",
    "cinema": "films and shows playing in the virtual mall's cinema",
}
MALL_SCENES = ("home_feed", "showroom", "game_lobby", "cinema")
# T[target, source] of the virtual mall: the showroom and the cinema lean on the home feed and the game lobby
MALL_TRANSFER = np.array([
    [0.70, 0.10, 0.10, 0.10],
    [0.40, 0.30, 0.20, 0.10],
    [0.20, 0.10, 0.50, 0.20],
    [0.30, 0.10, 0.20, 0.40],
])
START = 1767225600  # 2026-01-01 00:00:00 UTC


@dataclass(frozen=True)
class SyntheticConfig:
    """The synthetic multi-scenario platform's knobs (docs/synthetic.md): users and activity, scenarios' shares,
    item pools and what they share, label noise and bias, the planted transfer matrix and its strength, planted
    triggers and conversions, and the share of users who join each scenario late (new there)."""

    n_users: int = 2000
    events_per_user: int = 60  # Poisson mean, at least 5 per user
    scenarios: tuple[str, ...] = SCENARIOS
    scenario_share: tuple[float, ...] = (0.50, 0.27, 0.15, 0.08)  # of all events
    pool_sizes: tuple[int, ...] = (400, 300, 150, 80)
    label_noise: tuple[float, ...] = (0.3, 0.5, 0.8, 1.0)  # std of logit noise per scenario
    label_bias: tuple[float, ...] = (-3.0, -2.8, -2.6, -1.8)
    dim: int = 8
    choice_sharpness: float = 1.5  # how strongly b[u, s] drives the chosen item
    signal: float = 2.5  # logit scale of the transferred interest
    days: int = 90
    transfer: np.ndarray | None = None
    seed: int = 0
    # Planted causes for explanation tests (0: none). Each of `triggers` pairs links a trigger item in
    # `trigger_source` to a target item in `trigger_target`: a user clicks the target item if and only if the
    # trigger item is in their history. Half of each pair's users teach it (both events early: training data),
    # half are test cases (the target event is their last event). See docs/synthetic.md.
    triggers: int = 0
    trigger_source: str = "home_feed"
    trigger_target: str = "vr_showroom"
    # A second task: each click converts with p = sigmoid(conversion_signal * b[u, s] . v[i] + quality[i] +
    # conversion_bias), quality[i] ~ N(0, 1) a planted item property; no click, no conversion. Drawn from its
    # own random stream, so the rest of the data is the same with or without it.
    conversion: bool = False
    conversion_signal: float = 2.0
    conversion_bias: float = -6.0  # about 25% of clicks convert (chosen items already match b[u, s])
    # Scenario s shows the items of scenario item_pool[s]'s pool (None: its own). A scenario launched on
    # another's catalogue (a VR arcade showing the game lobby's games) then shares its items: with the
    # leave-scenario-out protocol only the scenario is new, not its items (docs/synthetic.md).
    item_pool: tuple[int, ...] | None = None
    # Scenario s's items are chosen by the user's interest in scenario choice_interest[s] (None: s's own). With
    # the same pool, row of the transfer matrix and choice interest as another scenario, s is that scenario's
    # clone in distribution: only its name, description and bias differ.
    choice_interest: tuple[int, ...] | None = None
    # -- the transfer platform's knobs (docs/synthetic.md; `transfer_platform` sets them). Their defaults keep the
    # platform above, draw for draw; each knob draws from its own random stream.
    # "own": items are chosen by b[u, s] (above); "transferred": by the interest that drives the clicks, c[u, s],
    # so that what a user does in one scenario speaks of their clicks in the scenarios whose row of T shares it
    choice: str = "own"
    # the share of each scenario's pool taken from one catalogue that every scenario shows (the same items in the
    # home feed and in search), the rest its own items
    shared_items: float = 0.0
    # > 0: each item's category is the nearest of this many random directions in the latent space (content that
    # links items of different scenarios); 0: the largest of its d latent coordinates (d categories)
    categories: int = 0
    # the planted transfer's strength a: the matrix used is (1 - a) I + a T. 0 is the identity control: every
    # scenario's clicks depend on its own interest only, and nothing can transfer
    strength: float = 1.0
    # per scenario, the share of users new in it: they join it at a time drawn uniformly from `join_window` (a
    # share of the period) and have no event there before, so that users with 0-2 training events in a scenario
    # are evaluated there (they are what transfer is for)
    new_users: tuple[float, ...] | None = None
    join_window: tuple[float, float] = (0.75, 1.0)
    # 0: each event chooses among every item of its pool (Gumbel-max over the pool); n > 0: a pool larger than n
    # is chosen from through n items drawn uniformly from it per event (the same preference as a sampled softmax,
    # in memory and time linear in n instead of the pool: catalogues of 10^5 items, benchmarks/serve_latency.py)
    choice_candidates: int = 0
    # > 0: each item gets a `description` of this many words drawn from its latent vector (`_describe`): each word
    # names one latent direction and its sign, chosen with probability proportional to that coordinate's square, so
    # items close in the latent space (in any scenario) share words. The content-interest link that content
    # features can learn; `description_noise` is the share of words drawn uniformly from the vocabulary instead.
    description_words: int = 0
    description_noise: float = 0.2

    def matrix(self) -> np.ndarray:
        """The planted T[target, source] the clicks follow: (1 - strength) I + strength * transfer."""
        t = DEFAULT_TRANSFER if self.transfer is None else np.asarray(self.transfer, dtype=float)
        s = len(self.scenarios)
        if t.shape != (s, s) or (t < 0).any() or not np.allclose(t.sum(axis=1), 1.0):
            raise ConfigError(f"SyntheticConfig.transfer must be a non-negative {s}x{s} matrix whose rows sum to 1.")
        if not 0.0 <= self.strength <= 1.0:
            raise ConfigError(f"SyntheticConfig.strength must be in [0, 1]. Got {self.strength}.")
        if self.choice not in ("own", "transferred"):
            raise ConfigError(f"SyntheticConfig.choice must be own or transferred. Got {self.choice!r}.")
        if not 0.0 <= self.shared_items <= 1.0:
            raise ConfigError(f"SyntheticConfig.shared_items must be in [0, 1]. Got {self.shared_items}.")
        if self.new_users is not None and (len(self.new_users) != s or any(not 0 <= f <= 1 for f in self.new_users)):
            raise ConfigError(f"SyntheticConfig.new_users needs one share in [0, 1] per scenario ({s}).")
        if self.choice_candidates < 0:
            raise ConfigError(f"SyntheticConfig.choice_candidates must be >= 0. Got {self.choice_candidates}.")
        lo, hi = self.join_window
        if not 0.0 <= lo <= hi <= 1.0:
            raise ConfigError(f"SyntheticConfig.join_window must be (lo, hi) with 0 <= lo <= hi <= 1. Got "
                              f"{self.join_window}.")
        if self.strength != 1.0:
            t = (1.0 - self.strength) * np.eye(s) + self.strength * t
        for name in ("scenario_share", "pool_sizes", "label_noise", "label_bias"):
            if len(getattr(self, name)) != s:
                raise ConfigError(f"SyntheticConfig.{name} needs one value per scenario ({s}).")
        if self.item_pool is not None and (len(self.item_pool) != s or any(
                not 0 <= p < s or self.item_pool[p] != p for p in self.item_pool)):
            raise ConfigError(f"SyntheticConfig.item_pool needs one scenario index per scenario ({s}), each naming a "
                              "scenario that shows its own pool.")
        if self.choice_interest is not None and (len(self.choice_interest) != s or any(
                not 0 <= c < s for c in self.choice_interest)):
            raise ConfigError(f"SyntheticConfig.choice_interest needs one scenario index per scenario ({s}).")
        return t


def transfer_platform(strength: float = 1.0, n_users: int = 4000, seed: int = 0,
                      new_users: tuple[float, ...] = (0.0, 0.2, 0.4, 0.5), **overrides: object) -> SyntheticConfig:
    """The transfer platform (docs/synthetic.md): the four scenarios with half of each pool from one shared
    catalogue, 32 content categories, items chosen by the interest that drives the clicks, and users new in the
    smaller scenarios; `strength` 0 is its identity control. `make demo` runs it at strength 1."""
    values: dict[str, object] = {
        "n_users": n_users, "seed": seed, "strength": strength, "new_users": new_users, "events_per_user": 80,
        "scenario_share": (0.40, 0.25, 0.20, 0.15), "pool_sizes": (400, 300, 200, 120), "shared_items": 0.5,
        "categories": 32, "choice": "transferred", "label_bias": (-4.2, -4.0, -3.8, -3.4),
    }
    values.update(overrides)
    return SyntheticConfig(**values)  # type: ignore[arg-type]


def virtual_mall(n_users: int = 2000, seed: int = 0, **overrides: object) -> SyntheticConfig:
    """The virtual mall (docs/synthetic.md, the VR / game case): four scenes (home feed, VR showroom, game lobby,
    cinema) with disjoint catalogues, items chosen by the interest that drives the clicks, many users new in the
    showroom and the cinema, and item descriptions drawn from the items' latent vectors, so that content is what
    links a showroom item to the home-feed items a user engaged with. `mistrec demo --scenario-set vr` runs it."""
    values: dict[str, object] = {
        "n_users": n_users, "seed": seed, "scenarios": MALL_SCENES, "transfer": MALL_TRANSFER,
        "scenario_share": (0.45, 0.15, 0.25, 0.15), "pool_sizes": (400, 150, 250, 150),
        "label_noise": (0.3, 0.6, 0.5, 0.6), "label_bias": (-4.0, -3.6, -3.8, -3.6), "events_per_user": 60,
        "new_users": (0.0, 0.5, 0.3, 0.5), "choice": "transferred", "categories": 16, "description_words": 10,
    }
    values.update(overrides)
    return SyntheticConfig(**values)  # type: ignore[arg-type]


def planted_offdiag(transfer: np.ndarray) -> np.ndarray:
    """Per target scenario, the share of its planted row of T on other scenarios: 1 - T[t, t]."""
    return 1.0 - np.diag(np.asarray(transfer))


@dataclass
class SyntheticData:
    """A generated platform: its tables, ready to `write` as a dataset YAML with CSVs, and the planted truth
    (the transfer matrix T, users' interests and item vectors) that tests and benchmarks check models against."""

    interactions: pl.DataFrame  # user_id, item_id, scenario, timestamp, label (, conversion)
    users: pl.DataFrame
    items: pl.DataFrame
    scenarios: pl.DataFrame
    transfer: np.ndarray  # planted T[target, source]
    scenario_names: tuple[str, ...]
    user_interest: np.ndarray  # (n_users, S, d)
    item_vectors: np.ndarray  # (n_items, d), row = item index in `items`
    config: SyntheticConfig = field(repr=False)
    triggers: pl.DataFrame | None = None  # one row per planted (user, trigger, target) case

    def write(self, out: str | Path) -> Path:
        """Writes the data as a multi-source, multi-format dataset (csv, positional tsv, parquet) with its
        dataset YAML and the planted matrix; returns the YAML's path."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        inter = self.interactions
        names = self.scenario_names
        first = inter.filter(pl.col("scenario") == names[0])
        conv = ["conversion"] if "conversion" in inter.columns else []
        first.select(pl.col("user_id").alias("uid"), pl.col("item_id").alias("iid"), pl.col("timestamp").alias("ts"),
                     pl.col("label").alias("clicked"), *conv).write_csv(out / f"{names[0]}.csv")
        second = inter.filter(pl.col("scenario") == names[1])
        second.select("user_id", "item_id", "label", (pl.col("timestamp") * 1000).alias("ts_ms"), *conv).write_csv(
            out / f"{names[1]}.tsv", separator="\t", include_header=False)
        rest = inter.filter(pl.col("scenario").is_in(names[2:]))
        rest.select("user_id", "item_id", pl.col("scenario").alias("surface"), "timestamp", "label",
                    *conv).write_parquet(out / "other_surfaces.parquet")
        self.users.write_csv(out / "users.csv")
        self.items.write_csv(out / "items.csv")
        self.scenarios.write_csv(out / "scenarios.csv")
        if self.triggers is not None:
            self.triggers.write_csv(out / "planted_triggers.csv")
        (out / "planted_transfer.json").write_text(json.dumps(
            {"scenarios": list(names), "transfer": self.transfer.tolist(),
             "meaning": "T[target][source]: weight of the source scenario's interest in target-scenario clicks"},
            indent=2) + "\n")
        config = {
            "name": "synthetic-platform",
            "description": "mistrec synthetic data with a planted transfer matrix (planted_transfer.json)",
            "interactions": [
                {"path": f"{names[0]}.csv", "format": "csv", "sep": ",", "header": True, "scenario": names[0],
                 "columns": {"user_id": "uid", "item_id": "iid", "timestamp": "ts", "label": "clicked"}},
                {"path": f"{names[1]}.tsv", "format": "csv", "sep": "\t", "header": False, "scenario": names[1],
                 "columns": {"user_id": 0, "item_id": 1, "label": 2, "timestamp": 3}, "timestamp": {"unit": "ms"}},
                {"path": "other_surfaces.parquet", "format": "parquet",
                 "columns": {"user_id": "user_id", "item_id": "item_id", "scenario": "surface",
                             "timestamp": "timestamp", "label": "label"}},
            ],
            "label": {"column": "label"},
            "timestamp": {"unit": "s"},
            "users": {"path": "users.csv", "columns": {"user_id": "user_id"}, "categorical": ["age_group"],
                      "numeric": ["activity"]},
            "items": {"path": "items.csv", "columns": {"item_id": "item_id"}, "categorical": ["category"],
                      "numeric": ["price"],
                      "text": ["description"] if "description" in self.items.columns else ["title"]},
            "scenarios": {"path": "scenarios.csv", "columns": {"scenario": "scenario"}, "text": ["description"]},
            "history": {"length": 50},
        }
        if conv:  # the second task's column in every source (the tsv by position)
            for src, col in zip(config["interactions"], ("conversion", 4, "conversion"), strict=True):
                src["columns"]["conversion"] = col  # type: ignore[index]
        path = out / "dataset.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path


def generate(cfg: SyntheticConfig | None = None) -> SyntheticData:
    """Generates the synthetic platform; the same config (seed included) gives the same data."""
    cfg = cfg or SyntheticConfig()
    t = cfg.matrix()
    rng = np.random.default_rng(cfg.seed)
    n_s, d = len(cfg.scenarios), cfg.dim
    shared = [round(cfg.shared_items * p) for p in cfg.pool_sizes]  # each pool's items from the shared catalogue
    own_sizes = [p - k for p, k in zip(cfg.pool_sizes, shared, strict=True)]
    pools = np.cumsum((0, *own_sizes))
    items = rng.normal(size=(pools[-1], d)) / np.sqrt(d)  # (I, d)
    interest = rng.normal(size=(cfg.n_users, n_s, d))  # (U, S, d)
    transferred = np.einsum("ts,usd->utd", t, interest) / np.linalg.norm(t, axis=1)[None, :, None]  # (U, S, d)
    pool_items = [np.arange(pools[s], pools[s + 1]) for s in range(n_s)]
    if max(shared):  # the shared catalogue's items follow the scenarios' own ones
        catalogue = np.random.default_rng([cfg.seed, 2]).normal(size=(max(shared), d)) / np.sqrt(d)
        pool_items = [np.concatenate([own, pools[-1] + np.arange(k)]) for own, k in zip(pool_items, shared,
                                                                                       strict=True)]
        items = np.vstack([items, catalogue])

    n_events = np.maximum(5, rng.poisson(cfg.events_per_user, size=cfg.n_users))
    user = np.repeat(np.arange(cfg.n_users), n_events)
    mix = rng.dirichlet(np.asarray(cfg.scenario_share) * 8.0, size=cfg.n_users)  # per-user activity mix
    cum = np.cumsum(mix, axis=1)[user]
    scen = (rng.random(len(user))[:, None] > cum).sum(axis=1).clip(0, n_s - 1)
    ts = START + rng.integers(0, cfg.days * 86400, size=len(user))  # iid event times over the period
    if cfg.new_users is not None and any(cfg.new_users):  # users new in a scenario: no event there before joining
        new_rng = np.random.default_rng([cfg.seed, 3])
        joins = new_rng.uniform(*cfg.join_window, size=(cfg.n_users, n_s)) * cfg.days * 86400
        joins = np.where(new_rng.random((cfg.n_users, n_s)) < np.asarray(cfg.new_users), joins, -1.0)
        keep = ts - START >= joins[user, scen]
        user, scen, ts = user[keep], scen[keep], ts[keep]

    item = np.empty(len(user), dtype=np.int64)
    owner = cfg.item_pool or tuple(range(n_s))
    chooser = cfg.choice_interest or tuple(range(n_s))
    for s in range(n_s):  # one vectorised draw per scenario
        rows = np.flatnonzero(scen == s)
        pool = items[pool_items[owner[s]]]  # (P, d)
        chosen_by = (interest[user[rows], chooser[s]] if cfg.choice == "own" else
                     transferred[user[rows], chooser[s]])
        if 0 < cfg.choice_candidates < len(pool):
            item[rows] = pool_items[owner[s]][_sampled_choice(cfg, s, chosen_by, pool)]
            continue
        logits = cfg.choice_sharpness * chosen_by @ pool.T  # (R, P)
        item[rows] = pool_items[owner[s]][np.argmax(logits + rng.gumbel(size=logits.shape), axis=1)]
    score = np.einsum("nd,nd->n", transferred[user, scen], items[item])
    logit = cfg.signal * score + np.asarray(cfg.label_bias)[scen] + rng.normal(size=len(user)) * np.asarray(
        cfg.label_noise)[scen]
    label = (rng.random(len(user)) < 1 / (1 + np.exp(-logit))).astype(np.int8)

    names = np.asarray(cfg.scenarios)
    item_names = np.array([f"{cfg.scenarios[np.searchsorted(pools, i, side='right') - 1]}_i{i:05d}"
                           if i < pools[-1] else f"shared_i{i:05d}" for i in range(len(items))])
    user_names = np.array([f"u{u:05d}" for u in range(cfg.n_users)])
    interactions = pl.DataFrame({
        "user_id": user_names[user], "item_id": item_names[item], "scenario": names[scen],
        "timestamp": ts.astype(np.int64), "label": label,
    })
    triggers = None
    if cfg.triggers:
        planted, triggers, extra_vectors, extra_names = _plant_triggers(cfg, rng, user_names, d)
        interactions = pl.concat([interactions, planted.cast(interactions.schema)])
        items = np.vstack([items, extra_vectors])
        item_names = np.concatenate([item_names, extra_names])
    if cfg.conversion:
        interactions = _add_conversions(cfg, interactions, interest, items, item_names)
    interactions = interactions.sort("user_id", "timestamp")
    return SyntheticData(
        triggers=triggers,
        interactions=interactions, users=_users(rng, cfg.n_users, n_events),
        items=_items(rng, items, item_names, cfg.categories, cfg.seed, _describe(cfg, items)),
        scenarios=pl.DataFrame({"scenario": list(cfg.scenarios),
                                "description": [DESCRIPTIONS.get(s, s.replace("_", " ")) for s in cfg.scenarios]}),
        transfer=t, scenario_names=tuple(cfg.scenarios), user_interest=interest, item_vectors=items, config=cfg,
    )


def _sampled_choice(cfg: SyntheticConfig, scenario: int, chosen_by: np.ndarray, pool: np.ndarray,
                    block: int = 4096) -> np.ndarray:
    """Each row's chosen index into `pool` (P, d) among `cfg.choice_candidates` items drawn uniformly from it, by
    Gumbel-max over their logits; rows in blocks, so memory is blocks x candidates, not rows x P. Its own random
    stream per scenario."""
    rng = np.random.default_rng([cfg.seed, 4, scenario])
    n, c = len(chosen_by), cfg.choice_candidates
    out = np.empty(n, dtype=np.int64)
    for start in range(0, n, block):
        part = chosen_by[start:start + block]
        cand = rng.integers(0, len(pool), size=(len(part), c))  # (R, C)
        logits = cfg.choice_sharpness * np.einsum("rd,rcd->rc", part, pool[cand])
        out[start:start + block] = cand[np.arange(len(part)), np.argmax(logits + rng.gumbel(size=logits.shape), 1)]
    return out


def _add_conversions(cfg: SyntheticConfig, inter: pl.DataFrame, interest: np.ndarray, items: np.ndarray,
                     item_names: np.ndarray) -> pl.DataFrame:
    """The planted second task (SyntheticConfig.conversion), from its own random stream."""
    rng = np.random.default_rng([cfg.seed, 1])
    quality = rng.normal(size=len(item_names))
    order = np.argsort(item_names)
    i = order[np.searchsorted(item_names[order], inter["item_id"].to_numpy())]
    u = inter["user_id"].str.slice(1).cast(pl.Int64).to_numpy()  # "u00042" -> 42
    s = inter["scenario"].replace_strict(list(cfg.scenarios), list(range(len(cfg.scenarios)))).to_numpy()
    logit = cfg.conversion_signal * np.einsum("nd,nd->n", interest[u, s], items[i]) + quality[i] + cfg.conversion_bias
    converted = (rng.random(len(i)) < 1 / (1 + np.exp(-logit))) & (inter["label"].to_numpy() > 0)
    return inter.with_columns(pl.Series("conversion", converted.astype(np.int8)))


def _users(rng: np.random.Generator, n: int, n_events: np.ndarray) -> pl.DataFrame:
    activity = n_events + rng.normal(0, 2, size=n)
    activity[rng.random(n) < 0.03] = np.nan  # a few missing values for the cleaning step to fill
    outliers = rng.random(n) < 0.01
    activity[outliers] = activity[outliers] * 50  # and a few outliers to clip
    return pl.DataFrame({
        "user_id": [f"u{u:05d}" for u in range(n)],  # one per user, not per event
        "age_group": rng.choice(["18-24", "25-34", "35-49", "50+"], size=n).tolist(),
        "activity": pl.Series(activity, nan_to_null=True),  # missing: an empty cell, not the text NaN
    })


# the descriptions' vocabulary: WORDS[2 j] names latent direction j, WORDS[2 j + 1] its opposite (8 words each)
WORDS = (
    ("racing", "engine", "speed", "turbo", "rally", "motor", "drift", "garage"),
    ("garden", "flower", "herbal", "meadow", "orchard", "blossom", "leafy", "botanic"),
    ("space", "rocket", "galaxy", "orbit", "planet", "astronaut", "comet", "lunar"),
    ("ocean", "surf", "coral", "sailing", "harbour", "tidal", "marine", "reef"),
    ("fantasy", "dragon", "wizard", "castle", "quest", "knight", "magic", "elven"),
    ("kitchen", "recipe", "baking", "spice", "pastry", "grill", "cookware", "dessert"),
    ("puzzle", "logic", "riddle", "strategy", "chess", "maze", "tactics", "cipher"),
    ("fitness", "running", "yoga", "workout", "cycling", "muscle", "stamina", "sprint"),
    ("horror", "zombie", "haunted", "ghost", "creepy", "vampire", "shadow", "nightmare"),
    ("comedy", "cartoon", "funny", "prank", "silly", "jester", "parody", "giggle"),
    ("history", "ancient", "empire", "medieval", "pharaoh", "roman", "dynasty", "relic"),
    ("music", "guitar", "concert", "melody", "rhythm", "piano", "singer", "drums"),
    ("fashion", "dress", "jacket", "sneaker", "denim", "couture", "scarf", "handbag"),
    ("science", "physics", "chemistry", "robot", "laboratory", "circuit", "quantum", "gadget"),
    ("pets", "puppy", "kitten", "parrot", "hamster", "aquarium", "pony", "rabbit"),
    ("travel", "airport", "luggage", "safari", "passport", "resort", "island", "cruise"),
)


def _describe(cfg: SyntheticConfig, vectors: np.ndarray) -> list[str] | None:
    """Each item's description (SyntheticConfig.description_words), from its own random stream."""
    if not cfg.description_words:
        return None
    n, d = vectors.shape
    if 2 * d > len(WORDS):
        raise ConfigError(f"SyntheticConfig.description_words needs dim <= {len(WORDS) // 2} (one word list per "
                          f"latent direction and sign). Got dim {d}.")
    rng = np.random.default_rng([cfg.seed, 5])
    w = vectors ** 2
    p = w / w.sum(axis=1, keepdims=True)
    k = cfg.description_words
    dims = (rng.random((n, k, 1)) > np.cumsum(p, axis=1)[:, None, :]).sum(axis=2).clip(0, d - 1)  # (n, k)
    lists = 2 * dims + (np.take_along_axis(vectors, dims, axis=1) < 0)  # the word list of direction and sign
    noise = rng.random((n, k)) < cfg.description_noise
    lists = np.where(noise, rng.integers(0, 2 * d, size=(n, k)), lists)
    words = rng.integers(0, len(WORDS[0]), size=(n, k))
    vocab = np.array(WORDS)
    return [" ".join(row) for row in vocab[lists, words]]


def _items(rng: np.random.Generator, vectors: np.ndarray, names: np.ndarray, categories: int = 0,
           seed: int = 0, descriptions: list[str] | None = None) -> pl.DataFrame:
    if categories:  # the nearest of `categories` random directions: content shared by items of every scenario
        directions = np.random.default_rng([seed, 4]).normal(size=(vectors.shape[1], categories))
        category = np.argmax(vectors @ (directions / np.linalg.norm(directions, axis=0)), axis=1)
    else:
        category = np.argmax(vectors, axis=1)
    return pl.DataFrame({
        "item_id": names.tolist(),
        "category": [f"c{c}" for c in category],
        "price": np.round(np.exp(rng.normal(3, 1, size=len(names))), 2),
        "title": [f"item {i} of topic {c}" for i, c in enumerate(category)],
        **({"description": descriptions} if descriptions is not None else {}),
    })


def _plant_triggers(cfg: SyntheticConfig, rng: np.random.Generator, user_names: np.ndarray,
                    d: int) -> tuple[pl.DataFrame, pl.DataFrame, np.ndarray, np.ndarray]:
    """Trigger -> target pairs with a known cause: see SyntheticConfig.triggers."""
    for name in (cfg.trigger_source, cfg.trigger_target):
        if name not in cfg.scenarios:
            raise ConfigError(f"SyntheticConfig trigger scenario {name!r} is not one of {', '.join(cfg.scenarios)}.")
    n, p = len(user_names), cfg.triggers
    pair = np.arange(n) % p
    teacher = (np.arange(n) // p) % 2 == 0  # half of each pair's users teach it, half are test cases
    triggered = rng.random(n) < 0.5
    period = cfg.days * 86400
    # teachers: trigger at 20-40% of the period, target 1-3 days later (both early: training data);
    # test cases: trigger at 70-85%, target one day after the period (the user's last event: test data)
    t_trigger = START + np.where(teacher, rng.uniform(0.2, 0.4, n), rng.uniform(0.70, 0.85, n)) * period
    t_target = np.where(teacher, t_trigger + rng.uniform(1, 3, n) * 86400, START + period + 86400)
    trigger_names = np.array([f"{cfg.trigger_source}_trigger{k:02d}" for k in range(p)])
    target_names = np.array([f"{cfg.trigger_target}_target{k:02d}" for k in range(p)])
    rows = {
        "user_id": np.concatenate([user_names[triggered], user_names]),
        "item_id": np.concatenate([trigger_names[pair[triggered]], target_names[pair]]),
        "scenario": np.concatenate([np.full(int(triggered.sum()), cfg.trigger_source),
                                    np.full(n, cfg.trigger_target)]),
        "timestamp": np.concatenate([t_trigger[triggered], t_target]).astype(np.int64),
        "label": np.concatenate([np.ones(int(triggered.sum())), triggered]).astype(np.int8),
    }
    cases = pl.DataFrame({"user_id": user_names, "trigger_item": trigger_names[pair], "target_item": target_names[pair],
                          "trigger_scenario": cfg.trigger_source, "target_scenario": cfg.trigger_target,
                          "triggered": triggered, "role": np.where(teacher, "teach", "test"),
                          "trigger_time": t_trigger.astype(np.int64), "target_time": t_target.astype(np.int64)})
    vectors = rng.normal(size=(2 * p, d)) / np.sqrt(d)
    return pl.DataFrame(rows), cases, vectors, np.concatenate([trigger_names, target_names])

"""What every model shares: a typed config dataclass checked key by key, and `forward(batch) -> logits`."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from mistrec.batch import Batch
from mistrec.features import EncodedRows, FeatureEncoder, IndexedRows

__all__ = [
    "RANKED_WITHOUT_TILT",
    "RANKED_WITH_EXPOSURE",
    "RANKING_REASON_TEXT",
    "Calibrates",
    "CandidateScorer",
    "ChoosesExposure",
    "ChoosesOnRanking",
    "Explains",
    "Explanation",
    "FitsDirectly",
    "GatedModel",
    "Model",
    "ModelConfig",
    "OrdersRanking",
    "Prepares",
    "PreparesInChunks",
    "RankingOption",
    "ReportsGates",
    "Retrieves",
    "ScoreModel",
    "ScoresPairs",
    "ranking_order",
    "ranking_reasons",
]


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Fields every model config has."""

    # settings added after runs were saved whose default is not how those runs score: the value a saved run.json
    # without the key loads with (mistrec.train.artifact.load_run), so that it scores as it did when evaluated
    saved_without: ClassVar[dict[str, Any]] = {}

    embedding_dim: int = 16
    dropout: float = 0.0


# -- capabilities ---------------------------------------------------------------------------------------
# What a model can do beyond `forward(batch) -> logits`, asked with isinstance(model, Capability) by the trainer,
# evaluation and the service: no attribute probing, no model names in control flow.


class CandidateScorer(Protocol):
    """What `Model.candidate_scorer(items)` returns: query rows (U) -> their (U, C) logits against the C rows of
    `items`; with `columns` (a long tensor of positions among those rows), against those candidates only, in that
    order (U, len(columns)): a service ranking the few hundred items a retrieval stage found, out of a catalogue
    whose side the scorer prepared once."""

    def __call__(self, queries: Batch, columns: torch.Tensor | None = None) -> torch.Tensor: ...


@runtime_checkable
class OrdersRanking(Protocol):
    """Ranks candidates by more than its click logit (mist's `rank_exposure`, and its `prior_tilt` where the ranking
    refused it): `ranking_scores(logits, scenario, items, queries)` turns the (U, C) logits of the U `queries` in
    `scenario` (U,) against the model's item indices `items` (C,) into the scores a ranking orders them by (a model
    whose scores depend on more of the query than its scenario raises without `queries`). What the logits say (a
    click probability) is unchanged: a full-catalogue ranking (`mistrec evaluate`), the validation choices made on
    one, and the service's order read these scores; the service still reports each item's click probability."""

    def ranking_scores(self, logits: torch.Tensor, scenario: torch.Tensor, items: torch.Tensor,
                       queries: Batch | None = None) -> torch.Tensor: ...

    def ranking_reasons(self, scenario: torch.Tensor, queries: Batch | None = None) -> list[tuple[str, ...]]:
        """Why each of the U queries' ranking differs from its click logit, in the order `ranking_scores` applies
        them (RANKED_WITHOUT_TILT, RANKED_WITH_EXPOSURE); () for a query ranked by the logit itself. The model says
        it, per query, rather than a caller guessing from the data's kind: the service's `ranked_by` and the
        evaluation's notes read it."""
        ...


# OrdersRanking.ranking_reasons: the mechanisms that make a ranking differ from the click probability, and what
# each does to it in words (the service's `ranked_by`, the evaluation's notes)
RANKED_WITHOUT_TILT = "without_tilt"  # mist's `prior_tilt_guard: ranking`: the tilt the ranking refused left out
RANKED_WITH_EXPOSURE = "with_exposure"  # mist's `rank_exposure`: log P(click | shown) + log P(shown)
RANKING_REASON_TEXT = {
    RANKED_WITHOUT_TILT: ("without the lean of a new user's item prior on their activity elsewhere, which the "
                          "scenario's validation ranking refused (mist's prior_tilt_guard: ranking)"),
    RANKED_WITH_EXPOSURE: "times the item's share of the scenario's training rows (mist's rank_exposure)",
}


def ranking_reasons(model: object, scenario: torch.Tensor, queries: Batch | None = None) -> list[tuple[str, ...]]:
    """Each query's reasons its ranking differs from the click logit (OrdersRanking.ranking_reasons); () for every
    query of a model that orders by the logit."""
    if isinstance(model, OrdersRanking):
        return model.ranking_reasons(scenario, queries)
    return [()] * int(scenario.shape[0])


@runtime_checkable
class ChoosesExposure(Protocol):
    """An OrdersRanking model whose order per scenario is chosen on the validation queries' ranking (mist's
    `rank_exposure: auto`, mistrec.eval.ranking.choose_exposure): `exposed` (S,) says, per scenario, whether its
    ranking adds the exposure (None: nothing to choose); `ranking_queries` bounds the queries ranked a scenario."""

    exposed: torch.Tensor | None
    ranking_queries: int


def ranking_order(model: object, logits: torch.Tensor, scenario: torch.Tensor, items: torch.Tensor,
                  queries: Batch | None = None) -> torch.Tensor:
    """The scores a ranking orders (U, C) logits by: the model's `ranking_scores` (OrdersRanking), else the logits.
    A model that orders by the logits returns the very tensor it was given, so callers tell the cases apart by
    identity, and ask `ranking_reasons` why only where the order differs."""
    return model.ranking_scores(logits, scenario, items, queries) if isinstance(model, OrdersRanking) else logits


@runtime_checkable
class FitsDirectly(Protocol):
    """Fitted in closed form from the training rows, once, instead of by epochs of gradient steps."""

    def fit_direct(self, rows: IndexedRows) -> None: ...


@runtime_checkable
class Prepares(Protocol):
    """Derives structure from the training rows before training (a graph, an item prior, per-user counts)."""

    def setup(self, rows: IndexedRows) -> None: ...


@runtime_checkable
class PreparesInChunks(Protocol):
    """A `Prepares` model whose structure is a sum over the training rows (counts): `setup_chunks` is handed them a
    chunk at a time and ends as `setup` on all of them would, so that streamed training never holds the rows."""

    def setup_chunks(self, chunks: Iterable[IndexedRows]) -> None: ...


@runtime_checkable
class Calibrates(Protocol):
    """Maps a raw score that is not a click logit to one after training (ScoreModel's Platt calibration)."""

    def calibrate(self, enc: FeatureEncoder, rows: EncodedRows, max_rows: int = ...) -> None: ...


@runtime_checkable
class SelectsOnValidation(Protocol):
    """Settles, per scenario and after training, choices its training leaves open, by the validation rows' AUC
    (mist's `cold_id: auto`, `cold_scale: auto` and `warm_scale: auto`), as the epoch is chosen.
    `validation_rounds()` gives the choices in the order they are made, each a tuple of options: for each round the
    trainer scores the validation rows once per option (`use_option`) and hands every scenario's AUC under each, and
    its number of rows whose score the options move, to `settle`, which keeps each scenario's choice (a later round
    is scored with the earlier rounds' choices in place) and returns what it chose, for the run's record. No rounds:
    nothing to do."""

    def validation_rounds(self) -> tuple[tuple[str, ...], ...]: ...

    def use_option(self, option: str) -> None: ...

    def settle(self, options: tuple[str, ...], aucs: dict[str, dict[int, float]], moved: dict[int, int],
               scenario_names: Sequence[str]) -> dict[str, Any]: ...


# an option of a ChoosesOnRanking choice: mist's weight c of `co_items`' term, or with `co_own` the pair (c, w)
RankingOption = float | tuple[float, float]


@runtime_checkable
class ChoosesOnRanking(Protocol):
    """Settles, per scenario and after training, a choice about the top of a ranking, which the validation rows'
    AUC cannot make (mist's `co_scale: auto`): `mistrec.eval.ranking.choose_on_ranking` scores the validation
    queries under every option of `ranking_options()` (the trained state first) at once
    (`ranking_scorer(items)(queries, columns)`: one (U, C) score matrix per option, each what the model scores in
    that option, `use_ranking_option`, against the candidates `items` or its rows `columns`: first a screen of the
    scenario's most-taken items, then the full catalogue for the queries the screen cannot settle) and ranks each;
    `settle_ranking` gets each scenario's per-query NDCG@10, user and activity group under each option, keeps each
    scenario's choice and returns what it chose, for the run's record. No options: nothing to do.
    `ranking_queries`: how many validation queries a scenario are ranked at most."""

    ranking_queries: int

    def ranking_options(self) -> tuple[RankingOption, ...]: ...

    def ranking_scorer(self, items: Batch) -> Callable[[Batch, torch.Tensor | None], list[torch.Tensor]]: ...

    def use_ranking_option(self, option: RankingOption) -> None: ...

    def settle_ranking(self, ndcg: dict[RankingOption, dict[int, dict[str, Any]]], scenario_names: Sequence[str]
                       ) -> dict[str, Any]: ...


@runtime_checkable
class GuardsOnRanking(Protocol):
    """A ChoosesOnRanking model whose choice made on the validation rows' AUC (SelectsOnValidation) may cost the
    ranking, which AUC does not see (mist's `prior_tilt: auto`: a new user's prior leaning on their activity
    elsewhere reorders their own candidates). `guard_states()` names the states the choice is weighed in (the
    choice as made first, then the trained state; empty where the choice left every scenario in the trained
    state); `mistrec.eval.ranking.ranking_choices` makes the ranking choice (`choose_on_ranking`) once in each
    (`use_guard_state`) and hands every state's record to `settle_guard`, which keeps, per scenario, the state whose
    chosen option ranks the validation queries better, puts the model in it and returns the merged record."""

    def guard_states(self) -> tuple[str, ...]: ...

    def use_guard_state(self, state: str) -> None: ...

    def settle_guard(self, records: dict[str, dict[str, Any]], scenario_names: Sequence[str]) -> dict[str, Any]: ...


@runtime_checkable
class ScoresPairs(Protocol):
    """Scores a BPR pair in one pass (graph models propagate once for the positive and the negative)."""

    def score_pair(self, pos: Batch, neg: Batch) -> tuple[torch.Tensor, torch.Tensor]: ...


@runtime_checkable
class ReportsGates(Protocol):
    """Gated mixtures: `gate_values(b)` gives each row's gate values by gate name; `gate_columns` names them."""

    gate_columns: dict[str, list[str]]

    def gate_values(self, b: Batch) -> dict[str, torch.Tensor]: ...


@runtime_checkable
class Retrieves(Protocol):
    """Scores by the inner product of a user vector and an item vector (two towers), so that a catalogue's item
    vectors can be indexed for nearest-neighbour search (`mistrec index`)."""

    def user_vector(self, b: Batch) -> torch.Tensor: ...

    def item_vector(self, b: Batch) -> torch.Tensor: ...


@dataclasses.dataclass(frozen=True)
class Explanation:
    """What drove each row's logit (B rows, L history positions, S scenarios, P polarity pools per scenario).

    event_weights: (B, L) each event's attention weight (0 on padding); event_effect: (B, L) its weight in the
    interest u (attention weight times its pool's interest-level share); source_mass: (B, S) the attention mass
    on each source scenario's events; source_share: (B, S) each source's interest-level share; pool_share:
    (B, S, P) the same per polarity pool; transfer_terms: (B, S) each source's term in the transfer read-out's
    logit, as it enters the logit (mist's `cold_scale` included; None without the read-out); event_co: (B, L)
    each liked event's part of mist's item-to-item term (`co_items`), in logit units (None without it).
    """

    logit: torch.Tensor
    event_weights: torch.Tensor
    event_effect: torch.Tensor
    source_mass: torch.Tensor
    source_share: torch.Tensor
    pool_share: torch.Tensor
    transfer_terms: torch.Tensor | None = None
    event_co: torch.Tensor | None = None


@runtime_checkable
class Explains(Protocol):
    """Says, per row, which history events and source scenarios its logit came from; `tokens` (B, L, E), when
    given, replace the behaviour tokens (attribution along a path of token embeddings)."""

    def explain(self, b: Batch, tokens: torch.Tensor | None = None) -> Explanation: ...

    def tokens(self, b: Batch) -> torch.Tensor:
        """The behaviour tokens (B, L, E) that `explain(b, tokens)` reads by default."""
        ...


class Model(nn.Module):
    """A model reads a Batch and returns one logit per sample, (B,).

    What else it can do is declared by the capability protocols above (FitsDirectly, Prepares, Calibrates,
    ScoresPairs, ReportsGates, Explains), and `loss_kind` ('bce' on labels, 'bpr' on positives against
    sampled negatives, or 'in_batch': positives only, the model's `stage_loss` against the batch's other rows).
    """

    name: str = ""
    reads_history: bool = False  # False: batches for it skip gathering the history
    reads_history_side: bool = False  # False: they skip the history items' side features too
    loss_kind: str = "bce"
    data_buffers: tuple[str, ...] = ()  # buffers whose size comes from the data (a graph): loaded at saved size
    # Models that can learn the second task (conversion, ESMM) set `supports_conversion`; one built on data with
    # conversions (FeatureSpec.has_conversion) has a conversion head: `predicts_conversion`, `forward_tasks`.
    supports_conversion: bool = False
    predicts_conversion: bool = False
    # the training settings the model is tuned for ("lr", "batch_size"), used where the train config leaves them
    # unset (TrainConfig.resolved); empty: the trainer's defaults
    train_defaults: ClassVar[dict[str, Any]] = {}

    @classmethod
    def encoder_args(cls, cfg: ModelConfig) -> dict[str, object]:
        """Arguments of the FeatureEncoder fitted for this model (mist: how new scenarios are resolved)."""
        return {}

    # Training stages, trained one after the other (the cross-domain models pre-train, then fit their transfer):
    # before each the trainer calls `begin_stage`, which sets what is trainable and returns the training rows of
    # the stage (None: all); `begin_stage(None, ...)` ends the last one. One stage: the usual single training.
    stages: tuple[str, ...] = ("train",)

    def begin_stage(self, stage: str | None, rows: IndexedRows) -> np.ndarray | None:
        return None

    def stage_options(self, stage: str) -> dict[str, Any]:
        """A stage's own training settings, where its model fixes them (the published models' learning rate and
        batch size): "lr", "batch_size", and "early_stopping" (False: all the epochs, for a pre-training that the
        validation rows cannot judge). Empty: the training config's."""
        return {}

    def stage_loss(self, b: Batch) -> torch.Tensor | None:
        """Per-row losses (B,) of the current stage, when it does not train on the click labels' BCE (None)."""
        return None

    def training_view(self, b: Batch) -> tuple[Batch, torch.Tensor | None]:
        """In training, the batch the pointwise loss is computed on and, when it adds rows, each of its rows' row of
        `b` (B2,), whose losses are summed into that row's (mist's `blank_rows`: some rows once more, blank). The
        default: `b` itself, None."""
        return b, None

    def add_mixed_scenario(self, weights: torch.Tensor) -> int | None:
        """Gives a scenario described only after training an index read as the mix `weights` (S,) of the
        trained scenarios (`FeatureEncoder.describe_scenario`); returns the index, or None when the model reads
        no scenario mix (the scenario then takes the shared path, index 0). In memory only: not saved."""
        return None

    @property
    def reads_scenario_mix(self) -> bool:
        """Whether some scenario index is read as a mix of the trained scenarios (mist's step 6)."""
        return False

    def forward_tasks(self, b: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """(click logits, post-click conversion logits), each (B,), computing the shared parts once. ESMM (Ma et
        al., SIGIR 2018): p(click and conversion) = sigmoid(click) * sigmoid(conversion), trained on every row."""
        raise NotImplementedError(f"{type(self).__name__} predicts clicks only")

    def score_candidates(self, queries: Batch, items: Batch) -> torch.Tensor:
        """(U, C) logits of each of the U query rows (user, scenario, history) against each of C candidate
        items, in evaluation mode: full-catalogue ranking. This default scores the U x C crossed batch;
        a model that can share work across a query's candidates (its history) overrides it."""
        return self(queries.cross(items, history=self.reads_history)).view(len(queries), len(items))

    def candidate_scorer(self, items: Batch, max_rows: int = 32768) -> CandidateScorer:
        """A function from query rows (U) to their (U, C) logits against every row of `items`, in evaluation
        mode, for scoring many query batches against one catalogue (full-catalogue ranking, a service's item
        pool). This default calls `score_candidates` on blocks of at most `max_rows` query x item rows, so that a
        large catalogue never builds one huge block; a model that can prepare the candidates' side once overrides
        it."""

        def score(queries: Batch, columns: torch.Tensor | None = None) -> torch.Tensor:
            chosen = items if columns is None else items.subset(columns)
            per_block = max(1, max_rows // max(len(queries), 1))
            with torch.no_grad():
                return torch.cat([self.score_candidates(queries, chosen.subset(slice(a, a + per_block))).float()
                                  for a in range(0, len(chosen), per_block)], dim=1)

        return score

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        for name in self.data_buffers:
            saved = state_dict.get(prefix + name)
            if saved is not None:
                self._buffers[name] = torch.empty_like(saved)
        super()._load_from_state_dict(state_dict, prefix, *args)


class ScoreModel(Model):
    """A model whose raw `score` is not a click logit (a ranking score, a similarity, a rate): in evaluation
    mode it goes through a Platt calibration a * score + b, fitted by `calibrate` on training rows, so that
    its LogLoss means something. Training reads the raw score; the map is increasing (a fitted slope at or below 0
    is replaced by a nearly flat increasing one at the base rate), so rankings and AUC are the raw score's."""

    calibration: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("calibration", torch.tensor([1.0, 0.0]))

    def score(self, b: Batch) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, b: Batch) -> torch.Tensor:
        s = self.score(b)
        return s if self.training else self.calibration[0] * s + self.calibration[1]

    def calibrate(self, enc: FeatureEncoder, rows: EncodedRows, max_rows: int = 200_000) -> None:
        from sklearn.linear_model import LogisticRegression

        idx = np.random.default_rng(0).permutation(len(rows))[:max_rows]
        self.eval()
        with torch.no_grad():
            s = torch.cat([self.score(enc.batch(rows, idx[i:i + 16384], history=self.reads_history,
                                                history_side=self.reads_history_side))
                           for i in range(0, len(idx), 16384)]).numpy()
        if len(np.unique(rows.label[idx])) == 2:
            lr = LogisticRegression().fit(s.reshape(-1, 1), rows.label[idx])
            a, b = float(lr.coef_[0, 0]), float(lr.intercept_[0])
            if a <= 0:  # a score that falls as the labels rise: a negative slope would reverse the model's ranking
                y = float(rows.label[idx].mean())  # so the map keeps its order, nearly flat at the base rate
                a = 0.01 / max(float(s.std()), 1e-12)  # a spread of about 0.01 of logit: float32 keeps it
                b = float(np.log(y / (1 - y))) - a * float(s.mean())
            self.calibration = torch.tensor([a, b])


class GatedModel(Model):
    """A gated mixture (MMoE, PLE, SAR-Net, PEPNet): one pass, `_run`, gives the logits and, when asked, fills in
    each row's gate values by gate name; `forward` and `gate_values` (ReportsGates) are that pass."""

    gate_columns: dict[str, list[str]]

    def forward(self, b: Batch) -> torch.Tensor:
        return self._run(b, None)

    def gate_values(self, b: Batch) -> dict[str, torch.Tensor]:
        """Each row's gate values, by gate name (ReportsGates)."""
        record: dict[str, torch.Tensor] = {}
        self._run(b, record)
        return record

    def _run(self, b: Batch, record: dict[str, torch.Tensor] | None) -> torch.Tensor:
        raise NotImplementedError

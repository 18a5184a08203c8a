"""Two-stage recommendation: a retrieval run (two_tower with its `mistrec index`) narrows a scenario's catalogue to
the N items nearest the user's vector, and the ranking run (mist) scores those (docs/serving.md, "Retrieval").

The retrieval run reads the same history the ranker does (training events, and logged events when serving) with
its own encoder; both runs must have been trained on the same prepared data (the same item indices). Where a
scenario's catalogue has at most N items, or the user has no history for the towers to read, retrieval is skipped
and the ranker scores the catalogue; the response says which happened.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch

from mistrec.batch import Batch
from mistrec.errors import ArtifactError, ConfigError
from mistrec.eval.index import load_index
from mistrec.models.base import CandidateScorer, Model, Retrieves, ranking_order, ranking_reasons

if TYPE_CHECKING:
    from mistrec.eval.explain import Logged, Recommender

__all__ = ["Retriever", "TwoStageScorer"]


class Retriever:
    """A retrieval run and its per-scenario indexes: `retrieve(...)` gives the N items of a scenario's catalogue
    nearest the user (dataset item indices, nearest first) and what it did, for the response."""

    def __init__(self, rec: Recommender, run_dir: str | Path, n: int = 500) -> None:
        if n < 1:
            raise ConfigError(f"--retrieve must be >= 1 (items retrieved per request). Got {n}.")
        if not isinstance(rec.model, Retrieves):
            raise ConfigError(f"{run_dir} holds a {rec.meta['model']} run: retrieval needs a two_tower run (with "
                              "`mistrec index`).")
        self.rec, self.run_dir, self.n = rec, str(run_dir), n
        self.indexes = load_index(run_dir)

    @classmethod
    def load(cls, run_dir: str | Path, ranker: Recommender, n: int = 500) -> Retriever:
        """The retrieval run at `run_dir` for `ranker`, which must share its prepared data."""
        from mistrec.eval.explain import Recommender

        rec = Recommender.load(run_dir)
        if rec.enc.dataset_fingerprint_ != ranker.enc.dataset_fingerprint_:
            raise ArtifactError(f"The retrieval run {run_dir} was trained on other data than the ranking run "
                                f"(fingerprints {rec.enc.dataset_fingerprint_} and "
                                f"{ranker.enc.dataset_fingerprint_}): train both on the same prepared directory.")
        return cls(rec, run_dir, n)

    def retrieve(self, user: str, scenario: str, at: int, logged: list[Logged] | None, catalogue: np.ndarray
                 ) -> tuple[np.ndarray | None, dict[str, Any]]:
        """(the retrieved items, nearest first; None: rank the whole catalogue) and the stage's description."""
        about: dict[str, Any] = {"model": self.rec.meta["model"], "run": self.run_dir, "catalogue": int(catalogue.size)}
        if scenario not in self.indexes:
            return None, {**about, "skipped": f"no index for {scenario} (a scenario described after training): "
                                              "the whole catalogue is ranked"}
        if catalogue.size <= self.n:
            return None, {**about, "skipped": f"the catalogue has {catalogue.size} items, not more than the "
                                              f"{self.n} retrieved: the whole catalogue is ranked"}
        query = self.rec.query_batch(user, scenario, at, logged)
        if query is None:
            return None, {**about, "skipped": "no history to place the user by"}
        assert isinstance(self.rec.model, Retrieves)
        index, items = self.indexes[scenario]
        with torch.no_grad():
            vector = np.ascontiguousarray(self.rec.model.user_vector(query).numpy(), dtype=np.float32)
        rows = index.search(vector, min(self.n, items.size))[1][0]
        found = items[rows[rows >= 0]]
        found = found[np.isin(found, catalogue)]
        kind = type(index).__name__
        return found, {**about, "index": kind, "retrieved": int(found.size)}


class TwoStageScorer(Model):
    """Ranking evaluation of the two stages: scores a catalogue as the ranking model does, except that every item
    the retrieval model's index does not return among a query's `n` nearest scores -inf, so it ranks after all
    retrieved ones (and a relevant item not retrieved ranks last: ties count against it). Used with
    `rank_full_catalogue` (benchmarks/two_stage_quality.py). Both runs must share their prepared data: the
    queries' batches are built once, by the ranker's encoder, and `item_map` (its dataset -> model item indices)
    places the index's items among the candidates."""

    def __init__(self, ranker: Model, retriever: Model, indexes: dict[str, tuple[Any, np.ndarray]],
                 scenarios: list[str], item_map: np.ndarray, n: int) -> None:
        super().__init__()
        if not isinstance(retriever, Retrieves):
            raise ConfigError(f"The retrieval model must be two_tower, not {retriever.name}.")
        self.ranker, self.retriever, self.indexes, self.scenarios, self.n = ranker, retriever, indexes, scenarios, n
        self.item_map = item_map
        self.reads_history = True
        self.reads_history_side = True
        self.name = f"{ranker.name} on {n} retrieved by {retriever.name}"

    def forward(self, b: Batch) -> torch.Tensor:
        return cast(torch.Tensor, self.ranker(b))

    def ranking_scores(self, logits: torch.Tensor, scenario: torch.Tensor, items: torch.Tensor,
                       queries: Batch | None = None) -> torch.Tensor:
        """OrdersRanking: as the ranker orders a ranking (the items not retrieved stay at -inf)."""
        return ranking_order(self.ranker, logits, scenario, items, queries)

    def ranking_reasons(self, scenario: torch.Tensor, queries: Batch | None = None) -> list[tuple[str, ...]]:
        """OrdersRanking: the ranker's reasons."""
        return ranking_reasons(self.ranker, scenario, queries)

    def candidate_scorer(self, items: Batch, max_rows: int = 32768) -> CandidateScorer:
        rank = self.ranker.candidate_scorer(items, max_rows)
        # each scenario index's rows as candidate columns (-1: not a candidate), computed once per scenario
        column_of = np.full(int(self.item_map.max()) + 1, -1, dtype=np.int64)
        column_of[items.item.numpy()] = np.arange(len(items))
        places = {name: column_of[self.item_map[indexed]] for name, (_, indexed) in self.indexes.items()}

        def score(queries: Batch, columns: torch.Tensor | None = None) -> torch.Tensor:
            assert isinstance(self.retriever, Retrieves)
            s = int(queries.scenario[0])
            if bool((queries.scenario != s).any()):
                raise ConfigError("TwoStageScorer scores one scenario's queries at a time.")
            name = self.scenarios[s - 1]
            index, indexed = self.indexes[name]
            with torch.no_grad():
                vectors = np.ascontiguousarray(self.retriever.user_vector(queries).numpy(), dtype=np.float32)
            found = index.search(vectors, min(self.n, indexed.size))[1]  # (U, n) index rows, -1 past the end
            cols = np.where(found >= 0, places[name][found], -1)
            rows = np.repeat(np.arange(len(queries)), found.shape[1])
            kept = cols.reshape(-1) >= 0
            keep = torch.zeros(len(queries), len(items), dtype=torch.bool)
            keep[torch.from_numpy(rows[kept]), torch.from_numpy(cols.reshape(-1)[kept])] = True
            if columns is not None:  # only those candidates scored, and their columns of what was retrieved
                keep = keep.index_select(1, columns)
            return rank(queries, columns).masked_fill(~keep, float("-inf"))

        return score

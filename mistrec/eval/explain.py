"""Recommendations with explanations, and the model-level transfer matrix.

For one user, one scenario and k recommended items, mist's explanation gives:
- the history events that drove each item, ranked by integrated gradients (Sundararajan et al., 2017,
  through Captum) of the item's logit over the events' token embeddings, each with its attention weight and
  its effect weight (attention weight x the interest-level share of its pool);
- the share of each source scenario (mist's interest-level attention), and the leave-source-out effect: how
  much the item's click probability falls when that scenario's events are removed from the history;
- one human sentence ("mostly because of 3 items you engaged with in home_feed last week").

Attention says where the model looked; leave-source-out and integrated gradients say what changed the score.
They are reported side by side because attention alone can mislead.

`leave_source_out_matrix` (in mistrec.eval.evaluate, re-exported here) measures, over a whole split,
T[target, source] = AUC of the target scenario minus its AUC when the source scenario's events are dropped
from every history.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import torch

from mistrec.batch import Batch
from mistrec.data.history import HistoryEvents
from mistrec.data.prepared import PreparedDataset
from mistrec.errors import ConfigError
from mistrec.eval.attribution import integrated_gradients
from mistrec.eval.evaluate import leave_source_out_matrix, load_run_and_data
from mistrec.eval.rwlock import ReadWriteLock
from mistrec.features import EncodedRows, FeatureEncoder
from mistrec.models.base import (
    RANKED_WITH_EXPOSURE,
    RANKED_WITHOUT_TILT,
    RANKING_REASON_TEXT,
    CandidateScorer,
    Explains,
    Model,
    ranking_order,
    ranking_reasons,
)

if TYPE_CHECKING:
    from mistrec.eval.two_stage import Retriever

__all__ = ["Logged", "Recommender", "leave_source_out_matrix"]

DAY = 86_400


def ranked_by(reasons: Sequence[str]) -> str:
    """`ranked_by` in a recommendation whose model orders the query's ranking by more than its click probability:
    what each of its reasons (OrdersRanking.ranking_reasons, in the order the model applied them) did, in
    RANKING_REASON_TEXT's words."""
    text = "the click probability " + ", then ".join(RANKING_REASON_TEXT.get(r, r) for r in reasons)
    return text + ": each item's score is its click probability" + (
        ", tilt included" if RANKED_WITHOUT_TILT in reasons else "")


RANKED_BY = ranked_by((RANKED_WITH_EXPOSURE,))  # the exposure alone (logged labels)
RANKED_BY_UNTILTED = ranked_by((RANKED_WITHOUT_TILT,))  # a refused tilt alone (implicit data)


@dataclass(frozen=True)
class Logged:
    """An event logged after training (by the service): it enters the user's history at once, with the token
    fields training uses (scenario, time, label, graded value). `item` and `scenario` are raw names; an item the
    run does not know is read as the unknown item."""

    item: str
    scenario: str
    time: float
    label: float  # 1 for a click or conversion, 0 for an impression without one; a rating's label by the data's rule
    value: float | None = None


@dataclass
class Recommender:
    """A trained run and its prepared data, ready to recommend and explain.

    Example:
        >>> rec = Recommender.load("runs/mist")                                    # doctest: +SKIP
        >>> out = rec.recommend("u00042", "vr_showroom", k=10, explain=True)       # doctest: +SKIP
        >>> out["items"][0]["explanation"]["sentence"]                             # doctest: +SKIP
        'mostly because of 3 items you engaged with in home_feed last week (61% of the interest)'
    """

    model: Model
    enc: FeatureEncoder
    ds: PreparedDataset
    meta: dict[str, Any]
    retriever: Retriever | None = None  # the first stage (two_stage.Retriever): candidates for the model to rank

    @classmethod
    def load(cls, run_dir: str | Path, data: str | Path | None = None, backend: str = "torch") -> Recommender:
        """The run and its data; `backend` "onnx" scores with ONNX Runtime from the run's `mistrec export`."""
        if backend not in ("torch", "onnx"):
            raise ConfigError(f"backend must be torch or onnx. Got {backend!r}.")
        model, enc, meta, ds = load_run_and_data(run_dir, data)
        if backend == "onnx":
            from mistrec.eval.export import OnnxModel

            model = OnnxModel(model, run_dir, torch.get_num_threads())
        rec = cls(model=model, enc=enc, ds=ds, meta=meta)
        rec._index()
        return rec

    def _index(self) -> None:
        self.model.eval()  # once, here: it walks every module, too slow to repeat per request
        users = self.ds.vocab["user_id"]
        self._user_index = dict(zip(users["value"].to_list(), users["index"].to_list(), strict=True))
        items = self.ds.vocab["item_id"].sort("index")
        self._item_names = np.array(["<unknown>", *items["item_id"].cast(pl.Utf8).to_list()], dtype=object)
        self._item_index = {str(n): i for i, n in enumerate(self._item_names) if i > 0}
        self._scenarios = list(self.ds.scenarios)
        self._now = int(self.ds.events.ts.max()) + 1 if len(self.ds.events) else 0
        train = self.ds.split("train")
        if "sampled" in train.columns:
            train = train.filter(~pl.col("sampled"))
        self._catalogue = {s: np.unique(self.ds.interactions.filter(pl.col("scenario") == s)["item"].to_numpy())
                           for s in range(1, len(self._scenarios) + 1)}
        counts = train.group_by("scenario", "item").agg(pl.len().alias("n"), pl.col("label").sum().alias("pos"))
        self._popular = {int(s): g.sort(["pos", "n", "item"], descending=[True, True, False])["item"].to_numpy()
                         for (s,), g in counts.group_by("scenario")}
        everywhere = train.group_by("item").agg(pl.len().alias("n"), pl.col("label").sum().alias("pos"))
        self._popular_all = everywhere.sort(["pos", "n", "item"], descending=[True, True, False])["item"].to_numpy()
        # scenarios described after training: name -> (description, how it is read, the model's index for it)
        self._described: dict[str, tuple[str, dict[str, Any], int]] = {}
        self._lock = ReadWriteLock()
        self._active: dict[int, list[str]] = {}  # `active_users` by n, computed on first use
        # per scenario, its catalogue's scorer, the candidates' side prepared once (Model.candidate_scorer)
        self._scorers: dict[int, CandidateScorer] = {}

    def describe_scenario(self, name: str, description: str) -> dict[str, Any]:
        """Makes `name`, a scenario the data does not have (launched after training), one to recommend in, read
        through its description as a new scenario of the training data would be (the run's `new_scenarios`:
        with 'text', a mix of the trained scenarios weighted by how alike their descriptions are; with
        'shared', the default, the shared path). Returns how it is read. Its catalogue is every item the model
        knows, unless `recommend` gets candidates. Held in memory, not written to the run. Thread-safe: the
        service answers requests from a thread pool, and two requests may describe scenarios at once."""
        # the scenario list, the catalogues and the model's mix grow together, and not while a request scores
        with self._lock.writing():
            return self._describe(name, description)

    def _describe(self, name: str, description: str) -> dict[str, Any]:
        if name in self._described:
            if self._described[name][0] != description.strip():
                raise ConfigError(f"The new scenario {name!r} was described differently before: give it "
                                  "another name, or load the run again.")
            return self._described[name][1]
        if name in self._scenarios:
            raise ConfigError(f"{name!r} is a scenario of the data: it needs no description.")
        weights, how = self.enc.describe_scenario(name, description)
        index = 0  # the shared path
        if weights is not None:
            added = self.model.add_mixed_scenario(torch.tensor(weights, dtype=torch.float32))
            if added is None:
                how = {"by": "shared", "why": f"{self.meta['model']} reads no scenario mix (mist does)"}
            else:
                index = added
        elif self.enc.new_scenarios == "shared":
            how = {**how, "why": "new_scenarios: shared (the run's setting; train with new_scenarios: text to read "
                                 "descriptions)"}
        how = {**how, "described_after_training": True}
        self._scorers.clear()  # the model's scenario mix has grown
        position = len(self._scenarios) + 1  # past the data's scenarios: its catalogue and popular items
        self._scenarios.append(name)
        self._catalogue[position] = np.flatnonzero(self.enc.item_map_ > 0)
        self._popular[position] = self._popular_all
        self._described[name] = (description.strip(), how, index)
        return how

    # -- public ------------------------------------------------------------------------------------------
    def recommend(self, user: str, scenario: str, k: int = 10, explain: bool = False, at: int | None = None,
                  top_events: int = 5, ig_steps: int = 32, description: str | None = None,
                  candidates: list[str] | None = None, logged: list[Logged] | None = None) -> dict[str, Any]:
        """The top-k items of `scenario` for `user` (raw ids), optionally explained.

        The history is the user's last L training events before `at` (default: just after the last event in
        the data, or in `logged`), merged with their `logged` events before `at`, in time order: a click logged
        in one scenario is in the history of the next request in another. A user the run never saw is read
        from their logged events alone (the unknown user's id). Items the user already met in the scenario
        (in training or logged) are not recommended. A scenario the data does
        not have needs its `description` (`describe_scenario`). `candidates` (raw item ids) narrows the
        catalogue: a new scenario's is otherwise every item the model knows.
        """
        started = time.perf_counter()
        if description is not None:  # refuses a scenario of the data and a second, different description
            self.describe_scenario(scenario, description)
        with self._lock.reading():  # the model's scenario mix does not change under this request's forward
            return self._recommend(user, scenario, k, explain, at, top_events, ig_steps, candidates, logged,
                                   started)

    def _recommend(self, user: str, scenario: str, k: int, explain: bool, at: int | None, top_events: int,
                   ig_steps: int, candidates: list[str] | None, logged: list[Logged] | None,
                   started: float) -> dict[str, Any]:
        if scenario not in self._scenarios:
            raise ConfigError(f"Unknown scenario {scenario!r}. Known scenarios: {', '.join(self._scenarios)}. "
                              "To recommend in a new one, describe it (--describe TEXT).")
        s_idx = self._scenarios.index(scenario) + 1
        catalogue = self._catalogue[s_idx] if candidates is None else self._candidate_items(candidates)
        if not isinstance(k, int) or k < 1 or k > catalogue.size:
            raise ConfigError(f"k must be an int from 1 to {catalogue.size} (the size of {scenario}'s catalogue). "
                              f"Got {k!r}.")
        logged = list(logged or [])
        at = self._at(at, logged)
        u_idx, start, end, query, events = self._query(user, s_idx, at, logged)
        out: dict[str, Any] = {"user": user, "scenario": scenario, "k": k, "model": self.meta["model"],
                               "at": _iso(at), "history_events": end - start}
        resolution = (self._described[scenario][1] if scenario in self._described
                      else getattr(self.enc, "scenario_resolution_", {}).get(scenario))
        if resolution is not None:  # a scenario without training rows: say how the model reads it
            out["new_scenario"] = resolution
        if query is None:  # cold start: an unknown user without logged events, or no event before `at`
            popular = self._popular.get(s_idx, catalogue)
            popular = (popular if candidates is None else popular[np.isin(popular, catalogue)])[:k]
            why = ("unknown user" if u_idx is None else "no history before this time")
            where = "overall" if scenario in self._described else f"in {scenario}"
            out.update(cold_start=True, note=f"{why}: the most popular items {where}",
                       items=[{"rank": r + 1, "item": str(self._item_names[i]), "score": None,
                               "explanation": {"sentence": f"popular in {scenario} ({why})"} if explain else None}
                              for r, i in enumerate(popular)])
            out["elapsed_ms"] = round(1000 * (time.perf_counter() - started), 2)
            return out
        seen = self._seen_items(u_idx, s_idx)
        seen = np.union1d(seen, [self._item_index.get(e.item, 0) for e in logged if e.scenario == scenario])
        whole = candidates is None  # the scenario's whole catalogue, through its prepared scorer
        retrieved = None
        if whole and self.retriever is not None:  # two stages: retrieve, then rank what was found
            retrieved, stage = self.retriever.retrieve(user, scenario, at, logged, catalogue)
            out["stages"] = {"retrieval": stage, "ranking": {"model": self.meta["model"]}}
            if retrieved is not None and int(np.isin(retrieved, seen, invert=True).sum()) < k:
                stage["skipped"] = (f"fewer than {k} of the {retrieved.size} retrieved items are new to the user: "
                                    "the whole catalogue is ranked")
                retrieved = None
            if retrieved is not None:
                full, catalogue, whole = catalogue, np.sort(retrieved), False
        new = ~np.isin(catalogue, seen)
        if int(new.sum()) < k:  # said in the output, not silently
            new[:] = True
            out["note"] = (f"only {np.setdiff1d(catalogue, seen).size} items of {scenario} are new to this user: "
                           "items met before are included")
        pool = catalogue[new]
        if "stages" in out:
            out["stages"]["ranking"]["scored"] = int(pool.size)
        if whole:  # seen items dropped after scoring
            logits = self._scorer(s_idx, catalogue)(query)[0][torch.from_numpy(new)]
        elif retrieved is not None:  # the retrieved items' columns of the scenario's prepared scorer
            columns = torch.from_numpy(np.searchsorted(full, pool))
            logits = self._scorer(s_idx, full)(query, columns)[0]
        else:
            logits = self.model.candidate_scorer(self.enc.item_batch(pool))(query)[0]
        row = logits.unsqueeze(0)
        ordered = ranking_order(self.model, row, query.scenario, torch.from_numpy(self.enc.item_map_[pool]), query)
        if ordered is not row:  # the model ranks this query by more than the click logit (OrdersRanking): it says how
            out["ranked_by"] = ranked_by(ranking_reasons(self.model, query.scenario, query)[0])
        top = torch.topk(ordered[0], k).indices.numpy()
        items = [{"rank": r + 1, "item": str(self._item_names[pool[i]]),
                  "score": float(torch.sigmoid(logits[i]))} for r, i in enumerate(top)]
        if retrieved is not None:  # where the first stage had each item
            order = {int(item): r + 1 for r, item in enumerate(retrieved)}
            for item, i in zip(items, top, strict=True):
                item["retrieval_rank"] = order[int(pool[i])]
        out.update(cold_start=False, items=items)
        if explain:
            explanations = self._explain(query, pool[top], end, at, top_events, ig_steps, events)
            for item, e in zip(items, explanations, strict=True):
                item["explanation"] = e
        out["elapsed_ms"] = round(1000 * (time.perf_counter() - started), 2)
        return out

    def _scorer(self, s_idx: int, catalogue: np.ndarray) -> CandidateScorer:
        """The scenario's whole-catalogue scorer, its candidates' side prepared on first use and kept."""
        scorer = self._scorers.get(s_idx)
        if scorer is None:
            scorer = self._scorers[s_idx] = self.model.candidate_scorer(self.enc.item_batch(catalogue))
        return scorer

    def _seen_items(self, u_idx: int | None, s_idx: int) -> np.ndarray:
        """The items the user met in the scenario in the run's data: a slice of the events, which are sorted by
        user (a search, not a scan of every event per request)."""
        if u_idx is None:
            return np.zeros(0, np.int64)
        ev = self.ds.events
        # the bounds in the events' own dtype: a Python int list would make numpy cast the whole column per call
        lo, hi = np.searchsorted(ev.user, np.array([u_idx, u_idx + 1], dtype=ev.user.dtype))
        return np.asarray(ev.item[lo:hi][ev.scenario[lo:hi] == s_idx], dtype=np.int64)

    def _candidate_items(self, candidates: list[str]) -> np.ndarray:
        if not candidates:
            raise ConfigError("candidates is empty: give at least k items.")
        unknown = [c for c in candidates if str(c) not in self._item_index]
        if unknown:
            raise ConfigError(f"Unknown candidate item(s) {', '.join(map(str, unknown[:5]))}"
                              f"{' and more' if len(unknown) > 5 else ''}: candidates must be items of the data.")
        return np.unique([self._item_index[str(c)] for c in candidates])

    def explain_items(self, user: str, scenario: str, items: list[str], at: int | None = None,
                      top_events: int = 5, ig_steps: int = 32, logged: list[Logged] | None = None
                      ) -> list[dict[str, Any]]:
        """Explanations of the given items (raw ids) for `user` in `scenario` at time `at`, recommended or not, from
        the history `recommend` reads (with the user's `logged` events)."""
        with self._lock.reading():
            return self._explain_items(user, scenario, items, at, top_events, ig_steps, list(logged or []))

    def _explain_items(self, user: str, scenario: str, items: list[str], at: int | None, top_events: int,
                       ig_steps: int, logged: list[Logged]) -> list[dict[str, Any]]:
        if scenario not in self._scenarios:
            raise ConfigError(f"Unknown scenario {scenario!r}. Known scenarios: {', '.join(self._scenarios)}.")
        names = self._item_index
        unknown = [i for i in items if i not in names]
        if unknown:
            raise ConfigError(f"Unknown item(s) {', '.join(unknown[:5])}.")
        at = self._at(at, logged)
        _, _, end, query, events = self._query(user, self._scenarios.index(scenario) + 1, at, logged)
        if query is None:
            return [{"sentence": "no history: nothing to explain"} for _ in items]
        return self._explain(query, np.array([names[i] for i in items]), end, at, top_events, ig_steps, events)

    def history_items(self, user: str, at: int | None = None) -> list[str]:
        """The items of the user's history at time `at` (the last L training events before it), oldest first."""
        at = self._now if at is None else int(at)
        u_idx = self._user_index.get(user)
        if u_idx is None:
            return []
        start, end = self.ds.events.windows(np.array([u_idx]), np.array([at]), self.enc.spec_.history_length)
        return [str(self._item_names[i]) for i in self.ds.events.item[start[0]:end[0]]]

    def training_events(self, user: str, limit: int | None = None) -> list[dict[str, Any]]:
        """The user's last `limit` (default L) training events, oldest first: item, scenario, time (ISO), label.
        Empty for a user the run never saw."""
        u_idx = self._user_index.get(user)
        if u_idx is None:
            return []
        start, end = self.ds.events.windows(np.array([u_idx]), np.array([self._now]),
                                            limit or self.enc.spec_.history_length)
        ev = self.ds.events
        return [{"item": str(self._item_names[ev.item[j]]), "scenario": self._scenarios[int(ev.scenario[j]) - 1],
                 "time": _iso(int(ev.ts[j])), "label": float(ev.label[j])} for j in range(start[0], end[0])]

    def item_indices(self, items: list[str]) -> np.ndarray:
        """The dataset indices of raw item ids (all known: ids from this Recommender's answers)."""
        return np.array([self._item_index[i] for i in items], dtype=np.int64)

    def catalogue_size(self, scenario: str) -> int:
        """How many items `recommend` ranks in the scenario (a described one: every item the model knows)."""
        if scenario not in self._scenarios:
            raise ConfigError(f"Unknown scenario {scenario!r}. Known scenarios: {', '.join(self._scenarios)}.")
        return int(self._catalogue[self._scenarios.index(scenario) + 1].size)

    def active_users(self, n: int) -> list[str]:
        """Up to `n` users with training events in the most scenarios (then the most events): the ones whose
        recommendations show transfer best, for a picker."""
        if n not in self._active:  # a group-by over every event: once per n, not per request
            self._active[n] = self._most_active(n)
        return self._active[n]

    def _most_active(self, n: int) -> list[str]:
        ev = self.ds.events
        per = pl.DataFrame({"user": ev.user, "scenario": ev.scenario}).group_by("user").agg(
            pl.col("scenario").n_unique().alias("scenarios"), pl.len().alias("events"))
        top = per.sort(["scenarios", "events", "user"], descending=[True, True, False]).head(n)["user"].to_list()
        names = {i: u for u, i in self._user_index.items()}
        return [str(names[i]) for i in top if i in names]

    def _at(self, at: int | None, logged: list[Logged]) -> int:
        """The time a request is scored at: given, else just after the data's and the logged events' last."""
        if at is not None:
            return int(at)
        return max([self._now, *(int(np.floor(e.time)) + 1 for e in logged)])

    def query_batch(self, user: str, scenario: str, at: int, logged: list[Logged] | None = None) -> Batch | None:
        """The one-row query Batch of `user` in `scenario` (a scenario of the data) at time `at`, their history
        merged with `logged`; None when they have no history then (what a second run reads: two_stage)."""
        return self._query(user, self._scenarios.index(scenario) + 1, at, logged)[3]

    def _query(self, user: str, s_idx: int, at: int, logged: list[Logged] | None = None
               ) -> tuple[int | None, int, int, Batch | None, HistoryEvents]:
        """The user's index (None: unknown to the run), their history window [start, end) before `at`, the
        one-row query Batch (None when there is no history then), and the events the window points into: the
        training events, or with `logged` events the user's own merged history."""
        u_idx = self._user_index.get(user)
        events, start, end = self.ds.events, np.zeros(1, np.int64), np.zeros(1, np.int64)
        if u_idx is not None:
            start, end = self.ds.events.windows(np.array([u_idx]), np.array([at]), self.enc.spec_.history_length)
        before = [e for e in logged or [] if e.time < at]
        if before and u_idx is not None and end[0] > start[0]:
            # a logged event that the run's data already holds (a run retrained on the store) is read once
            ev = self.ds.events
            known = set(zip(ev.item[start[0]:end[0]].tolist(), ev.scenario[start[0]:end[0]].tolist(),
                            ev.ts[start[0]:end[0]].tolist(), strict=True))
            before = [e for e in before if (self._item_index.get(e.item, 0), self._scenarios.index(e.scenario) + 1
                                            if e.scenario in self._scenarios else 0, int(np.floor(e.time)))
                      not in known]
        if before:
            events = self._merged(u_idx or 0, int(start[0]), int(end[0]), before)
            start, end = np.array([max(0, len(events) - self.enc.spec_.history_length)]), np.array([len(events)])
        if end[0] == start[0]:
            return u_idx, int(start[0]), int(end[0]), None, events
        # a scenario described after training is not in the encoder's map: its model index replaces it
        described = s_idx > len(self.ds.scenarios)
        rows = EncodedRows(user=np.array([u_idx or 0]), item=np.zeros(1, np.int64),
                           scenario=np.array([0 if described else s_idx]), label=np.zeros(1, np.float32),
                           timestamp=np.array([at]), hist_start=start, hist_end=end,
                           conversion=np.full(1, np.nan, np.float32), events=events)
        b = self.enc.batch(rows, np.arange(1), history=self.model.reads_history,
                           history_side=self.model.reads_history_side)
        if described:
            b = dataclasses.replace(b, scenario=torch.full_like(b.scenario, self._described[
                self._scenarios[s_idx - 1]][2]))
        return u_idx, int(start[0]), int(end[0]), b, events

    def _merged(self, u_idx: int, start: int, end: int, logged: list[Logged]) -> HistoryEvents:
        """One user's training events [start, end) and logged events as their own event pool, in time order
        (training first at equal times). A logged event's scenario must be one of the data's."""
        unknown = sorted({e.scenario for e in logged if e.scenario not in self.ds.scenarios})
        if unknown:  # a scenario described after training has no tokens of its own: its events cannot be read
            raise ConfigError(f"Logged event(s) in unknown scenario(s) {', '.join(unknown)}. Known scenarios: "
                              f"{', '.join(self.ds.scenarios)}.")
        ev, n = self.ds.events, len(logged)
        label = np.array([e.label for e in logged], np.float32)
        return HistoryEvents.build(
            user=np.full(end - start + n, u_idx, np.int64),
            ts=np.concatenate([ev.ts[start:end], [int(np.floor(e.time)) for e in logged]]).astype(ev.ts.dtype),
            item=np.concatenate([ev.item[start:end], [self._item_index.get(e.item, 0) for e in logged]]).astype(
                ev.item.dtype),
            scenario=np.concatenate([ev.scenario[start:end], [self._scenarios.index(e.scenario) + 1
                                                              for e in logged]]).astype(ev.scenario.dtype),
            label=np.concatenate([ev.label[start:end], label]).astype(ev.label.dtype),
            row=np.arange(end - start + n, dtype=np.int64),
            value=np.concatenate([ev.value[start:end], [e.label if e.value is None else e.value
                                                        for e in logged]]).astype(np.float32))

    # -- explanations -----------------------------------------------------------------------------------
    def _explain(self, query: Batch, items: np.ndarray, end: int, at: int, top_events: int,
                 ig_steps: int, ev: HistoryEvents) -> list[dict[str, Any]]:
        if not self.model.reads_history:
            return [{"note": f"{self.meta['model']} reads no behaviour history: nothing to attribute"}] * len(items)
        b = query.cross(self.enc.item_batch(items))  # one row per recommended item, the same history
        length = b.hist_mask.shape[1]
        pos = np.arange(end - length, end)  # right-aligned window positions into the event table
        with torch.no_grad():
            parts = self.model.explain(b) if isinstance(self.model, Explains) else None
            base = torch.sigmoid(parts.logit if parts is not None else self.model(b)).numpy()
            lso = {}
            for s in torch.unique(b.hist_scenarios[b.hist_mask]).tolist():
                drop = b.hist_mask & (b.hist_scenarios == s)
                lso[s] = base - torch.sigmoid(self.model(b.without_events(drop))).numpy()
        ig = integrated_gradients(self.model, b, ig_steps) if parts is not None else None
        # mist's item-to-item term (`co_items`) does not go through the tokens integrated gradients move along; each
        # event's part of it is exact, in the same logit units: an event's effect is the sum of the two
        co = None if parts is None or parts.event_co is None else parts.event_co.numpy()
        effect = ig if ig is None or co is None else ig + co
        out = []
        for r in range(len(items)):
            mask = b.hist_mask[r].numpy()
            cols = np.flatnonzero(mask)
            # events by their effect on this item's logit, else most recent first
            order = cols[np.argsort(-effect[r, cols], kind="stable")] if effect is not None else cols[::-1]
            events = []
            for c in order[:top_events]:
                j = int(pos[c])
                e: dict[str, Any] = {"item": str(self._item_names[ev.item[j]]),
                                     "scenario": self._scenarios[int(ev.scenario[j]) - 1], "time": _iso(int(ev.ts[j])),
                                     "label": float(ev.label[j])}
                if parts is not None:
                    e["attention"] = float(parts.event_weights[r, c])
                    e["weight"] = float(parts.event_effect[r, c])
                if ig is not None:
                    e["integrated_gradients"] = float(ig[r, c])
                if co is not None:
                    e["co_items"] = float(co[r, c])
                events.append(e)
            entry: dict[str, Any] = {"events": events, "leave_source_out": {
                self.enc.spec_.scenario_names[s - 1]: float(v[r]) for s, v in lso.items()}}
            if parts is not None:
                share = parts.source_share[r].numpy()
                entry["source_share"] = {name: float(share[i + 1]) for i, name in enumerate(self.ds.scenarios)
                                         if share[i + 1] > 0}  # histories hold the data's scenarios only
            entry["sentence"] = self._sentence(entry, order, pos, at, ev)
            out.append(entry)
        return out

    def _sentence(self, entry: dict[str, Any], order: np.ndarray, pos: np.ndarray, at: int,
                  ev: HistoryEvents) -> str:
        # The source named is the one whose removal lowers the score most (an effect, not an attention weight).
        share = entry.get("source_share") or {}
        lso = entry["leave_source_out"]
        if not lso:
            return "no history to explain it"
        source = max(lso, key=lambda s: lso[s])
        if lso[source] <= 0:
            return "no scenario's history raises this score: it comes from the item and user features"
        amount = f"without them the score drops by {lso[source]:.3f}"
        if source in share:
            amount += f"; {share[source]:.0%} of the attention"
        mine = [int(pos[c]) for c in order[:5] if self._scenarios[int(ev.scenario[int(pos[c])]) - 1] == source]
        if not mine:
            mine = [int(pos[c]) for c in order if self._scenarios[int(ev.scenario[int(pos[c])]) - 1] == source][:1]
        n = len(mine)
        liked = sum(ev.label[j] > 0 for j in mine) > n / 2
        when = _when(at - int(np.median([ev.ts[j] for j in mine]))) if mine else ""
        verb = "engaged with" if liked else "saw"
        return f"mostly because of {n} item{'s' if n != 1 else ''} you {verb} in {source} {when} ({amount})".replace(
            "  ", " ")


def _when(gap: int) -> str:
    days = gap / DAY
    if days < 1:
        return "in the last day"
    if days < 7:
        return "this week"
    if days < 14:
        return "last week"
    if days < 31:
        return "this month"
    if days < 62:
        return "last month"
    if days < 365:
        return f"{int(days // 30)} months ago"
    return f"{int(days // 365)} year{'s' if days >= 730 else ''} ago"


def _iso(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts, tz=dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

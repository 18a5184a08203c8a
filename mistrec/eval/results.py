"""What evaluation returns, typed: frozen dataclasses that write (`to_json`) and read (`from_json`) exactly the
JSON of DESIGN.md section 5, so that files written before they existed still load.

    Evaluation / BenchmarkResult      the document of `mistrec evaluate` / `mistrec benchmark`
      runs: RunResult                 one trained model and seed (or the error that stopped it)
        metrics: Metrics              one split's metrics
          overall, by_scenario: ScenarioMetrics
          by_activity: ActivityMetrics     the same per activity group (mistrec.eval.activity)
          conversion: ConversionMetrics    the second task, with a conversion head
          sampled: Metrics                 ranking against sampled candidate lists, when asked

A metric with no value (AUC with one class) is NaN in memory and null in the file (`nan_to_none`), with the
reason beside it in the block's `undefined` map ({"auc": "needs both labels among the rows: 0 of 12 rows
positive"}), derived from the block's counts when written, so it is never stale. A metrics block's fields that
were not computed are None and absent from the file. Keys a reader does not know are kept, in `extra`, and
written back: nothing in a file is lost by loading and saving it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, ClassVar

from mistrec.train.artifact import finite_json as nan_to_none  # the one walk: NaN and +-inf as null

__all__ = ["ActivityMetrics", "BenchmarkResult", "ConversionMetrics", "ConversionScores", "Evaluation", "Metrics",
           "RunResult", "ScenarioMetrics", "nan_to_none"]

Json = dict[str, Any]


def _num(x: Any) -> Any:
    """A number as read from a file: null (a metric with no value) is NaN in memory."""
    return float("nan") if x is None else x


def _in_order(out: Json, order: tuple[str, ...] | None) -> Json:
    """`out` with its keys in the order a file had them (`order`), keys the file did not have last."""
    if order is None:
        return out
    first = {k: out[k] for k in order if k in out}
    return {**first, **{k: v for k, v in out.items() if k not in first}}


def _flat_from(cls: type, doc: Mapping[str, Any], numbers: tuple[str, ...] = ()) -> Any:
    """An instance of a flat record: the known keys as fields (null as NaN in `numbers`), the rest in `extra`."""
    names = [f.name for f in fields(cls) if f.name not in ("extra", "present")]
    values = {k: _num(doc[k]) if k in numbers else doc[k] for k in names if k in doc}
    return cls(**values, extra={k: v for k, v in doc.items() if k not in names}, present=tuple(doc))


@dataclass(frozen=True)
class ScenarioMetrics:
    """The metrics of one block of rows (a scenario, all of them, or an activity group of either).

    Pointwise: AUC, LogLoss, rows and positives; gAUC (with the users used and those left out for having one
    class only) and ECE where the full evaluation ran; `mean_scenario_auc` overall; `users` in activity groups.
    Ranking metrics (hr@K, ndcg@K, recall@K, mrr, coverage@K, ...) and their counts are in `ranking`, by name.
    """

    auc: float | None = None
    logloss: float | None = None
    n: int | None = None
    positives: int | None = None
    mean_scenario_auc: float | None = None
    gauc: float | None = None
    ece: float | None = None
    gauc_users: int | None = None
    gauc_users_excluded_one_class: int | None = None
    users: int | None = None
    ranking: Mapping[str, Any] = field(default_factory=dict)
    order: tuple[str, ...] | None = field(default=None, compare=False, repr=False)  # a file's key order

    def get(self, name: str) -> Any:
        """A metric by its JSON name (pointwise or ranking); None where it was not computed."""
        if name in self.ranking:
            return self.ranking[name]
        return getattr(self, name, None) if name in _POINTWISE else None

    def with_ranking(self, values: Mapping[str, Any]) -> ScenarioMetrics:
        """The block with ranking metrics added (or replaced)."""
        return replace(self, ranking={**self.ranking, **values})

    def undefined(self) -> dict[str, str]:
        """Why each metric without a value (NaN, null in the file) has none, by its JSON name."""
        rows = f"{self.positives or 0:,} of {self.n or 0:,} rows positive"
        why = {
            "auc": f"needs both labels among the rows: {rows}",
            "mean_scenario_auc": "needs a scenario with both labels among its rows",
            "gauc": (f"needs a user with both labels among the rows: none of {self.gauc_users_excluded_one_class:,} "
                     f"users has both" if self.gauc_users_excluded_one_class is not None else
                     "needs a user with both labels among the rows"),
            "logloss": "needs at least one row",
            "ece": "needs at least one row",
        }
        out = {k: why.get(k, "no row or query to compute it on") for k, v in
               [*((k, getattr(self, k)) for k in _POINTWISE), *self.ranking.items()]
               if isinstance(v, float) and v != v}
        return out

    def to_json(self) -> Json:
        out = {k: getattr(self, k) for k in _POINTWISE if getattr(self, k) is not None}
        reasons = self.undefined()
        return _in_order({**out, **self.ranking, **({"undefined": reasons} if reasons else {})}, self.order)

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> ScenarioMetrics:
        known = {k: _num(v) for k, v in doc.items() if k in _POINTWISE}
        # `undefined` is derived from the values when written (to_json), not kept
        ranking = {k: v for k, v in doc.items() if k not in _POINTWISE and k != "undefined"}
        return cls(**known, ranking=ranking, order=tuple(doc))


_POINTWISE = tuple(f.name for f in fields(ScenarioMetrics) if f.name not in ("ranking", "order"))


def _blocks(doc: Mapping[str, Any]) -> dict[str, ScenarioMetrics]:
    return {k: ScenarioMetrics.from_json(v) for k, v in doc.items()}


def _blocks_json(blocks: Mapping[str, ScenarioMetrics]) -> Json:
    return {k: v.to_json() for k, v in blocks.items()}


@dataclass(frozen=True)
class ActivityMetrics:
    """Metrics per activity group ("0", "1-2", ...: the user's training events in the scenario), per scenario
    and over all scenarios; a group with no rows is absent. `groups` lists every group (None in the ranking
    blocks of sampled candidate lists, which do not repeat it)."""

    by_scenario: Mapping[str, Mapping[str, ScenarioMetrics]]
    overall: Mapping[str, ScenarioMetrics]
    groups: tuple[str, ...] | None = None

    def to_json(self) -> Json:
        out: Json = {} if self.groups is None else {"groups": list(self.groups)}
        out["by_scenario"] = {s: _blocks_json(g) for s, g in self.by_scenario.items()}
        out["overall"] = _blocks_json(self.overall)
        return out

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> ActivityMetrics:
        return cls(by_scenario={s: _blocks(g) for s, g in doc.get("by_scenario", {}).items()},
                   overall=_blocks(doc.get("overall", {})),
                   groups=tuple(doc["groups"]) if "groups" in doc else None)

    def merged(self, other: ActivityMetrics) -> ActivityMetrics:
        """These blocks with `other`'s metrics added (the ranking metrics of the same groups)."""

        def merge(a: Mapping[str, ScenarioMetrics], b: Mapping[str, ScenarioMetrics]) -> dict[str, ScenarioMetrics]:
            out = dict(a)
            for g, block in b.items():
                out[g] = out[g].with_ranking(block.to_json()) if g in out else block
            return out

        scenarios = dict.fromkeys([*self.by_scenario, *other.by_scenario])
        return replace(self, by_scenario={s: merge(self.by_scenario.get(s, {}), other.by_scenario.get(s, {}))
                                          for s in scenarios},
                       overall=merge(self.overall, other.overall))


@dataclass(frozen=True)
class ConversionScores:
    """The second task on one block of rows whose conversion is known: CVR AUC on the clicked rows, CTCVR AUC and
    LogLoss on every row, with the rows, clicks and conversions."""

    cvr_auc: float
    ctcvr_auc: float
    ctcvr_logloss: float
    n: int
    clicks: int
    conversions: int
    extra: Mapping[str, Any] = field(default_factory=dict)
    present: tuple[str, ...] | None = field(default=None, compare=False, repr=False)  # a file's keys, in order

    def to_json(self) -> Json:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("extra", "present")}
        return _in_order({**out, **self.extra}, self.present)

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> ConversionScores:
        return _flat_from(cls, doc, numbers=("cvr_auc", "ctcvr_auc", "ctcvr_logloss"))


@dataclass(frozen=True)
class ConversionMetrics:
    """The second task, overall and per scenario."""

    overall: ConversionScores
    by_scenario: Mapping[str, ConversionScores]

    def to_json(self) -> Json:
        return {"overall": self.overall.to_json(), "by_scenario": {k: v.to_json() for k, v in self.by_scenario.items()}}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> ConversionMetrics:
        return cls(overall=ConversionScores.from_json(doc["overall"]),
                   by_scenario={k: ConversionScores.from_json(v) for k, v in doc["by_scenario"].items()})


@dataclass(frozen=True)
class Metrics:
    """One split's metrics: overall and per scenario, and where computed by activity group, for the conversion
    task, and against sampled candidate lists; `notes` say what could not be computed and why."""

    overall: ScenarioMetrics
    by_scenario: Mapping[str, ScenarioMetrics]
    by_activity: ActivityMetrics | None = None
    conversion: ConversionMetrics | None = None
    sampled: Metrics | None = None
    notes: Mapping[str, str] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    present: tuple[str, ...] | None = field(default=None, compare=False, repr=False)  # a file's keys, in order

    def scenario(self, name: str) -> ScenarioMetrics:
        """A scenario's block, or "overall"."""
        return self.overall if name == "overall" else self.by_scenario[name]

    def to_json(self) -> Json:
        out: Json = {"overall": self.overall.to_json(), "by_scenario": _blocks_json(self.by_scenario)}
        for name in ("by_activity", "conversion", "sampled"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value.to_json()
        if self.notes is not None:
            out["notes"] = dict(self.notes)
        return _in_order({**out, **self.extra}, self.present)

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Metrics:
        known = ("overall", "by_scenario", "by_activity", "conversion", "sampled", "notes")
        return cls(
            overall=ScenarioMetrics.from_json(doc.get("overall", {})), by_scenario=_blocks(doc.get("by_scenario", {})),
            by_activity=ActivityMetrics.from_json(doc["by_activity"]) if "by_activity" in doc else None,
            conversion=ConversionMetrics.from_json(doc["conversion"]) if "conversion" in doc else None,
            sampled=Metrics.from_json(doc["sampled"]) if "sampled" in doc else None,
            notes=doc.get("notes"), extra={k: v for k, v in doc.items() if k not in known}, present=tuple(doc))


@dataclass(frozen=True)
class RunResult:
    """One evaluated run: the model and seed, its training cost and curve, the split's metrics, and what the
    model says about transfer (mist's attention matrix; the AUC lost without each source scenario, for models
    that read the history; expert models' gates). A run that failed in a benchmark has only `error`."""

    model: str
    seed: int
    run_dir: str | None = None
    error: str | None = None
    train_seconds: float | None = None
    train_samples_per_second: float | None = None
    peak_rss_mb: float | None = None
    best_epoch: int | None = None
    curve: list[Json] | None = None
    eval_seconds: Json | None = None
    split: str | None = None
    scenario_names: list[str] | None = None
    metrics: Metrics | None = None
    transfer_matrix: Json | None = None
    leave_source_out: Json | None = None
    gates: Json | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    present: tuple[str, ...] | None = field(default=None, compare=False, repr=False)  # a file's keys, in order

    @property
    def ok(self) -> bool:
        """Whether the run trained and was evaluated (False: `error` says why not)."""
        return self.metrics is not None

    def to_json(self) -> Json:
        if self.error is not None:  # a failed run, as the benchmark writes it
            return {"model": self.model, "seed": self.seed, "error": self.error, "run_dir": self.run_dir,
                    **self.extra}
        out: Json = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("error", "extra", "present") or (f.name in _IF_COMPUTED and value is None) or \
                    (self.present is not None and f.name not in self.present):
                continue
            out[f.name] = value.to_json() if isinstance(value, Metrics) else value
        return _in_order({**out, **self.extra}, self.present)

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> RunResult:
        run = _flat_from(cls, doc, numbers=("train_seconds", "train_samples_per_second", "peak_rss_mb"))
        return replace(run, metrics=Metrics.from_json(doc["metrics"]) if "metrics" in doc else None,
                       present=tuple(doc))


_IF_COMPUTED = ("transfer_matrix", "leave_source_out", "gates")  # written only for models that have them


@dataclass(frozen=True)
class Evaluation:
    """The document of `mistrec evaluate`: the version, the dataset, the protocol, and the runs."""

    mistrec_version: str
    dataset: Json
    protocol: str
    runs: tuple[RunResult, ...]
    protocol_detail: Json | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    present: tuple[str, ...] | None = field(default=None, compare=False, repr=False)  # a file's keys, in order

    _order: ClassVar[tuple[str, ...]] = ("mistrec_version", "dataset", "protocol", "protocol_detail", "runs")

    @property
    def run(self) -> RunResult:
        """The one run of an evaluation of one run directory."""
        if len(self.runs) != 1:
            raise ValueError(f"this document holds {len(self.runs)} runs, not one")
        return self.runs[0]

    def to_json(self) -> Json:
        """The document, in the order the commands write it: every field (null where unknown), or for a document
        read from a file, the fields the file had."""
        out = {name: getattr(self, name) for name in self._order if self.present is None or name in self.present}
        if "runs" in out:
            out["runs"] = [r.to_json() for r in self.runs]
        return _in_order({**out, **self.extra}, self.present)

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Evaluation:
        return cls(mistrec_version=doc["mistrec_version"], dataset=doc["dataset"], protocol=doc["protocol"],
                   runs=tuple(RunResult.from_json(r) for r in doc.get("runs", [])),
                   protocol_detail=doc.get("protocol_detail"),
                   extra={k: v for k, v in doc.items() if k not in cls._order}, present=tuple(doc))


@dataclass(frozen=True)
class BenchmarkResult(Evaluation):
    """The document of `mistrec benchmark`: an evaluation of every model and seed, with the settings they ran
    with, the load average around them, the summary over seeds (means +- std, best per scenario, paired tests,
    transfer gains, results by activity: `mistrec.eval.benchmark.summarise`) and the data summary."""

    models: list[str] | None = None
    seeds: list[int] | None = None
    threads: int | None = None
    load_average_before: list[float] | None = None
    load_average_after: list[float] | None = None
    train_config: Json | None = None
    model_configs: Json | None = None
    summary: Json | None = None
    data_summary: Json | None = None

    _order: ClassVar[tuple[str, ...]] = (
        "mistrec_version", "dataset", "protocol", "protocol_detail", "models", "seeds", "threads",
        "load_average_before", "load_average_after", "train_config", "model_configs", "runs", "summary",
        "data_summary")

    @property
    def ok_runs(self) -> list[RunResult]:
        return [r for r in self.runs if r.ok]

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> BenchmarkResult:
        base = Evaluation.from_json(doc)
        more = {k: doc[k] for k in ("models", "seeds", "threads", "load_average_before", "load_average_after",
                                    "train_config", "model_configs", "summary", "data_summary") if k in doc}
        return cls(mistrec_version=base.mistrec_version, dataset=base.dataset, protocol=base.protocol,
                   runs=base.runs, protocol_detail=base.protocol_detail, **more,
                   extra={k: v for k, v in doc.items() if k not in cls._order}, present=tuple(doc))

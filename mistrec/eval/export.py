"""`mistrec export RUN_DIR --format onnx`: a run's model as ONNX graphs for ONNX Runtime, Triton and other serving
stacks (docs/serving.md, "Export").

mist is exported as one graph from the batch's tensors (the user, the candidate item, the target scenario, their
features, the scenario-tagged history and the user's activity in the scenario) to the click logit and, as a second
output, the attention weight of every history event. The scenario routing is inside the graph: the STAR top computes
each layer for every scenario and each row takes its own (StarFCN.forward_gathered), and history events are
embedded in place (no data-dependent shapes). The batch size and the history length are dynamic axes. two_tower is
exported as two graphs, the user tower (with its history) and the item tower. Every export is checked before it is
written: ONNX Runtime's outputs on the run's own test rows, per scenario, must agree with PyTorch's within 1e-5
(`parity` in export.json).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import torch
from torch import nn

from mistrec.batch import Batch
from mistrec.errors import ArtifactError, ConfigError, MistrecError
from mistrec.eval.evaluate import load_run_and_data
from mistrec.models.base import CandidateScorer, Explains, Explanation, Model, Retrieves, ranking_order, ranking_reasons
from mistrec.models.layers import FeatureEmbedding, StarFCN
from mistrec.models.mist import Mist
from mistrec.models.mist_cooc import CoItems

if TYPE_CHECKING:
    from mistrec.models.mist import Mist

__all__ = ["INPUTS", "OnnxModel", "export_run"]

# the graph inputs, in order: the Batch fields a forward pass reads (labels and conversions are not inputs)
INPUTS = ("user", "item", "scenario", "user_cat", "item_cat", "item_seq", "user_num", "item_num", "hist_items",
          "hist_scenarios", "hist_gaps", "hist_labels", "hist_values", "hist_mask", "hist_item_cat", "hist_item_seq",
          "hist_item_num", "activity", "item_key", "hist_item_key")
_HISTORY = {name for name in INPUTS if name.startswith("hist_")}
# the ranking graph's inputs: one query's fields (a batch of 1), then its candidates' (a batch of C)
CANDIDATE_INPUTS = Batch._ITEM_FIELDS
QUERY_INPUTS = tuple(name for name in INPUTS if name not in CANDIDATE_INPUTS)
RANK_INPUTS = QUERY_INPUTS + CANDIDATE_INPUTS
TOLERANCE = 1e-5
_M = TypeVar("_M", bound=Model)


def _batch(xs: tuple[torch.Tensor, ...]) -> Batch:
    fields = dict(zip(INPUTS, xs, strict=True))
    n = fields["user"].shape[0]
    return Batch(**fields, label=torch.zeros(n), conversion=torch.zeros(n))


class _Graph(nn.Module):
    """A model's evaluation forward over the INPUTS tensors: the logit, and with `attention` the event weights."""

    def __init__(self, model: Model, attention: bool) -> None:
        super().__init__()
        self.model, self.attention = model, attention

    def forward(self, *xs: torch.Tensor) -> Any:
        b = _batch(xs)
        if self.attention:
            assert isinstance(self.model, Explains)
            e = self.model.explain(b)
            return e.logit, e.event_weights
        return self.model(b)


class _Rank(nn.Module):
    """mist's ranking graph: one query (its user, scenario, history and activity, a batch of 1) against C
    candidates (their item fields), the (C,) logits, as `Mist.score_candidates` computes them: the history's tokens
    and pools once for every candidate, not once per crossed row."""

    def __init__(self, model: Mist) -> None:
        super().__init__()
        self.model = model

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        fields = dict(zip(RANK_INPUTS, xs, strict=True))
        query = {name: fields[name] for name in QUERY_INPUTS}
        n = fields["item"].shape[0]
        # the query's item fields and the candidates' user fields are never read (Batch.cross); they are given
        # the other side's values for their shapes
        candidates = {name: value.expand(n, *value.shape[1:]) for name, value in query.items()}
        candidates.update({name: fields[name] for name in CANDIDATE_INPUTS})
        query.update({name: fields[name][:1] for name in CANDIDATE_INPUTS})
        one, many = torch.zeros(1), torch.zeros(n)
        q, c = Batch(**query, label=one, conversion=one), Batch(**candidates, label=many, conversion=many)
        return self.model._score_crossed(q, c)[0]


class _Tower(nn.Module):
    """One tower of a retrieval model over the INPUTS tensors."""

    def __init__(self, model: Model, side: str) -> None:
        super().__init__()
        self.model, self.side = model, side

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        assert isinstance(self.model, Retrieves)
        b = _batch(xs)
        return self.model.user_vector(b) if self.side == "user" else self.model.item_vector(b)


def _graph_ready(model: _M) -> _M:
    """A copy of the model whose evaluation forward has no data-dependent shapes."""
    ready = copy.deepcopy(model).eval()
    for module in ready.modules():
        if isinstance(module, StarFCN):
            module.gathered = True
        if isinstance(module, FeatureEmbedding):
            module.per_event = True
        if isinstance(module, CoItems):
            module.graph = True
        if isinstance(module, Mist):  # the "anchor" form of cold_scale in the graph where a scenario chose it
            module.graph_anchor = module.cold_anchor is not None and bool(module.cold_anchor.any())
            module.graph_tilt = module.prior_tilt is not None and bool(module.prior_tilt.any())
            module.graph_own = module.own_interest_from is not None and bool((module.own_interest_from > 0).any())
    return ready


def _export(module: nn.Module, args: tuple[torch.Tensor, ...], names: tuple[str, ...], path: Path,
            outputs: list[str], dynamic: dict[str, dict[int, Any]]) -> None:
    try:
        program = torch.onnx.export(module, args, dynamo=True, dynamic_shapes=(tuple(dynamic[n] for n in names),),
                                    input_names=list(names), output_names=outputs, verbose=False)
    except ImportError as exc:
        raise ConfigError(f"ONNX export needs onnx and onnxscript: pip install 'mistrec[export]' ({exc}).") from None
    assert program is not None
    program.save(str(path))


def _dynamic(rank: bool) -> dict[str, dict[int, Any]]:
    """Each input's dynamic axes: the batch and the history length; in the ranking graph the candidates' axis and
    the history length (the query is one row). DYNAMIC rather than named dims: an input the model does not read (a
    user table without numbers) keeps its axes dynamic instead of failing or being baked in."""
    from torch.export import Dim

    history = {name: {1: Dim.DYNAMIC} for name in _HISTORY}
    if rank:
        return {**{name: history.get(name, {}) for name in QUERY_INPUTS},
                **{name: {0: Dim.DYNAMIC} for name in CANDIDATE_INPUTS}}
    return {name: {0: Dim.DYNAMIC, **history.get(name, {})} for name in INPUTS}


def _shorter(b: Batch) -> Batch:
    """The first half of the rows with the last half of their history window: other sizes on both dynamic axes."""
    half = b.subset(slice(0, max(1, len(b) // 2)))
    keep = max(1, b.hist_items.shape[1] // 2)
    return dataclasses.replace(half, **{name: getattr(half, name)[:, -keep:] for name in _HISTORY})


def _parity(path: Path, module: nn.Module, b: Batch) -> dict[str, float]:
    """The largest |ONNX Runtime - PyTorch| per scenario over every output, on the rows of b and on fewer rows
    with shorter histories."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = {i.name for i in session.get_inputs()}
    out: dict[str, float] = {}
    for rows in (b, _shorter(b)):
        got = session.run(None, {name: getattr(rows, name).numpy() for name in INPUTS if name in names})
        with torch.no_grad():
            want = module(*(getattr(rows, name) for name in INPUTS))
        want = list(want) if isinstance(want, tuple) else [want]
        scenarios = rows.scenario.numpy()
        for s in np.unique(scenarios):
            at = scenarios == s
            worst = max(float(np.abs(g[at] - w.numpy()[at]).max()) for g, w in zip(got, want, strict=True))
            out[str(int(s))] = max(out.get(str(int(s)), 0.0), worst)
    return out


def query_feeds(queries: Batch, i: int, names: set[str]) -> dict[str, np.ndarray]:
    """The ranking graph's query inputs that it reads (`names`, its session's input names): row i of `queries`."""
    return {name: getattr(queries, name)[i:i + 1].numpy() for name in QUERY_INPUTS if name in names}


def candidate_feeds(items: Batch, names: set[str]) -> dict[str, np.ndarray]:
    """The ranking graph's candidate inputs that it reads (`names`): every row of `items`."""
    return {name: getattr(items, name).numpy() for name in CANDIDATE_INPUTS if name in names}


def _rank_parity(path: Path, model: Model, queries: Batch, items: Batch) -> dict[str, float]:
    """The largest |ONNX Runtime - PyTorch| per scenario of the ranking graph against the model's own
    `score_candidates` (what `mistrec evaluate` and the PyTorch service rank with), for every query of `queries`
    against `items`, and with half the candidates and the last half of the history window."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = {i.name for i in session.get_inputs()}
    out: dict[str, float] = {}
    for qs, cs in ((queries, items), (_shorter(queries), items.subset(slice(0, max(1, len(items) // 2))))):
        with torch.no_grad():
            want = model.score_candidates(qs, cs).numpy()
        candidates = candidate_feeds(cs, names)
        for i in range(len(qs)):
            got = session.run(None, {**query_feeds(qs, i, names), **candidates})[0]
            key = str(int(qs.scenario[i]))
            out[key] = max(out.get(key, 0.0), float(np.abs(got - want[i]).max()))
    return out


def _rank_args(queries: Batch, items: Batch) -> tuple[torch.Tensor, ...]:
    """The ranking graph's example inputs: the first query and the candidates."""
    return tuple(getattr(queries, name)[:1] for name in QUERY_INPUTS) + tuple(
        getattr(items, name) for name in CANDIDATE_INPUTS)


def _write(name: str, module: nn.Module, args: tuple[torch.Tensor, ...], inputs: tuple[str, ...], outputs: list[str],
           path: Path, check: Callable[[Path], dict[str, float]]) -> dict[str, float]:
    """Exports `module` to `path` and checks it (`check`: the largest difference per scenario index); the graph is
    removed, and MistrecError raised, where it disagrees with PyTorch by more than TOLERANCE."""
    _export(module, args, inputs, path, outputs, _dynamic(rank=inputs == RANK_INPUTS))
    parity = check(path)
    worst = max(parity.values())
    if not worst <= TOLERANCE:
        path.unlink()
        raise MistrecError(f"The exported {name} graph disagrees with PyTorch by {worst:.2e} (more than "
                           f"{TOLERANCE}) on the run's test rows: not written. This is a bug in mistrec.")
    return parity


def export_rank(model: Mist, queries: Batch, items: Batch, path: str | Path) -> dict[str, float]:
    """mist's ranking graph (one query against C candidates) written to `path` and checked against the model's
    `score_candidates` for every query of `queries` against `items` (`_rank_parity`); returns the largest
    difference per scenario index."""
    ready = _graph_ready(model)
    return _write("rank", _Rank(ready).eval(), _rank_args(queries, items), RANK_INPUTS, ["logit"], Path(path),
                  lambda p: _rank_parity(p, model, queries, items))


def _rank_queries(b: Batch, per_scenario: int = 4) -> Batch:
    """A few of b's rows of each scenario: the ranking graph's parity queries."""
    scenarios = b.scenario.numpy()
    rows = np.concatenate([np.flatnonzero(scenarios == s)[:per_scenario] for s in np.unique(scenarios)])
    return b.subset(torch.from_numpy(np.sort(rows)))


def export_run(run_dir: str | Path, out: str | Path | None = None, fmt: str = "onnx", rows: int = 256,
               candidates: int = 300) -> dict[str, Any]:
    """Exports the run's model into `out` (default RUN_DIR/export) and checks it; returns export.json's content.
    mist also gets its ranking graph (rank.onnx: one query against C candidates), checked on `candidates` items of
    the catalogue."""
    from mistrec.models.mist import Mist

    if fmt != "onnx":
        raise ConfigError(f"--format must be onnx. Got {fmt!r}.")
    model, enc, meta, ds = load_run_and_data(run_dir, None)
    if model.reads_scenario_mix:
        raise ConfigError(f"{run_dir} reads new scenarios through a mix of the trained ones (new_scenarios: text): "
                          "not exportable yet; export a run without it.")
    out = Path(out) if out is not None else Path(run_dir) / "export"
    out.mkdir(parents=True, exist_ok=True)
    test = enc.rows(ds, "test")
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(test))[:rows]
    b = enc.batch(test, np.sort(idx), history=True, history_side=True)
    ready = _graph_ready(model)
    doc: dict[str, Any] = {"model": meta["model"], "format": "onnx", "inputs": list(INPUTS), "graphs": {},
                           "tolerance": TOLERANCE, "rows_checked": len(idx)}
    # each graph: its name, its outputs, and what writes and checks it (returning the parity per scenario)
    parts: list[tuple[str, list[str], Callable[[Path], dict[str, float]]]] = []
    graph_args = tuple(getattr(b, name) for name in INPUTS)

    def rows_graph(name: str, module: nn.Module, outputs: list[str]) -> None:
        parts.append((name, outputs, lambda p: _write(name, module, graph_args, INPUTS, outputs, p,
                                                      functools.partial(_parity, module=module, b=b))))

    if isinstance(ready, Retrieves):
        for side in ("user", "item"):
            rows_graph(f"{side}_tower", _Tower(ready, side).eval(), [f"{side}_vector"])
    else:
        attention = isinstance(ready, Explains)
        rows_graph("model", _Graph(ready, attention).eval(), ["logit", "attention"] if attention else ["logit"])
    if isinstance(model, Mist):  # and its ranking graph, checked on some of the catalogue's items it knows
        items = enc.item_batch(np.sort(rng.permutation(np.flatnonzero(enc.item_map_ > 0))[:candidates]))
        queries = _rank_queries(b)
        parts.append(("rank", ["logit"], functools.partial(export_rank, model, queries, items)))
        doc["rank_inputs"] = {"query": list(QUERY_INPUTS), "candidates": list(CANDIDATE_INPUTS),
                              "candidates_checked": len(items), "queries_checked": len(queries)}
    names = {str(i): n for i, n in enumerate(ds.scenarios, start=1)}
    for name, outputs, write in parts:
        start = time.perf_counter()
        parity = write(out / f"{name}.onnx")
        doc["graphs"][name] = {"file": f"{name}.onnx", "outputs": outputs,
                               "seconds": round(time.perf_counter() - start, 2),
                               "parity_max_abs": {names.get(k, k): v for k, v in parity.items()}}
    (out / "export.json").write_text(json.dumps(doc, indent=2))
    return doc


class OnnxModel(Model):
    """A run's model scored by ONNX Runtime from its exported graphs (`mistrec serve --backend onnx`): rows through
    model.onnx, and for mist a query against its candidates (a scenario's catalogue, a retrieval stage's items)
    through rank.onnx, each query's history read once (an export without rank.onnx, from before it existed, scores
    them as crossed rows). Explanations still come from the PyTorch model it wraps (the same weights); a scenario
    described after training takes the shared path, which the graphs have."""

    reads_history_side = True  # the graph takes the history items' side features whatever the model reads

    def __init__(self, model: Model, run_dir: str | Path, threads: int = 1) -> None:
        super().__init__()
        import onnxruntime as ort

        path = Path(run_dir) / "export" / "model.onnx"
        if not path.is_file():
            raise ArtifactError(f"{run_dir} has no exported graph ({path}): run `mistrec export {run_dir}` first.")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # no busy-waiting threads between calls: a service runs many sessions' calls from its own thread pool
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self._inputs = [i.name for i in self.session.get_inputs()]
        rank = path.with_name("rank.onnx")
        self.rank = ort.InferenceSession(str(rank), options, providers=["CPUExecutionProvider"]) if (
            rank.is_file()) else None
        self._rank_inputs = set() if self.rank is None else {i.name for i in self.rank.get_inputs()}
        self.torch_model = model.eval()
        self.name, self.reads_history = model.name, model.reads_history

    def forward(self, b: Batch) -> torch.Tensor:
        logit = self.session.run(["logit"], {name: getattr(b, name).numpy() for name in self._inputs})[0]
        return torch.from_numpy(logit)

    def ranking_scores(self, logits: torch.Tensor, scenario: torch.Tensor, items: torch.Tensor,
                       queries: Batch | None = None) -> torch.Tensor:
        """OrdersRanking: as the wrapped model orders a ranking (its counted tables, outside the graphs)."""
        return ranking_order(self.torch_model, logits, scenario, items, queries)

    def ranking_reasons(self, scenario: torch.Tensor, queries: Batch | None = None) -> list[tuple[str, ...]]:
        """OrdersRanking: the wrapped model's reasons (its ranking is the wrapped model's)."""
        return ranking_reasons(self.torch_model, scenario, queries)

    def candidate_scorer(self, items: Batch, max_rows: int = 32768) -> CandidateScorer:
        """Query batches against `items` through the ranking graph, one query and at most `block` candidates per
        call (see the class); without the graph, the crossed rows through model.onnx."""
        if self.rank is None:
            return super().candidate_scorer(items, max_rows)
        rank, block, names = self.rank, 8192, self._rank_inputs
        fixed = candidate_feeds(items, names)

        def score(queries: Batch, columns: torch.Tensor | None = None) -> torch.Tensor:
            chosen = fixed if columns is None else {k: v[columns.numpy()] for k, v in fixed.items()}
            n = len(items) if columns is None else len(columns)
            out = np.empty((len(queries), n), dtype=np.float32)
            for i in range(len(queries)):
                query = query_feeds(queries, i, names)
                for a in range(0, n, block):
                    feeds = {**query, **{k: v[a:a + block] for k, v in chosen.items()}}
                    out[i, a:a + block] = rank.run(["logit"], feeds)[0]
            return torch.from_numpy(out)

        return score

    def explain(self, b: Batch, tokens: torch.Tensor | None = None) -> Explanation:
        assert isinstance(self.torch_model, Explains)
        return self.torch_model.explain(b, tokens)

    def tokens(self, b: Batch) -> torch.Tensor:
        assert isinstance(self.torch_model, Explains)
        return self.torch_model.tokens(b)

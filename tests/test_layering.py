"""Imports go downward only: cli/serve -> eval -> train -> models -> features -> data; leaves import nothing."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "mistrec"
ORDER = ["data", "features", "models", "train", "eval", "serve", "cli"]
LEAVES = {"errors", "batch", "metrics", "config"}
BASE = "errors"  # the one leaf other leaves may import: the exception tree


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def imports_of(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mistrec"):
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("mistrec")]
    return found


def test_imports_go_downward_only() -> None:
    problems = []
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 10
    for path in files:
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        here = layer(".".join(rel.parts))
        for target in imports_of(path):
            there = layer(target)
            if here in LEAVES and there not in ("", *LEAVES):
                problems.append(f"{rel} (a leaf) imports {target}")
            if there in ORDER and here in ORDER and ORDER.index(there) > ORDER.index(here):
                problems.append(f"{rel} ({here}) imports {target} ({there}), a higher layer")
            if here in LEAVES and there in LEAVES and there not in (here, BASE):
                problems.append(f"{rel} (a leaf) imports another leaf {target}")
    assert not problems, "\n".join(problems)


def test_the_trainer_and_evaluation_ask_models_by_capability() -> None:
    """No hasattr / getattr on a model, and no model name compared in control flow, in train/ and eval/: what a
    model can do is asked with isinstance(model, Capability) (models/base.py). (The HTML report reads finished
    runs' JSON, not models: it picks mist's runs to draw mist's matrices by name, by design.)"""
    from mistrec.models import REGISTRY

    problems = []
    for sub in ("train", "eval"):
        for path in sorted((PACKAGE / sub).glob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
                        node.func.id in ("hasattr", "getattr") and node.args and \
                        "model" in ast.unparse(node.args[0]).lower():
                    problems.append(f"{path.name}:{node.lineno}: {ast.unparse(node)}")
                if path.name != "report.py" and isinstance(node, ast.Compare) and any(
                        isinstance(c, ast.Constant) and isinstance(c.value, str) and c.value in REGISTRY
                        for c in node.comparators) and "model" in ast.unparse(node.left):
                    problems.append(f"{path.name}:{node.lineno}: {ast.unparse(node)}")
    assert not problems, problems


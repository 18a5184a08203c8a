"""Results written whole or not at all, never replaced without being asked, and read back checked.

`atomic_dir(out, ...)` checks `out` before any work starts (a file, a directory of something else, a finished
result without `force`: a one-line error), hands the caller a temporary sibling to write into, and only when the
caller is done moves it into place. A command killed half way leaves the previous result as it was (and at most a
hidden `.NAME.partial-PID` sibling, removed by the next run that writes NAME). `read_json` reads an artifact's
JSON file and names it as damaged when it is not JSON, instead of a traceback.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mistrec.errors import ArtifactError, ConfigError

__all__ = ["atomic_dir", "check_out", "read_json"]


def read_json(path: Path, fix: str) -> dict[str, Any]:
    """An artifact's JSON object; a file that is not one is an ArtifactError naming it, the place and `fix`."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ArtifactError(f"{path} is damaged: not UTF-8 text. {fix}") from None
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{path} is damaged: not valid JSON (line {exc.lineno}, column {exc.colno}: "
                            f"{exc.msg}). {fix}") from None
    if not isinstance(doc, dict):
        raise ArtifactError(f"{path} is damaged: a JSON object was expected, not {type(doc).__name__}. {fix}")
    return doc


def check_out(out: Path, is_result: Callable[[Path], bool], what: str, force: bool) -> None:
    """Refuses an `out` that is a file, that holds something other than `what`, or (without `force`) a finished
    `what`."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file: give a directory to write the {what} into.")
    if out.is_dir() and any(out.iterdir()):
        if not is_result(out):
            raise ConfigError(f"--out {out} exists and is not a {what}: choose an empty or new directory.")
        if not force:
            raise ConfigError(f"--out {out} holds a {what} already: pass --force to replace it, or choose another "
                              "directory.")


@contextmanager
def atomic_dir(out: str | Path, *, is_result: Callable[[Path], bool], what: str, force: bool = False
               ) -> Iterator[Path]:
    """A temporary directory next to `out` to write the result into; on success it becomes `out`."""
    out = Path(out)
    check_out(out, is_result, what, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    for stale in out.parent.glob(f".{out.name}.partial-*"):  # left by a killed run
        shutil.rmtree(stale, ignore_errors=True)
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)

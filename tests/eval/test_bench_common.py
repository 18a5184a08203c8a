"""benchmarks/_common.py: what the benchmark scripts share."""

from __future__ import annotations

import pytest

from tests.eval.benchmark_scripts import load


def test_settings_keep_a_lists_commas() -> None:
    """A script's --settings (KEY=VALUE,...): a YAML list's commas stay in its value."""
    common = load("_common")
    assert common.parse_settings("interest_scope=auto,interest_from=[6,21]") == {"interest_scope": "auto",
                                                                                  "interest_from": [6, 21]}
    assert common.parse_settings("a=1, b=x") == {"a": 1, "b": "x"}
    with pytest.raises(ValueError):
        common.parse_settings("interest_scope")

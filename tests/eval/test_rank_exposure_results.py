"""benchmarks/rank_exposure_results.py check: two results files are the same figures only where every number agrees
to 1e-12 and every key and string is in both (the top-level description aside)."""

from __future__ import annotations

from tests.eval.benchmark_scripts import load

results = load("rank_exposure_results")


def test_differences_name_every_place_two_files_disagree() -> None:
    a = {"what": "made today", "choices": {"x seed 1": {"s": {"valid": 0.25, "chosen": "logit"}}}, "n": [1, 2.0]}
    assert results._differences(a, {**a, "what": "made then"}) == []  # the description is not a figure
    assert results._differences(a, {**a, "n": [1, 2.0 + 1e-13]}) == []
    b = {"what": "", "choices": {"x seed 1": {"s": {"valid": 0.2501, "chosen": "exposure"}}}, "n": [1, 2.0, 3]}
    assert results._differences(a, b) == ["/choices/x seed 1/s/chosen: 'logit' != 'exposure'",
                                          "/choices/x seed 1/s/valid: 0.25 != 0.2501", "/n: [1, 2.0] != [1, 2.0, 3]"]
    assert results._differences({"what": "", "inner": {"what": 1}}, {"what": "", "inner": {}}) == [
        "/inner/what: in one only"]  # only the top level's description is left out

"""What `co_scale: auto` (mist's default since the twenty-eighth session) chooses on saved mist runs: the choice
`mistrec train` makes after training, made on each run as it was saved, how long it took, and how many validation
queries the screen settled. Nothing is trained and nothing in the runs is written.

    MISTREC_BENCH_THREADS=1 python benchmarks/co_choices.py --json benchmarks/results/co_choices.json \
        --seeds 2022,2023,2024 [--weights 1,0.5,0.25,0,2,4] DIR ...

Each DIR is a benchmarks/transfer.py work directory (prepared/, runs/mist/seed-S). Per run: every scenario's and
kind of user's record (the validation NDCG@10 at each weight, the number of queries, the best weight, its p-value
against 1, the weight kept), the learned W of the term (`co_matrix`), which weights left 1 (where none did, the
run's test figures are those it had with the term whole: the choice is the only thing the setting changes), the
seconds the choice took, the run's own training seconds (from its benchmark.json, timed when it was trained, at that
load), and the validation queries that `choose_on_ranking` scored against its screen of most-taken items and those
it then scored against the whole catalogue (the rest the screen settled). `--weights` tries other weights than
CO_SCALES (the first the trained state, 1; the gate divides CO_CHOICE_P by the number tried against it, as the
model's rule does).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import co_matrix, mist_choosing, run_dirs_and_seeds, train_seconds, tried_weights

from mistrec.models.mist import option_key  # a weight, or co_own's pair


def one(root: Path, seed: int, weights: str | None = None) -> list[dict[str, Any]]:
    import torch

    from mistrec.batch import Batch
    from mistrec.data.prepared import PreparedDataset
    from mistrec.eval.ranking import choose_on_ranking

    ds = PreparedDataset.load(root / "prepared")
    model, enc = mist_choosing(root, seed)
    try:
        tried = tried_weights(weights)
    except ValueError as exc:
        raise SystemExit(str(exc)) from exc
    if tried:
        model.ranking_options = lambda: tried  # type: ignore[method-assign]
    queries = {"screened": 0, "in full": 0}
    scorer_of = model.ranking_scorer

    def counting(items: Batch) -> Any:  # the model's scorer, counting the queries it is asked to score, and how
        score = scorer_of(items)

        def counted(batch: Batch, columns: torch.Tensor | None) -> list[torch.Tensor]:
            queries["in full" if columns is None else "screened"] += len(batch)
            return score(batch, columns)
        return counted

    model.ranking_scorer = counting
    start = time.perf_counter()
    chosen = choose_on_ranking(model, enc, ds)["co_scale"]
    seconds = time.perf_counter() - start
    trained = train_seconds(root, "mist", seed)
    moved = sorted(f"{name} {kind} {option_key(rec['chosen'])}" for name, kinds in chosen.items()
                   for kind, rec in kinds.items() if rec["chosen"] != 1.0)
    print(f"{root.name} seed {seed}: {'moved ' + ', '.join(moved) if moved else 'every weight stays 1'} "
          f"({seconds:.1f} s, {queries['in full']} of {queries['screened']} queries past the screen; trained in "
          f"{trained:.1f} s)", flush=True)
    return [{"dir": root.name, "path": str(root), "seed": seed, "co_matrix": co_matrix(model), "co_scale": chosen,
             "moved": moved, "choice_seconds": seconds, "queries": queries, "train_seconds_when_trained": trained}]


def main() -> int:
    return run_dirs_and_seeds(__doc__.splitlines()[0], one, seeds="2022,2023,2024",
                              flags=(("--weights", {"help": "comma-separated weights, 1 first (default: CO_SCALES)"}),))


if __name__ == "__main__":
    raise SystemExit(main())

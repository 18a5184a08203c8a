"""How deep each item's list of `co_items` neighbours should go, read on the validation ranking only: a saved mist
run's co-occurrence table cut to its first `depth` neighbours (the list is kept in order of cosine, so the cut is
what fitting the table with `co_items: depth` would keep), everything else as trained (W included), and the
validation queries ranked as `co_scale: auto` ranks them (`choose_on_ranking`: per scenario and kind of user, the
NDCG@10 at each weight of the term). Nothing is trained, no test row is read, and nothing in the run is written.

    MISTREC_BENCH_THREADS=1 python benchmarks/co_depth_probe.py --json OUT --depths 50,100,200,500 \
        [--shrink 0,1,3] [--weights 1,0.5,0.25,0,2] RUN_DIR ...

Each RUN_DIR is a mist run directory (run.json, weights.pt; its prepared data where run.json says) trained with
`co_items` at least the largest depth. Why: on the Amazon sport_phone pair about a third of the items fill their 50
places, two thirds of which go to items of the item's own domain, which `co_scope: cross` never reads; a deeper
list helps that pair's cold users on validation and costs electronic_phone's (docs/benchmarks.md, "co_items'
cosines damped by the users a pair rests on"). Per run it also records how the trained table's kept places fall:
the share whose neighbour has no training positive in a scenario the item has one in (`cross_share_of_kept`, the
places `co_scope: cross` can read on disjoint catalogues). `--shrink` also scores each depth with the run's term
damped by c / (c + lambda) (mist's `co_shrink`, set on the loaded model; the table keeps the order it was fitted
in); `--weights` the term's weights tried (1 first; default CO_SCALES), since a damped term is smaller than the one
W was trained with.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import THREADS, context, tried_weights, write_json


def one(run: Path, depths: list[int], shrinks: list[float], weights: tuple[float, ...] | None) -> dict[str, Any]:
    import torch

    from mistrec.eval.evaluate import load_run_and_data
    from mistrec.eval.ranking import choose_on_ranking
    from mistrec.models.mist import Mist
    from mistrec.models.mist_cooc import cut_table

    model, enc, _meta, ds = load_run_and_data(run, settings={"co_scale": "auto"})
    assert isinstance(model, Mist) and model.co is not None and model.co_scale is not None, "a mist run with co_items"
    model.eval()
    if weights:
        model.ranking_options = lambda: weights  # type: ignore[method-assign]
    co = model.co
    nbr, count = co.dense()
    whole = co.start, co.nbr, co.count
    if max(depths) > nbr.shape[1]:
        raise SystemExit(f"{run} keeps {nbr.shape[1]} neighbours an item; --depths asks for {max(depths)}.")
    kept = (count > 0).sum(1).float()
    train = enc.indexed(enc.rows(ds, "train"))
    pos = train.label > 0
    in_scenario = torch.zeros(nbr.shape[0], int(train.scenario.max()) + 1, dtype=torch.bool)
    in_scenario[torch.as_tensor(train.item[pos]), torch.as_tensor(train.scenario[pos])] = True
    places = count > 0
    cross = ~(in_scenario.unsqueeze(1) & in_scenario[nbr]).any(-1) & places
    out: dict[str, Any] = {"run": str(run), "trained_co_items": int(nbr.shape[1]),
                           "items_with_a_full_list": int((kept == nbr.shape[1]).sum()),
                           "items_with_neighbours": int((kept > 0).sum()),
                           "cross_share_of_kept": float(cross.sum() / places.sum()), "by_depth": {}}
    trained_shrink = co.shrink, co.shrink_new
    for shrink in shrinks:
        co.shrink = co.shrink_new = shrink  # every row's damping, new users' as active users'
        for depth in depths:
            co.start, co.nbr, co.count = cut_table(*whole, depth)  # each item's first `depth` places
            with torch.no_grad():
                chosen = choose_on_ranking(model, enc, ds)["co_scale"]
            out["by_depth"][str(depth) if not shrink else f"{depth} shrink {shrink:g}"] = chosen
            line = "; ".join(f"{s} {kind} {rec['valid_ndcg@10']['1']:.4f} (best {rec['best']:g}: "
                             f"{rec['valid_ndcg@10'][format(rec['best'], 'g')]:.4f})"
                             for s, kinds in chosen.items() for kind, rec in kinds.items() if rec["queries"])
            print(f"{run} depth {depth} shrink {shrink:g}: {line}", flush=True)
    co.start, co.nbr, co.count = whole
    co.shrink, co.shrink_new = trained_shrink
    return out


def main() -> int:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("--depths", default="50,100,200,500")
    ap.add_argument("--shrink", default="0", help="comma-separated lambdas (0: the cosine as it is)")
    ap.add_argument("--weights", help="comma-separated weights of the term, 1 first (default: CO_SCALES)")
    ap.add_argument("runs", nargs="+")
    args = ap.parse_args()
    torch.set_num_threads(int(THREADS))
    depths = sorted({int(d) for d in args.depths.split(",")})
    shrinks = [float(s) for s in args.shrink.split(",")]
    try:
        weights = tried_weights(args.weights)
    except ValueError as exc:
        ap.error(str(exc))
    write_json(args.json, {"results": [one(Path(r), depths, shrinks, weights) for r in args.runs],
                           "context": context()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The `mistrec` command line's arguments: one sub-parser per command, with help texts and defaults."""

from __future__ import annotations

import argparse

__all__ = ["parser"]


def parser() -> argparse.ArgumentParser:
    """The argument parser of every command (their help texts and defaults)."""
    from mistrec import __version__
    from mistrec.data.config import PROTOCOLS

    p = argparse.ArgumentParser(prog="mistrec", description="Multi-scenario Interest Transfer for RECommendation.")
    p.add_argument("--version", action="version", version=f"mistrec {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="synthetic multi-scenario data -> prepare -> train mist -> per-scenario AUC")
    demo.add_argument("--out", default="demo_out", help="output directory (default: demo_out)")
    demo.add_argument("--users", type=int, default=2000, help="synthetic users (default: 2000)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--epochs", type=int, default=20, help="maximum training epochs (default: 20)")
    demo.add_argument("--quiet", action="store_true", help="no progress bar")
    demo.add_argument("--scenario-set", choices=("transfer", "vr"), default="transfer",
                      help="transfer: the transfer platform, mist against the isolated model (default); vr: the "
                      "virtual mall with item descriptions, each scene's slots filled and explained")
    demo.add_argument("--slots", type=int, default=12, help="vr: display slots per scene (12)")
    demo.add_argument("--per-category", type=int, default=3, help="vr: most items of one category in a slate (3)")
    demo.add_argument("--diversity", type=float, default=0.3, help="vr: weight of the similarity penalty (0.3)")

    prep = sub.add_parser("prepare", help="dataset YAML -> prepared directory (clean, encode, split, histories)")
    prep.add_argument("config", help="the dataset YAML file")
    prep.add_argument("--out", required=True, help="the prepared directory to write")
    prep.add_argument("--protocol", choices=PROTOCOLS, help="split protocol (default: the YAML's, else temporal)")
    prep.add_argument("--seed", type=int, help="seed of the split and of negative sampling")
    prep.add_argument("--target", help="target scenario (cold-user, kshot, leave-scenario-out); cold-user takes "
                      "several, comma-separated (disjoint cold users in each); cold-item: the scenarios whose "
                      "items may be held out (default: all)")
    prep.add_argument("--cold-fraction", type=float, help="cold-user: share of the eligible users made cold; "
                      "cold-item: share of the items held out (0.2)")
    prep.add_argument("--cold-rest", choices=("split", "train"), help="cold-user: the rows of everything but the "
                      "cold users' target rows keep the temporal split ('split', the default) or are all training "
                      "data, so that only cold users are evaluated ('train')")
    prep.add_argument("--cold-order", choices=("time", "last"), help="cold-user: the cold users' target rows at "
                      "their own time ('time', the default) or after every other event of the user ('last': for "
                      "data whose time is a made-up order, so that their histories hold all of the user's events "
                      "elsewhere)")
    prep.add_argument("--k", type=float, help="kshot: percent of the target scenario's training rows kept")
    prep.add_argument("--history-length", type=int, help="L, events per history (default: the YAML's, else 50)")
    prep.add_argument("--force", action="store_true", help="replace a prepared dataset already in --out (runs "
                      "trained on it will no longer load)")
    prep.add_argument("--shard-rows", type=int, metavar="N", help="about N interactions per shard of whole users, "
                      "which streamed training reads one at a time (default: 1,000,000; docs/scale.md)")
    prep.add_argument("--parts", type=int, default=1, metavar="N", help="prepare the users in N parts, each read "
                      "by polars' streaming engine: memory holds one part's rows, for inputs larger than memory "
                      "(default 1; no k-core, cold-item or kshot; seeded draws differ; docs/scale.md)")
    prep.add_argument("--quiet", action="store_true", help="no progress bar")

    tr = sub.add_parser("train", help="prepared directory -> trained, evaluated run directory")
    tr.add_argument("data", help="a prepared directory (mistrec prepare)")
    tr.add_argument("--model", required=True, help="model name (mist, star, mmoe, ple, shared_bottom, din, ...)")
    tr.add_argument("--out", required=True, help="the run directory to write")
    tr.add_argument("--config", help="YAML with optional 'model:' and 'train:' sections")
    tr.add_argument("--seed", type=int, help="training seed (default: the config's, else 2022)")
    tr.add_argument("--epochs", type=int, help="maximum epochs (default: the config's, else 10; early stopping may end "
                    "sooner)")
    tr.add_argument("--batch-size", type=int, help="default: the model's own (mist: 1024), else 4096")
    tr.add_argument("--lr", type=float, help="default: the model's own (mist: 3e-3), else 1e-3")
    tr.add_argument("--threads", type=int, help="torch threads (default: 2, shared by the processes of --nproc)")
    tr.add_argument("--checkpoint-every", type=int, metavar="STEPS", help="write a checkpoint every STEPS "
                    "optimisation steps to OUT.checkpoint/; the same command after a kill resumes from it (default: "
                    "the config's, else none)")
    tr.add_argument("--nproc", type=int, metavar="N", help="train on N processes: runs this command under `torchrun "
                    "--standalone --nproc_per_node N` (DistributedDataParallel, gloo on CPU; docs/scale.md)")
    tr.add_argument("--launcher", choices=("torchrun", "ray"), default="torchrun", help="what starts the --nproc "
                    "processes: torchrun (default) or Ray Train's workers (pip install 'mistrec[ray]')")
    tr.add_argument("--train-scenarios", help="comma-separated scenarios to train on (pre-train on sources, or "
                    "fine-tune on a target); test metrics cover every scenario")
    tr.add_argument("--init-from", help="a run directory whose weights start the training: fine-tuning on the "
                    "same prepared data, or continuing on newer data of the same scenarios (users and items "
                    "matched by id; e.g. data that adds the service's logged events)")
    tr.add_argument("--force", action="store_true", help="replace a finished run already in --out")
    tr.add_argument("--quiet", action="store_true", help="no progress bar")

    sv = sub.add_parser("serve", help="run directory -> HTTP service: recommend, log events (docs/serving.md)")
    sv.add_argument("run", help="a run directory")
    sv.add_argument("--db", help="the event store's SQLAlchemy URL (default: sqlite:///RUN/events.db)")
    sv.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    sv.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    sv.add_argument("--api-key-env", help="an environment variable holding the key POST /v1/events requires")
    sv.add_argument("--workers", type=int, default=1, help="processes, each with the run loaded (default: 1)")
    sv.add_argument("--retrieval", metavar="RUN", help="a two_tower run with its `mistrec index`, trained on the same "
                    "data: recommend in two stages, retrieve then rank (docs/serving.md)")
    sv.add_argument("--retrieve", type=int, default=500, help="with --retrieval: items retrieved per request (500)")
    sv.add_argument("--backend", choices=("torch", "onnx"), default="torch", help="score with PyTorch, or with ONNX "
                    "Runtime from the run's `mistrec export` (explanations stay PyTorch's; every crossed row through "
                    "the graph, slower per request than PyTorch's catalogue scorer: docs/serving.md)")

    ix = sub.add_parser("index", help="retrieval run directory -> a nearest-neighbour index of each scenario's items "
                        "(faiss; docs/serving.md)")
    ix.add_argument("run", help="a run directory of a retrieval model (two_tower)")
    ix.add_argument("--data", help="the prepared directory (default: the one the run was trained on)")
    ix.add_argument("--kind", choices=("auto", "flat", "hnsw"), default="auto",
                    help="exact inner product, HNSW, or auto: exact up to --flat-max items (default: auto)")
    ix.add_argument("--flat-max", type=int, default=20_000, help="auto: the largest catalogue indexed exactly")
    ix.add_argument("--recall", type=float, default=0.95,
                    help="HNSW: the smallest efSearch whose recall@100 against exact search reaches this (0.95)")
    ix.add_argument("--threads", type=int, default=2, help="torch and faiss threads (default: 2)")

    ex = sub.add_parser("export", help="run directory -> ONNX graphs checked against PyTorch (docs/serving.md)")
    ex.add_argument("run", help="a run directory (mist, two_tower, or another model)")
    ex.add_argument("--format", default="onnx", choices=("onnx",), help="the graph format (default: onnx)")
    ex.add_argument("--out", help="where to write the graphs and export.json (default: RUN/export)")
    ex.add_argument("--threads", type=int, default=2, help="torch threads (default: 2)")

    ev = sub.add_parser("evaluate", help="run directory -> per-scenario metrics (AUC, gAUC, LogLoss, ECE, ranking)")
    ev.add_argument("run", help="a run directory (mistrec train)")
    ev.add_argument("--data", help="the prepared directory (default: the one the run was trained on)")
    ev.add_argument("--json", help="write the metrics JSON here")
    ev.add_argument("--split", default="test", choices=("valid", "test"))
    ev.add_argument("--k", default="10,20", help="ranking cut-offs (default: 10,20)")
    ev.add_argument("--no-ranking", action="store_true", help="skip the full-catalogue ranking metrics")
    ev.add_argument("--sampled-negatives", type=int, help="rank against N sampled negatives instead of the full "
                    "catalogue (labelled as sampled in the output)")
    ev.add_argument("--also-sampled", type=int, metavar="N", help="also rank the same scores against N sampled "
                    "negatives per query (the CDR papers' 1 + N lists; reported under 'sampled')")
    ev.add_argument("--max-queries", type=int, metavar="N", help="rank a seeded sample of at most N queries per "
                    "scenario (the same for every model on the same data)")
    ev.add_argument("--threads", type=int, default=2, help="torch threads (default: 2)")
    ev.add_argument("--quiet", action="store_true", help="no progress bar")

    bm = sub.add_parser("benchmark", help="several models x seeds on one prepared split: JSON, paired tests, "
                        "HTML report; resumable")
    bm.add_argument("data", help="a prepared directory (mistrec prepare)")
    bm.add_argument("--models", required=True, help="comma-separated model names")
    bm.add_argument("--seeds", type=int, default=3, help="number of seeds (default: 3)")
    bm.add_argument("--first-seed", type=int, default=2022, help="seeds are FIRST, FIRST + 1, ... (default: 2022)")
    bm.add_argument("--json", required=True, help="the benchmark JSON to write")
    bm.add_argument("--report", help="also write a self-contained HTML report here")
    bm.add_argument("--work", help="where runs are kept (default: next to --json, JSON_NAME.runs/); a run "
                    "finished there is not trained again")
    bm.add_argument("--config", help="YAML with optional 'train:' (every model) and 'models:' (name -> config)")
    bm.add_argument("--epochs", type=int, help="maximum epochs of every run (default: the config's, else 10)")
    bm.add_argument("--batch-size", type=int, help="default: the model's own (mist: 1024), else 4096")
    bm.add_argument("--lr", type=float, help="default: the model's own (mist: 3e-3), else 1e-3")
    bm.add_argument("--threads", type=int, default=2, help="torch threads per run (default: 2)")
    bm.add_argument("--k", default="10,20", help="ranking cut-offs (default: 10,20)")
    bm.add_argument("--no-ranking", action="store_true", help="skip the full-catalogue ranking metrics")
    bm.add_argument("--also-sampled", type=int, metavar="N", help="also rank against N sampled negatives per query")
    bm.add_argument("--max-queries", type=int, metavar="N", help="rank a seeded sample of at most N queries per "
                    "scenario (the same for every model)")
    bm.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples of the paired tests")
    bm.add_argument("--force", action="store_true", help="replace the --json file if it exists (the runs in "
                    "--work are kept and resumed either way)")
    bm.add_argument("--mlflow", action="store_true", help="log every run to MLflow (its default local store)")
    bm.add_argument("--tensorboard", action="store_true", help="write TensorBoard scalars under WORK/tensorboard")
    bm.add_argument("--quiet", action="store_true", help="no per-run lines")

    rc = sub.add_parser("recommend", help="top-k items of a scenario for a user, optionally explained")
    rc.add_argument("run", help="a run directory (mistrec train)")
    rc.add_argument("--user", required=True, help="the user's id as in the raw data")
    rc.add_argument("--scenario", required=True, help="the scenario to recommend in")
    rc.add_argument("-k", type=int, default=10, help="how many items (default: 10)")
    rc.add_argument("--retrieval", metavar="RUN", help="a two_tower run with its `mistrec index`, trained on the same "
                    "data: retrieve candidates with it, then rank them")
    rc.add_argument("--retrieve", type=int, default=500, help="with --retrieval: items retrieved (default: 500)")
    rc.add_argument("--backend", choices=("torch", "onnx"), default="torch", help="score with PyTorch, or with ONNX "
                    "Runtime from the run's `mistrec export` (slower than PyTorch's catalogue scorer, docs/serving.md)")
    rc.add_argument("--explain", action="store_true", help="say which past behaviours, in which scenarios, "
                    "drove each item")
    rc.add_argument("--data", help="the prepared directory (default: the one the run was trained on)")
    rc.add_argument("--describe", metavar="TEXT", help="a scenario the data does not have, in words (launched "
                    "after training): read as the run's new_scenarios setting says (text: a mix of the trained "
                    "scenarios with alike descriptions; shared: the shared path)")
    rc.add_argument("--candidates", metavar="ITEMS", help="comma-separated item ids to rank (default: the "
                    "scenario's catalogue; a described new scenario's is every item the model knows)")
    rc.add_argument("--slots", type=int, help="fill this many display slots (a scene's shelves) from the top "
                    "--slot-candidates items under a per-category cap and a similarity penalty, instead of the top k "
                    "(eval/slate.py)")
    rc.add_argument("--slot-candidates", type=int, default=60, help="with --slots: the ranked list they are filled "
                    "from (default: 60)")
    rc.add_argument("--per-category", type=int, default=3, help="with --slots: most items of one category (3)")
    rc.add_argument("--diversity", type=float, default=0.3, help="with --slots: weight of the similarity penalty "
                    "on the items' content vectors (0.3)")
    rc.add_argument("--slot-category", metavar="COLUMN", help="with --slots: the categorical item feature the cap "
                    "counts (default: the items table's first)")
    rc.add_argument("--json", action="store_true", help="print JSON instead of text")
    rc.add_argument("--threads", type=int, default=2, help="torch threads (default: 2)")

    rec = sub.add_parser("recipe", help="write a dataset YAML for a public dataset on your disk")
    rec.add_argument("name", help="recipe name, or 'list'")
    rec.add_argument("--data", help="your local copy of the dataset (file or directory)")
    rec.add_argument("--out", help="the YAML file to write")
    rec.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="recipe option")
    return p

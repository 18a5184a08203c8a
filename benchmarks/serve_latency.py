"""Latency of `mistrec serve` under a fixed request rate (docs/serving.md, "Latency").

    python benchmarks/serve_latency.py --json benchmarks/results/serve_latency.json --run RUN_DIR

Starts the real server (`mistrec serve RUN`, uvicorn on a loopback port, one worker, the event store in a
temporary directory) in its own process and drives it from this one with an open-loop generator: request i is
sent at start + i / rate whatever the earlier ones are doing, and its latency is counted from that scheduled time
(so a server that falls behind shows its queueing, not a slower client: no coordinated omission). Each request
asks POST /v1/recommend for k = 10 of a scenario's full catalogue, for a user and scenario drawn at random from
the run's data. Without and with explanations (`explain: true`: attention, leave-source-out and integrated
gradients for each of the 10 items).

Per mode: a scan of rising rates, each for --seconds, to the highest rate whose p99 stays under 200 ms (the scan
stops at the first rate above it); p50 and p99 at --rate (default 20 requests/s) on a server of its own, started
fresh. The load average is recorded before and after every step; the server's threads are set by
MISTREC_BENCH_THREADS (default 2).

JSON: {"rows": [{"items", "rate_rps", "p50_ms", "p99_ms", "max_rps_p99_under_200ms", "explain", "scoring"}, ...],
       "scan": [...every step...], "context": {...}}

At catalogue scale, two stages (docs/serving.md):

    python benchmarks/serve_latency.py --json OUT --items 100000 --users 100000 --backend torch,onnx --no-explain

builds its own data and runs under --work (kept between invocations): the synthetic platform with one catalogue of
--items items that every scenario shows (each user's events chosen among 256 items drawn from it,
SyntheticConfig.choice_candidates), 16 events per user on average, the temporal protocol; mist and two_tower
trained on it (--epochs), the towers' `mistrec index` (HNSW above 20,000 items, efSearch for recall@100 >= 0.95),
mist's `mistrec export`. The server then retrieves --retrieve (500) items with the towers and ranks them with
mist, with each --backend; p50 and p99 at --rate (50 requests/s here) and the highest rate whose p99 stays under
--limit-ms (100 here), rows {"items", "rate_rps", "p50_ms", "p99_ms", "max_rps_p99_under_100ms", "scoring"}.

Every row also has the server's own time per request at the reported rate (`server_p50_ms`, `server_p99_ms`:
the responses' `elapsed_ms`) and, measured just before on the same fresh server, GET /healthz at that rate
(`healthz_p50_ms`, `healthz_p99_ms`): the floor the HTTP stack and the client set on these shared cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, THREADS, context, thread_env, write_json

LIMIT_MS = 200.0  # the scan's p99 limit for a run given with --run; --items: 100 (the retrieval issue's)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())  # type: ignore[no-any-return]


def _start(run: str, store: Path, backend: str = "torch", extra: tuple[str, ...] = ()
           ) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "mistrec", "serve", run, "--port", str(port), "--db",
                             f"sqlite:///{store}", "--backend", backend, *extra], env=thread_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 300
    while time.time() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise SystemExit(f"mistrec serve exited ({proc.returncode}):\n{err[-2000:]}")
        try:
            if _get(base + "/readyz")["status"] == "ready":
                return proc, base
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("mistrec serve did not become ready in 300 s")


async def _drive(base: str, bodies: list[dict[str, Any]] | None, rate: float, n: int = 0
                 ) -> tuple[np.ndarray, np.ndarray, int]:
    """Open loop: body i is sent at t0 + i / rate (POST /v1/recommend; with no bodies, n GETs of /healthz: the
    HTTP stack's and the client's own floor). Returns each request's latency from its scheduled time (ms), the
    server's own `elapsed_ms` for each recommendation, and how many failed."""
    import httpx

    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=100)
    served: list[float] = []
    async with httpx.AsyncClient(base_url=base, timeout=60.0, limits=limits) as client:
        t0 = time.perf_counter() + 0.2
        failed = 0

        async def one(i: int, body: dict[str, Any] | None) -> float:
            nonlocal failed
            scheduled = t0 + i / rate
            await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
            r = await (client.get("/healthz") if body is None else client.post("/v1/recommend", json=body))
            done = time.perf_counter()
            if r.status_code != 200:
                failed += 1
            elif body is not None:
                served.append(float(r.json()["elapsed_ms"]))
            return 1000.0 * (done - scheduled)

        jobs = [one(i, b) for i, b in enumerate(bodies)] if bodies is not None else [one(i, None) for i in range(n)]
        latencies = await asyncio.gather(*jobs)
    return np.array(latencies), np.array(served), failed


def _percentiles(lat: np.ndarray, prefix: str = "") -> dict[str, float | None]:
    if not len(lat):
        return {f"{prefix}p50_ms": None, f"{prefix}p99_ms": None}
    return {f"{prefix}p50_ms": round(float(np.percentile(lat, 50)), 2),
            f"{prefix}p99_ms": round(float(np.percentile(lat, 99)), 2)}


def _step(base: str, requests: list[dict[str, Any]], rate: float, seconds: float, explain: bool) -> dict[str, Any]:
    n = max(40, int(rate * seconds))  # p99 of fewer than 40 requests would be their maximum
    bodies = [{**requests[i % len(requests)], "explain": explain} for i in range(n)]
    before = os.getloadavg()
    lat, served, failed = asyncio.run(_drive(base, bodies, rate))
    return {"explain": explain, "rate_rps": rate, "requests": n, "failed": failed,
            "p50_ms": round(float(np.percentile(lat, 50)), 2), "p90_ms": round(float(np.percentile(lat, 90)), 2),
            "p99_ms": round(float(np.percentile(lat, 99)), 2), "max_ms": round(float(lat.max()), 2),
            **_percentiles(served, "server_"),
            "loadavg_before": [round(x, 2) for x in before], "loadavg_after": [round(x, 2) for x in os.getloadavg()]}


def _floor(base: str, rate: float, seconds: float) -> dict[str, Any]:
    """GET /healthz at the same rate: what the HTTP stack and the client cost on these cores, with no work."""
    n = max(40, int(rate * seconds))
    lat, _, failed = asyncio.run(_drive(base, None, rate, n))
    return {"rate_rps": rate, "requests": n, "failed": failed, **_percentiles(lat)}


def _requests(run: str, info: dict[str, Any], rng: random.Random) -> list[dict[str, Any]]:
    """5,000 requests for users of the run's data and its scenarios, drawn at random."""
    from mistrec.data import PreparedDataset

    run_meta = json.loads((Path(run) / "run.json").read_text())
    users = PreparedDataset.load(run_meta["data"]).vocab["user_id"]["value"].to_list()
    return [{"user": rng.choice(users), "scenario": rng.choice(info["scenarios"]), "k": 10} for _ in range(5000)]


def _warm(base: str, requests: list[dict[str, Any]], explain: bool) -> None:
    """The first calls load lazy parts (captum, kernels, each scenario's prepared scorer): not part of any
    measurement. Five requests, then one per scenario not asked yet."""
    first = {r["scenario"]: r for r in reversed(requests)}
    asked = {r["scenario"] for r in requests[:5]}
    for body in requests[:5] + [r for s, r in first.items() if s not in asked]:
        _step(base, [body], 5.0, 1.0, explain=explain)


def _synthetic_runs(work: Path, items: int, users: int, epochs: int, seed: int) -> tuple[Path, Path, dict[str, Any]]:
    """The catalogue-scale setting (module docstring): data, mist and two_tower runs, the towers' index and mist's
    ONNX export under `work`, each built once. Returns the mist run, the two_tower run and what building took."""
    import torch

    from mistrec.data import ProtocolConfig, load_dataset_config, prepare
    from mistrec.data.synthetic import SyntheticConfig, generate
    from mistrec.eval.export import export_run
    from mistrec.eval.fit import fit_run
    from mistrec.eval.index import build_index
    from mistrec.train import TrainConfig

    torch.set_num_threads(int(THREADS))
    root = work / f"synthetic-{items}i-{users}u-seed{seed}"
    prepared, built = root / "prepared", {}
    if not (prepared / "manifest.json").is_file():
        start = time.perf_counter()
        cfg = SyntheticConfig(n_users=users, events_per_user=16, scenario_share=(0.25, 0.25, 0.25, 0.25),
                              pool_sizes=(items,) * 4, shared_items=1.0, choice_candidates=256, seed=seed)
        yaml = generate(cfg).write(root / "data")
        prepare(load_dataset_config(yaml), prepared, protocol=ProtocolConfig(name="temporal"), quiet=True)
        built["prepare_seconds"] = round(time.perf_counter() - start, 1)
    runs = {}
    for name in ("mist", "two_tower"):
        run = root / f"{name}-run"
        if not (run / "run.json").is_file():
            start = time.perf_counter()
            fit_run(prepared, name, run, train_cfg=TrainConfig(epochs=epochs, seed=seed), quiet=True)
            built[f"train_{name}_seconds"] = round(time.perf_counter() - start, 1)
        runs[name] = run
    if not (runs["two_tower"] / "index" / "index.json").is_file():
        start = time.perf_counter()
        build_index(runs["two_tower"], kind="auto", recall=0.95)
        built["index_seconds"] = round(time.perf_counter() - start, 1)
    if not (runs["mist"] / "export" / "export.json").is_file():
        start = time.perf_counter()
        export_run(runs["mist"])
        built["export_seconds"] = round(time.perf_counter() - start, 1)
    about = {"root": str(root), "built_now": built,
             "index": json.loads((runs["two_tower"] / "index" / "index.json").read_text()),
             "export": json.loads((runs["mist"] / "export" / "export.json").read_text())}
    return runs["mist"], runs["two_tower"], about


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(timeout=30)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("--run", help="a run directory (the ML-1M age-group mist run for the record); or --items")
    ap.add_argument("--items", type=int, help="catalogue scale: build synthetic data with this many items, mist and "
                    "two_tower runs, and serve in two stages (module docstring)")
    ap.add_argument("--users", type=int, default=100_000, help="with --items: the synthetic platform's users")
    ap.add_argument("--work", default=str(REPO / "benchmarks" / "work" / "serve-scale"), help="with --items")
    ap.add_argument("--epochs", type=int, default=2, help="with --items: training epochs of both runs")
    ap.add_argument("--retrieve", type=int, default=500, help="with --items: items retrieved per request")
    ap.add_argument("--rate", type=float, help="the rate p50 and p99 are reported at (requests/s; default 20, "
                    "with --items 50)")
    ap.add_argument("--limit-ms", type=float, help=f"the scan's p99 limit (default {LIMIT_MS:g}, with --items 100)")
    ap.add_argument("--seconds", type=float, default=20.0, help="length of each step")
    ap.add_argument("--scan", default="5,10,20,30,40,60,80,100,120,160,200,250,300",
                    help="rates tried without explanations, rising")
    ap.add_argument("--scan-explain", default="0.5,1,2,3,4,6,8,10,15,20", help="rates tried with explanations")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--backend", default="torch", help="the server's scoring, one or both of torch,onnx (onnx: the "
                    "run's `mistrec export` through ONNX Runtime)")
    ap.add_argument("--no-explain", action="store_true", help="measure without explanations only")
    args = ap.parse_args()
    if (args.run is None) == (args.items is None):
        raise SystemExit("Give --run RUN_DIR or --items N (catalogue scale), one of them.")
    backends = args.backend.split(",")
    if not backends or any(b not in ("torch", "onnx") for b in backends):
        raise SystemExit(f"--backend takes torch, onnx or torch,onnx. Got {args.backend!r}.")
    rate = args.rate if args.rate is not None else (50.0 if args.items else 20.0)
    limit = args.limit_ms if args.limit_ms is not None else (100.0 if args.items else LIMIT_MS)
    limit_key = f"max_rps_p99_under_{limit:g}ms"
    extra: tuple[str, ...] = ()
    built: dict[str, Any] = {}
    run = args.run
    if args.items:
        mist_run, tower_run, built = _synthetic_runs(Path(args.work), args.items, args.users, args.epochs, args.seed)
        run, extra = str(mist_run), ("--retrieval", str(tower_run), "--retrieve", str(args.retrieve))
    rows: list[dict[str, Any]] = []
    scan: list[dict[str, Any]] = []
    info: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        modes = [(False, args.scan)] + ([] if args.no_explain else [(True, args.scan_explain)])
        for backend in backends:
            for explain, rates in modes:
                # a fresh server for the reported rate and another for the scan: a saturated server stays slower
                # for a while after (its thread pool and memory), and would spoil whatever is measured next
                proc, base = _start(run, Path(tmp) / "events.db", backend, extra)
                try:
                    if not info:
                        info = _get(base + "/v1/info")
                        requests = _requests(run, info, random.Random(args.seed))
                    _warm(base, requests, not args.no_explain)
                    floor = _floor(base, rate, args.seconds)
                    at = _step(base, requests, rate, args.seconds, explain)
                    scan.append({**at, "scoring": backend, "purpose": f"the reported rate ({rate:g}/s), on a fresh "
                                 "server", "healthz_floor": floor})
                    print(json.dumps(scan[-1]), flush=True)
                finally:
                    _stop(proc)
                proc, base = _start(run, Path(tmp) / "events.db", backend, extra)
                best = None
                try:
                    _warm(base, requests, not args.no_explain)
                    for r in (float(x) for x in rates.split(",")):  # rising, to the first rate over the limit
                        step = {**_step(base, requests, r, args.seconds, explain), "scoring": backend}
                        scan.append(step)
                        print(json.dumps(step), flush=True)
                        if step["p99_ms"] >= limit or step["failed"]:
                            break
                        best = r
                finally:
                    _stop(proc)
                rows.append({"items": int(np.median(list(info["catalogue"].values()))), "rate_rps": rate,
                             "p50_ms": at["p50_ms"], "p99_ms": at["p99_ms"], limit_key: best, "explain": explain,
                             "scoring": backend, "retrieve": args.retrieve if args.items else None,
                             "server_p50_ms": at["server_p50_ms"], "server_p99_ms": at["server_p99_ms"],
                             "healthz_p50_ms": floor["p50_ms"], "healthz_p99_ms": floor["p99_ms"]})
    doc = {"rows": rows, "scan": scan, "run": str(Path(run).resolve()), "model": info["model"],
           "catalogue": info["catalogue"], "server_threads": int(THREADS), "seconds_per_step": args.seconds,
           "p99_limit_ms": limit, "two_stages": {"retrieval": extra[1], **built} if extra else None,
           "context": context()}
    write_json(args.json, doc)
    for row in rows:
        print(json.dumps(row))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

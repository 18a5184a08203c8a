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

JSON: {"rows": [{"items", "rate_rps", "p50_ms", "p99_ms", "max_rps_p99_under_200ms", "explain"}, ...],
       "scan": [...every step...], "context": {...}}
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
from _common import THREADS, context, thread_env, write_json

LIMIT_MS = 200.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())  # type: ignore[no-any-return]


def _start(run: str, store: Path, backend: str = "torch") -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "mistrec", "serve", run, "--port", str(port), "--db",
                             f"sqlite:///{store}", "--backend", backend], env=thread_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
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


async def _drive(base: str, bodies: list[dict[str, Any]], rate: float) -> tuple[np.ndarray, int]:
    """Open loop: body i is sent at t0 + i / rate. Returns each request's latency from its scheduled time (ms),
    and how many failed."""
    import httpx

    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=100)
    async with httpx.AsyncClient(base_url=base, timeout=60.0, limits=limits) as client:
        t0 = time.perf_counter() + 0.2
        failed = 0

        async def one(i: int, body: dict[str, Any]) -> float:
            nonlocal failed
            scheduled = t0 + i / rate
            await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
            r = await client.post("/v1/recommend", json=body)
            if r.status_code != 200:
                failed += 1
            return 1000.0 * (time.perf_counter() - scheduled)

        latencies = await asyncio.gather(*(one(i, b) for i, b in enumerate(bodies)))
    return np.array(latencies), failed


def _step(base: str, requests: list[dict[str, Any]], rate: float, seconds: float, explain: bool) -> dict[str, Any]:
    n = max(40, int(rate * seconds))  # p99 of fewer than 40 requests would be their maximum
    bodies = [{**requests[i % len(requests)], "explain": explain} for i in range(n)]
    before = os.getloadavg()
    lat, failed = asyncio.run(_drive(base, bodies, rate))
    return {"explain": explain, "rate_rps": rate, "requests": n, "failed": failed,
            "p50_ms": round(float(np.percentile(lat, 50)), 2), "p90_ms": round(float(np.percentile(lat, 90)), 2),
            "p99_ms": round(float(np.percentile(lat, 99)), 2), "max_ms": round(float(lat.max()), 2),
            "loadavg_before": [round(x, 2) for x in before], "loadavg_after": [round(x, 2) for x in os.getloadavg()]}


def _requests(run: str, info: dict[str, Any], rng: random.Random) -> list[dict[str, Any]]:
    """5,000 requests for users of the run's data and its scenarios, drawn at random."""
    from mistrec.data import PreparedDataset

    run_meta = json.loads((Path(run) / "run.json").read_text())
    users = PreparedDataset.load(run_meta["data"]).vocab["user_id"]["value"].to_list()
    return [{"user": rng.choice(users), "scenario": rng.choice(info["scenarios"]), "k": 10} for _ in range(5000)]


def _warm(base: str, requests: list[dict[str, Any]]) -> None:
    """The first calls load lazy parts (captum, kernels): not part of any measurement."""
    for body in requests[:5]:
        _step(base, [body], 5.0, 1.0, explain=True)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(timeout=30)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("--run", required=True, help="a run directory (the ML-1M age-group mist run for the record)")
    ap.add_argument("--rate", type=float, default=20.0, help="the rate p50 and p99 are reported at (requests/s)")
    ap.add_argument("--seconds", type=float, default=20.0, help="length of each step")
    ap.add_argument("--scan", default="5,10,20,30,40,60,80,100,120,160,200,250,300",
                    help="rates tried without explanations, rising")
    ap.add_argument("--scan-explain", default="0.5,1,2,3,4,6,8,10,15,20", help="rates tried with explanations")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--backend", choices=("torch", "onnx"), default="torch",
                    help="the server's scoring (onnx: the run's `mistrec export` through ONNX Runtime)")
    ap.add_argument("--no-explain", action="store_true", help="measure without explanations only")
    args = ap.parse_args()
    rows: list[dict[str, Any]] = []
    scan: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        info: dict[str, Any] = {}
        modes = [(False, args.scan)] + ([] if args.no_explain else [(True, args.scan_explain)])
        for explain, rates in modes:
            # a fresh server for the reported rate and another for the scan: a saturated server stays slower
            # for a while after (its thread pool and memory), and would spoil whatever is measured next
            proc, base = _start(args.run, Path(tmp) / "events.db", args.backend)
            try:
                if not info:
                    info = _get(base + "/v1/info")
                    requests = _requests(args.run, info, random.Random(args.seed))
                _warm(base, requests)
                at = _step(base, requests, args.rate, args.seconds, explain)
                scan.append({**at, "purpose": f"the reported rate ({args.rate:g}/s), on a fresh server"})
                print(json.dumps(scan[-1]), flush=True)
            finally:
                _stop(proc)
            proc, base = _start(args.run, Path(tmp) / "events.db", args.backend)
            best = None
            try:
                _warm(base, requests)
                for rate in (float(r) for r in rates.split(",")):  # rising, to the first rate over the limit
                    step = _step(base, requests, rate, args.seconds, explain)
                    scan.append(step)
                    print(json.dumps(step), flush=True)
                    if step["p99_ms"] >= LIMIT_MS or step["failed"]:
                        break
                    best = rate
            finally:
                _stop(proc)
            rows.append({"items": int(np.median(list(info["catalogue"].values()))), "rate_rps": args.rate,
                         "p50_ms": at["p50_ms"], "p99_ms": at["p99_ms"], "max_rps_p99_under_200ms": best,
                         "explain": explain, "scoring": args.backend})
    doc = {"rows": rows, "scan": scan, "run": str(Path(args.run).resolve()), "model": info["model"],
           "catalogue": info["catalogue"], "server_threads": int(THREADS), "seconds_per_step": args.seconds,
           "context": context()}
    write_json(args.json, doc)
    for row in rows:
        print(json.dumps(row))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

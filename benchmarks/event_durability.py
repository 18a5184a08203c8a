"""No lost events: concurrent writers, the server killed mid-stream, every acknowledged event stored once
(docs/serving.md, "Durability").

    python benchmarks/event_durability.py --json benchmarks/results/event_durability.json --run RUN_DIR

For each store (SQLite in WAL mode; PostgreSQL in a throw-away cluster, tests/postgres.py, when a server can be
started here): `mistrec serve RUN --db URL` runs in its own process; 20 writer threads post 10,000 events in
batches of 25 (POST /v1/events), each batch retried with the same event ids until it is acknowledged, as a client
with at-least-once delivery does. When a third of the events are acknowledged the server is killed with SIGKILL,
and started again on the same port and store a second later. At the end the store is read directly.

Rule: every acknowledged event is in the store exactly once, and so is every event (all batches are retried to
an acknowledgement); no event is stored that was not sent. JSON: {"rows": [{"store", "events", "writers",
"batch", "kills", "acknowledged", "stored", "distinct_stored", "missing", "duplicates", "unknown", "retries",
"seconds", "ok"}], "context": {...}}.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import context, thread_env, write_json


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """`mistrec serve` in a child process, started and killed on one port and store."""

    def __init__(self, run: str, url: str) -> None:
        self.run, self.url, self.port = run, url, _free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "mistrec", "serve", self.run, "--port", str(self.port),
                                      "--db", self.url], env=thread_env(), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.time() + 300
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(self.base + "/readyz", timeout=2) as r:
                    if json.loads(r.read())["status"] == "ready":
                        return
            except OSError:
                time.sleep(0.2)
        raise SystemExit("mistrec serve did not become ready in 300 s")

    def kill(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


def _post(base: str, batch: list[dict[str, Any]]) -> bool:
    req = urllib.request.Request(base + "/v1/events", method="POST", data=json.dumps({"events": batch}).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status == 200 and len(json.loads(r.read())["stored"]) == len(batch)
    except (OSError, http.client.HTTPException, ValueError):  # refused, reset, cut short (killed mid-answer)
        return False


def one_store(run: str, name: str, url: str, events: int, writers: int, batch: int) -> dict[str, Any]:
    from mistrec.data.store import EventStore

    server = Server(run, url)
    server.start()
    sent = [{"event_id": f"d-{i:06d}", "user": f"durability-u{i % 97}", "item": f"i{i % 501}",
             "scenario": "home_feed", "type": "click" if i % 3 else "impression", "time": 1_800_000_000.0 + i}
            for i in range(events)]
    batches = [sent[i:i + batch] for i in range(0, events, batch)]
    acknowledged: set[str] = set()
    lock, retries = threading.Lock(), [0]
    killed = threading.Event()
    t0 = time.perf_counter()

    def writer(k: int) -> None:
        for b in batches[k::writers]:
            while not _post(server.base, b):  # not acknowledged: the same ids again, until it is
                with lock:
                    retries[0] += 1
                time.sleep(0.2)
            with lock:
                acknowledged.update(e["event_id"] for e in b)

    def killer() -> None:
        while True:
            with lock:
                if len(acknowledged) >= events // 3:
                    break
            time.sleep(0.01)
        server.kill()
        killed.set()
        time.sleep(1.0)
        server.start()

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(writers)]
    chaos = threading.Thread(target=killer)
    for t in (*threads, chaos):
        t.start()
    for t in (*threads, chaos):
        t.join()
    seconds = time.perf_counter() - t0
    server.stop()
    store = EventStore(url)
    stored = store.frame()["event_id"].to_list()
    store.close()
    ids = {e["event_id"] for e in sent}
    row = {"store": name, "events": events, "writers": writers, "batch": batch, "kills": int(killed.is_set()),
           "acknowledged": len(acknowledged), "stored": len(stored), "distinct_stored": len(set(stored)),
           "missing": len(acknowledged - set(stored)), "duplicates": len(stored) - len(set(stored)),
           "unknown": len(set(stored) - ids), "retries": retries[0], "seconds": round(seconds, 2)}
    row["ok"] = (row["missing"] == 0 and row["duplicates"] == 0 and row["unknown"] == 0 and row["kills"] == 1
                 and row["stored"] == events == row["acknowledged"])
    print(json.dumps(row), flush=True)
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("--run", required=True, help="a run directory (any: the events do not need its ids)")
    ap.add_argument("--events", type=int, default=10_000)
    ap.add_argument("--writers", type=int, default=20)
    ap.add_argument("--batch", type=int, default=25)
    ap.add_argument("--no-postgres", action="store_true")
    args = ap.parse_args()
    rows, skipped = [], None
    with tempfile.TemporaryDirectory() as tmp:
        rows.append(one_store(args.run, "sqlite", f"sqlite:///{Path(tmp) / 'events.db'}", args.events, args.writers,
                              args.batch))
    if not args.no_postgres:
        from tests.postgres import Unavailable, throwaway_cluster

        cluster: AbstractContextManager[str | None] = nullcontext(None)
        try:
            cluster = throwaway_cluster()
            with cluster as url:
                assert url is not None
                rows.append(one_store(args.run, "postgresql", url, args.events, args.writers, args.batch))
        except Unavailable as exc:
            skipped = f"PostgreSQL not measured: {exc}"
            print(skipped, file=sys.stderr)
    write_json(args.json, {"rows": rows, "postgresql_skipped": skipped, "context": context()})
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())

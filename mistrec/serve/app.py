"""`mistrec serve RUN_DIR`: the HTTP service (FastAPI under uvicorn). The run is loaded once, in the lifespan,
never at import; events go to the event store (mistrec.data.store) and enter the user's history at once.

    POST /v1/recommend              {user, scenario, k, candidates?, explain?, describe?} -> items, scores, why
    POST /v1/events                 {events: [{event_id, user, item, scenario, type, value?, time?}]} -> ids
    GET  /v1/users/{user}/history   the user's logged events, oldest first (?training=true: and the run's)
    GET  /v1/info                   the run, its scenarios and some users to try (for the page)
    GET  /                          a web page: a user's history across scenarios, recommendations and why,
                                    clicks logged from it
    POST /v1/admin/reload           {run_dir}: serve another run; requests in flight finish on the old one
    GET  /healthz, /readyz          alive; the run and the store are loaded
    GET  /metrics                   Prometheus text: latency per endpoint and scenario, events written, the run

Every bad request is a 4xx whose body names the field and the rule (pydantic's, or ours), never a stack trace.
"""

from __future__ import annotations

import os
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, Header, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mistrec.data.store import MAX_ID, Event, EventStore, now
from mistrec.errors import MistrecError
from mistrec.eval.explain import Logged, Recommender

__all__ = ["LIMITS", "create_app"]

LIMITS = {"k": 100, "candidates": 5_000, "events": 1_000, "history": 200, "body_bytes": 1 << 20,
          "slate_candidates": 1_000}
_PAGE = (Path(__file__).parent / "page.html").read_text(encoding="utf-8")


class RecommendRequest(BaseModel):
    user: str = Field(min_length=1, max_length=MAX_ID, examples=["u00042"])
    scenario: str = Field(min_length=1, max_length=MAX_ID, examples=["vr_showroom"])
    k: int = Field(10, ge=1, le=LIMITS["k"])
    candidates: list[str] | None = Field(None, max_length=LIMITS["candidates"])
    explain: bool = False
    describe: str | None = Field(None, max_length=2_000, description="a scenario the run does not know, described")


class SlateRequest(BaseModel):
    user: str = Field(min_length=1, max_length=MAX_ID, examples=["u00042"])
    scenario: str = Field(min_length=1, max_length=MAX_ID, examples=["vr_showroom"])
    slots: int = Field(12, ge=1, le=LIMITS["k"], description="display positions to fill")
    candidates: int = Field(60, ge=1, le=LIMITS["slate_candidates"], description="the top of the ranked list "
                            "the slots are filled from")
    per_category: int | None = Field(3, ge=1, description="at most this many items of a category (none: no cap)")
    diversity: float = Field(0.3, ge=0.0, le=1.0, allow_inf_nan=False,
                             description="0: the top of the list; towards 1: less similar items")
    explain: bool = False


class EventIn(BaseModel):
    event_id: str = Field(min_length=1, max_length=MAX_ID, examples=["e-000001"])
    user: str = Field(min_length=1, max_length=MAX_ID)
    item: str = Field(min_length=1, max_length=MAX_ID)
    scenario: str = Field(min_length=1, max_length=MAX_ID)
    type: Literal["impression", "click", "conversion", "rating"]
    value: float | None = Field(None, allow_inf_nan=False)
    time: float | None = Field(None, allow_inf_nan=False, description="seconds since 1970 (UTC); default: now")


class EventsRequest(BaseModel):
    events: list[EventIn] = Field(min_length=1, max_length=LIMITS["events"])


class ReloadRequest(BaseModel):
    run_dir: str = Field(min_length=1, max_length=4_096, description="a run directory trained on the same data")


class _BodyLimit:
    """Answers 413 to a request whose body is over `limit` bytes, before any route reads it: by its Content-Length,
    or without one by what arrives (held, then passed on). A plain ASGI middleware: Starlette's
    `@app.middleware("http")` runs every request and response through extra tasks and memory streams."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        size = dict(scope["headers"]).get(b"content-length")
        if size is not None:
            n = int(size) if size.isdigit() else 0
            if n <= self.limit:
                await self.app(scope, receive, send)
                return
        else:  # no length given: measure what comes, up to the limit
            held: list[Message] = []
            n = 0
            while n <= self.limit:
                message = await receive()
                held.append(message)
                n += len(message.get("body", b""))
                if message["type"] != "http.request" or not message.get("more_body", False):
                    break
            if n <= self.limit:
                async def replay() -> Message:
                    return held.pop(0) if held else await receive()

                await self.app(scope, replay, send)
                return
        what = f"{n:,} bytes" if size is not None else f"at least {n:,} bytes (sent without a Content-Length)"
        refuse = JSONResponse(status_code=413, content={
            "detail": f"the request body is {what}, over the limit of {self.limit:,}"})
        await refuse(scope, receive, send)


class _Metrics:
    """The service's Prometheus metrics, in a registry of its own (several apps in one process do not clash)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.latency = Histogram("mistrec_request_seconds", "Request latency by endpoint and scenario",
                                 ["endpoint", "scenario"], registry=self.registry)
        self.events = Counter("mistrec_events_written", "Events stored (retries not counted)",
                              registry=self.registry)
        self.model = Gauge("mistrec_model_info", "The run being served (value 1)", ["model", "run"],
                           registry=self.registry)

    def serving(self, model: str, run: str) -> None:
        self.model.clear()
        self.model.labels(model=model, run=run).set(1)


def create_app(run_dir: str | Path, db_url: str | None = None, api_key: str | None = None,
               retrieval: str | Path | None = None, retrieve: int = 500, backend: str = "torch") -> FastAPI:
    """The service of one run: `db_url` is the event store (default: events.db next to the run); with
    `api_key`, POST /v1/events needs it in the X-API-Key header; with `retrieval` (a two_tower run with its
    index, on the same data) recommendations are made in two stages, `retrieve` items retrieved then ranked; with
    `backend` "onnx" the run's exported graph scores through ONNX Runtime (`mistrec export` first)."""
    run_dir = Path(run_dir)
    url = db_url or f"sqlite:///{run_dir / 'events.db'}"
    state: dict[str, Any] = {}
    metrics = _Metrics()
    # one request scores at a time in this process: concurrent requests in FastAPI's thread pool each running
    # torch's intra-op threads oversubscribed the cores (100,000-item catalogue, 2 cores, 50 requests/s: p99
    # 113-173 ms without it, 80-83 ms with it); more cores are used by more worker processes
    scoring = threading.Lock()

    def _load(path: str | Path) -> Recommender:
        rec = Recommender.load(path, backend=backend)
        if retrieval is not None:  # the same first stage for every ranking run on its data
            from mistrec.eval.two_stage import Retriever

            rec.retriever = Retriever.load(retrieval, rec, retrieve)
        return rec

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        state["rec"] = _load(run_dir)
        state["run"] = str(run_dir)
        state["store"] = EventStore(url)
        metrics.serving(state["rec"].meta["model"], state["run"])
        yield
        state["store"].close()

    def check_key(given: str | None) -> None:
        if api_key is not None and given != api_key:
            raise HTTPException(status_code=401, detail="this endpoint needs the X-API-Key header of this service")

    app = FastAPI(title="mistrec", version="1", lifespan=lifespan)

    app.add_middleware(_BodyLimit, limit=LIMITS["body_bytes"])

    @app.exception_handler(MistrecError)
    async def _bad_input(_: Request, exc: MistrecError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": " ".join(str(exc).splitlines())})

    @app.exception_handler(Exception)
    async def _internal(_: Request, exc: Exception) -> JSONResponse:  # no stack trace in any response
        return JSONResponse(status_code=500, content={"detail": f"internal error ({type(exc).__name__}); it is a "
                                                                "bug: please report it"})

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> dict[str, Any]:
        if "rec" not in state:
            raise HTTPException(status_code=503, detail="the run is not loaded yet")
        return {"status": "ready", "model": state["rec"].meta["model"], "run": state["run"],
                "events": state["store"].count()}

    @app.get("/metrics")
    def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.post("/v1/recommend")
    def recommend(req: RecommendRequest) -> dict[str, Any]:
        rec: Recommender = state["rec"]  # this request keeps the run it started with, whatever a reload does
        where = req.scenario if req.scenario in rec.ds.scenarios else "other"  # bounded label values
        with metrics.latency.labels(endpoint="/v1/recommend", scenario=where).time():
            return _recommend(rec, req)

    def _logged(rec: Recommender, user: str) -> list[Logged]:
        history = state["store"].history(user, limit=rec.enc.spec_.history_length)
        return [Logged(item=e.item, scenario=e.scenario, time=e.time, label=e.label, value=e.value)
                for e in history if e.scenario in rec.ds.scenarios]  # a described scenario has no tokens

    def _recommend(rec: Recommender, req: RecommendRequest) -> dict[str, Any]:
        logged = _logged(rec, req.user)
        with scoring:
            return rec.recommend(req.user, req.scenario, k=req.k, explain=req.explain, description=req.describe,
                                 candidates=req.candidates, logged=logged)

    @app.post("/v1/slate")
    def slate(req: SlateRequest) -> dict[str, Any]:
        """A scene's display slots filled from the top of the ranked list under a per-category cap and diversity
        (mistrec/eval/slate.py), as `mistrec recommend --slots` fills them, with the user's logged events read."""
        rec: Recommender = state["rec"]
        where = req.scenario if req.scenario in rec.ds.scenarios else "other"
        with metrics.latency.labels(endpoint="/v1/slate", scenario=where).time():
            filler = state.get("filler")
            if filler is None or filler.rec is not rec:  # the run's categories and content, read once per run
                from mistrec.eval.slate import SlateFiller

                filler = state["filler"] = SlateFiller(rec)
            logged = _logged(rec, req.user)
            with scoring:
                return filler.fill(req.user, req.scenario, slots=req.slots, per_category=req.per_category,
                                   diversity=req.diversity, candidates=req.candidates, explain=req.explain,
                                   logged=logged)

    @app.post("/v1/events")
    def events(req: EventsRequest, x_api_key: str | None = Header(None)) -> dict[str, Any]:
        check_key(x_api_key)
        t = now()
        fresh = state["store"].add([Event(event_id=e.event_id, user=e.user, item=e.item, scenario=e.scenario,
                                           type=e.type, time=t if e.time is None else e.time, value=e.value)
                                     for e in req.events])
        metrics.events.inc(fresh)
        return {"stored": [e.event_id for e in req.events]}  # every id given: stored now or by an earlier retry

    @app.post("/v1/admin/reload")
    def reload(req: ReloadRequest, x_api_key: str | None = Header(None)) -> dict[str, Any]:
        check_key(x_api_key)
        # loaded beside the old one: requests keep being served meanwhile; a run retrained on data that includes
        # the logged events (another prepared dataset) is what a reload is for
        new = _load(req.run_dir)
        state["rec"], state["run"] = new, req.run_dir  # one assignment: a request sees the old run or the new
        metrics.serving(new.meta["model"], req.run_dir)
        return {"model": new.meta["model"], "run": req.run_dir}

    @app.get("/v1/users/{user}/history")
    def history(user: str, limit: int = 50, training: bool = False) -> dict[str, Any]:
        if not 1 <= limit <= LIMITS["history"]:
            raise HTTPException(status_code=422, detail=f"limit must be from 1 to {LIMITS['history']}. Got {limit}.")
        out: dict[str, Any] = {"user": user,
                               "events": [e.__dict__ for e in state["store"].history(user, limit=limit)]}
        if training:  # the run's own events of the user, the rest of the history a request is scored with
            out["training"] = state["rec"].training_events(user, limit=limit)
        return out

    @app.get("/v1/info")
    def info() -> dict[str, Any]:
        rec: Recommender = state["rec"]
        return {"model": rec.meta["model"], "run": state["run"], "scenarios": list(rec.ds.scenarios),
                "catalogue": {s: rec.catalogue_size(s) for s in rec.ds.scenarios},
                "users": rec.active_users(50), "limits": LIMITS}

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return _PAGE

    return app


def serve(run_dir: str, db_url: str | None, host: str, port: int, api_key_env: str | None, workers: int = 1,
          retrieval: str | None = None, retrieve: int = 500, backend: str = "torch") -> None:
    """Runs the service under uvicorn (the command line's `mistrec serve`). With several workers each process
    loads the run and opens the store (SQLite's WAL lets them write one at a time and read at once)."""
    import uvicorn

    key = os.environ.get(api_key_env) if api_key_env else None
    if api_key_env and not key:
        raise MistrecError(f"--api-key-env {api_key_env}: that environment variable is not set.")
    if workers < 1:
        raise MistrecError(f"--workers must be >= 1. Got {workers}.")
    if workers == 1:
        uvicorn.run(create_app(run_dir, db_url, key, retrieval, retrieve, backend), host=host, port=port,
                    log_level="info")
        return
    # what each worker's factory reads
    os.environ.update({"MISTREC_SERVE_RUN": str(run_dir), "MISTREC_SERVE_DB": db_url or "",
                       "MISTREC_SERVE_KEY_ENV": api_key_env or "", "MISTREC_SERVE_RETRIEVAL": retrieval or "",
                       "MISTREC_SERVE_RETRIEVE": str(retrieve), "MISTREC_SERVE_BACKEND": backend})
    uvicorn.run("mistrec.serve.app:app_from_env", factory=True, workers=workers, host=host, port=port,
                log_level="info")


def app_from_env() -> FastAPI:
    """The app of one worker of `mistrec serve --workers N` (uvicorn imports it in each process)."""
    key_env = os.environ.get("MISTREC_SERVE_KEY_ENV") or None
    return create_app(os.environ["MISTREC_SERVE_RUN"], os.environ.get("MISTREC_SERVE_DB") or None,
                      os.environ.get(key_env) if key_env else None, os.environ.get("MISTREC_SERVE_RETRIEVAL") or None,
                      int(os.environ.get("MISTREC_SERVE_RETRIEVE") or 500),
                      os.environ.get("MISTREC_SERVE_BACKEND") or "torch")

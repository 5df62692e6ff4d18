"""The worker side of distributed runs: the task that runs one attempt, and ``run_worker`` that serves the queue.

A worker process runs Celery's ``threads`` pool: ``concurrency`` threads, each taking one task at a time. The
threads only wait: every attempt runs with ``run_attempt`` (the same code as the local runner) on one asyncio event
loop per process, in its own thread, so a worker schedules its attempts exactly as the local runner does. With one
loop per thread instead, 32 threads contended for the GIL and a worker at concurrency 32 was 0.77x the local
runner's throughput. One loop also means one ``AttemptContext`` per run: one compiled graph, one set of endpoint
limits (``--max-connections`` per server, as locally), and the chat models built once per process.

The models come from an injected ``ModelFactory`` (the top layer builds them from the run's specs and its own
settings), so this package never reads configuration. Case images come from the worker's own image store and image
folder (``WorkerImages``, from the worker machine's settings: the enqueuing machine's paths mean nothing here); a
worker given none marks every case image "unavailable" rather than running text-only. A run that names a triage
model needs ``WorkerImages.classifier_factory``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from celery import Celery
from langchain_core.language_models import BaseChatModel

from agents.imaging import ImageClassifier
from simulations.bench.attempt import AttemptContext, AttemptOutcome, run_attempt
from simulations.bench.callcache import CallCache, open_call_cache
from simulations.bench.config import RunConfig
from simulations.bench.distributed.app import DEFAULT_VISIBILITY_TIMEOUT_S, QUEUE_NAME, TASK_NAME, make_celery_app
from simulations.bench.distributed.store import RunRecord, RunStore
from simulations.bench.models import EndpointLimits
from simulations.bench.plan import Attempt
from tools.images import ImageStore

__all__ = ["ModelFactory", "WorkerImages", "WorkerRuntime", "register_task", "run_worker", "worker_name"]

logger = logging.getLogger(__name__)
ModelFactory = Callable[[RunConfig], Mapping[str, BaseChatModel]]


@dataclass(frozen=True)
class WorkerImages:
    """Where this worker finds case images: its store (None: every case image is "unavailable"), its image folder,
    whether a URL-only image may be downloaded, and how to build a run's triage classifier (from its config)."""

    store: ImageStore | None = None
    image_dir: Path | None = None
    download: bool = True
    classifier_factory: Callable[[RunConfig], ImageClassifier | None] | None = None


def worker_name() -> str:
    """``bench-<pid>@<host>``: unique per process, readable in ``bench status``."""
    return f"bench-{os.getpid()}@{socket.gethostname()}"


class WorkerRuntime:
    """What one worker process keeps between tasks: run records, built models, caches and per-thread contexts."""

    def __init__(self, queue_url: str, model_factory: ModelFactory, *, worker: str | None = None,
                 images: WorkerImages | None = None) -> None:
        self.store = RunStore(queue_url)
        self.model_factory = model_factory
        self.worker = worker or worker_name()
        self.images = images or WorkerImages()
        self._lock = threading.Lock()
        self._records: dict[str, RunRecord] = {}
        self._attempts: dict[str, dict[str, Attempt]] = {}
        self._models: dict[str, Mapping[str, BaseChatModel]] = {}
        self._caches: dict[str, CallCache] = {}
        self._contexts: dict[str, AttemptContext] = {}
        self._event_loop: asyncio.AbstractEventLoop | None = None

    def _record(self, run_id: str) -> RunRecord:
        with self._lock:
            record = self._records.get(run_id)
            if record is None:
                record = self._records[run_id] = self.store.load_record(run_id)
                self._attempts[run_id] = {a.key: a for a in record.plan.attempts()}
            return record

    def _built_models(self, config: RunConfig) -> Mapping[str, BaseChatModel]:
        identity = config.model_dump_json(include={"models", "temperature", "seed", "max_new_tokens"})
        with self._lock:
            if identity not in self._models:
                self._models[identity] = self.model_factory(config)
            return self._models[identity]

    def _cache(self, url: str | None) -> CallCache | None:
        if not url:
            return None
        with self._lock:
            if url not in self._caches:
                self._caches[url] = open_call_cache(url)
            return self._caches[url]

    def _loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._event_loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="bench-event-loop", daemon=True).start()
                self._event_loop = loop
            return self._event_loop

    async def _context(self, record: RunRecord) -> AttemptContext:
        # Built on the event loop's own thread (and only there), so its asyncio objects belong to that loop.
        context = self._contexts.get(record.run_id)
        if context is None:
            limits = EndpointLimits(record.max_connections, record.local_connections)
            images = self.images
            classifier = None
            if record.plan.config.models.get("triage") and images.classifier_factory is not None:
                classifier = images.classifier_factory(record.plan.config)
            context = self._contexts[record.run_id] = AttemptContext(
                record.plan, record.run_id, self._built_models(record.plan.config), limits,
                self._cache(record.cache_url), image_store=images.store, image_dir=images.image_dir,
                download_images=images.download, image_classifier=classifier)
        return context

    async def _attempt(self, record: RunRecord, attempt: Attempt) -> AttemptOutcome:
        return await run_attempt(await self._context(record), attempt)

    def run(self, run_id: str, key: str) -> str:
        """Run one attempt unless it already has an ok result; return what happened (for the worker's log)."""
        record = self._record(run_id)
        attempt = self._attempts[run_id].get(key)
        if attempt is None:
            return f"{key}: not an attempt of run {run_id}; dropped"
        if self.store.is_finished_ok(run_id, key):
            return f"{key}: already finished; skipped"
        self.store.mark_running(run_id, key, self.worker)
        outcome = asyncio.run_coroutine_threadsafe(self._attempt(record, attempt), self._loop()).result()
        stored = self.store.store_outcome(run_id, outcome.result, outcome.transcript, outcome.traceback, self.worker)
        return f"{key}: {outcome.result.status}{'' if stored else ' (already finished elsewhere; not stored)'}"

    def close(self) -> None:
        if self._event_loop is not None:
            self._event_loop.call_soon_threadsafe(self._event_loop.stop)
        for cache in self._caches.values():
            cache.close()
        self.store.close()


def register_task(app: Celery, runtime: WorkerRuntime) -> None:
    """Register the attempt task on ``app``, running on ``runtime``."""

    @app.task(name=TASK_NAME, bind=False)
    def run_attempt_task(run_id: str, key: str) -> str:
        message = runtime.run(run_id, key)
        logger.info("%s", message)
        return message

    del run_attempt_task


def run_worker(
    queue_url: str,
    model_factory: ModelFactory,
    *,
    concurrency: int = 4,
    visibility_timeout: float = DEFAULT_VISIBILITY_TIMEOUT_S,
    loglevel: str = "INFO",
    images: WorkerImages | None = None,
) -> None:
    """Serve the queue until stopped (Ctrl-C or SIGTERM finish the tasks in flight; SIGKILL loses nothing either,
    the tasks are delivered again). A queue URL pointing at nothing raises ``QueueError`` within seconds."""
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, not {concurrency}")
    name = worker_name()
    runtime = WorkerRuntime(queue_url, model_factory, worker=name, images=images)
    runtime.store.ping()
    app = make_celery_app(queue_url, visibility_timeout=visibility_timeout)
    register_task(app, runtime)
    try:
        app.worker_main([
            "worker", "--pool", "threads", "--concurrency", str(concurrency), "--hostname", name,
            "--queues", QUEUE_NAME, "--loglevel", loglevel, "--without-gossip", "--without-mingle",
            "--without-heartbeat",
        ])
    finally:
        runtime.close()
        app.close()

"""The benchmark runner: every planned attempt not yet finished, run concurrently, each result kept as it lands.

``run_benchmark`` opens (or resumes) the run directory, skips attempts whose latest result is ``ok``, and runs the
rest on ``concurrency`` asyncio workers. Each model endpoint has its own limit (``EndpointLimits``), so four roles on
one GPU server never exceed what it was given, and a local model is used by one call at a time. A finished attempt
writes its transcript, then its result line; Ctrl-C or a kill loses only the attempts in flight, which the next run
redoes. Errors are results too (with their reason; their tracebacks go to ``errors.log``) and are retried on resume.

Case images go through one image store per run: ``RunOptions.image_store``, or, when a case has an image (a URL, or
a file in ``image_dir``) and none was given, a store under ``RUN_DIR/images`` so every image is fetched once.
"""

from __future__ import annotations

import asyncio
import re
import sys
import time
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from langchain_core.language_models import BaseChatModel

from agents.imaging import ImageClassifier
from graphs.checkpointers import open_checkpointer
from simulations.bench.attempt import AttemptContext, AttemptOutcome, run_attempt
from simulations.bench.callcache import open_call_cache
from simulations.bench.config import RunEnvironment
from simulations.bench.models import EndpointLimits
from simulations.bench.plan import Attempt, BenchPlan
from simulations.bench.records import AttemptResult
from simulations.bench.rundir import RunDir
from simulations.case_images import local_image_for
from tools.images import ImageStore

ERRORS_LOG = "errors.log"
IMAGES_DIR = "images"  # the run's own image cache when no store is given
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*):[^@/\s]*@")


@dataclass(frozen=True)
class RunOptions:
    """How to run (never what: that is the plan). None of these change results, so a resume may change them."""

    concurrency: int = 4  # attempts in flight at once
    max_connections: int = 32  # calls in flight per remote endpoint (an OpenAI-compatible server)
    local_connections: int = 1  # calls in flight per local model
    # The model-call cache: a SQLite file path, or a redis:// (rediss://) URL shared by many workers; None: no cache.
    cache_path: str | Path | None = None
    force_new: bool = False  # start the run directory over (the old run is moved aside) if its config differs
    # Where attempts checkpoint: None keeps each attempt's checkpoints in memory until it ends; a redis:// URL (or
    # a SQLite path) keeps them, expiring after checkpoint_ttl_minutes (Redis) when given.
    checkpointer: str | None = None
    checkpoint_ttl_minutes: float | None = None
    # Case images: the store that fetches and caches them (None: RUN_DIR/images when a case has an image), a folder
    # of case images by name (``--image-dir``), whether a case image that is only a URL may be downloaded, and the
    # built triage classifier when the plan names a "triage" model.
    image_store: ImageStore | None = None
    image_dir: Path | None = None
    download_images: bool = True
    image_classifier: ImageClassifier | None = None

    def __post_init__(self) -> None:
        for name in ("concurrency", "max_connections", "local_connections"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, not {getattr(self, name)}")


@dataclass(frozen=True)
class RunEvent:
    """What the runner tells a progress display: the plan, then each attempt starting and finishing."""

    kind: Literal["planned", "started", "finished"]
    planned: int = 0
    skipped: int = 0
    # With "planned": the verdicts among the attempts finished before this invocation, so a running accuracy
    # covers the whole run.
    judged: int = 0
    correct: int = 0
    attempt: str | None = None
    result: AttemptResult | None = None


@dataclass
class RunSummary:
    run_id: str
    run_dir: Path
    planned: int
    skipped: int  # already finished before this invocation
    finished: int = 0  # finished ok in this invocation
    errors: int = 0  # errored in this invocation
    judged: int = 0  # over the whole run (all latest results)
    correct: int = 0
    wall_seconds: float = 0.0
    model_seconds: float = 0.0  # this invocation's attempts
    cache_hits: int = 0
    cache_misses: int = 0
    results: list[AttemptResult] = field(default_factory=list)  # the latest result of every planned attempt


EventCallback = Callable[[RunEvent], None]


async def run_benchmark(
    plan: BenchPlan,
    run_dir: Path,
    role_models: Mapping[str, BaseChatModel],
    options: RunOptions = RunOptions(),
    *,
    on_event: EventCallback | None = None,
) -> RunSummary:
    """Run (or resume) ``plan`` in ``run_dir`` with the built chat model of each role; see the module docstring."""
    started = time.perf_counter()
    emit = on_event or (lambda _event: None)
    image_root = options.image_store.root if options.image_store is not None else (
        Path(run_dir) / IMAGES_DIR if _needs_images(plan, options.image_dir) else None)
    environment = RunEnvironment(
        concurrency=options.concurrency,
        max_connections=options.max_connections,
        cache=_redact_credentials(str(options.cache_path)) if options.cache_path else None,
        command=[_redact_credentials(arg) for arg in sys.argv],
        image_dir=str(options.image_dir) if options.image_dir is not None else None,
        image_cache=str(image_root) if image_root is not None else None,
    )
    with RunDir.open(Path(run_dir), plan.config, environment, force_new=options.force_new) as directory:
        # Built once the directory is ours: a refused run leaves nothing behind.
        image_store = options.image_store or (ImageStore(image_root) if image_root is not None else None)
        earlier = directory.load_results().latest
        done = directory.finished()
        attempts = plan.attempts()
        todo = [a for a in attempts if a.key not in done]
        summary = RunSummary(directory.run_id, directory.path, planned=len(attempts), skipped=len(attempts) - len(todo))
        kept = [earlier[a.key] for a in attempts if a.key in done and earlier[a.key].correct is not None]
        emit(RunEvent("planned", planned=summary.planned, skipped=summary.skipped, judged=len(kept),
                      correct=sum(bool(r.correct) for r in kept)))
        cache = open_call_cache(options.cache_path) if options.cache_path else None
        try:
            async with AsyncExitStack() as stack:
                saver = None
                if options.checkpointer:
                    saver = await stack.enter_async_context(
                        open_checkpointer(options.checkpointer, ttl_minutes=options.checkpoint_ttl_minutes))
                context = AttemptContext(
                    plan, directory.run_id, role_models,
                    EndpointLimits(options.max_connections, options.local_connections), cache, saver,
                    image_store=image_store, image_dir=options.image_dir, download_images=options.download_images,
                    image_classifier=options.image_classifier,
                )
                await _run_all(context, directory, todo, options.concurrency, summary, emit)
        finally:
            if cache is not None:
                cache.close()
        latest = directory.load_results().latest
    summary.results = [latest[a.key] for a in attempts if a.key in latest]
    judged = [r for r in summary.results if r.status == "ok" and r.correct is not None]
    summary.judged, summary.correct = len(judged), sum(bool(r.correct) for r in judged)
    summary.wall_seconds = time.perf_counter() - started
    return summary


def _needs_images(plan: BenchPlan, image_dir: Path | None) -> bool:
    """Whether some case of the plan has an image: a URL, or a file named for it in ``image_dir``."""
    return any(case.image_url or (image_dir is not None and local_image_for(case, image_dir) is not None)
               for case in plan.cases)


def _redact_credentials(text: str) -> str:
    """``text`` with the password of any ``scheme://user:password@`` URL in it replaced by ``***``: a Redis cache URL
    (in the cache entry and in the recorded command line) must never leave its password in config.json."""
    return _URL_PASSWORD.sub(r"\g<head>:***@", text)


async def _run_all(
    context: AttemptContext,
    directory: RunDir,
    todo: list[Attempt],
    concurrency: int,
    summary: RunSummary,
    emit: EventCallback,
) -> None:
    queue: asyncio.Queue[Attempt] = asyncio.Queue()
    for attempt in todo:
        queue.put_nowait(attempt)
    # Writing is done off the event loop (each result is fsync'ed), one attempt's files at a time.
    writing = asyncio.Lock()

    async def worker() -> None:
        while True:
            try:
                attempt = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            emit(RunEvent("started", attempt=attempt.key))
            outcome = await run_attempt(context, attempt)
            async with writing:
                await asyncio.to_thread(_keep, directory, attempt, outcome)
            _count(summary, outcome.result)
            emit(RunEvent("finished", attempt=attempt.key, result=outcome.result))

    # A task group cancels every worker when one fails or the run is interrupted: attempts in flight are simply
    # redone by the next run, since nothing is written for them until they finish.
    async with asyncio.TaskGroup() as group:
        for _ in range(min(concurrency, len(todo))):
            group.create_task(worker())


def _keep(directory: RunDir, attempt: Attempt, outcome: AttemptOutcome) -> None:
    # Transcript first: a result line never points at a transcript that is not there.
    if outcome.transcript is not None:
        outcome.result.transcript = directory.write_transcript(attempt.name, outcome.transcript)
    if outcome.traceback:
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        with (directory.path / ERRORS_LOG).open("a", encoding="utf-8") as log:
            log.write(f"--- {stamp} {attempt.key}\n{outcome.traceback}\n")
    directory.append_result(outcome.result)


def _count(summary: RunSummary, result: AttemptResult) -> None:
    if result.status == "ok":
        summary.finished += 1
    else:
        summary.errors += 1
    summary.model_seconds += result.model_seconds
    summary.cache_hits += result.cache_hits
    summary.cache_misses += result.cache_misses

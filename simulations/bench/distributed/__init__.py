"""Benchmark runs distributed over Celery workers that share one Redis (see ``store`` for the keys).

``enqueue(RunRecord(run_id, plan, environment), queue_url)`` stores the run and sends one task per unfinished
attempt; ``run_worker(queue_url, model_factory, concurrency=C)`` serves them (``threads`` pool, one event loop per
thread, ``run_attempt`` as in local runs); ``RunStore(queue_url).status(run_id)`` counts done, running, queued and
failed attempts and each worker's throughput; ``export_run(queue_url, run_id, run_dir)`` writes the standard run
directory, so ``write_report`` and ``compare_runs`` read distributed runs unchanged.

Delivery is at least once (late acknowledgement, the transport's visibility timeout); storage is exactly once (a
Lua script stores an attempt's result only when it has none, or replaces an error with an ok result).

Errors: ``QueueError`` (the queue URL cannot be reached, or the run is unknown); the run directory's own errors
(``RunDirError``, ``ConfigMismatchError``) on export.
"""

from simulations.bench.distributed.app import (
    DEFAULT_VISIBILITY_TIMEOUT_S,
    enqueue,
    make_celery_app,
    send_attempts,
)
from simulations.bench.distributed.export import ExportSummary, export_run
from simulations.bench.distributed.store import QueueError, RunRecord, RunStatus, RunStore, WorkerStats
from simulations.bench.distributed.worker import ModelFactory, WorkerImages, WorkerRuntime, run_worker, worker_name

__all__ = [
    "DEFAULT_VISIBILITY_TIMEOUT_S",
    "ExportSummary",
    "ModelFactory",
    "QueueError",
    "RunRecord",
    "RunStatus",
    "RunStore",
    "WorkerImages",
    "WorkerRuntime",
    "WorkerStats",
    "enqueue",
    "export_run",
    "make_celery_app",
    "run_worker",
    "send_attempts",
    "worker_name",
]

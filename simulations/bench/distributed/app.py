"""The Celery application of distributed runs, and ``enqueue``: one task per unfinished attempt of a run.

The broker is the queue URL's Redis; results never go through Celery (``task_ignore_result``): the task writes them
to the run's keys (``store``). Delivery is at least once: late acknowledgement (a task is acknowledged after it
ran) and the Redis transport's visibility timeout mean a task whose worker died is delivered again once the timeout
has passed since its delivery. So the timeout must be longer than the slowest attempt, or a live attempt is
delivered twice (harmless, since results are stored idempotently, but wasted work).
"""

from __future__ import annotations

from celery import Celery

from simulations.bench.distributed.store import QueueError, RunRecord, RunStore
from simulations.bench.rediscache import redact_url

__all__ = ["DEFAULT_VISIBILITY_TIMEOUT_S", "QUEUE_NAME", "TASK_NAME", "enqueue", "make_celery_app", "send_attempts"]

QUEUE_NAME = "clinicflow.bench"
TASK_NAME = "clinicflow.bench.run_attempt"
DEFAULT_VISIBILITY_TIMEOUT_S = 3600.0
BROKER_CONNECT_TIMEOUT_S = 3.0
BROKER_MAX_RETRIES = 3  # when a worker starts, or loses the broker: then it gives up (a restart within ~30 s is ok)


def make_celery_app(queue_url: str, *, visibility_timeout: float = DEFAULT_VISIBILITY_TIMEOUT_S) -> Celery:
    """A Celery app on ``queue_url`` (a redis:// URL) configured for at-least-once delivery of attempts."""
    app = Celery("clinicflow-bench", broker=queue_url, set_as_current=False)
    # A killed worker's tasks are swept back to the queue every few seconds once their timeout has passed.
    restore_every = max(1, min(10, int(visibility_timeout // 3)))
    app.conf.update(
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=QUEUE_NAME,
        task_serializer="json",
        accept_content=["json"],
        broker_transport_options={
            "visibility_timeout": visibility_timeout,
            "unacked_restore_interval": restore_every,
            "unacked_restore_throttle": 1,
            "socket_connect_timeout": BROKER_CONNECT_TIMEOUT_S,
            "max_retries": BROKER_MAX_RETRIES,
        },
        broker_connection_timeout=BROKER_CONNECT_TIMEOUT_S,
        broker_connection_retry=True,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=10,
        task_publish_retry=True,
        task_publish_retry_policy={"max_retries": BROKER_MAX_RETRIES, "interval_start": 0.2,
                                   "interval_step": 0.5, "interval_max": 2.0},
        worker_hijack_root_logger=False,
        worker_cancel_long_running_tasks_on_connection_loss=False,
    )
    return app


def send_attempts(app: Celery, run_id: str, keys: list[str]) -> None:
    """Send one task per attempt key (no check: ``enqueue`` decides which)."""
    try:
        with app.producer_or_acquire() as producer:
            for key in keys:
                app.send_task(TASK_NAME, args=[run_id, key], queue=QUEUE_NAME, producer=producer)
    except QueueError:
        raise
    except Exception as exc:  # kombu's OperationalError and redis errors: the broker is not usable
        raise QueueError(f"cannot send tasks to the queue at {redact_url(str(app.conf.broker_url))}: {exc}") from exc


def enqueue(record: RunRecord, queue_url: str) -> list[str]:
    """Store the run's record and send a task for every attempt without an ok result; return the keys sent.

    Enqueuing the same run again sends only what is unfinished (errors included, as a local resume retries them).
    A queue URL pointing at nothing raises ``QueueError`` within a few seconds.
    """
    store = RunStore(queue_url)
    try:
        store.ping()
        store.save_record(record)
        done = store.finished_ok(record.run_id)
    finally:
        store.close()
    keys = [attempt.key for attempt in record.plan.attempts() if attempt.key not in done]
    if keys:
        app = make_celery_app(queue_url)
        try:
            send_attempts(app, record.run_id, keys)
        finally:
            app.close()
    return keys

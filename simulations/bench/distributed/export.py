"""Export a distributed run from Redis to a run directory, the same format a local run writes.

The directory gets the run's own id (its ``config.json`` is written first when the directory is new), each
attempt's transcript, then its result line, and the tracebacks of error results in ``errors.log``. Attempts whose
latest line in the directory is already ok are skipped, so exporting again (say, after more attempts finished)
adds only what is new and never duplicates a line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from simulations.bench.distributed.store import RunStore
from simulations.bench.rundir import CONFIG_FILE, RunDir, RunDirError
from simulations.bench.runner import ERRORS_LOG

__all__ = ["ExportSummary", "export_run"]


@dataclass
class ExportSummary:
    run_id: str
    run_dir: Path
    planned: int
    written: int  # result lines appended now
    already: int  # attempts already finished ok in the directory
    missing: int  # planned attempts with no result in Redis yet


def export_run(queue_url: str, run_id: str, run_dir: Path) -> ExportSummary:
    """Write (or bring up to date) ``run_dir`` from the run ``run_id`` stored at ``queue_url``."""
    store = RunStore(queue_url)
    try:
        store.ping()
        record = store.load_record(run_id)
        results = store.results(run_id)
        run_dir = Path(run_dir)
        _claim(run_dir, record.run_id, record.plan.config.model_dump(mode="json"),
               record.environment.model_dump(mode="json"))
        attempts = record.plan.attempts()
        summary = ExportSummary(run_id, run_dir, planned=len(attempts), written=0, already=0,
                                missing=sum(a.key not in results for a in attempts))
        with RunDir.open(run_dir, record.plan.config, record.environment) as directory:
            if directory.run_id != run_id:
                raise RunDirError(f"{run_dir} holds run {directory.run_id!r}, not {run_id!r}; export to another "
                                  "directory")
            latest = directory.load_results().latest
            for attempt in attempts:
                result = results.get(attempt.key)
                if result is None:
                    continue
                held = latest.get(attempt.key)
                if held is not None and (held.status == "ok" or held == result):
                    summary.already += held.status == "ok"
                    continue
                transcript = store.transcript(run_id, attempt.key)
                if transcript is not None:
                    result.transcript = directory.write_transcript(attempt.name, transcript)
                trace = store.traceback(run_id, attempt.key)
                if trace:
                    stamp = datetime.now(UTC).isoformat(timespec="seconds")
                    with (directory.path / ERRORS_LOG).open("a", encoding="utf-8") as log:
                        log.write(f"--- {stamp} {attempt.key}\n{trace}\n")
                directory.append_result(result)
                summary.written += 1
        return summary
    finally:
        store.close()


def _claim(run_dir: Path, run_id: str, config: dict, environment: dict) -> None:
    """Give a new directory the queue's run id: write its config.json (the documented format) before opening it."""
    path = run_dir / CONFIG_FILE
    if path.exists():
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    document = {"run_id": run_id, "config": config, "environment": environment, "resumed": []}
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    temporary.replace(path)




"""Checkpointers for the consultation graph: SQLite on disk by default, in memory for tests.

Every graph step is checkpointed, so a consultation interrupted by a crash, Ctrl-C or a pause for a clinician's
answer resumes from where it stopped.

The SQLite saver is langgraph-checkpoint-sqlite's own ``SqliteSaver``, driven inline from async code. Its async
sibling hands each statement to a helper thread and back (aiosqlite), which cost about 4 ms per graph step on two
busy cores; a WAL-mode insert made directly takes a fraction of a millisecond, far below what a model call takes,
so running it on the event loop is the cheaper way to get the same durable checkpoints.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
)
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver


class InlineSqliteSaver(SqliteSaver):
    """``SqliteSaver`` whose async methods run the same statements directly (no thread hop per statement)."""

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return self.get_tuple(config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        for item in self.list(config, filter=filter, before=before, limit=limit):
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return self.put(config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        self.put_writes(config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        self.delete_thread(thread_id)


def _connect(path: Path) -> sqlite3.Connection:
    # check_same_thread=False: the saver serialises access with its own lock. WAL with synchronous=NORMAL makes
    # each commit survive a killed process (what resuming needs) without an fsync per checkpoint; only a power cut
    # can lose the last few steps.
    conn = sqlite3.connect(str(path), check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


@asynccontextmanager
async def open_checkpointer(target: str | Path | None) -> AsyncIterator[BaseCheckpointSaver]:
    """Open a checkpointer: ``None`` or ``":memory:"`` keeps checkpoints in memory, anything else is a SQLite file."""
    if target is None or str(target) == ":memory:":
        yield InMemorySaver()
        return
    path = Path(target).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = _connect(path)
    try:
        yield InlineSqliteSaver(conn)
    finally:
        conn.close()



"""Checkpointers for the consultation graph: SQLite on disk by default, in memory for tests.

Every graph step is checkpointed, so a consultation interrupted by a crash, Ctrl-C or a pause for a clinician's
answer resumes from where it stopped.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver


@asynccontextmanager
async def open_checkpointer(target: str | Path | None) -> AsyncIterator[BaseCheckpointSaver]:
    """Open a checkpointer: ``None`` or ``":memory:"`` keeps checkpoints in memory, anything else is a SQLite file."""
    if target is None or str(target) == ":memory:":
        yield InMemorySaver()
        return
    path = Path(target).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    async with AsyncSqliteSaver.from_conn_string(str(path)) as saver:
        yield saver

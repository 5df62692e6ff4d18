"""What every command shares: the two rich consoles, a one-line failure, and running async work to completion
with input and set-up errors reported as messages (bugs keep their traceback)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from clinicflow.errors import user_facing

console = Console()
err = Console(stderr=True)
T = TypeVar("T")


def fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"[bold red]error:[/] {escape(message)}")
    raise typer.Exit(code)


def run_async(work: Callable[[], Awaitable[T]], *, interrupted: str = "Interrupted.") -> T:
    """``asyncio.run(work())``: Ctrl-C exits 130 with ``interrupted``; an expected error exits 1 with its message."""
    try:
        return asyncio.run(work())
    except KeyboardInterrupt:
        err.print(f"[yellow]{escape(interrupted)}[/]")
        raise typer.Exit(130) from None
    except typer.Exit:
        raise
    except Exception as exc:
        message = user_facing(exc)
        if message is None:
            raise
        fail(message)

"""What every command shares at the terminal: human output, progress lines, and running
the command's coroutine so that Ctrl-C and SIGTERM stop it cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import IO, Any

from appliance.errors import EXIT_INTERRUPTED


class Console:
    """Human output: stdout, or stderr when stdout carries the JSON event stream."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def __call__(self, *parts: object) -> None:
        print(*parts, file=self.stream, flush=True)


def progress(line: str) -> None:
    """A progress line (loading models, …): always on stderr."""
    print(f"  {line}", file=sys.stderr, flush=True)


def quiet(_: str) -> None:
    return None


def run_async(main: Callable[[], Coroutine[Any, Any, int]], say: Callable[..., None]) -> int:
    """Run a coroutine; SIGINT/SIGTERM cancel it cleanly."""

    async def guarded() -> int:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, task.cancel)
        try:
            return await main()
        except asyncio.CancelledError:
            say("stopped.")
            return EXIT_INTERRUPTED

    return asyncio.run(guarded())

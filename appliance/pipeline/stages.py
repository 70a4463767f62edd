"""The pipeline's stages and the thread each runs its engine on."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from enum import StrEnum
from typing import Any, TypeVar

T = TypeVar("T")


class Stage(StrEnum):
    """The stages of a spoken turn, in their order. Each blocking engine call runs on its
    stage's own thread: wake word, VAD and the end-of-turn model on LISTEN."""

    LISTEN = "listen"
    STT = "stt"
    LLM = "llm"
    TTS = "tts"


class StageThread:
    """A named single-thread executor: one engine's calls run there, in order.

    Always the same thread per engine, not a shared pool: whisper.cpp and llama.cpp run
    their maths on OpenMP thread teams that belong to the calling thread. A call from a
    new thread builds a second team while the first one's workers still spin, and on two
    cores that costs 30–50 % of the call (measured with `appliance bench`)."""

    def __init__(self, stage: Stage) -> None:
        self.stage = stage
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"stage-{stage}")

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, *args)

    def submit(self, fn: Callable[[], None]) -> asyncio.Future[None]:
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(self._executor, fn)

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn` on the stage's thread and wait for it, from another worker thread."""
        if threading.current_thread().name.startswith(f"stage-{self.stage}"):
            return fn(*args)
        return self._executor.submit(fn, *args).result()

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


class StageThreads:
    """One thread per stage, shared by every session run on a pipeline's engines."""

    def __init__(self) -> None:
        self._threads = {stage: StageThread(stage) for stage in Stage}

    def __getitem__(self, stage: Stage | str) -> StageThread:
        return self._threads[Stage(stage)]

    def shutdown(self) -> None:
        for thread in self._threads.values():
            thread.shutdown()

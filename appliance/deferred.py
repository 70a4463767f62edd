"""A voice that finishes loading while the appliance already listens.

Piper's voice takes most of a cold start (1.3–1.7 s of 2.2 s here: onnxruntime setting
up its session), yet it is not needed until a request has been heard and answered: the
wake word, the request, its transcript and the answer come first. With
`load_engines(..., defer=True)` (the service) it loads on a thread of its own, and the
appliance is ready to listen as soon as the other engines are. A call that needs it
before it is there waits for it. Its files are still checked before the thread starts,
and a load that fails is raised by `finish_loading` (the service stops with it).

The language model is not deferred: llama-cpp-python points the whole process's stdout
and stderr at /dev/null while it loads, which would swallow what other threads write.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar

from appliance.errors import ModelError

T = TypeVar("T")


class Deferred(Generic[T]):
    """A model loading on its own thread; attribute access waits for it."""

    def __init__(self, label: str, load: Callable[[], T]) -> None:
        self._label = label
        self._value: T | None = None
        self._error: BaseException | None = None
        # Not a daemon: a process stopped while the voice loads (SIGTERM a second after
        # the start) waits for the load to end before it exits. Exiting with onnxruntime
        # still setting up its session on this thread crashed the process (SIGSEGV).
        self._thread = threading.Thread(target=self._run, args=(load,), name=f"load-{label}")
        self._thread.start()

    def _run(self, load: Callable[[], T]) -> None:
        try:
            self._value = load()
        except BaseException as err:  # kept for whoever needs the engine
            self._error = err

    @property
    def loaded(self) -> bool:
        return not self._thread.is_alive()

    def get(self) -> T:
        self._thread.join()
        if self._error is not None:
            if isinstance(self._error, ModelError):
                raise self._error
            raise ModelError(f"cannot load the {self._label}: {self._error}") from self._error
        assert self._value is not None
        return self._value

    def __getattr__(self, name: str) -> Any:
        # Only reached for what this class lacks: the engine's own methods.
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.get(), name)


class DeferredVoice(Deferred[T]):
    """A Piper voice loading; its sample rate is known at once, from its JSON."""

    def __init__(self, label: str, voice_path: Path, load: Callable[[], T]) -> None:
        config = Path(voice_path).with_name(Path(voice_path).name + ".json")
        try:
            self.sample_rate = int(json.loads(config.read_text("utf-8"))["audio"]["sample_rate"])
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ModelError(f"Piper voice config {config} is unreadable: {err}") from err
        super().__init__(label, load)


def finish_loading(*engines: object) -> None:
    """Wait for every deferred engine among `engines`; raise the first failure. (Each
    load's time goes to `load_engines`' `load_times`.)"""
    for engine in engines:
        engine = getattr(engine, "local", engine)  # behind a remote (appliance/remote)
        if isinstance(engine, Deferred):
            engine.get()

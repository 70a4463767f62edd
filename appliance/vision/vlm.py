"""Describing a scene: a vision-language model (a GGUF plus its multimodal projector)
run by llama.cpp through llama-cpp-python's multimodal (mtmd) chat handler.

No registry package carries such a model, so none ships: a user imports one
(`appliance models import MODEL.gguf --projector MMPROJ.gguf`), and it is used only if
the memory budget says it fits next to the voice pipeline's models."""

from __future__ import annotations

import base64
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from appliance.models.budget import MemoryState, ModelNeed, gguf_need, plan_load
from appliance.models.catalog import ModelEntry, ModelStore
from appliance.vision.errors import VisionModelMissing
from appliance.vision.image import encode_jpeg

HOW_TO_ADD = (
    "To describe scenes, import a vision model: a GGUF and its projector, e.g. SmolVLM "
    "or moondream, with `appliance models import MODEL.gguf --projector MMPROJ.gguf`."
)
DESCRIBE_PROMPT = "Describe what you see in one or two short sentences."


class SceneDescriber(Protocol):
    name: str

    def describe(self, image: np.ndarray, prompt: str) -> str:
        """A short description of an RGB image. Blocking."""
        ...


@dataclass(frozen=True)
class VisionModelChoice:
    entry: ModelEntry
    model_path: Path
    projector_path: Path
    message: str


def choose_vision_model(
    store: ModelStore, wanted: str, state: MemoryState, context: int
) -> VisionModelChoice:
    """The imported vision model to use, or VisionModelMissing saying why not and how."""
    from appliance.models.gguf import read_gguf_info

    candidates = [store.entry(wanted, "vision")] if wanted else store.prepared("vision")
    if not candidates:
        raise VisionModelMissing(f"no vision model is imported. {HOW_TO_ADD}")
    refusals = []
    for entry in candidates:
        if len(entry.files) < 2:
            refusals.append(f"{entry.name} has no projector file")
            continue
        model_path = store.path(entry.name, "vision")  # verifies every file of the entry
        projector = store.root / entry.files[1].path
        info = read_gguf_info(model_path)
        need = gguf_need(entry.name, info, context)
        # The projector is loaded whole (weights, not mmap'ed): count it as working memory.
        need = ModelNeed(need.name, need.weights, need.anon + entry.files[1].size, need.context)
        plan = plan_load(need, state)
        if plan.ok and plan.decision == "load":
            return VisionModelChoice(entry, model_path, projector, plan.message)
        refusals.append(f"{entry.name}: {plan.message}")
    raise VisionModelMissing(
        "no imported vision model fits in memory next to the voice models ("
        + "; ".join(refusals)
        + "). Import a smaller one, or use a board with more RAM."
    )


class LlamaCppVlm:
    """A vision-language model on llama.cpp (CPU), in a worker process of its own.

    The process is started and the model loaded at the first description, then kept.
    Why a process: llama.cpp aborts the whole process on some projector files it cannot
    use (seen with a damaged one), and the voice appliance must survive that; the
    model's memory is also released entirely when the worker stops."""

    def __init__(
        self,
        model_path: Path,
        projector_path: Path,
        *,
        threads: int,
        context: int = 2048,
        max_tokens: int = 96,
        timeout: float = 300.0,
    ) -> None:
        self.name = f"llama.cpp {model_path.stem}"
        self.model_path = model_path
        self.projector_path = projector_path
        self.threads = threads
        self.context = context
        self.max_tokens = max_tokens
        self.timeout = timeout
        self._process: Any = None
        self._conn: Any = None
        self._lock = threading.Lock()

    def _start(self) -> None:
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        args = (str(self.model_path), str(self.projector_path), self.threads, self.context,
                self.max_tokens, child)  # fmt: skip
        self._process = context.Process(target=_worker, args=args, daemon=True,
                                        name="vision-model")  # fmt: skip
        self._process.start()
        child.close()
        self._conn = parent

    def describe(self, image: np.ndarray, prompt: str) -> str:
        with self._lock:
            if self._process is None or not self._process.is_alive():
                self._start()
            try:
                self._conn.send((encode_jpeg(image), prompt))
                if not self._conn.poll(self.timeout):
                    self.close()
                    raise VisionModelFailed(f"no answer within {self.timeout:.0f} s")
                status, text = self._conn.recv()
            except (EOFError, OSError, BrokenPipeError):
                code = self._process.exitcode if self._process is not None else None
                self.close()
                raise VisionModelFailed(
                    f"its process stopped (exit code {code}): the model or its projector "
                    "cannot be used by this llama.cpp; import another pair"
                ) from None
            if status != "ok":
                raise VisionModelFailed(text)
            return text

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._process is not None:
            if self._process.is_alive():
                self._process.terminate()
            self._process.join(timeout=5)
            self._process = None


class VisionModelFailed(Exception):
    """The vision model could not be loaded or did not answer."""


def _worker(
    model_path: str, projector_path: str, threads: int, context: int, max_tokens: int, conn: Any
) -> None:
    """The worker process: load once, then answer (jpeg, prompt) requests until the pipe
    closes."""
    llama = None
    while True:
        try:
            jpeg, prompt = conn.recv()
        except (EOFError, OSError):
            return
        try:
            if llama is None:
                from llama_cpp import Llama
                from llama_cpp.llama_chat_format import MTMDChatHandler

                handler = MTMDChatHandler(clip_model_path=projector_path, verbose=False,
                                          use_gpu=False)  # fmt: skip
                llama = Llama(model_path=model_path, chat_handler=handler, n_ctx=context,
                              n_threads=threads, verbose=False)  # fmt: skip
            url = "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")
            content = [{"type": "image_url", "image_url": {"url": url}},
                       {"type": "text", "text": prompt}]  # fmt: skip
            reply = llama.create_chat_completion(
                messages=[{"role": "user", "content": content}],
                max_tokens=max_tokens,
                temperature=0.0,
            )
            text = " ".join(str(reply["choices"][0]["message"]["content"] or "").split())
            conn.send(("ok", text))
        except Exception as err:
            conn.send(("error", f"{type(err).__name__}: {err}"))

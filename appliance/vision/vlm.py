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

from appliance.models.budget import MemoryState, ModelNeed, plan_load
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
    from appliance.models.importer import gguf_need

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
    """A vision-language model on llama.cpp (CPU), loaded on first use."""

    def __init__(
        self,
        model_path: Path,
        projector_path: Path,
        *,
        threads: int,
        context: int = 2048,
        max_tokens: int = 96,
    ) -> None:
        self.name = f"llama.cpp {model_path.stem}"
        self.model_path = model_path
        self.projector_path = projector_path
        self.threads = threads
        self.context = context
        self.max_tokens = max_tokens
        self._llama: Any = None
        self._lock = threading.Lock()

    def load(self) -> None:
        with self._lock:
            if self._llama is not None:
                return
            from llama_cpp import Llama
            from llama_cpp.llama_chat_format import MTMDChatHandler

            handler = MTMDChatHandler(
                clip_model_path=str(self.projector_path), verbose=False, use_gpu=False
            )
            self._llama = Llama(
                model_path=str(self.model_path),
                chat_handler=handler,
                n_ctx=self.context,
                n_threads=self.threads,
                verbose=False,
            )

    def describe(self, image: np.ndarray, prompt: str) -> str:
        self.load()
        url = "data:image/jpeg;base64," + base64.b64encode(encode_jpeg(image)).decode("ascii")
        reply = self._llama.create_chat_completion(
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": url}},
                        {"type": "text", "text": prompt},
                    ],
                }
            ],
            max_tokens=self.max_tokens,
            temperature=0.0,
        )
        return " ".join(str(reply["choices"][0]["message"]["content"] or "").split())

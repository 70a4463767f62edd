"""llama.cpp through llama-cpp-python, on a GGUF file that is memory-mapped, not copied."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from appliance.errors import LanguageModelError, ModelError
from appliance.llm.base import Message


class LlamaCppLlm:
    runs_on_cpu = True

    def __init__(
        self,
        model_path: Path,
        *,
        threads: int,
        context: int = 2048,
        max_tokens: int = 128,
        temperature: float = 0.0,
        repeat_penalty: float = 1.1,
        mlock: bool = False,
    ) -> None:
        try:
            from llama_cpp import Llama
        except ImportError as err:
            raise ModelError(f"llama-cpp-python is not installed ({err}); run ./setup.sh") from err
        if not Path(model_path).is_file():
            raise ModelError(f"language model {model_path} is missing; run ./setup.sh")
        try:
            self._llama = Llama(
                model_path=str(model_path),
                n_ctx=context,
                n_threads=threads,
                n_threads_batch=threads,
                use_mmap=True,
                # Pinning the weights keeps them from being evicted under memory pressure;
                # the memory budget asks for it only when there is room to spare.
                use_mlock=mlock,
                verbose=False,
            )
        except Exception as err:
            raise ModelError(f"llama.cpp cannot load {model_path}: {err}") from err
        self.threads = threads
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.repeat_penalty = repeat_penalty
        self._lock = threading.Lock()

    def complete_json(
        self, messages: list[Message], schema: dict[str, Any], cancel: threading.Event
    ) -> str:
        with self._lock:
            try:
                reply = self._llama.create_chat_completion(
                    messages=[{"role": m.role, "content": m.content} for m in messages],
                    response_format={"type": "json_object", "schema": schema},
                    max_tokens=min(self.max_tokens, 64),  # a call is short; a runaway is not
                    temperature=0.0,
                )
            except Exception as err:
                raise LanguageModelError(f"llama.cpp failed: {err}") from err
        return reply["choices"][0]["message"].get("content") or ""

    def stream(self, messages: list[Message], cancel: threading.Event) -> Iterator[str]:
        with self._lock:
            try:
                chunks = self._llama.create_chat_completion(
                    messages=[{"role": m.role, "content": m.content} for m in messages],
                    stream=True,
                    max_tokens=self.max_tokens,
                    temperature=self.temperature,
                    repeat_penalty=self.repeat_penalty,
                )
                for chunk in chunks:
                    if cancel.is_set():
                        chunks.close()
                        return
                    piece = chunk["choices"][0].get("delta", {}).get("content")
                    if piece:
                        yield piece
            except Exception as err:
                raise LanguageModelError(f"llama.cpp failed: {err}") from err

    def stream_after(
        self, messages: list[Message], begun: str, cancel: threading.Event
    ) -> Iterator[str]:
        """Go on from a reply another model began (`begun`, already said), as if this
        model had written it: the chat prompt, then those words, then completion."""
        tokens, stop = self._chat_prompt(messages, begun)
        with self._lock:
            try:
                chunks = self._llama.create_completion(
                    prompt=tokens,
                    stream=True,
                    max_tokens=self.max_tokens,
                    temperature=self.temperature,
                    repeat_penalty=self.repeat_penalty,
                    stop=stop,
                )
                for chunk in chunks:
                    if cancel.is_set():
                        chunks.close()
                        return
                    piece = chunk["choices"][0].get("text")
                    if piece:
                        yield piece
            except Exception as err:
                raise LanguageModelError(f"llama.cpp failed: {err}") from err

    def _chat_prompt(self, messages: list[Message], begun: str) -> tuple[list[int], list[str]]:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        llama = self._llama
        template = llama.metadata.get("tokenizer.chat_template")
        if not template:
            raise LanguageModelError("the model has no chat template to go on from a reply")

        def text_of(token: int) -> str:
            return llama._model.token_get_text(token) if token != -1 else ""

        formatted = Jinja2ChatFormatter(
            template=template, eos_token=text_of(llama.token_eos()),
            bos_token=text_of(llama.token_bos()),
        )(messages=[{"role": m.role, "content": m.content} for m in messages])  # fmt: skip
        tokens = llama.tokenize(
            (formatted.prompt + begun).encode("utf-8"),
            add_bos=not formatted.added_special,
            special=True,
        )
        stop = formatted.stop if isinstance(formatted.stop, list) else [formatted.stop or ""]
        return tokens, [s for s in stop if s]

"""Rockchip's RKLLM runtime (librkllmrt.so): the language model on the RK3588/RK3576 NPU.

The ctypes structs (`rkllm_abi.py`) mirror rkllm.h of RKLLM runtime 1.2.1–1.2.3
(airockchip/rknn-llm, rkllm-runtime/Linux/librkllm_api/include/rkllm.h): the result
callback returns int (0 = go on, 1 = pause), RKLLMInput starts with `role` and
`enable_thinking`, RKLLMExtendParam has `n_batch`/`use_cross_attn`, RKLLMResult ends with
RKLLMPerfStat. LLMCallState: NORMAL 0, WAITING 1 (incomplete UTF-8, no text), FINISH 2,
ERROR 3.

Runtime versions (`rkllm_runtimes.py`: the table of every published rkllm.h and runtime):
- before 1.2.1 RKLLMInput had no `role`/`enable_thinking`, so every field would be read at
  the wrong offset; 1.3.0 changed the ABI again (rkllm_init takes an RKLLMCallback struct,
  RKLLMParam lost its img_* fields, RKLLMInferParam grew). No exported symbol tells 1.3
  from 1.2, so the library is known by its content, and refused with a ModelError unless
  it is 1.2.1, 1.2.2 or 1.2.3 (or the owner declares its header with llm.rkllm_runtime).

Nothing is loaded at import time: the module imports on any machine, and the library is
opened by `RkllmLlm.__init__`.
"""

from __future__ import annotations

import codecs
import ctypes
import platform
import queue
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from appliance.errors import GrammarUnsupportedError, LanguageModelError, ModelError
from appliance.llm.base import Message
from appliance.llm.rkllm_abi import (
    RKLLM_INFER_GENERATE,
    RKLLM_INPUT_PROMPT,
    RKLLM_RUN_ERROR,
    RKLLM_RUN_FINISH,
    RKLLM_RUN_NORMAL,
    STRUCTS,
    LLMResultCallback,
    RKLLMInferParam,
    RKLLMInput,
    RKLLMParam,
)
from appliance.llm.rkllm_runtimes import (
    KNOWN_RUNTIMES,
    check_structs,
    loaded_file,
    runtime_release,
)

# ---- the backend -----------------------------------------------------------------------


@dataclass(frozen=True)
class ChatTemplate:
    """What `rkllm_set_chat_template` takes: the system block (`{system}` is replaced by
    the system prompt), and the text put before and after the user's turn; `turn_end`
    closes an assistant's turn, for the conversation's earlier turns."""

    system: str
    prefix: str
    postfix: str
    turn_end: str = ""


# ChatML: Qwen2/2.5/3, SmolLM2, MiniCPM, InternLM2 and most small RKLLM conversions.
CHATML = ChatTemplate(
    system="<|im_start|>system\n{system}<|im_end|>\n",
    prefix="<|im_start|>user\n",
    postfix="<|im_end|>\n<|im_start|>assistant\n",
    turn_end="<|im_end|>\n",
)


@dataclass(frozen=True)
class Prompt:
    system: str
    earlier: tuple[tuple[str, str], ...]
    """The conversation's earlier turns: (what the user said, the reply)."""
    user: str
    """What to answer now."""


_PIECE, _ERROR, _FINISH, _DONE = "piece", "error", "finish", "done"
_POLL_S = 0.05  # how often a waiting stream looks at `cancel`
_STOP_TIMEOUT_S = 30.0  # how long rkllm_run may take to return after rkllm_abort
_REQUIRED = ("rkllm_createDefaultParam", "rkllm_init", "rkllm_run", "rkllm_abort", "rkllm_destroy")


def build_prompt(messages: list[Message]) -> Prompt:
    """One run's prompt. The runtime keeps no history of its own (keep_history=0: the
    conversation, not the runtime, decides what is remembered), so the earlier turns go
    into the input each time (`RkllmLlm._prepare`). The system messages are joined; a user
    message with no reply before the next is joined to it."""
    system = "\n\n".join(m.content.strip() for m in messages if m.role == "system")
    earlier: list[tuple[str, str]] = []
    asked: list[str] = []
    for message in messages:
        if message.role == "user":
            asked.append(message.content.strip())
        elif message.role == "assistant" and asked:
            earlier.append(("\n".join(asked), message.content.strip()))
            asked = []
    if not asked:
        raise LanguageModelError("the conversation has no user message to answer")
    return Prompt(system.strip(), tuple(earlier), "\n".join(asked))


def _transcript(prompt: Prompt) -> str:
    """The earlier turns as plain text, for a template whose markup is not known here."""
    return "\n".join(f"User: {asked}\nAssistant: {reply}" for asked, reply in prompt.earlier)


def _load_library(library: str | Path) -> ctypes.CDLL:
    name = str(library)
    explicit = "/" in name
    machine = platform.machine()
    wrong_arch = machine not in ("aarch64", "arm64")
    if explicit and not Path(name).exists():
        raise ModelError(
            f"{name} not found: the Rockchip NPU path needs the RKLLM runtime (librkllmrt.so "
            "1.2.x from airockchip/rknn-llm) installed there; use the llama.cpp backend instead"
        )
    try:
        return ctypes.CDLL(name)
    except OSError as err:
        absent = not explicit and f"{name}: cannot open shared object file" in str(err)
        if absent and wrong_arch:
            raise ModelError(
                f"{name} not found: Rockchip ships the RKLLM runtime for aarch64 boards only "
                f"and this machine is {machine}; use the llama.cpp backend instead"
            ) from err
        if absent:
            raise ModelError(
                f"{name} not found: the Rockchip NPU path needs the RKLLM runtime "
                "(librkllmrt.so 1.2.x from airockchip/rknn-llm) in the library path, e.g. "
                "/usr/lib; use the llama.cpp backend instead"
            ) from err
        raise ModelError(
            f"{name} cannot be loaded ({err}): it must be the aarch64 RKLLM runtime on an "
            "aarch64 Rockchip board, with its dependencies (libomp.so) next to it or in the "
            "library path"
        ) from err


def _bind(lib: ctypes.CDLL, name: str) -> None:
    for symbol in _REQUIRED:
        if not hasattr(lib, symbol):
            raise ModelError(f"{name} is not the RKLLM runtime: it has no {symbol}()")
    if not hasattr(lib, "rkllm_set_function_tools"):
        raise ModelError(
            f"{name} is older than RKLLM 1.2.1, whose struct layout this appliance uses; "
            "install librkllmrt.so 1.2.x from airockchip/rknn-llm (and a model converted "
            "with the same toolkit version)"
        )
    handle_p = ctypes.c_void_p
    lib.rkllm_createDefaultParam.argtypes = []
    lib.rkllm_createDefaultParam.restype = RKLLMParam
    lib.rkllm_init.argtypes = [
        ctypes.POINTER(handle_p),
        ctypes.POINTER(RKLLMParam),
        LLMResultCallback,
    ]
    lib.rkllm_init.restype = ctypes.c_int
    lib.rkllm_run.argtypes = [
        handle_p,
        ctypes.POINTER(RKLLMInput),
        ctypes.POINTER(RKLLMInferParam),
        ctypes.c_void_p,
    ]
    lib.rkllm_run.restype = ctypes.c_int
    for simple in ("rkllm_abort", "rkllm_destroy"):
        getattr(lib, simple).argtypes = [handle_p]
        getattr(lib, simple).restype = ctypes.c_int
    if hasattr(lib, "rkllm_set_chat_template"):
        lib.rkllm_set_chat_template.argtypes = [handle_p] + [ctypes.c_char_p] * 3
        lib.rkllm_set_chat_template.restype = ctypes.c_int


class RkllmLlm:
    """A `.rkllm` model on the Rockchip NPU through librkllmrt.so.

    `temperature` 0 means greedy decoding: top_k is set to 1 (as Rockchip's demos do) and
    the runtime's default temperature is left in place rather than writing 0 into it.
    Above 0 it is passed as is, with the runtime's default top_k/top_p.

    The system prompt: with `system_prompt_in_template` (and a runtime that has
    rkllm_set_chat_template) it goes into the model's chat template through
    `chat_template` (ChatML by default; pass the model's own for Llama, Phi, Gemma, ...),
    set again only when it changes. Otherwise the runtime's built-in template is left
    untouched and the system prompt is put before the user's text, separated by a blank
    line.
    """

    runs_on_cpu = False
    """The model's matrix work runs on the NPU: TTS need not wait for it."""

    def __init__(
        self,
        model_path: Path,
        *,
        library: str | Path = "librkllmrt.so",
        context: int = 2048,
        max_tokens: int = 128,
        temperature: float = 0.0,
        system_prompt_in_template: bool = True,
        chat_template: ChatTemplate = CHATML,
        runtime: str = "",
        known_runtimes: Mapping[str, str] = KNOWN_RUNTIMES,
    ) -> None:
        self.model_path = Path(model_path)
        self.context = context
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.chat_template = chat_template
        self._run_lock = threading.Lock()  # one run at a time
        self._state = threading.Lock()  # guards the handle, the sink and the run thread
        self._handle: ctypes.c_void_p | None = None
        self._sink: queue.Queue[tuple[str, Any]] | None = None
        self._thread: threading.Thread | None = None
        self._template_set: tuple[str, str, str] | None = None
        self._wedged = False

        self._lib = _load_library(library)
        name = Path(str(library)).name
        # Which release, from the file's content (or `runtime`, the owner's word), before
        # any struct crosses into it.
        self.runtime = runtime_release(loaded_file(str(library)), runtime, known_runtimes)
        check_structs(STRUCTS)
        _bind(self._lib, name)
        self.system_prompt_in_template = system_prompt_in_template and hasattr(
            self._lib, "rkllm_set_chat_template"
        )
        if not self.model_path.is_file():
            raise ModelError(
                f"RKLLM model {self.model_path} is missing: it must be a .rkllm file converted "
                "with rkllm-toolkit for this board's SoC"
            )

        param = self._lib.rkllm_createDefaultParam()
        self._model_path_c = str(self.model_path).encode()  # kept alive for the handle
        param.model_path = self._model_path_c
        param.max_context_len = context
        param.max_new_tokens = max_tokens
        if temperature > 0:
            param.temperature = temperature
        else:
            param.top_k = 1
        param.skip_special_token = True
        param.is_async = False
        # The runtime calls this from its own thread for as long as the handle lives: keep
        # the ctypes object referenced, or it is collected and the next token crashes.
        self._callback = LLMResultCallback(self._on_result)
        handle = ctypes.c_void_p()
        rc = self._lib.rkllm_init(ctypes.byref(handle), ctypes.byref(param), self._callback)
        if rc != 0 or not handle.value:
            raise ModelError(
                f"RKLLM cannot load {self.model_path} (rkllm_init returned {rc}): it must be a "
                ".rkllm model converted for this SoC by an rkllm-toolkit matching the runtime "
                "version, and the NPU driver must be loaded"
            )
        self._handle = handle

    # -- LanguageModel ---------------------------------------------------------------------

    def complete_json(
        self, messages: list[Message], schema: dict[str, Any], cancel: threading.Event
    ) -> str:
        """RKLLM samples without a grammar, so its output cannot be held to a schema: the
        language model makes no tool calls on the NPU (the fast path still works)."""
        raise GrammarUnsupportedError(
            "the RKLLM backend has no grammar support, so the language model cannot call tools"
        )

    def stream(self, messages: list[Message], cancel: threading.Event) -> Iterator[str]:
        prompt = build_prompt(messages)
        with self._run_lock:
            if cancel.is_set():
                return
            text = self._prepare(prompt)
            run_input = RKLLMInput()
            run_input.role = b"user"
            run_input.enable_thinking = False
            run_input.input_type = RKLLM_INPUT_PROMPT
            prompt_c = text.encode()  # referenced here until rkllm_run has returned
            run_input.prompt_input = prompt_c
            infer = RKLLMInferParam()
            infer.mode = RKLLM_INFER_GENERATE
            infer.keep_history = 0
            sink: queue.Queue[tuple[str, Any]] = queue.Queue()

            with self._state:
                handle = self._require_handle()
                self._sink = sink
                thread = threading.Thread(
                    target=self._run, args=(handle, run_input, infer, sink), name="rkllm-run"
                )
                self._thread = thread
                thread.start()
            try:
                yield from self._pieces(sink, cancel)
            finally:
                self._stop(thread, handle, closing=False)
                with self._state:
                    self._sink = None
                    self._thread = None

    # -- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:
        """Stop a run in progress and free the model (rkllm_destroy), once."""
        with self._state:
            handle, self._handle = self._handle, None
            thread = self._thread
        if handle is None:
            return
        if thread is not None:
            self._stop(thread, handle, closing=True)
        with self._state:
            if not self._wedged:
                self._lib.rkllm_destroy(handle)

    def __enter__(self) -> RkllmLlm:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- internals -----------------------------------------------------------------------

    def _require_handle(self) -> ctypes.c_void_p:
        if self._wedged:
            raise LanguageModelError(
                "the RKLLM runtime did not stop after rkllm_abort; restart the appliance"
            )
        if self._handle is None:
            raise LanguageModelError("the RKLLM model is closed")
        return self._handle

    def _prepare(self, prompt: Prompt) -> str:
        """Set the chat template if needed and return the text for RKLLMInput: the
        earlier turns, marked up as the template marks turns when it is ours, else as a
        plain transcript, then what to answer now."""
        system, user = prompt.system, prompt.user
        if not self.system_prompt_in_template:
            return "\n\n".join(p for p in (system, _transcript(prompt), user) if p)
        tpl = self.chat_template
        wanted = (tpl.system.replace("{system}", system) if system else "", tpl.prefix, tpl.postfix)
        # Leave the model's built-in template alone until there is a system prompt to set.
        if wanted != self._template_set and (system or self._template_set is not None):
            with self._state:
                handle = self._require_handle()
                rc = self._lib.rkllm_set_chat_template(handle, *(s.encode() for s in wanted))
            if rc != 0:
                raise LanguageModelError(f"rkllm_set_chat_template failed ({rc})")
            self._template_set = wanted
        if self._template_set is None or not tpl.turn_end:  # the model's own template
            return "\n\n".join(p for p in (_transcript(prompt), user) if p)
        turns = "".join(f"{asked}{tpl.postfix}{reply}{tpl.turn_end}{tpl.prefix}"
                        for asked, reply in prompt.earlier)  # fmt: skip
        return turns + user

    def _run(
        self,
        handle: ctypes.c_void_p,
        run_input: RKLLMInput,
        infer: RKLLMInferParam,
        sink: queue.Queue[tuple[str, Any]],
    ) -> None:
        try:
            rc: int | BaseException = self._lib.rkllm_run(
                handle, ctypes.byref(run_input), ctypes.byref(infer), None
            )
        except BaseException as err:  # reported by the stream, not lost in this thread
            rc = err
        sink.put((_DONE, rc))

    def _on_result(self, result: Any, userdata: int | None, state: int) -> int:
        # Called by the runtime on its thread. Must return 0: 1 would pause the run.
        try:
            sink = self._sink
            if sink is None:
                return 0
            if state == RKLLM_RUN_NORMAL:
                text = result.contents.text if result else None
                if text:
                    sink.put((_PIECE, text))
            elif state == RKLLM_RUN_ERROR:
                sink.put((_ERROR, None))
            elif state == RKLLM_RUN_FINISH:
                sink.put((_FINISH, None))
        except Exception:  # never raise into C
            pass
        return 0

    def _pieces(self, sink: queue.Queue[tuple[str, Any]], cancel: threading.Event) -> Iterator[str]:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        aborted = failed = False
        while True:
            if cancel.is_set() and not aborted:
                aborted = True
                self._abort()
            try:
                kind, value = sink.get(timeout=_POLL_S)
            except queue.Empty:
                if aborted:  # again, in case the first abort came before the run started
                    self._abort()
                continue
            if kind == _DONE:
                rc = value
                break
            if kind == _ERROR:
                failed = True
            elif kind == _PIECE and not aborted:
                text = decoder.decode(value)
                if text:
                    yield text
        if aborted or self._handle is None:  # cancelled, or closed under us
            return
        if isinstance(rc, BaseException):
            raise LanguageModelError(f"rkllm_run could not be called: {rc}") from rc
        if failed:
            raise LanguageModelError(
                "the RKLLM runtime reported an error while generating (RKLLM_RUN_ERROR); "
                "check that the model was converted for this SoC and runtime version"
            )
        if rc != 0:
            raise LanguageModelError(f"rkllm_run failed with code {rc}")
        tail = decoder.decode(b"", final=True)
        if tail:
            yield tail

    def _abort(self) -> None:
        with self._state:
            if self._handle is not None:
                self._lib.rkllm_abort(self._handle)

    def _stop(self, thread: threading.Thread, handle: ctypes.c_void_p, *, closing: bool) -> None:
        """Abort the run on `thread` until rkllm_run returns (bounded). Once close() has
        taken the handle only close() aborts it, so no abort can follow rkllm_destroy."""
        waited = 0.0
        while thread.is_alive() and waited < _STOP_TIMEOUT_S:
            with self._state:
                if closing or self._handle is handle:
                    self._lib.rkllm_abort(handle)
            thread.join(_POLL_S)
            waited += _POLL_S
        if thread.is_alive():
            self._wedged = True

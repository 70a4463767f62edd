"""The `[llm]` settings: this board's language model, and a bigger box's in front of it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from appliance.errors import ConfigError
from appliance.sections.remote import check_http_url

DEFAULT_SYSTEM_PROMPT = (
    "You are Jarvis, a helpful voice assistant running offline on a small device. "
    "Reply in one short sentence."
)


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


@dataclass(frozen=True)
class LlmConfig:
    model: str = "smollm2-135m-instruct"
    """Catalog name of the language model (a GGUF, or an imported .rkllm for the NPU)."""
    backend: str = "auto"
    """auto (the Rockchip NPU when the board, its runtime and an imported .rkllm model are
    all there, else llama.cpp), llama.cpp, or rkllm."""
    rkllm_runtime: str = ""
    """The NPU runtime's release, e.g. "1.2.3", only for a librkllmrt.so this appliance
    does not know by its content (a build of your own): "" = recognise Rockchip's."""
    threads: int = 0
    """Worker threads for llama.cpp; 0 = every core."""
    context: int = 2048
    """Context window in tokens (the KV cache grows with it)."""
    max_tokens: int = 128
    """Longest reply, in tokens."""
    temperature: float = 0.0
    """0 = always the most likely word (repeatable answers)."""
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    remote: str = ""
    """A bigger box's OpenAI-compatible server, e.g. "http://192.168.1.20:8080/v1"
    (llama-server, llama_cpp.server, Ollama): it answers while it can, and this board's
    model when it cannot. Empty: this board's model only."""
    remote_model: str = ""
    """The model name the server is asked for (Ollama needs one; llama.cpp ignores it)."""
    remote_api_key: str = field(default="", repr=False)
    """Sent as a bearer token, if the server wants one."""
    remote_ca_file: str = ""
    """For https:// with a certificate of your own: its certificate authority (PEM)."""
    remote_timeout_seconds: float = 3.0
    """To connect, and the longest silence while the reply is awaited or streams."""
    remote_deadline_seconds: float = 30.0
    """The longest one reply may take there."""

    def __post_init__(self) -> None:
        _check(self.threads >= 0, "llm.threads must be 0 (auto) or more")
        _check(self.backend in ("auto", "llama.cpp", "rkllm"),
               "llm.backend must be auto, llama.cpp or rkllm")  # fmt: skip
        if self.rkllm_runtime:
            from appliance.llm.rkllm_runtimes import RELEASES, header_of

            header = header_of(self.rkllm_runtime)
            _check(header is not None, f"llm.rkllm_runtime must be one of {', '.join(RELEASES)}")
            _check(
                header is not None and header.supported,
                "llm.rkllm_runtime: only runtimes 1.2.1, 1.2.2 and 1.2.3 can be used",
            )
        _check(256 <= self.context <= 131072, "llm.context must be 256–131072 tokens")
        _check(1 <= self.max_tokens <= 4096, "llm.max_tokens must be 1–4096")
        _check(0.0 <= self.temperature <= 2.0, "llm.temperature must be 0–2")
        if self.remote:
            check_http_url(self.remote, "llm.remote", example="http://192.168.1.20:8080/v1")
        _check(
            0.2 <= self.remote_timeout_seconds <= 60, "llm.remote_timeout_seconds must be 0.2–60"
        )
        _check(
            1 <= self.remote_deadline_seconds <= 600, "llm.remote_deadline_seconds must be 1–600"
        )
        if self.remote_ca_file:
            _check(Path(self.remote_ca_file).expanduser().is_file(),
                   f"llm.remote_ca_file {self.remote_ca_file} is not a file")  # fmt: skip

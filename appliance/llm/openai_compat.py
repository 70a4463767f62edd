"""A language model on another machine behind an OpenAI-compatible chat API: llama.cpp's
`llama-server`, llama-cpp-python's `llama_cpp.server`, Ollama, vLLM, … (`llm.remote`).

Replies stream as server-sent events, piece by piece, as the local model's do. A JSON
reply held to a schema (the tool calls of appliance/actions/llm_tools.py) asks for the
OpenAI `json_schema` response format, and the `json_object` + `schema` form that
llama.cpp's servers take when the first is refused."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import requests

from appliance.errors import LanguageModelError
from appliance.llm.base import Message


class RemoteLlmError(LanguageModelError):
    """The remote server could not give this reply (unreachable, refusing, too slow, or
    not an OpenAI-compatible server)."""

    code = "llm_remote"


def _snippet(data: bytes | str, limit: int = 80) -> str:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    text = " ".join(text.split())
    return text[:limit] + ("…" if len(text) > limit else "")


class OpenAiCompatibleLlm:
    runs_on_cpu = False
    """Its work is on the other machine: Piper never waits for it."""

    def __init__(
        self,
        base_url: str,
        *,
        model: str = "",
        api_key: str = "",
        ca_file: str = "",
        timeout: float = 3.0,
        deadline: float = 30.0,
        max_tokens: int = 128,
        temperature: float = 0.0,
    ) -> None:
        """`timeout`: to connect, and the longest silence while a reply is awaited or
        streams; `deadline`: the longest a whole reply may take."""
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.timeout = timeout
        self.deadline = deadline
        self.max_tokens = max_tokens
        self.temperature = temperature
        self._session = requests.Session()
        self._session.trust_env = False  # no proxy from the environment: a LAN address
        if api_key:
            self._session.headers["Authorization"] = f"Bearer {api_key}"
        self._verify: bool | str = ca_file or True
        self._json_format: str | None = None
        """The response format the server took ("json_schema" or "json_object")."""

    # -- the health check --------------------------------------------------------------

    def health(self) -> str | None:
        """None when the server lists its models (GET /models), else why not."""
        try:
            response = self._request("GET", "/models", timeout=(self.timeout, self.timeout))
            with response:
                if response.status_code != 200:
                    return self._refusal(response, "/models")
                body = response.json()
        except RemoteLlmError as err:
            return str(err)
        except ValueError:
            return f"{self.base_url} is not an OpenAI-compatible server (/models is not JSON)"
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            return f"{self.base_url} is not an OpenAI-compatible server (no model list)"
        return None

    # -- LanguageModel -----------------------------------------------------------------

    def stream(self, messages: list[Message], cancel: threading.Event) -> Iterator[str]:
        started = time.monotonic()
        body = self._body(messages, stream=True)
        response = self._request("POST", "/chat/completions", json=body)
        with response:
            if response.status_code != 200:
                raise RemoteLlmError(self._refusal(response, "/chat/completions"))
            if "text/event-stream" not in response.headers.get("Content-Type", ""):
                yield self._content(self._json(response))  # a server that does not stream
                return
            pieces = 0
            try:
                for line in response.iter_lines():
                    if cancel.is_set():
                        return
                    piece = self._event(line)
                    if piece is None:
                        return  # [DONE]
                    if piece:
                        pieces += 1
                        yield piece
                    if time.monotonic() - started > self.deadline:
                        raise RemoteLlmError(
                            f"{self.base_url} was still writing after {self.deadline:.0f} s "
                            "(llm.remote_deadline_seconds)"
                        )
                    if pieces > 4 * self.max_tokens + 16:
                        raise RemoteLlmError(
                            f"{self.base_url} sent far more than max_tokens: an endless reply"
                        )
            except requests.RequestException as err:
                raise RemoteLlmError(self._unreachable(err)) from None

    def complete_json(
        self, messages: list[Message], schema: dict[str, Any], cancel: threading.Event
    ) -> str:
        formats = [self._json_format] if self._json_format else ["json_schema", "json_object"]
        problem = ""
        for kind in formats:
            body = self._body(messages, stream=False, max_tokens=min(self.max_tokens, 64))
            body["temperature"] = 0.0
            if kind == "json_schema":
                body["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {"name": "tool_call", "schema": schema, "strict": True},
                }
            else:
                body["response_format"] = {"type": "json_object", "schema": schema}
            response = self._request("POST", "/chat/completions", json=body)
            with response:
                if response.status_code == 200:
                    self._json_format = kind
                    return self._content(self._json(response))
                problem = self._refusal(response, "/chat/completions")
                if response.status_code in (401, 403, 404) or 300 <= response.status_code < 400:
                    break  # not about the format (llama_cpp.server refuses one with a 500)
        raise RemoteLlmError(problem)

    # -- the wire ----------------------------------------------------------------------

    def _body(self, messages: list[Message], *, stream: bool, max_tokens: int = 0) -> dict:
        return {
            "model": self.model or "default",
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "stream": stream,
            "max_tokens": max_tokens or self.max_tokens,
            "temperature": self.temperature,
        }

    def _request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", (self.timeout, self.timeout))
        try:
            return self._session.request(
                method, self.base_url + path, stream=True, verify=self._verify,
                allow_redirects=False, **kwargs,
            )  # fmt: skip
        except requests.RequestException as err:
            raise RemoteLlmError(self._unreachable(err)) from None

    def _unreachable(self, err: requests.RequestException) -> str:
        host = urlsplit(self.base_url).netloc
        if isinstance(err, requests.exceptions.SSLError):
            return (f"TLS with {host} failed ({_snippet(str(err), 120)}); give its "
                    "certificate authority as llm.remote_ca_file, or use http:// on a "
                    "network you trust")  # fmt: skip
        if isinstance(err, requests.exceptions.ConnectTimeout):
            return f"{host} did not accept a connection within {self.timeout:.0f} s"
        if isinstance(err, requests.exceptions.Timeout) or "timed out" in str(err).lower():
            return f"{host} went silent for {self.timeout:.0f} s (llm.remote_timeout_seconds)"
        if isinstance(err, requests.exceptions.ConnectionError):
            return f"cannot reach {host} ({_snippet(str(err.__context__ or err), 100)})"
        return f"{host}: {_snippet(str(err), 120)}"

    def _refusal(self, response: requests.Response, path: str) -> str:
        status = response.status_code
        try:
            detail = response.json().get("error", {})
            message = detail.get("message", "") if isinstance(detail, dict) else str(detail)
        except (ValueError, AttributeError):
            message = _snippet(response.content)
        if status in (401, 403):
            return f"{self.base_url} refused the API key (llm.remote_api_key): {message}"
        if status == 404:
            return (f"{self.base_url} has no {path}: is it an OpenAI-compatible server, and "
                    "does the address end in /v1?")  # fmt: skip
        if 300 <= status < 400:
            return f"{self.base_url} redirects elsewhere ({status}); give the final address"
        return f"{self.base_url} answered {status}: {message}"

    def _json(self, response: requests.Response) -> dict:
        try:
            body = response.json()
        except ValueError:
            raise RemoteLlmError(
                f"{self.base_url} is not an OpenAI-compatible server: it answered "
                f"{_snippet(response.content)!r}"
            ) from None
        if not isinstance(body, dict):
            raise RemoteLlmError(f"{self.base_url} answered JSON that is no chat completion")
        return body

    def _content(self, body: dict) -> str:
        try:
            return body["choices"][0]["message"].get("content") or ""
        except (KeyError, IndexError, TypeError, AttributeError):
            raise RemoteLlmError(
                f"{self.base_url} answered no chat completion: {_snippet(json.dumps(body))}"
            ) from None

    def _event(self, line: bytes) -> str | None:
        """One line of the event stream: its text ("" for none), or None at [DONE]."""
        if not line or line.startswith(b":") or line.startswith((b"event:", b"id:", b"retry:")):
            return ""
        if not line.startswith(b"data:"):
            raise RemoteLlmError(
                f"{self.base_url} is not an OpenAI-compatible server: it sent {_snippet(line)!r}"
            )
        data = line[5:].strip()
        if data == b"[DONE]":
            return None
        try:
            event = json.loads(data)
        except ValueError:
            raise RemoteLlmError(
                f"{self.base_url} sent an event that is not JSON: {_snippet(data)!r}"
            ) from None
        if not isinstance(event, dict):
            raise RemoteLlmError(f"{self.base_url} sent an event that is no chat chunk")
        if "error" in event:
            detail = event["error"]
            message = detail.get("message", "") if isinstance(detail, dict) else str(detail)
            raise RemoteLlmError(f"{self.base_url} failed mid-reply: {message}")
        try:
            choice = event["choices"][0] if event["choices"] else {}
            return str(choice.get("delta", {}).get("content") or "")
        except (KeyError, TypeError, AttributeError):
            raise RemoteLlmError(
                f"{self.base_url} sent an event that is no chat chunk: {_snippet(data)!r}"
            ) from None

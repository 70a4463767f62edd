"""A bigger box's language model behind an OpenAI-compatible server (`llm.remote`): the
real `llama_cpp.server` on loopback with the SmolLM2 file, streaming replies and tool
calls, killed mid-reply (the local model finishes), and servers that misbehave."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from appliance.config import AppConfig
from appliance.errors import LanguageModelError
from appliance.llm.base import Message
from appliance.llm.fake import ScriptedLlm
from appliance.llm.openai_compat import OpenAiCompatibleLlm, RemoteLlmError
from appliance.models.catalog import ModelStore
from appliance.remote.breaker import Breaker, RemoteStatus
from appliance.remote.llm import FallbackLlm
from appliance.testing.servers import LlamaServer, SilentServer, free_port

ASK = [Message("system", "You are a helpful assistant. Answer in one short sentence."),
       Message("user", "What colour is the sky on a clear day?")]  # fmt: skip
TOOL_SCHEMA = {
    "type": "object",
    "properties": {"tool": {"enum": ["set_timer", "none"]},
                   "arguments": {"type": "object", "properties": {"minutes": {"type": "integer"}},
                                 "required": ["minutes"]}},
    "required": ["tool", "arguments"],
}  # fmt: skip


def _smollm2():
    return ModelStore(AppConfig().models_path()).path("smollm2-135m-instruct", "llm")


@pytest.fixture(scope="module")
def box():
    with LlamaServer(_smollm2()) as server:
        yield server


class _Watch:
    """The breaker's reports and the turns that went local."""

    def __init__(self) -> None:
        self.statuses: list[RemoteStatus] = []
        self.fallbacks: list[tuple[str, str]] = []

    def breaker(self, remote: OpenAiCompatibleLlm, **waits: float) -> Breaker:
        return Breaker("llm", remote.base_url, health=remote.health,
                       report=self.statuses.append, **waits)  # fmt: skip

    def fell_back(self, stage: str, reason: str) -> None:
        self.fallbacks.append((stage, reason))


def _reply(llm, messages=ASK) -> tuple[str, list[str]]:
    pieces = list(llm.stream(messages, threading.Event()))
    return "".join(pieces), pieces


@pytest.mark.e2e
def test_a_reply_streams_from_the_bigger_box_piece_by_piece(box):
    remote = OpenAiCompatibleLlm(box.url, max_tokens=40)
    assert remote.health() is None
    text, pieces = _reply(remote)
    assert len(pieces) >= 3 and text.strip()  # streamed, not one block
    assert "blue" in text.lower()


@pytest.mark.e2e
def test_a_tool_call_through_the_server_s_json_schema(box):
    remote = OpenAiCompatibleLlm(box.url)
    messages = [Message("system", 'Call a tool. Answer as JSON: {"tool": …, "arguments": …}.'),
                Message("user", "Set a timer for ten minutes.")]  # fmt: skip
    call = json.loads(remote.complete_json(messages, TOOL_SCHEMA, threading.Event()))
    assert call["tool"] in ("set_timer", "none") and isinstance(call["arguments"]["minutes"], int)
    # llama_cpp.server refuses OpenAI's json_schema form; its own json_object + schema is
    # remembered, so later calls cost one request
    assert remote._json_format == "json_object"


@pytest.mark.e2e
def test_the_box_killed_mid_reply_the_local_model_finishes_the_reply(box):
    from appliance.llm.llamacpp import LlamaCppLlm

    with LlamaServer(_smollm2()) as doomed:
        remote = OpenAiCompatibleLlm(doomed.url, max_tokens=120)
        local = LlamaCppLlm(_smollm2(), threads=1, max_tokens=60)
        story = [Message("user", "Tell me a long story about a ship at sea.")]
        watch = _Watch()
        llm = FallbackLlm(remote, local, watch.breaker(remote), watch.fell_back)
        pieces: list[str] = []
        for piece in llm.stream(story, threading.Event()):
            pieces.append(piece)
            if len(pieces) == 3:
                doomed.kill()  # the bigger box dies mid-reply
    text = "".join(pieces)
    assert len(pieces) > 4 and text.strip()
    [(stage, reason)] = watch.fallbacks
    assert stage == "llm" and "after" in reason  # the local model went on from there
    assert [s.up for s in watch.statuses] == [False]
    assert llm.runs_on_cpu  # while the box is down, the local model shares the cores


def test_a_dead_box_costs_one_timeout_not_one_per_turn():
    with SilentServer() as silent:
        remote = OpenAiCompatibleLlm(f"http://127.0.0.1:{silent.port}/v1", timeout=0.5)
        watch = _Watch()
        llm = FallbackLlm(remote, ScriptedLlm(["Local one.", "Local two.", "Local three."]),
                          watch.breaker(remote), watch.fell_back)  # fmt: skip
        started = time.monotonic()
        assert _reply(llm)[0] == "Local one."
        first = time.monotonic() - started
        started = time.monotonic()
        assert _reply(llm)[0] == "Local two."
        assert _reply(llm)[0] == "Local three."
        later = time.monotonic() - started
    assert 0.4 <= first < 3.0  # the deadline held: the hanging box cost its timeout…
    assert later < 0.2 and silent.accepted == 1  # …once
    [status] = watch.statuses
    assert not status.up and "went silent" in status.reason and status.retry_seconds == 30
    assert len(watch.fallbacks) == 1


def test_the_box_is_tried_again_once_its_health_check_passes():
    clock = [0.0]
    healthy: list[str | None] = ["down"]
    replies = iter([RemoteLlmError("refused"), "Remote."])

    class Remote:
        runs_on_cpu = False

        def health(self) -> str | None:
            return healthy[0]

        def stream(self, messages, cancel) -> Iterator[str]:
            reply = next(replies)
            if isinstance(reply, Exception):
                raise reply
            yield reply

    statuses: list[RemoteStatus] = []
    breaker = Breaker("llm", "box", health=Remote().health, report=statuses.append,
                      clock=lambda: clock[0])  # fmt: skip
    llm = FallbackLlm(Remote(), ScriptedLlm(["L1.", "L2.", "L3."]), breaker, lambda *a: None)
    assert _reply(llm)[0] == "L1."
    clock[0] = 31.0
    assert _reply(llm)[0] == "L2."  # checked, still down: a longer wait (60 s)
    assert statuses[-1].retry_seconds == 60
    healthy[0] = None
    clock[0] = 60.0
    assert _reply(llm)[0] == "L3."  # not yet
    clock[0] = 92.0
    assert _reply(llm)[0] == "Remote."
    assert [s.up for s in statuses] == [False, False, True]


# -- servers that are not what they claim ------------------------------------------------


class _Http:
    """A loopback HTTP server answering POST/GET with `respond(handler)`."""

    def __init__(self, respond: Callable[[http.server.BaseHTTPRequestHandler], None]) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802
                respond(self)

            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                respond(self)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def __enter__(self) -> _Http:
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _send(handler, status: int, body: bytes, kind: str) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", kind)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def _events(handler, lines: Iterator[bytes]) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "text/event-stream")
    handler.send_header("Connection", "close")
    handler.end_headers()
    try:
        for line in lines:
            handler.wfile.write(line + b"\n")
            handler.wfile.flush()
    except (BrokenPipeError, ConnectionResetError):
        pass


def _chunk(text: str) -> bytes:
    return b"data: " + json.dumps({"choices": [{"delta": {"content": text}}]}).encode()


def _endless() -> Iterator[bytes]:
    while True:
        yield _chunk("more ")


@pytest.mark.parametrize(
    ("respond", "said"),
    [
        (
            lambda h: _send(h, 200, b"<html>router login</html>", "text/html"),
            "not an OpenAI-compatible server",
        ),
        (
            lambda h: _send(h, 404, b"<html>not found</html>", "text/html"),
            "is it an OpenAI-compatible server",
        ),
        (
            lambda h: _send(h, 401, b'{"error": {"message": "bad key"}}', "application/json"),
            "refused the API key",
        ),
        (
            lambda h: _events(h, iter([_chunk("Hello"), b"<<garbage>>"])),
            "is not an OpenAI-compatible server: it sent '<<garbage>>'",
        ),
        (lambda h: _events(h, iter([b"data: {not json"])), "not JSON"),
        (
            lambda h: _events(h, iter([b'data: {"error": {"message": "out of memory"}}'])),
            "failed mid-reply: out of memory",
        ),
        (lambda h: _events(h, _endless()), "endless reply"),
    ],
    ids=["html", "404", "bad key", "garbage events", "bad json", "error event", "endless"],
)
def test_a_server_that_is_not_what_it_claims_fails_clearly_and_the_turn_goes_local(respond, said):
    with _Http(respond) as server:
        remote = OpenAiCompatibleLlm(server.url, max_tokens=20, timeout=2)
        with pytest.raises(RemoteLlmError, match=said.replace("(", r"\(")):
            _reply(remote)
        watch = _Watch()
        llm = FallbackLlm(remote, ScriptedLlm(["Answered here."]), watch.breaker(remote),
                          watch.fell_back)  # fmt: skip
        text, _ = _reply(llm)
    assert text.endswith("Answered here.")
    [(stage, reason)] = watch.fallbacks
    assert said.split(":")[0] in reason


def test_tls_to_a_server_without_it_says_what_to_do():
    with _Http(lambda h: _send(h, 200, b"{}", "application/json")) as server:
        remote = OpenAiCompatibleLlm(server.url.replace("http://", "https://"), timeout=2)
        problem = remote.health() or ""
    assert "TLS with 127.0.0.1" in problem and "llm.remote_ca_file" in problem


def test_a_server_that_does_not_stream_is_still_heard():
    body = json.dumps({"choices": [{"message": {"content": "All at once."}}]}).encode()
    with _Http(lambda h: _send(h, 200, body, "application/json")) as server:
        assert _reply(OpenAiCompatibleLlm(server.url))[0] == "All at once."


def test_an_unreachable_box_is_said_and_local_answers():
    port = free_port()  # bound, then closed: nothing listens there
    remote = OpenAiCompatibleLlm(f"http://127.0.0.1:{port}/v1", timeout=1)
    assert "cannot reach 127.0.0.1" in (remote.health() or "")
    with pytest.raises(LanguageModelError, match="cannot reach"):
        _reply(remote)


@pytest.mark.e2e
def test_the_app_answers_from_the_bigger_box_sentence_by_sentence_then_falls_back():
    import asyncio

    from appliance.app import App, Parts
    from appliance.config import LlmConfig
    from appliance.web.status import StatusTracker, status_snapshot
    from tests.fakes import make_pipeline

    async def main(doomed: LlamaServer) -> None:
        pipeline, recorder, _, tts, local = make_pipeline([], ["Answered on this board."])
        tracker = StatusTracker()
        pipeline.bus.subscribe(tracker)
        reported = asyncio.Event()
        pipeline.bus.subscribe(lambda e: reported.set() if e.type == "remote_state" else None)

        async def until(predicate) -> None:
            while not predicate():
                reported.clear()
                await asyncio.wait_for(reported.wait(), 10)

        config = AppConfig(llm=LlmConfig(remote=doomed.url, max_tokens=48))
        parts = Parts(actions=False, vision=False)
        async with App(config, pipeline.engines, pipeline.sink, pipeline.bus,
                       parts=parts) as app:  # fmt: skip
            await until(lambda: tracker.remotes.get("llm", {}).get("up") is True)
            [row] = status_snapshot(tracker, config, started=0.0)["remotes"]
            assert row == {"stage": "llm", "remote": doomed.url, "up": True, "reason": ""}
            result = await app.ask("What colour is the sky on a clear day?")
            assert "blue" in result.reply.lower() and local.prompts == []  # the box's words
            assert len(tts.spoken) >= 2  # spoken sentence by sentence as it streamed
            assert " ".join(tts.spoken).split() == result.reply.split()
            doomed.kill()
            result = await app.ask("And the grass?")
            assert result.reply == "Answered on this board." and len(local.prompts) == 1
            [fallback] = recorder.of("stage_fallback")
            assert fallback.stage == "llm" and "cannot reach" in fallback.reason
            await until(lambda: tracker.remotes["llm"]["up"] is False)
            [row] = status_snapshot(tracker, config, started=0.0)["remotes"]
            assert not row["up"] and "cannot reach" in row["reason"]
        assert app.engines.llm is local  # the local model back in place after the app

    with LlamaServer(_smollm2()) as doomed:
        asyncio.run(main(doomed))


def test_doctor_says_whether_the_bigger_box_answers(box):
    from appliance.config import LlmConfig
    from appliance.doctor import _remote_llm_check

    up = _remote_llm_check(AppConfig(llm=LlmConfig(remote=box.url)))
    assert up.status == "ok" and box.url in up.detail
    down = _remote_llm_check(AppConfig(llm=LlmConfig(remote=f"http://127.0.0.1:{free_port()}/v1")))
    assert down.status == "warn" and "cannot reach" in down.detail and down.fix


def test_a_remote_that_is_no_address_is_refused_by_the_config(tmp_path):
    from appliance.config import LlmConfig, load_config
    from appliance.errors import ConfigError

    with pytest.raises(ConfigError, match="llm.remote must be an http:// or https:// address"):
        LlmConfig(remote="tcp://box:10300")
    from appliance.web.settings import public_config

    path = tmp_path / "config.toml"
    path.write_text('[llm]\nremote = "http://box:8080/v1"\nremote_model = "llama3.2:3b"\n'
                    'remote_api_key = "sk-secret"\n')  # fmt: skip
    config = load_config(path)
    assert config.llm.remote_model == "llama3.2:3b" and config.llm.remote_api_key == "sk-secret"
    assert "remote_api_key" not in public_config(config)["llm"]  # never shown by the page


def test_a_box_found_down_is_checked_again_in_the_background_and_comes_back():
    import asyncio

    from appliance.remote.stages import _watch

    healthy: list[str | None] = ["down"]
    statuses: list[RemoteStatus] = []
    clock = [0.0]
    breaker = Breaker("llm", "box", health=lambda: healthy[0], report=statuses.append,
                      first_wait=0.2, clock=lambda: clock[0])  # fmt: skip

    async def main() -> None:
        watching = asyncio.create_task(_watch(breaker, idle_seconds=0.05))
        await asyncio.sleep(0.05)
        assert breaker.up is False  # the check at start
        healthy[0] = None
        clock[0] = 1.0  # the wait is over: checked without any turn asking
        for _ in range(100):
            if breaker.up:
                break
            await asyncio.sleep(0.02)
        watching.cancel()

    asyncio.run(main())
    assert [s.up for s in statuses] == [False, True]

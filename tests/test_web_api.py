"""The config page and API over real HTTP on loopback, with fake engines: pairing,
sessions, tokens, CSRF, settings (validation, atomic save, live apply, conflicts), the
event stream, uploads, and bad input of every kind."""

from __future__ import annotations

import base64
import json
import re
import select
import socket
import threading
import time
import tomllib

import pytest
import requests

from appliance.audio.wav import parse_wav, wav_bytes
from appliance.web.auth import PairingStore
from appliance.web.paths import web_dir
from tests.fakes import request as spoken_request
from tests.web_harness import running_web


@pytest.fixture
def web_env(tmp_path, monkeypatch):
    monkeypatch.setenv("APPLIANCE_DATA_DIR", str(tmp_path / "data"))
    return tmp_path


@pytest.fixture
def web(web_env):
    with running_web(web_env) as running:
        yield running


def test_nothing_without_pairing(web):
    client = requests.Session()
    for path in ("/", "/settings", "/try", "/logs", "/access", "/logs/download"):
        response = client.get(web.url + path, allow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == "/pair", path
    bad = client.get(web.url + "/api/status", headers={"Authorization": "Bearer apl_nope"})
    assert bad.status_code == 401


def _api_routes(app) -> list[tuple[str, str]]:
    """Every (method, path) of the app's route table under /api/, with sample values for
    path parameters, and the API description: a new route cannot be left out."""
    from fastapi.routing import APIRoute

    def walk(table):  # routers included in the app are kept whole, as their own tables
        for route in table:
            inner = getattr(route, "original_router", None)
            yield from walk(inner.routes) if inner is not None else [route]

    routes = [("GET", "/openapi.json")]
    for route in walk(app.routes):
        if isinstance(route, APIRoute) and route.path.startswith("/api/"):
            path = re.sub(r"\{[^}]+\}", "x", route.path)
            routes += [(method, path) for method in sorted(route.methods)]
    described = {re.sub(r"\{[^}]+\}", "x", path) for path in app.openapi()["paths"]}
    assert {p for p in described if p.startswith("/api/")} <= {p for _, p in routes}
    return routes


def test_every_api_route_refuses_an_unpaired_caller_before_reading_its_body(web):
    """Generated from the route table. Each gets a body that is wrong for it (broken
    JSON, too large for a form) and must answer 401, not 422 or 413: nothing about the
    API is told before the caller is known."""
    routes = _api_routes(web.service.app)
    assert len(routes) >= 12 and ("POST", "/api/ask") in routes, routes
    client = requests.Session()
    for method, path in routes:
        for body in (b"{not json", b"x" * 300_000):
            response = client.request(method, web.url + path, data=body,
                                      headers={"Content-Type": "application/json"})  # fmt: skip
            assert response.status_code == 401, (method, path, response.status_code)
            assert response.headers["www-authenticate"] == "Bearer", (method, path)
            assert "pair this browser" in response.json()["detail"]
        wrong_token = client.request(method, web.url + path, data=b"{",
                                     headers={"Authorization": "Bearer apl_nope"})  # fmt: skip
        assert wrong_token.status_code == 401, (method, path)
    # Paired, the description is served.
    paired = web.session()
    assert paired.get(web.url + "/openapi.json").json()["info"]["title"] == "Voice appliance"


def test_pairing_sets_a_strict_httponly_cookie_and_wrong_codes_are_refused(web):
    client = requests.Session()
    wrong = web.pair(client, "00000000" if web.code != "00000000" else "11111111")
    assert wrong.status_code == 401
    assert "not right" in wrong.text
    assert "appliance_session" not in client.cookies
    right = client.get(web.url + "/pair")
    nonce = re.search(r'name="nonce" value="([^"]+)"', right.text).group(1)
    spaced = f"{web.code[:4]} {web.code[4:]}"  # people type it with a space
    response = client.post(web.url + "/pair", data={"nonce": nonce, "code": spaced},
                           allow_redirects=False)  # fmt: skip
    assert response.status_code == 303
    cookie = response.headers["set-cookie"]
    assert "appliance_session=" in cookie and "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert client.get(web.url + "/api/status").status_code == 200


def test_login_attempts_are_rate_limited(web):
    client = requests.Session()
    codes = [
        web.pair(client, f"{n:08d}").status_code for n in range(1, 7) if f"{n:08d}" != web.code
    ]
    assert codes[:5] == [401] * 5
    assert codes[5] == 429
    limited = web.pair(client, web.code)  # even the right code waits now
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) > 0
    assert "Too many wrong codes" in limited.text


def test_pair_form_needs_its_nonce(web):
    client = requests.Session()
    client.get(web.url + "/pair")
    response = client.post(web.url + "/pair", data={"nonce": "forged", "code": web.code})
    assert response.status_code == 403


def test_security_headers_and_no_secrets_in_pages(web):
    client = web.session()
    session_cookie = client.cookies["appliance_session"]
    for path in ("/", "/settings", "/try", "/logs", "/access"):
        response = client.get(web.url + path)
        assert response.status_code == 200
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["cache-control"] == "no-store"
        assert web.code not in response.text
        assert session_cookie not in response.text
        assert "<script>" not in response.text  # no inline code: CSP forbids it
    logs = client.get(web.url + "/logs/download")
    assert logs.headers["content-disposition"].startswith("attachment")
    assert web.code not in logs.text and session_cookie not in logs.text
    auth = (web_dir() / "auth.json").read_text()
    assert web.code not in auth and session_cookie not in auth
    assert (web_dir() / "auth.json").stat().st_mode & 0o077 == 0


def test_csrf_is_required_for_every_change_from_a_browser(web):
    client = web.session()
    assert client.post(web.url + "/api/ask", json={"text": "hi"}).status_code == 403
    wrong = {"X-CSRF-Token": "0" * 40}
    assert client.post(web.url + "/api/ask", json={"text": "hi"}, headers=wrong).status_code == 403
    for path, form in (("/settings", {"llm.system_prompt": "pwned"}), ("/try", {"text": "hi"}),
                       ("/access/tokens", {"name": "x"}), ("/access/reset", {"confirm": "on"}),
                       ("/logout", {"x": "1"})):  # fmt: skip
        response = client.post(web.url + path, data=form)
        assert response.status_code == 403, path
    assert "pwned" not in (web.config_path.read_text() if web.config_path.exists() else "")
    assert client.get(web.url + "/api/status").status_code == 200  # still paired


def test_ask_from_the_api_and_the_form(web):
    client = web.session()
    csrf = {"X-CSRF-Token": web.csrf(client)}
    response = client.post(web.url + "/api/ask", json={"text": "what time is it", "audio": True},
                           headers=csrf)  # fmt: skip
    body = response.json()
    assert response.status_code == 200, body
    assert body["reply"] == "You asked: what time is it"
    assert body["outcome"] == "replied" and body["turn"] == 1
    wav = parse_wav(base64.b64decode(body["audio_wav_base64"]))
    assert wav.info.rate == 16000 and wav.info.duration > 0.3
    # The audio is the reply the appliance spoke, not a second synthesis of it.
    assert " ".join(web.engines.tts.spoken) == body["reply"]
    page = client.post(web.url + "/try", data={"csrf": csrf["X-CSRF-Token"], "text": "hello <b>"})
    assert "You asked: hello &lt;b&gt;" in page.text  # escaped
    status = client.get(web.url + "/api/status").json()
    assert [t["transcript"] for t in status["turns"]] == ["hello <b>", "what time is it"]
    assert status["turns"][0]["timings"]["turn"] > 0
    assert {m["role"] for m in status["models"]} == {"wake", "stt", "llm", "tts"}
    assert status["system"]["memory_total_mb"] > 0


def test_bearer_tokens_are_made_on_the_page_and_can_be_revoked(web):
    client = web.session()
    csrf = web.csrf(client)
    page = client.post(web.url + "/access/tokens", data={"csrf": csrf, "name": "home assistant"})
    token = re.search(r"<code>(apl_[^<]+)</code>", page.text).group(1)
    assert "home assistant" in page.text
    api = {"Authorization": f"Bearer {token}"}
    assert requests.get(web.url + "/api/status", headers=api).status_code == 200
    # A bearer token needs no CSRF token (no cookie is involved).
    asked = requests.post(web.url + "/api/ask", json={"text": "hi"}, headers=api)
    assert asked.json()["reply"] == "You asked: hi"
    assert token not in client.get(web.url + "/access").text  # shown once only
    token_id = PairingStore(web_dir()).tokens()[0].id
    client.post(web.url + "/access/tokens/revoke", data={"csrf": csrf, "id": token_id})
    assert requests.get(web.url + "/api/status", headers=api).status_code == 401


def test_settings_saved_atomically_applied_live_and_backed_up(web):
    web.config_path.write_text('[llm]\nsystem_prompt = "old prompt"\n')
    client = web.session()
    csrf = {"X-CSRF-Token": web.csrf(client)}
    got = client.get(web.url + "/api/config")
    version = got.json()["version"]
    assert got.headers["etag"] == f'"{version}"'
    response = client.put(web.url + "/api/config", headers=csrf, json={
        "version": version,
        "settings": {"llm.system_prompt": "Answer like a pirate.", "wake.threshold": 0.7,
                     "stt.model": "whisper-tiny.en"}})  # fmt: skip
    body = response.json()
    assert response.status_code == 200, body
    saved = tomllib.loads(web.config_path.read_text())
    assert saved["llm"]["system_prompt"] == "Answer like a pirate."
    assert saved["wake"]["threshold"] == 0.7
    assert "old prompt" in web.config_path.with_name("config.toml.bak").read_text()
    assert any("System prompt: applied" in line for line in body["applied"])
    assert web.pipeline.settings.system_prompt == "Answer like a pirate."
    assert web.engines.wake.threshold == 0.7  # applied to the running detector, at once
    assert any("sensitivity" in line and "at once" in line for line in body["applied"])
    assert body["restart"] == []  # the speech-to-text model given is the one running
    assert body["version"] != version
    client.post(web.url + "/api/ask", json={"text": "hi"}, headers=csrf)
    assert web.engines.llm.prompts[-1][0].content == "Answer like a pirate."


def test_garbage_values_are_refused_field_by_field_and_nothing_is_saved(web):
    web.config_path.write_text("[tts]\nlength_scale = 1.2\n")
    before = web.config_path.read_bytes()
    client = web.session()
    csrf = {"X-CSRF-Token": web.csrf(client)}
    version = client.get(web.url + "/api/config").json()["version"]
    bad = {
        "wake.threshold": "abc", "tts.length_scale": -1, "listen.silence_seconds": 1e308,
        "conversation.follow_up_seconds": "NaN", "llm.model": "../../etc/passwd",
        "stt.language": "en; rm -rf /", "audio.input_device": "../../dev/mem",
        "web.device_name": "x" * 5000, "feedback.earcons": "maybe",
        "llm.system_prompt": "y" * 5000,
    }  # fmt: skip
    response = client.put(web.url + "/api/config", headers=csrf,
                          json={"version": version, "settings": bad})  # fmt: skip
    assert response.status_code == 422
    errors = response.json()["detail"]
    assert set(errors) == set(bad)
    assert "number" in errors["wake.threshold"]
    assert "0.3–3" in errors["tts.length_scale"]
    assert "not a known llm model" in errors["llm.model"]
    # A key that is not an editable setting (models_dir is a path) is refused by the schema.
    body = {"version": version, "settings": {"models_dir": "/etc"}}
    path_key = client.put(web.url + "/api/config", headers=csrf, json=body)
    assert path_key.status_code == 422 and "models_dir" in path_key.text
    assert "too long" in errors["llm.system_prompt"]
    assert web.config_path.read_bytes() == before
    # The same through the form: the page shows each message next to its field.
    page = client.post(web.url + "/settings", data={
        "csrf": csrf["X-CSRF-Token"], "version": version, "wake.threshold": "-5",
        "llm.model": "../../etc/passwd"})  # fmt: skip
    assert page.status_code == 422
    assert 'id="error-wake.threshold"' in page.text and 'id="error-llm.model"' in page.text
    assert "Nothing was saved" in page.text
    assert web.config_path.read_bytes() == before


def test_two_tabs_saving_get_a_conflict_and_the_first_save_is_kept(web):
    client = web.session()
    csrf = web.csrf(client)
    tab_a = client.get(web.url + "/settings").text
    tab_b = client.get(web.url + "/settings").text
    version_a = re.search(r'name="version" value="([^"]+)"', tab_a).group(1)
    version_b = re.search(r'name="version" value="([^"]+)"', tab_b).group(1)
    first = client.post(web.url + "/settings", data={
        "csrf": csrf, "version": version_a, "llm.system_prompt": "from tab A"})  # fmt: skip
    assert first.status_code == 200 and 'id="saved"' in first.text
    second = client.post(web.url + "/settings", data={
        "csrf": csrf, "version": version_b, "llm.system_prompt": "from tab B"})  # fmt: skip
    assert second.status_code == 409
    assert "changed elsewhere" in second.text and "Nothing was saved" in second.text
    assert "from tab A" in web.config_path.read_text()
    assert web.pipeline.settings.system_prompt == "from tab A"
    no_version = client.put(web.url + "/api/config", headers={"X-CSRF-Token": csrf},
                            json={"settings": {"llm.system_prompt": "x"}})  # fmt: skip
    assert no_version.status_code == 422


def test_a_saved_device_name_and_privacy_switch_apply_at_once(web):
    client = web.session()
    csrf = {"X-CSRF-Token": web.csrf(client)}
    client.post(web.url + "/api/ask", json={"text": "secret plans"}, headers=csrf)
    version = client.get(web.url + "/api/config").json()["version"]
    response = client.put(web.url + "/api/config", headers=csrf, json={
        "version": version, "settings": {"web.keep_transcripts": False,
                                         "web.device_name": "kitchen"}})  # fmt: skip
    assert response.status_code == 200, response.text
    status = client.get(web.url + "/api/status").json()
    assert status["turns"][0]["transcript"] == "" and status["turns"][0]["reply"] == ""
    assert "secret plans" not in client.get(web.url + "/").text
    assert '<strong class="brand">kitchen</strong>' in client.get(web.url + "/").text


def test_event_stream_delivers_the_bus(web):
    client = web.session()
    csrf = {"X-CSRF-Token": web.csrf(client)}
    seen: list[dict] = []
    stream = client.get(web.url + "/api/events", stream=True, timeout=10)
    assert stream.headers["content-type"].startswith("text/event-stream")

    def read() -> None:
        for line in stream.iter_lines(decode_unicode=True):
            if line and line.startswith("data: "):
                seen.append(json.loads(line[6:]))
                if seen[-1]["type"] == "turn_end":
                    return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    time.sleep(0.3)
    client.post(web.url + "/api/ask", json={"text": "ping"}, headers=csrf)
    reader.join(10)
    stream.close()
    types = [e["type"] for e in seen]
    assert "reply" in types and types[-1] == "turn_end"
    assert next(e for e in seen if e["type"] == "reply")["text"] == "You asked: ping"


def test_wav_upload_runs_through_the_pipeline(web):
    client = web.session()
    csrf = {"X-CSRF-Token": web.csrf(client), "Content-Type": "audio/wav"}
    data = wav_bytes(spoken_request(), 16000)
    response = client.post(web.url + "/api/listen", data=data, headers=csrf)
    body = response.json()
    assert response.status_code == 200, body
    [turn] = body["turns"]
    assert turn["outcome"] == "replied"
    assert turn["transcript"].endswith("seconds of audio")
    assert turn["reply"] == f"You asked: {turn['transcript']}"
    silence = client.post(web.url + "/api/listen", data=wav_bytes(spoken_request()[:4000] * 0,
                          16000), headers=csrf)  # fmt: skip
    assert silence.json()["turns"] == [] and "No wake word" in silence.json()["message"]
    garbage = client.post(web.url + "/api/listen", data=b"PK\x03\x04not a wav", headers=csrf)
    assert garbage.status_code == 400 and "not a WAV" in garbage.json()["detail"]


def _raw_post(url: str, headers: str, body_chunks, *, chunked: bool = False) -> tuple[int, int]:
    """POST with a raw socket, sending while the server reads and stopping as soon as it
    answers; returns (status, body bytes sent by then)."""
    host, port = url.removeprefix("http://").split(":")
    sent = 0
    reply = b""
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(headers.encode())
        pending = b""
        chunks = iter(body_chunks)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            readable, writable, _ = select.select([sock], [sock], [], 5)
            if readable:
                try:
                    data = sock.recv(65536)
                except ConnectionResetError:
                    break
                reply += data
                if not data or b"\r\n" in reply:
                    break
                continue
            if writable:
                if not pending:
                    chunk = next(chunks, None)
                    if chunk is None:
                        break
                    pending = (f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n") if chunked \
                        else chunk  # fmt: skip
                    sent += len(chunk)
                try:
                    pending = pending[sock.send(pending) :]
                except (BrokenPipeError, ConnectionResetError):
                    break
        while b"\r\n" not in reply:
            more = sock.recv(65536)
            if not more:
                break
            reply += more
    return int(reply.split(b" ")[1]), sent


def test_a_2_gb_upload_is_refused_without_reading_it(web):
    client = web.session()
    cookie = client.cookies["appliance_session"]
    csrf = web.csrf(client)
    head = (f"POST /api/listen HTTP/1.1\r\nHost: x\r\nCookie: appliance_session={cookie}\r\n"
            f"X-CSRF-Token: {csrf}\r\nContent-Type: audio/wav\r\n")  # fmt: skip
    block = b"\0" * (1024 * 1024)
    two_gb = (block for _ in range(2048))
    status, sent = _raw_post(web.url, head + "Content-Length: 2147483648\r\n\r\n", two_gb)
    assert status == 413 and sent < 64 * 1024 * 1024
    # No length announced (chunked): counted while it streams in.
    status, sent = _raw_post(web.url, head + "Transfer-Encoding: chunked\r\n\r\n",
                             (block for _ in range(2048)), chunked=True)  # fmt: skip
    assert status == 413 and sent < 128 * 1024 * 1024
    # A huge JSON body to a small endpoint is refused the same way (sent raw: the server
    # answers and closes while a plain client would still be sending).
    body = b"{" + b" " * 200_000 + b"}"
    put = head.replace("POST /api/listen", "PUT /api/config").replace(
        "audio/wav", "application/json"
    )
    status, sent = _raw_post(web.url, put + f"Content-Length: {len(body)}\r\n\r\n", [body])
    assert status == 413
    assert client.get(web.url + "/api/status").status_code == 200  # still serving


def test_path_traversal_gets_nothing(web):
    client = web.session()
    for path in ("/static/../../config.py", "/static/..%2f..%2fconfig.py",
                 "/static/%2e%2e/%2e%2e/pyproject.toml", "/static//etc/passwd"):  # fmt: skip
        host, port = web.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
        assert reply.split(b" ")[1] in (b"404", b"400"), (path, reply[:200])
        assert b"root:" not in reply and b"[project]" not in reply
    assert client.get(web.url + "/static/app.css").status_code == 200


def test_reset_pairing_from_the_page_signs_everyone_out(web):
    client = web.session()
    other = web.session()
    csrf = web.csrf(client)
    unconfirmed = client.post(web.url + "/access/reset", data={"csrf": csrf})
    assert unconfirmed.status_code == 400
    spoken: list[str] = []
    published: list[str | None] = []

    async def capture(text: str, *, shown: str | None = None) -> None:
        spoken.append(text)
        published.append(shown)

    web.service.ctx.announce = capture
    client.post(web.url + "/access/reset", data={"csrf": csrf, "confirm": "on"})
    assert client.get(web.url + "/api/status").status_code == 401
    assert other.get(web.url + "/api/status").status_code == 401
    [said] = spoken
    digits = "".join(ch for ch in said.split("Again")[0] if ch.isdigit())
    assert len(digits) == 8 and digits != web.code
    # The event (files, MQTT, the page's stream) says a code was given, not the code.
    assert published[0] and not any(ch.isdigit() for ch in published[0])
    fresh = requests.Session()
    assert web.pair(fresh, digits).status_code == 200
    assert fresh.get(web.url + "/api/status").status_code == 200


def test_mute_listen_now_and_speaker_test_use_the_pipeline(web):
    client = web.session()
    csrf = {"X-CSRF-Token": web.csrf(client)}
    muted = client.post(web.url + "/api/mute", json={"muted": True}, headers=csrf)
    assert muted.json() == {"muted": True, "listening": False}
    assert web.pipeline.muted
    assert client.get(web.url + "/api/status").json()["state"] == "muted"
    refused = client.post(web.url + "/api/listen-now", headers=csrf)
    assert refused.status_code == 409 and "muted" in refused.json()["detail"]
    client.post(web.url + "/api/mute", json={"muted": False}, headers=csrf)
    idle = client.post(web.url + "/api/listen-now", headers=csrf)  # no microphone loop here
    assert idle.status_code == 409 and "no microphone" in idle.json()["detail"]
    assert (
        client.post(web.url + "/api/mute", json={"muted": "yes"}, headers=csrf).status_code == 422
    )
    spoke = client.post(web.url + "/api/speaker-test", headers=csrf)
    assert spoke.status_code == 200
    assert any("speaker test" in text for text in web.engines.tts.spoken)
    no_mic = client.post(web.url + "/api/microphone-test", headers=csrf)
    assert no_mic.status_code == 409


def test_the_microphone_meter_reads_the_live_source():
    import asyncio

    import numpy as np

    from appliance.audio.sources import ArraySource
    from appliance.web.miclevel import LevelTap

    async def main() -> list[float]:
        tap = LevelTap()
        loud = (np.sin(np.arange(16000 * 2) / 5) * 16000).astype(np.int16)
        source = tap.wrap(ArraySource(loud, realtime=True, tail_silence=0.0))
        assert source.live

        async def drain() -> None:
            async for _ in source.chunks():
                pass

        feeding = asyncio.create_task(drain())
        levels = await tap.levels(0.5)
        await feeding
        return levels

    levels = asyncio.run(main())
    assert 4 <= len(levels) <= 8  # 80 ms chunks over half a second
    assert all(-10 < db < -8.5 for db in levels)  # sine peak 0.49 → RMS 0.35 = −9.2 dBFS


def test_reset_pairing_for_the_button(web):
    import asyncio

    from appliance.web.pairing import reset_pairing

    client = web.session()
    spoken: list[str] = []

    async def say(text: str, *, shown: str | None = None) -> None:
        spoken.append(text)

    async def press() -> None:
        task = reset_pairing(say)
        assert task is not None
        await task

    web.call(press())
    assert client.get(web.url + "/api/status").status_code == 401
    assert len(spoken) == 1 and "pairing code" in spoken[0]
    asyncio.run(asyncio.sleep(0))


def test_first_boot_problems_reach_the_status_api_and_page_with_their_fix(web, web_env):
    """What the first boot could not use from appliance.txt (firstboot.json), and a later
    appliance.txt's record (settings.json) replacing it once newer."""
    data = web_env / "data"
    data.mkdir(exist_ok=True)
    settings_file = {
        "file": "/boot/firmware/appliance.txt", "found": True,
        "applied": ["time zone Europe/London"],
        "problems": ["line 3: ZZ is not a country code; use your country's two letters, "
                     "such as GB, US or DE (ISO 3166)",
                     "Wi-Fi not set up: put a corrected appliance.txt on the card and reboot"],
    }  # fmt: skip
    (data / "firstboot.json").write_text(json.dumps({
        "finished_at": 1000.0, "ok": False, "settings_file": settings_file,
        "steps": [{"name": "grow_data", "ok": False, "message": "growpart failed"},
                  {"name": "settings", "ok": False, "message": "…"}],
    }))  # fmt: skip
    client = requests.Session()
    web.pair(client, web.code)
    setup = client.get(web.url + "/api/status").json()["setup"]
    assert setup["ok"] is False and setup["record"] == "firstboot.json"
    assert "ZZ is not a country code" in setup["problems"][0]
    assert "corrected appliance.txt" in setup["fix"]
    assert setup["failed_steps"] == [{"step": "grow_data", "message": "growpart failed"}]
    page = client.get(web.url + "/").text
    assert 'id="setup"' in page and "ZZ is not a country code" in page
    assert "grow_data: growpart failed" in page
    # A corrected file put on the card later: its record is the newer one
    (data / "settings.json").write_text(json.dumps({
        "finished_at": 2000.0, "ok": True, "steps": [{"name": "settings", "ok": True}],
        "settings_file": {"found": True, "applied": ["Wi-Fi Home (GB)"], "problems": []},
    }))  # fmt: skip
    setup = client.get(web.url + "/api/status").json()["setup"]
    assert setup["ok"] is True and setup["applied"] == ["Wi-Fi Home (GB)"]
    assert 'id="setup"' not in client.get(web.url + "/").text
    # A record that cannot be read says so, rather than nothing
    (data / "settings.json").write_text("{broken")
    setup = client.get(web.url + "/api/status").json()["setup"]
    assert setup["ok"] is False and "cannot be read" in setup["failed_steps"][0]["message"]


def test_an_expired_pairing_code_is_said_to_be_expired_and_a_new_one_pairs(web):
    store = web.service.ctx.pairing
    store.code_minutes = 0  # as if its ten minutes were over
    client = requests.Session()
    for _ in range(7):  # not counted as wrong guesses: no wait builds up
        expired = web.pair(client, web.code)
        assert expired.status_code == 401 and "has expired" in expired.text
        assert "appliance pairing new-code" in expired.text
    assert "appliance_session" not in client.cookies
    store.code_minutes = 10
    code = store.new_code()  # `appliance pairing new-code`
    assert web.pair(client, code).status_code == 200
    assert client.get(web.url + "/api/status").status_code == 200


def test_the_test_routes_exist_only_when_asked_for(web, web_env, monkeypatch):
    """The boot test hangs the event loop through /api/debug/hang to see systemd's
    watchdog act; the route is absent unless APPLIANCE_TEST_ENDPOINTS=1."""
    client = web.session()
    headers = {"X-CSRF-Token": web.csrf(client)}
    assert client.post(web.url + "/api/debug/hang", json={"seconds": 0.1},
                       headers=headers).status_code == 404  # fmt: skip
    monkeypatch.setenv("APPLIANCE_TEST_ENDPOINTS", "1")
    with running_web(web_env) as debug:
        paired = debug.session()
        refused = paired.post(debug.url + "/api/debug/hang", json={"seconds": 0.1})
        assert refused.status_code == 403  # a change: the CSRF token, as every other
        started = time.monotonic()
        blocked = paired.post(debug.url + "/api/debug/hang", json={"seconds": 0.3},
                              headers={"X-CSRF-Token": debug.csrf(paired)})  # fmt: skip
        assert blocked.status_code == 200 and time.monotonic() - started >= 0.3
        assert (
            paired.post(
                debug.url + "/api/debug/hang",
                json={"seconds": 9999},
                headers={"X-CSRF-Token": debug.csrf(paired)},
            ).status_code
            == 422
        )

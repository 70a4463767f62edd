"""Pairing storage, the login limiter, the config found broken at start, the pairing
CLI, and the first-start announcement (real Pipeline.say, fake engines)."""

from __future__ import annotations

import asyncio
import logging
import re
import tomllib

import pytest
import requests

from appliance.config import load_config_or_fallback
from appliance.events import EventBus
from appliance.web.auth import LoginLimiter, PairingStore
from appliance.web.paths import web_dir
from appliance.web.settings import ConfigStore
from tests.fakes import appliance
from tests.web_harness import running_web


@pytest.fixture
def web_env(tmp_path, monkeypatch):
    monkeypatch.setenv("APPLIANCE_DATA_DIR", str(tmp_path / "data"))
    return tmp_path


def test_pairing_store_keeps_only_hashes_and_reset_invalidates_everything(tmp_path):
    now = [1000.0]
    store = PairingStore(tmp_path / "web", clock=lambda: now[0])
    assert not store.status().paired
    code = store.ensure_code()
    assert code is not None and len(code) == 8 and code.isdigit()
    assert store.ensure_code() is None  # only on the very first start
    assert store.check_code(code) and store.check_code(f"{code[:4]}-{code[4:]}")
    assert not store.check_code("") and not store.check_code(code[:-1])
    assert not store.check_code("x" * 10_000)
    session = store.new_session()
    secret, token = store.new_token("ha")
    assert store.session_valid(session) and store.token_valid(secret)
    assert not store.token_valid(secret[:-1] + "x") and not store.session_valid("nope")
    text = (tmp_path / "web" / "auth.json").read_text()
    assert code not in text and session not in text and secret not in text
    now[0] += 31 * 86400  # sessions expire after 30 days unused
    assert not store.session_valid(session)
    fresh = store.new_session()
    new_code = store.reset()
    assert new_code != code or not store.check_code(code)
    assert store.check_code(new_code) and not store.session_valid(fresh)
    assert not store.token_valid(secret) and store.tokens() == []
    assert store.status().sessions == 0


def test_a_broken_auth_file_means_unpaired_not_a_crash(tmp_path):
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "auth.json").write_text('{"code": {"salt": "00", "ha')
    store = PairingStore(tmp_path / "web")
    assert not store.check_code("12345678") and not store.session_valid("x")
    assert store.ensure_code() is not None


def test_login_limiter_backs_off_per_client_and_never_locks_out_the_others():
    now = [0.0]
    limiter = LoginLimiter(free=3, first_wait=30, longest_wait=240, forget=3600,
                           clock=lambda: now[0])  # fmt: skip
    for _ in range(3):
        assert limiter.retry_after("a") == 0
        limiter.failed("a")
    waits = []
    for _ in range(5):  # each wrong code past the free ones doubles the wait, to a cap
        waits.append(limiter.retry_after("a"))
        now[0] += waits[-1]
        limiter.failed("a")
    assert waits == [30, 60, 120, 240, 240]
    # Thousands of failures from other addresses: "a" waits its own wait, "z" none.
    for n in range(2000):
        limiter.failed(f"10.0.{n // 250}.{n % 250}")
    assert limiter.retry_after("z") == 0
    assert limiter.retry_after("a") == 240
    # A success forgets; so does an hour without a failure.
    limiter.succeeded("a")
    assert limiter.retry_after("a") == 0
    for _ in range(3):
        limiter.failed("b")
    now[0] += 3601
    assert limiter.retry_after("b") == 0
    # The table of addresses is bounded (a flood of addresses cannot fill memory).
    small = LoginLimiter(max_clients=10, clock=lambda: now[0])
    for n in range(50):
        small.failed(str(n))
    assert len(small._failures) == 10


def test_a_pairing_code_expires_and_a_new_one_keeps_the_paired(tmp_path):
    now = [1000.0]
    store = PairingStore(tmp_path / "web", clock=lambda: now[0], code_minutes=10)
    code = store.ensure_code()
    assert code is not None and store.try_code(code) == "ok"
    assert store.status().code_expires == 1000.0 + 600
    now[0] += 601
    assert store.try_code(code) == "expired" and store.try_code("00000000") == "expired"
    # Nobody paired and the code expired: the next start makes (and says) a new one.
    again = store.ensure_code()
    assert again is not None and store.try_code(again) == "ok"
    session = store.new_session()
    now[0] += 601
    assert store.ensure_code() is None  # a paired browser can let others in: no new code
    renewed = store.new_code()
    assert store.try_code(renewed) == "ok" and store.session_valid(session)


def test_half_written_config_falls_back_to_the_backup_and_says_so(tmp_path):
    path = tmp_path / "config.toml"
    store = ConfigStore(path)
    config, _ = load_config_or_fallback(None)
    typed, errors = store.validate(config, {"llm.system_prompt": "first"})
    assert not errors
    saved = store.save(config, typed, store.version())
    typed, _ = store.validate(saved.config, {"llm.system_prompt": "second good one"})
    store.save(saved.config, typed, saved.version)
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2])  # a power cut mid-write (without atomic_write)
    config, fallback = load_config_or_fallback(path)
    assert fallback is not None and fallback.used == "backup"
    assert "config.toml.bak" in fallback.message and "not valid TOML" in fallback.message
    assert config.llm.system_prompt == "first"  # the last good version the save kept
    # Saving over the broken file must not turn it into the backup.
    typed, _ = store.validate(config, {"wake.threshold": 0.6})
    store.save(config, typed, store.version())
    backup = tomllib.loads(path.with_name("config.toml.bak").read_text())
    assert backup["llm"]["system_prompt"] == "first"
    assert tomllib.loads(path.read_text())["wake"]["threshold"] == 0.6
    # Broken with no backup at all: defaults, said as such.
    path.with_name("config.toml.bak").unlink()
    path.write_text("[wake]\nthreshold = 7\n")
    config, fallback = load_config_or_fallback(path)
    assert fallback is not None and fallback.used == "defaults"
    assert "wake.threshold" in fallback.message and config.wake.threshold == 0.5


def test_the_page_shows_the_fallback_banner(web_env):
    (web_env / "config.toml.bak").write_text('[llm]\nsystem_prompt = "from the backup"\n')
    with running_web(web_env, config_text='[llm]\nsystem_prompt = "cut off') as web:
        client = web.session()
        page = client.get(web.url + "/")
        banner = re.search(r'<p class="banner warn" role="alert" id="notice">(.*?)</p>',
                           page.text, re.S)  # fmt: skip
        assert banner and "not valid TOML" in banner.group(1)
        assert "last good version" in banner.group(1)
        assert web.service.ctx.config.llm.system_prompt == "from the backup"
        assert "not valid TOML" in client.get(web.url + "/api/status").json()["notice"]


def test_first_start_speaks_the_code_once_and_logs_it_only_to_the_journal(web_env, caplog):
    caplog.set_level(logging.INFO)
    with running_web(web_env, create_code=False) as web:
        spoken = web.call(_wait_for_announcement(web))
        digits = "".join(ch for ch in spoken.split("Again")[0] if ch.isdigit())
        assert len(digits) == 8
        journal = [r for r in caplog.records if r.name == "appliance.pairing.code"]
        assert len(journal) == 1 and digits in journal[0].getMessage()
        client = requests.Session()
        assert web.pair(client, digits).status_code == 200
        logs = client.get(web.url + "/logs").text + client.get(web.url + "/logs/download").text
        assert digits not in logs
        assert "paired" in logs  # the buffer does keep ordinary lines
    with running_web(web_env, create_code=False) as again:
        assert again.call(_announcements(again)) == []  # the second start says nothing


async def _announcements(web) -> list[str]:
    await asyncio.sleep(0.2)
    return list(web.engines.tts.spoken)


async def _wait_for_announcement(web) -> str:
    for _ in range(100):
        spoken = [t for t in web.engines.tts.spoken if "pairing code" in t]
        if spoken:
            return " ".join(t for t in web.engines.tts.spoken)
        await asyncio.sleep(0.05)
    raise AssertionError("the pairing code was not spoken")


def test_pairing_cli_reset_and_status(web_env):
    env = {"APPLIANCE_DATA_DIR": str(web_env / "data")}
    status = appliance("pairing", "show-status", env=env)
    assert status.returncode == 0 and "No pairing code yet" in status.stdout
    store = PairingStore(web_env / "data" / "web")
    store.ensure_code()
    session = store.new_session()
    reset = appliance("pairing", "reset", env=env)
    assert reset.returncode == 0, reset.stderr
    code = re.search(r"New pairing code: (\d{8})", reset.stdout).group(1)
    assert store.check_code(code) and not store.session_valid(session)
    status = appliance("pairing", "show-status", env=env)
    assert "Paired browser sessions: 0; API tokens: 0." in status.stdout
    assert "lets browsers in for 10 more minute(s)" in status.stdout
    assert code not in status.stdout
    # new-code: a code for ten minutes (web.pairing_code_minutes); the paired stay paired.
    session = store.new_session()
    (web_env / "config.toml").write_text("[web]\npairing_code_minutes = 3\n")
    renewed = appliance("--config", str(web_env / "config.toml"), "pairing", "new-code",
                        env=env)  # fmt: skip
    assert renewed.returncode == 0, renewed.stderr
    assert "within 3 minutes; paired browsers stay paired" in renewed.stdout
    fresh = re.search(r"New pairing code: (\d{8})", renewed.stdout).group(1)
    assert store.check_code(fresh) and store.session_valid(session)


def test_a_reset_from_the_shell_reaches_the_running_server(web_env):
    with running_web(web_env) as web:
        client = web.session()
        assert client.get(web.url + "/api/status").status_code == 200
        reset = appliance("pairing", "reset", env={"APPLIANCE_DATA_DIR": str(web_env / "data")})
        assert reset.returncode == 0
        assert client.get(web.url + "/api/status").status_code == 401


def test_an_open_event_stream_ends_when_pairing_is_reset(web_env):
    with running_web(web_env) as web:
        client = web.session()
        stream = client.get(web.url + "/api/events", stream=True, timeout=10)
        PairingStore(web_dir()).reset()
        bus: EventBus = web.pipeline.bus
        web.call(_publish_state(bus))
        lines = list(stream.iter_lines(decode_unicode=True))  # ends: the server closed it
        assert not [line for line in lines if line.startswith("data:")]


async def _publish_state(bus: EventBus) -> None:
    from appliance.events import StateChanged

    bus.publish(StateChanged(turn=0, stream_time=0.0, state="idle"))


def test_a_port_in_use_does_not_stop_the_service_but_stops_the_web_command(web_env, caplog):
    import socket

    from appliance.config import AppConfig
    from appliance.errors import ConfigError
    from appliance.web.service import WebService

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]

    async def start(required: bool) -> bool:
        service = WebService(AppConfig(), web_env / "config.toml", localhost_only=True,
                             port=port, mdns=False, required=required)  # fmt: skip
        async with service:
            return service.server is not None

    try:
        assert asyncio.run(start(required=False)) is False
        assert any("cannot serve the config page" in r.getMessage() for r in caplog.records)
        with pytest.raises(ConfigError, match="in use"):
            asyncio.run(start(required=True))
    finally:
        taken.close()


def test_the_advertiser_notices_hostname_address_and_name_changes(monkeypatch):
    """What triggers a new announcement (the announcing itself is tested in a network
    namespace, test_discovery.py); no packet is sent here."""
    from appliance.discovery import mdns

    host = ["kitchen"]
    addresses = [["192.0.2.10"]]
    monkeypatch.setattr(mdns.socket, "gethostname", lambda: host[0])
    monkeypatch.setattr(mdns, "current_addresses", lambda: addresses[0])
    advertiser = mdns.Advertiser("", 80)  # no device name: follow the hostname
    assert not advertiser.changed()  # nothing announced yet
    advertiser._base = advertiser._name()
    advertiser.announced = mdns.Announced("kitchen", "kitchen.local", ("192.0.2.10",), 80)
    assert not advertiser.changed()
    host[0] = "hall"
    assert advertiser.changed() and advertiser._host() == "hall"
    host[0] = "kitchen"
    addresses[0] = ["192.0.2.11"]
    assert advertiser.changed()
    addresses[0] = ["192.0.2.10"]
    advertiser.wanted_name = "Kitchen Speaker"
    assert advertiser.changed() and advertiser._host() == "kitchen-speaker"


def test_the_effective_config_round_trips_with_devices_and_unset_pins():
    """What the page validates against: every section, [[devices]] included and optional
    pins left unset, must read back as the same configuration."""
    from appliance.config import build_config, to_toml
    from appliance.web.settings import config_to_raw

    raw = tomllib.loads(
        '[[devices]]\nname = "porch light"\naliases = ["front light"]\ngpio = { pin = 17 }\n'
        '[[devices]]\nname = "fan"\nkind = "fan"\nmqtt = { command_topic = "fan/set" }\n'
    )
    config = build_config(raw)
    again = config_to_raw(config)
    assert build_config(again) == config
    assert build_config(tomllib.loads(to_toml(again))) == config

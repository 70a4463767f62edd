"""A second language end to end on typed requests: `appliance ask` with
conversation.language = "de" switches a device, runs a timer and tells the time, with the
sentence library's German sentences and replies (real engines, a MockFactory pin)."""

from __future__ import annotations

import pytest

from appliance.config import AppConfig
from tests.fakes import appliance

pytestmark = pytest.mark.e2e

CONFIG = """
[conversation]
language = "de"

[[devices]]
name = "Stehlampe"
room = "Wohnzimmer"
gpio = { pin = 17 }

[actions]
pin_factory = "mock"
"""


def test_german_commands_through_appliance_ask(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(CONFIG)
    env = {
        "APPLIANCE_DATA_DIR": str(tmp_path / "data"),
        "APPLIANCE_MODELS_DIR": str(AppConfig().models_path()),
    }
    said = {}
    for text in (
        "Schalte die Stehlampe ein.",
        "Stelle einen Timer auf 10 Minuten.",
        "Pausiere den Timer.",
        "Stoppe den Timer.",
        "Wie spät ist es?",
    ):
        proc = appliance("--config", str(config), "ask", text, env=env)
        assert proc.returncode == 0, proc.stderr
        said[text] = proc.stdout.strip()
    assert said["Schalte die Stehlampe ein."] == "Licht eingeschaltet"
    assert said["Stelle einen Timer auf 10 Minuten."] == "Timer für 10 Minuten gestartet"
    assert said["Pausiere den Timer."] == "Timer pausiert"
    assert said["Stoppe den Timer."] == "Timer gestoppt"
    assert said["Wie spät ist es?"].startswith("Es ist ")
    log = appliance("actions", "log", env=env).stdout
    for tool in ("device_on(device='Stehlampe')", "timer_set(", "timer_pause(", "timer_cancel("):
        assert tool in log, log
    assert "FAIL" not in log, log


def test_a_language_the_library_lacks_is_refused_with_the_choices(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[conversation]\nlanguage = "xx"\n')
    env = {
        "APPLIANCE_DATA_DIR": str(tmp_path / "data"),
        "APPLIANCE_MODELS_DIR": str(AppConfig().models_path()),
    }
    proc = appliance("--config", str(config), "ask", "Hallo", env=env)
    assert proc.returncode == 5, (proc.returncode, proc.stdout, proc.stderr)
    assert "home-assistant-intents" in proc.stderr
    assert "'de'" in proc.stderr or " de," in proc.stderr

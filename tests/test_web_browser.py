"""The config page in a real browser: Debian's Chromium driven by Playwright, against
the real server on loopback (fake engines). Screenshots go to test-artifacts/web/."""

from __future__ import annotations

import os
import re
import shutil
import tomllib
from pathlib import Path

import pytest

from tests.web_harness import running_web

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "web"
FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]  # fmt: skip

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists() or shutil.which("chromium") is None,
    reason="needs Debian's chromium (apt-get install chromium; ./setup.sh installs it)",
)


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    root = tmp_path_factory.mktemp("web-browser")
    old = os.environ.get("APPLIANCE_DATA_DIR")
    os.environ["APPLIANCE_DATA_DIR"] = str(root / "data")
    try:
        with running_web(root) as running:
            yield running
    finally:
        if old is None:
            os.environ.pop("APPLIANCE_DATA_DIR", None)
        else:
            os.environ["APPLIANCE_DATA_DIR"] = old


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield chromium
        chromium.close()


def shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_a_wrong_code_is_refused(web, browser):
    context = browser.new_context()
    page = context.new_page()
    page.goto(web.url + "/")
    assert page.url.endswith("/pair")
    page.fill("#code", "0000 0000" if web.code != "00000000" else "1111 1111")
    page.click("button[type=submit]")
    page.wait_for_selector("#pair-error")
    assert "not right" in page.inner_text("#pair-error")
    assert page.url.endswith("/pair")
    assert not [c for c in context.cookies() if c["name"] == "appliance_session"]
    shot(page, "pair-wrong-code")
    context.close()


def test_pair_change_a_setting_and_see_a_new_turn_live(web, browser):
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    errors: list[str] = []
    status = context.new_page()
    status.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    status.goto(web.url + "/pair")
    status.fill("#code", web.code)
    status.click("button[type=submit]")
    status.wait_for_url(web.url + "/")
    [cookie] = [c for c in context.cookies() if c["name"] == "appliance_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"

    # Change a setting: saved to the file and applied to the running pipeline.
    settings = context.new_page()
    settings.goto(web.url + "/settings")
    settings.fill("#llm\\.system_prompt", "You are a terse kitchen assistant.")
    settings.fill("#tts\\.length_scale", "1.3")
    settings.click("#settings-form button[type=submit]")
    settings.wait_for_selector("#saved")
    saved_text = settings.inner_text("#saved")
    assert "System prompt: applied" in saved_text
    shot(settings, "settings-saved")
    on_disk = tomllib.loads(web.config_path.read_text())
    assert on_disk["llm"]["system_prompt"] == "You are a terse kitchen assistant."
    assert on_disk["tts"]["length_scale"] == 1.3
    assert web.pipeline.settings.system_prompt == "You are a terse kitchen assistant."

    # A wrong value: a clear message next to the field, the file untouched.
    before = web.config_path.read_bytes()
    settings.fill("#wake\\.threshold", "lots")
    settings.click("#settings-form button[type=submit]")
    settings.wait_for_selector("#problem")
    assert "must be a number" in settings.inner_text("#error-wake\\.threshold")
    shot(settings, "settings-invalid")
    assert web.config_path.read_bytes() == before

    # Try it in one tab; the status page in the other shows the new turn without reload.
    status.bring_to_front()
    status.wait_for_selector("#state")
    turns_before = status.locator("#turns tr[data-turn]").count()
    ask = context.new_page()
    ask.goto(web.url + "/try")
    ask.fill("#text", "turn on the kitchen light")
    ask.check("#play-here")
    ask.click("#ask-form button[type=submit]")
    # (Polling selectors, not wait_for_function: the page's CSP forbids eval.)
    ask.wait_for_selector("#reply:has-text('You asked')")
    assert ask.inner_text("#reply") == "You asked: turn on the kitchen light"
    assert ask.locator("#reply-audio").is_visible()
    shot(ask, "try-it")
    status.locator("#turns tr[data-turn]").nth(turns_before).wait_for(timeout=10_000)
    row = status.locator("#turns tr[data-turn]").first.inner_text()
    assert "turn on the kitchen light" in row and "You asked" in row
    assert re.search(r"turn \d+ ms", row)
    status.wait_for_selector("#chart svg rect")
    assert web.engines.llm.prompts[-1][0].content == "You are a terse kitchen assistant."
    shot(status, "status")
    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True,
                                storage_state=context.storage_state())  # fmt: skip
    small = phone.new_page()
    small.goto(web.url + "/")
    small.wait_for_selector("#chart svg rect")
    shot(small, "status-phone")
    phone.close()
    assert not [e for e in errors if "Content Security Policy" in e], errors
    context.close()


def test_set_the_broker_and_add_devices_on_the_page(web, browser):
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    errors: list[str] = []
    page = context.new_page()
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(web.url + "/pair")
    page.fill("#code", web.code)
    page.click("button[type=submit]")
    page.wait_for_url(web.url + "/")
    # The status page's memory: this process's RSS, and the catalog's figures labelled.
    assert re.search(r"This process now: \d+ MB resident", page.inner_text("#process-memory"))

    # The broker: saved to the file (a restart applies it); the password never comes back.
    page.goto(web.url + "/settings")
    page.fill("#mqtt\\.host", "broker.local")
    page.fill("#mqtt\\.port", "1884")
    page.fill("#mqtt\\.username", "appliance")
    page.fill("#mqtt\\.password", "pw-typed-in-the-browser")
    page.uncheck("#mqtt\\.discovery")
    page.click("#settings-form button[type=submit]")
    page.wait_for_selector("#saved")
    assert "MQTT broker host: saved; takes effect when the appliance restarts" in page.inner_text(
        "#saved"
    )
    mqtt = tomllib.loads(web.config_path.read_text())["mqtt"]
    assert mqtt == {"host": "broker.local", "port": 1884, "username": "appliance",
                    "password": "pw-typed-in-the-browser", "tls": False, "ca_file": "",
                    "discovery": False}  # fmt: skip
    assert "pw-typed-in-the-browser" not in page.content()
    assert page.input_value("#mqtt\\.password") == ""

    # A GPIO device, then an MQTT one (the form shows the chosen backend's fields).
    page.fill("#device-name", "garden pump")
    page.select_option("#device-kind", "relay")
    page.fill("#device-aliases", "pump, water")
    page.fill("#device-pin", "27")
    page.uncheck("#device-active_high")
    assert page.locator("#device-mqtt").is_hidden()
    page.click("#device-save")
    page.wait_for_selector("#saved")
    assert "Devices: saved" in page.inner_text("#saved")
    page.select_option("#device-backend", "mqtt")
    assert page.locator("#device-gpio").is_hidden() and page.locator("#device-mqtt").is_visible()
    page.fill("#device-name", "kitchen light")
    page.fill("#device-room", "kitchen")
    page.fill("#device-command_topic", "home/+/light/set")
    page.click("#device-save")
    page.wait_for_selector("#device-error-command_topic")
    assert "wildcards" in page.inner_text("#device-error-command_topic")
    shot(page, "settings-device-invalid")
    page.fill("#device-command_topic", "home/kitchen/light/set")
    page.fill("#device-state_topic", "home/kitchen/light/state")
    page.click("#device-save")
    page.wait_for_selector("#saved")
    rows = page.locator("#device-list tr[data-device]")
    assert rows.count() == 2
    assert "GPIO 27, on when low" in rows.nth(0).inner_text()
    assert "home/kitchen/light/set" in rows.nth(1).inner_text()
    on_disk = tomllib.loads(web.config_path.read_text())
    assert on_disk["devices"] == [
        {"name": "garden pump", "kind": "relay", "aliases": ["pump", "water"],
         "gpio": {"pin": 27, "pwm": False, "active_high": False}},
        {"name": "kitchen light", "kind": "light", "room": "kitchen",
         "mqtt": {"command_topic": "home/kitchen/light/set",
                  "state_topic": "home/kitchen/light/state", "payload_on": "ON",
                  "payload_off": "OFF"}},
    ]  # fmt: skip
    assert on_disk["mqtt"]["password"] == "pw-typed-in-the-browser"
    shot(page, "settings-devices")
    assert not [e for e in errors if "Content Security Policy" in e], errors
    context.close()

"""The Settings page's devices and MQTT broker: validation of every new field (garbage,
oversize, clashes, wildcards, traversal), the write-only password, the whole save path
(atomic write + backup) over real HTTP on loopback, and the status page's memory figures."""

from __future__ import annotations

import json
import re
import tomllib

import pytest

from appliance.config import build_config, load_config, to_toml
from appliance.sections.devices import ActionsConfig, ButtonConfig, MuteSwitchConfig
from appliance.sections.devices import StatusLightConfig as Light
from appliance.web.devices import DeviceForm, check_devices
from appliance.web.settings import ConfigStore
from appliance.web.status import process_memory
from tests.web_harness import running_web

PASSWORD = "s3cret-Broker-pw"


def gpio(name: str, pin: object, **extra: object) -> dict:
    return {"name": name, "gpio": {"pin": pin}, **extra}


def mqtt(name: str, topic: str = "home/lamp/set", **topics: object) -> dict:
    return {"name": name, "mqtt": {"command_topic": topic, **topics}}


def errors_of(tables: list, actions: ActionsConfig | None = None, *, broker: bool = True):
    _, errors = check_devices(tables, actions or ActionsConfig(), broker=broker)
    return {f"{index}.{key}": message for (index, key), message in errors.items()}


# ---- devices: the checker alone ------------------------------------------------------------


def test_good_devices_are_cleaned_and_load_as_the_config_file_would():
    tables = [gpio(" porch light ", 17, aliases=["front light"], room="outside"),
              mqtt("kitchen light", state_topic="")]  # fmt: skip
    cleaned, errors = check_devices(tables, ActionsConfig(), broker=True)
    assert not errors
    assert cleaned[0] == {"name": "porch light", "kind": "light", "aliases": ["front light"],
                          "room": "outside",
                          "gpio": {"pin": 17, "pwm": False, "active_high": True}}  # fmt: skip
    assert cleaned[1]["mqtt"] == {"command_topic": "home/lamp/set", "payload_on": "ON",
                                  "payload_off": "OFF"}  # fmt: skip
    config = build_config({"mqtt": {"host": "broker"}, "devices": cleaned})
    assert [d.name for d in config.devices] == ["porch light", "kitchen light"]


def test_duplicate_names_are_refused_as_spoken():
    errors = errors_of([gpio("Porch Light", 17), gpio("porch light's", 18), gpio("fan", 19)])
    assert list(errors) == ["1.name"]
    assert 'already called "Porch Light"' in errors["1.name"]


def test_aliases_must_not_clash_with_another_devices_name_or_alias():
    errors = errors_of([
        gpio("porch light", 17, aliases=["front light"]),
        gpio("desk lamp", 18, aliases=["Porch Light"]),
        gpio("fan", 19, aliases=["front light"]),
    ])  # fmt: skip
    assert 'is the name of "porch light"' in errors["1.aliases"]
    assert 'also one of "porch light"' in errors["2.aliases"]
    assert set(errors) == {"1.aliases", "2.aliases"}
    # An alias equal to its own name is harmless.
    assert not errors_of([gpio("fan", 19, aliases=["Fan"])])


def test_pins_out_of_range_used_twice_or_held_by_the_controls():
    actions = ActionsConfig(
        button=ButtonConfig(pin=5), mute_switch=MuteSwitchConfig(pin=6),
        status_light=Light(red=20, green=21, blue=22),
    )  # fmt: skip
    tables = [gpio("a", 17), gpio("b", 17), gpio("c", 5), gpio("d", 6), gpio("e", 21),
              gpio("f", 28), gpio("g", -1), gpio("h", "17"), gpio("i", True),
              gpio("j", 2**70), gpio("k", 27), gpio("l", 0)]  # fmt: skip
    errors = errors_of(tables, actions)
    assert 'already used by "a"' in errors["1.pin"]
    assert "button" in errors["2.pin"]
    assert "mute switch" in errors["3.pin"]
    assert "status light's green" in errors["4.pin"]
    for index in (5, 6, 7, 8, 9):
        assert "BCM number 0–27" in errors[f"{index}.pin"], index
    assert set(errors) == {f"{i}.pin" for i in range(1, 10)}
    single = ActionsConfig(status_light=Light(pin=13))
    assert "status light" in errors_of([gpio("a", 13)], single)["0.pin"]


def test_mqtt_topics_must_name_one_topic():
    bad = {
        "a/+/set": "wildcards", "home/#": "wildcards", "#": "wildcards",
        "home/lamp\nset": "control characters", "home/\x00lamp": "control characters",
        "/home/lamp": "start or end with /", "home/lamp/": "start or end with /",
        "home//lamp": "empty level", "": "must not be empty", "t" * 300: "too long",
    }  # fmt: skip
    tables = [mqtt(f"lamp {i}", topic) for i, topic in enumerate(bad)]
    errors = errors_of(tables)
    for index, expected in enumerate(bad.values()):
        assert expected in errors[f"{index}.command_topic"], (index, errors)
    state = errors_of([mqtt("lamp", state_topic="home/+/state", brightness_topic="b/#")])
    assert "wildcards" in state["0.state_topic"] and "wildcards" in state["0.brightness_topic"]
    payloads = errors_of([mqtt("lamp", payload_on="ON", payload_off="ON"),
                          mqtt("lamp 2", payload_on="", payload_off="x" * 100)])  # fmt: skip
    assert "must differ" in payloads["0.payload_off"]
    assert "empty" in payloads["1.payload_on"] and "too long" in payloads["1.payload_off"]
    scale = errors_of([mqtt("lamp", brightness_scale=0, brightness_topic="b/set"),
                       mqtt("lamp 2", brightness_scale=255)])  # fmt: skip
    assert "1–65535" in scale["0.brightness_topic"]
    assert "without a brightness topic" in scale["1.brightness_topic"]


def test_garbage_in_every_device_field():
    errors = errors_of([
        {"name": "x" * 5000, "gpio": {"pin": 1}},
        {"name": "   ", "gpio": {"pin": 2}},
        {"name": "!!!", "gpio": {"pin": 3}},
        {"name": "tab\there", "gpio": {"pin": 4}},
        {"name": 42, "gpio": {"pin": 7}},
        {"name": "k", "kind": "toaster", "gpio": {"pin": 8}},
        {"name": "l", "aliases": "front light", "gpio": {"pin": 9}},
        {"name": "m", "aliases": [f"n{i}" for i in range(9)], "gpio": {"pin": 10}},
        {"name": "n", "aliases": ["ok", "y" * 61], "gpio": {"pin": 11}},
        {"name": "o", "room": "r\x1b[31m", "gpio": {"pin": 12}},
        {"name": "p"},
        {"name": "q", "gpio": {"pin": 14}, "mqtt": {"command_topic": "q/set"}},
        {"name": "r", "gpio": {"pin": 15, "pwm": "yes", "colour": 1}},
        {"name": "s", "gpio": {"pin": 16}, "shell": "rm -rf /"},
        "not a table",
        {"name": "t\ud800", "gpio": {"pin": 18}},
    ])  # fmt: skip
    assert "too long (5000 characters; at most 60)" in errors["0.name"]
    assert "empty" in errors["1.name"]
    assert "letter or digit" in errors["2.name"]
    assert "control characters" in errors["3.name"]
    assert "must be text" in errors["4.name"]
    assert "Kind must be one of" in errors["5.kind"]
    assert "list of names" in errors["6.aliases"]
    assert "at most 8" in errors["7.aliases"]
    assert "too long" in errors["8.aliases"]
    assert "control characters" in errors["9.room"]
    assert "exactly one" in errors["10.backend"] and "exactly one" in errors["11.backend"]
    assert "true or false" in errors["12.pwm"] and "colour" in errors["12.pin"]
    assert "shell" in errors["13.name"]
    assert "must be a table" in errors["14.name"]
    assert "lone surrogate" in errors["15.name"]


def test_an_mqtt_device_needs_the_broker():
    errors = errors_of([mqtt("lamp")], broker=False)
    assert "needs the MQTT broker" in errors["0.backend"]


def test_the_form_reads_what_was_typed():
    form = {"device.name": "desk lamp", "device.kind": "lamp", "device.aliases": "reading "
            "light, , lamp two", "device.room": "study", "device.backend": "gpio",
            "device.pin": " 18 ", "device.pwm": "on", "device.active_high": "off"}  # fmt: skip
    table, errors = DeviceForm.from_form(form).table()
    assert not errors
    assert table == {"name": "desk lamp", "kind": "lamp", "aliases": ["reading light",
                     "lamp two"], "room": "study",
                     "gpio": {"pin": 18, "pwm": True, "active_high": False}}  # fmt: skip
    _, errors = DeviceForm.from_form({**form, "device.pin": "seventeen"}).table()
    assert "must be a number" in errors["pin"]
    _, errors = DeviceForm.from_form({**form, "device.pin": ""}).table()
    assert "give the BCM pin" in errors["pin"]
    _, errors = DeviceForm.from_form({**form, "device.backend": "zigbee"}).table()
    assert "GPIO pin or MQTT" in errors["backend"]
    # Editing keeps what the form does not show (an MQTT brightness scale).
    previous = {"name": "x", "mqtt": {"command_topic": "a", "brightness_topic": "b",
                                      "brightness_scale": 254}}  # fmt: skip
    again, _ = DeviceForm.of(previous).table(previous)
    assert again["mqtt"]["brightness_scale"] == 254
    assert DeviceForm.of(again).values["backend"] == "mqtt"


# ---- the broker: ConfigStore.validate -------------------------------------------------------


@pytest.fixture
def ca_file(tmp_path):
    path = tmp_path / "ca.pem"
    path.write_text("-----BEGIN CERTIFICATE-----\n")
    return path


def test_garbage_in_every_broker_field(tmp_path):
    store = ConfigStore(tmp_path / "config.toml")
    bad = {
        "mqtt.host": "bad host!", "mqtt.port": 70000, "mqtt.username": "a\nb",
        "mqtt.password": "p" * 5000, "mqtt.tls": "maybe", "mqtt.ca_file": "../../etc/passwd",
        "mqtt.discovery": "perhaps",
    }  # fmt: skip
    _, errors = store.validate(load_config(None), bad)
    assert set(errors) == set(bad), errors
    assert "not a host name or an IP address" in errors["mqtt.host"]
    assert "0–65535" in errors["mqtt.port"]
    assert "too long" in errors["mqtt.password"] and "p" * 50 not in errors["mqtt.password"]
    assert "absolute path" in errors["mqtt.ca_file"]
    more = {
        "mqtt.host": "x" * 300, "mqtt.port": "abc", "mqtt.username": "u" * 5000,
        "mqtt.password": "line\nbreak", "mqtt.ca_file": "/etc/../etc/shadow",
    }  # fmt: skip
    _, errors = store.validate(load_config(None), more)
    assert set(errors) == set(more)
    assert "must not contain .." in errors["mqtt.ca_file"]
    assert "control characters" in errors["mqtt.password"]
    assert "break" not in errors["mqtt.password"]
    for value, expected in (("/tmp/a\x01b", "control"), ("/etc/ssl/", "folder"),
                            ("-1", "not a host"), ("999.1.1.1", "not a host"),
                            (-1, "0–65535"), (1e308, "number"), (True, "number")):  # fmt: skip
        name = "mqtt.port" if not isinstance(value, str) else (
            "mqtt.ca_file" if value.startswith("/") else "mqtt.host")  # fmt: skip
        _, errors = store.validate(load_config(None), {name: value})
        assert expected in errors.get(name, ""), (value, errors)
    for good in ("broker.local", "192.168.1.10", "fd00::1", "mqtt-1.example.org."):
        typed, errors = store.validate(load_config(None), {"mqtt.host": good})
        assert not errors and typed["mqtt.host"] == good


def test_tls_and_its_ca_file_are_checked_together(tmp_path, ca_file):
    config = build_config({"mqtt": {"host": "broker", "tls": True, "ca_file": str(ca_file)}})
    store = ConfigStore(tmp_path / "config.toml")
    # Turning TLS off with its CA file cleared in the same save is fine ...
    typed, errors = store.validate(config, {"mqtt.tls": False, "mqtt.ca_file": ""})
    assert not errors and typed == {"mqtt.tls": False, "mqtt.ca_file": ""}
    # ... alone it is not, and the field that was changed is named.
    _, errors = store.validate(config, {"mqtt.tls": "off"})
    assert list(errors) == ["mqtt.tls"] and "tls is false" in errors["mqtt.tls"]
    # A CA file that is not there; two wrong fields of the section each get a message.
    _, errors = store.validate(config, {"mqtt.ca_file": "/nonexistent/ca.pem",
                                        "mqtt.username": "", "mqtt.password": "pw"})  # fmt: skip
    assert "does not exist" in errors["mqtt.ca_file"]
    assert "without mqtt.username" in errors["mqtt.password"]


def test_the_broker_cannot_be_turned_off_under_mqtt_devices(tmp_path):
    config = build_config({"mqtt": {"host": "broker"}, "devices": [mqtt("lamp")]})
    store = ConfigStore(tmp_path / "config.toml")
    _, errors = store.validate(config, {"mqtt.host": ""})
    assert "lamp use MQTT" in errors["mqtt.host"]
    typed, errors = store.validate(config, {"mqtt.host": ""}, devices=[gpio("lamp", 4)])
    assert not errors and typed["devices"][0]["gpio"]["pin"] == 4
    # Adding the first MQTT device and the broker in one save works.
    typed, errors = store.validate(load_config(None), {"mqtt.host": "broker"}, [mqtt("lamp")])
    assert not errors


def test_the_password_is_write_only_and_an_empty_user_name_drops_it(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(f'[mqtt]\nhost = "broker"\nusername = "u"\npassword = "{PASSWORD}"\n')
    store = ConfigStore(path)
    config = load_config(path)
    typed, errors = store.validate(config, {"mqtt.password": "", "mqtt.port": 1884})
    assert not errors and "mqtt.password" not in typed  # empty = keep the stored one
    saved = store.save(config, typed, store.version())
    assert saved.config.mqtt.password == PASSWORD and saved.config.mqtt.port == 1884
    typed, errors = store.validate(saved.config, {"mqtt.username": ""})
    assert not errors
    anonymous = store.save(saved.config, typed, saved.version)
    assert anonymous.config.mqtt.password == "" and "mqtt.password" in anonymous.changed
    assert PASSWORD not in path.read_text() and PASSWORD in path.with_name(
        "config.toml.bak").read_text()  # fmt: skip


def test_strings_with_control_characters_round_trip_through_the_file(tmp_path):
    path = tmp_path / "config.toml"
    store = ConfigStore(path)
    config = load_config(None)
    prompt = 'Line one\r\nline two\ttab \x01\x7f "quoted" \\ back'
    typed, errors = store.validate(config, {"llm.system_prompt": prompt})
    assert not errors
    store.save(config, typed, store.version())
    assert load_config(path).llm.system_prompt == prompt
    assert tomllib.loads(to_toml({"a": {"b": "\x00\x1f"}}))["a"]["b"] == "\x00\x1f"


# ---- status: memory ------------------------------------------------------------------------


def test_process_memory_reads_the_kernels_figures(tmp_path):
    status = tmp_path / "status"
    status.write_text("Name:\tpython\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\n"
                      "RssAnon:\t   61440 kB\nRssFile:\t   40960 kB\n")  # fmt: skip
    assert process_memory(status) == {"rss_mb": 100, "file_mb": 40, "anon_mb": 60,
                                      "peak_mb": 200}  # fmt: skip
    assert process_memory(tmp_path / "missing") is None
    here = process_memory()
    assert here is not None and 10 < here["rss_mb"] <= here["peak_mb"]
    assert abs(here["file_mb"] + here["anon_mb"] - here["rss_mb"]) <= 64  # + shmem


# ---- over HTTP: the page and the API -------------------------------------------------------


@pytest.fixture
def web(tmp_path, monkeypatch, ca_file):
    monkeypatch.setenv("APPLIANCE_DATA_DIR", str(tmp_path / "data"))
    text = (f'[mqtt]\nhost = "127.0.0.1"\nusername = "u"\npassword = "{PASSWORD}"\n'
            '[actions.button]\npin = 5\n'
            '[[devices]]\nname = "porch light"\naliases = ["front light"]\n'
            'gpio = { pin = 17, pwm = true }\n')  # fmt: skip
    with running_web(tmp_path, config_text=text) as running:
        yield running


def _page_form(page: str) -> dict[str, str]:
    csrf = re.search(r'id="device-form".*?name="csrf" value="([^"]+)"', page, re.S).group(1)
    version = re.search(r'name="version" value="([^"]+)"', page).group(1)
    return {"csrf": csrf, "version": version}


def test_the_password_never_leaves_the_server(web):
    client = web.session()
    csrf = {"X-CSRF-Token": web.csrf(client)}
    got = client.get(web.url + "/api/config")
    assert PASSWORD not in got.text
    assert "password" not in got.json()["settings"]["mqtt"]
    secrets = {f["name"]: f for f in got.json()["editable"] if f["kind"] == "secret"}
    assert set(secrets) == {"mqtt.password", "satellite.encryption_key", "llm.remote_api_key"}
    assert secrets["mqtt.password"]["stored"] is True
    assert secrets["satellite.encryption_key"]["stored"] is False
    page = client.get(web.url + "/settings").text
    assert PASSWORD not in page and 'type="password" id="mqtt.password"' in page
    # A rejected save does not echo a newly typed password back into the page either.
    form = {**_page_form(page), "mqtt.password": "new-Secret-99", "mqtt.port": "99999"}
    refused = client.post(web.url + "/settings", data=form)
    assert refused.status_code == 422 and "new-Secret-99" not in refused.text
    assert 'id="error-mqtt.port"' in refused.text
    # Saving the other broker fields with the password left empty keeps it.
    version = client.get(web.url + "/api/config").json()["version"]
    saved = client.put(web.url + "/api/config", headers=csrf, json={"version": version,
                       "settings": {"mqtt.password": "", "mqtt.discovery": False}})  # fmt: skip
    assert saved.status_code == 200, saved.text
    assert any("discovery" in line and "restart" in line for line in saved.json()["restart"])
    assert PASSWORD not in saved.text
    on_disk = tomllib.loads(web.config_path.read_text())["mqtt"]
    assert on_disk["password"] == PASSWORD and on_disk["discovery"] is False
    logs = client.get(web.url + "/api/logs").text
    assert PASSWORD not in logs and "new-Secret-99" not in logs


def test_devices_added_changed_and_removed_on_the_page(web):
    client = web.session()
    page = client.get(web.url + "/settings").text
    assert 'data-device="porch light"' in page and "GPIO 17, dimmable" in page
    add = {**_page_form(page), "action": "add", "original": "", "device.name": "kitchen light",
           "device.kind": "light", "device.aliases": "", "device.room": "kitchen",
           "device.backend": "mqtt", "device.command_topic": "home/kitchen/light/set",
           "device.state_topic": "home/kitchen/light/state", "device.payload_on": "ON",
           "device.payload_off": "OFF"}  # fmt: skip
    response = client.post(web.url + "/settings/devices", data=add)
    assert response.status_code == 200 and 'id="saved"' in response.text
    assert "Devices: saved; they take effect when the appliance restarts" in response.text
    devices = load_config(web.config_path).devices
    assert [d.name for d in devices] == ["porch light", "kitchen light"]
    assert devices[1].mqtt["command_topic"] == "home/kitchen/light/set"
    assert web.config_path.with_name("config.toml.bak").exists()

    # Wrong values: each message by its field, the file untouched, the form kept as typed.
    before = web.config_path.read_bytes()
    bad = {**add, **_page_form(response.text), "device.name": "Front Light",
           "device.backend": "gpio", "device.pin": "5",
           "device.aliases": "kitchen light"}  # fmt: skip
    refused = client.post(web.url + "/settings/devices", data=bad)
    assert refused.status_code == 422 and "Nothing was saved" in refused.text
    assert 'id="device-error-pin"' in refused.text and "button" in refused.text
    assert 'id="device-error-aliases"' in refused.text
    assert 'value="Front Light"' in refused.text
    wildcard = {**add, **_page_form(response.text), "device.name": "hall light",
                "device.command_topic": "home/+/set"}  # fmt: skip
    refused = client.post(web.url + "/settings/devices", data=wildcard)
    assert refused.status_code == 422 and "wildcards" in refused.text
    assert web.config_path.read_bytes() == before

    # Edit: the form comes filled in; the pin moves and the device is renamed.
    page = client.get(web.url + "/settings", params={"edit": "porch light"}).text
    assert 'value="porch light"' in page and 'Change "porch light"' in page
    edit = {**_page_form(page), "action": "edit", "original": "porch light",
            "device.name": "front door light", "device.kind": "light",
            "device.aliases": "porch light", "device.room": "", "device.backend": "gpio",
            "device.pin": "18", "device.pwm": "off", "device.active_high": "on"}  # fmt: skip
    response = client.post(web.url + "/settings/devices", data=edit)
    assert response.status_code == 200, response.text
    first = load_config(web.config_path).devices[0]
    assert (first.name, first.aliases, first.gpio.pin, first.gpio.pwm) == (
        "front door light", ("porch light",), 18, False)  # fmt: skip

    # Remove, and a stale form (another tab saved since) is refused.
    stale = _page_form(page)
    remove = {**_page_form(response.text), "action": "remove", "original": "kitchen light"}
    response = client.post(web.url + "/settings/devices", data=remove)
    assert response.status_code == 200
    assert [d.name for d in load_config(web.config_path).devices] == ["front door light"]
    again = client.post(web.url + "/settings/devices", data={**remove, **stale,
                        "original": "front door light"})  # fmt: skip
    assert again.status_code == 409 and "changed elsewhere" in again.text
    gone = client.post(web.url + "/settings/devices", data={**remove,
                       **_page_form(response.text)})  # fmt: skip
    assert gone.status_code == 409 and "no device called" in gone.text


def test_devices_through_the_api(web):
    client = web.session()
    csrf = {"X-CSRF-Token": web.csrf(client)}
    got = client.get(web.url + "/api/config").json()
    assert got["devices"]["reserved_pins"] == {"5": "the button ([actions.button])"}
    assert got["settings"]["devices"][0]["name"] == "porch light"
    devices = [
        {"name": "porch light", "gpio": {"pin": 17, "pwm": True}},
        {"name": "fan", "kind": "fan", "gpio": {"pin": 17}},
        {"name": "lamp", "mqtt": {"command_topic": "home/#"}},
        {"name": "y" * 5000, "gpio": {"pin": 99}},
    ]
    response = client.put(web.url + "/api/config", headers=csrf,
                          json={"version": got["version"], "devices": devices})  # fmt: skip
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert set(detail) == {"devices[1].pin", "devices[2].command_topic", "devices[3].name",
                           "devices[3].pin"}, detail  # fmt: skip
    schema = client.put(
        web.url + "/api/config",
        headers=csrf,
        json={"version": got["version"], "devices": [{"name": "x", "gpio": {"pin": 4}, "ip": 1}]},
    )
    assert schema.status_code == 422  # unknown keys: refused by the schema
    devices[1:] = [{"name": "fan", "kind": "fan", "aliases": ["ceiling fan"],
                    "mqtt": {"command_topic": "home/fan/set", "state_topic": ""}}]  # fmt: skip
    response = client.put(
        web.url + "/api/config",
        headers=csrf,
        json={"version": got["version"], "devices": devices, "settings": {"mqtt.port": 1883}},
    )
    assert response.status_code == 200, response.text
    assert any(line.startswith("Devices: saved") for line in response.json()["restart"])
    saved = tomllib.loads(web.config_path.read_text())
    assert saved["devices"][1] == {"name": "fan", "kind": "fan", "aliases": ["ceiling fan"],
                                   "mqtt": {"command_topic": "home/fan/set", "payload_on": "ON",
                                            "payload_off": "OFF"}}  # fmt: skip
    assert saved["mqtt"]["password"] == PASSWORD  # not sent: kept
    again = client.get(web.url + "/api/config").json()["settings"]
    assert [d["name"] for d in again["devices"]] == ["porch light", "fan"]


def test_the_status_page_shows_measured_ram_and_the_process(web):
    client = web.session()
    status = client.get(web.url + "/api/status").json()
    memory = status["process_memory"]
    assert memory["rss_mb"] > 10 and memory["peak_mb"] >= memory["rss_mb"]
    rows = {row["role"]: row for row in status["models"]}
    # The built-in catalog's figures were measured by `appliance models measure`.
    assert rows["llm"]["ram_source"] == "measured" and rows["llm"]["ram_context"] == 2048
    page = client.get(web.url + "/").text
    assert f"{rows['llm']['ram_mb']} MB, measured (at 2048 tokens)" in page
    assert re.search(r"This process now: <strong>\d+ MB</strong> resident", page)
    assert json.dumps(status).count("ram_source") == 4

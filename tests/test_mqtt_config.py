"""`[mqtt]` settings: defaults, derived names, and clear errors for bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.config import load_config
from appliance.errors import ConfigError
from appliance.sections.mqtt import MqttConfig


def test_mqtt_is_off_by_default_and_names_derive_from_the_device_name():
    assert not load_config(None).mqtt.enabled
    config = MqttConfig(host="broker.lan", device_name="Living Room #2", tls=True)
    assert config.node_id == "living_room_2"
    assert config.base == "appliance/living_room_2"
    assert config.identifier == "appliance-living_room_2"
    assert config.broker_port == 8883
    assert "hunter2" not in repr(MqttConfig(host="h", username="u", password="hunter2"))


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("port = 70000", "mqtt.port must be 0 (default) or 1–65535"),
        ('port = "1883"', "mqtt.port must be int"),
        ('password = "x"', "mqtt.password is set without mqtt.username"),
        ('username = "u"\npassword = "x"\npassword_file = "/etc/hostname"', "keep one"),
        ('username = "u"\npassword_file = "/nonexistent/secret"', "does not exist"),
        ('ca_file = "/etc/hostname"', "mqtt.ca_file is set but mqtt.tls is false"),
        ('tls = true\nkeyfile = "/etc/hostname"', "keyfile is set without mqtt.certfile"),
        ('base_topic = "home/+/x"', "wildcards"),
        ('base_topic = "/home"', "must not start or end with /"),
        ('discovery_prefix = ""', "must not be empty"),
        ("queue_max = 0", "queue_max must be 1–1000000"),
        ("reconnect_min_seconds = 10.0\nreconnect_max_seconds = 1.0", "reconnect_min_seconds"),
        ('colour = "blue"', "unknown setting(s): colour"),
    ],
)
def test_bad_mqtt_settings_name_the_key(tmp_path: Path, table: str, message: str):
    path = tmp_path / "config.toml"
    path.write_text(f'[mqtt]\nhost = "127.0.0.1"\n{table}\n')
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert message in str(err.value) and str(path) in str(err.value)


def test_the_password_file_first_line_is_the_password(tmp_path: Path):
    secret = tmp_path / "secret"
    secret.write_text("s3cret\nignored\n")
    config = MqttConfig(host="h", username="u", password_file=str(secret))
    assert config.read_password() == "s3cret"
    secret.write_text("")
    with pytest.raises(ConfigError, match="is empty"):
        config.read_password()


def test_doctor_says_whether_the_broker_takes_these_credentials(tmp_path: Path):
    import asyncio

    from appliance.mqtt.check import probe
    from tests.mqtt_broker import Mosquitto, add_user, free_port

    passwords = add_user(tmp_path / "passwd", "jarvis", "right horse")
    broker = Mosquitto(tmp_path / "broker", password_file=passwords).start()
    try:
        good = MqttConfig(host="127.0.0.1", port=broker.port, username="jarvis",
                          password="right horse", device_name="hall")  # fmt: skip
        status, detail, _ = asyncio.run(probe(good))
        assert status == "ok" and "as jarvis" in detail and "appliance/hall" in detail
        bad = MqttConfig(host="127.0.0.1", port=broker.port, username="jarvis", password="no")
        status, detail, fix = asyncio.run(probe(bad))
        assert status == "fail" and "refused the credentials" in detail
        assert "mqtt.username" in fix
    finally:
        broker.stop()
    status, detail, fix = asyncio.run(probe(MqttConfig(host="127.0.0.1", port=free_port())))
    assert status == "fail" and "cannot reach broker" in detail and "mqtt.host" in fix

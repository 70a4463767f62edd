"""First boot's settings file (appliance.txt on the FAT partition) and its offline steps,
on a temporary root tree. The live steps (growing /data, SSH keys, systemctl) run in the
QEMU boot test (test_image.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from appliance.device import firstboot
from appliance.device.settings_file import WifiSettings, parse_settings, redacted


@pytest.fixture
def tree(tmp_path: Path) -> firstboot.Paths:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/machine-id").write_text("3f9a0c1d2e4b4c5d8e6f7a8b9c0d1e2f\n")
    (root / "etc/hosts").write_text("127.0.0.1\tlocalhost\n127.0.1.1\tappliance\n")
    (root / "etc/hostname").write_text("appliance\n")
    zone = root / "usr/share/zoneinfo/Europe"
    zone.mkdir(parents=True)
    (zone / "London").write_bytes(b"TZif2")
    (zone.parent / "iso3166.tab").write_text("# ISO 3166 alpha-2\tname\nDE\tGermany\n"
                                             "GB\tBritain (UK)\nUS\tUnited States\n")  # fmt: skip
    boot = tmp_path / "boot"
    boot.mkdir()
    return firstboot.Paths(root=root, boot=boot, data=tmp_path / "data" / "appliance")


def test_wpa_key_is_the_ieee_802_11i_test_vector():
    wifi = WifiSettings(ssid="IEEE", password="password", country="GB")
    assert wifi.psk() == "f42c6fc52df0ebef9ebb4b90b38a5f902e83fe1b135a70e23aed762e9710a12e"
    conf = wifi.wpa_supplicant_conf()
    assert "ssid=49454545" in conf and "country=GB" in conf and "password" not in conf


def test_a_good_file():
    settings = parse_settings(
        '\ufeff# comment\nwifi_ssid = "Caf\u00e9 = net"\nwifi_password = hunter2hunter2\n'
        "WIFI_COUNTRY = de\nssh = yes\nssh_authorized_key = ssh-ed25519 AAAAC3Nz me@laptop\n"
    )
    assert settings.problems == ()
    assert settings.wifi == WifiSettings("Caf\u00e9 = net", "hunter2hunter2", "DE")
    assert settings.ssh and settings.ssh_authorized_key.startswith("ssh-ed25519")


def test_the_64_hex_digits_of_the_key_itself_are_taken_as_the_key():
    key = "F42C6FC52DF0EBEF9EBB4B90B38A5F902E83FE1B135A70E23AED762E9710A12E"
    settings = parse_settings(f"wifi_ssid = IEEE\nwifi_password = {key}\nwifi_country = GB\n")
    assert settings.problems == () and settings.wifi is not None
    assert f"psk={key.lower()}" in settings.wifi.wpa_supplicant_conf()


def test_open_network_needs_no_password():
    settings = parse_settings("wifi_ssid = Guest\nwifi_country = US\n")
    assert settings.wifi is not None and "key_mgmt=NONE" in settings.wifi.wpa_supplicant_conf()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("wifi_ssid = x\nwifi_password = short\nwifi_country = GB\n", "8–63 ASCII"),
        ("wifi_ssid = x\nwifi_password = long enough\nwifi_country = Narnia\n", "two-letter"),
        (
            "wifi_ssid = x\nwifi_password = long enough\nwifi_country = ZZ\n",
            "ZZ is not a country code",
        ),
        ("wifi_ssid = x\nwifi_password = " + "k" * 64 + "\nwifi_country = GB\n", "not 64"),
        ("wifi_password = long enough\nwifi_country = GB\n", "wifi_ssid must be 1–32 bytes"),
        ("wifi_ssid = " + "x" * 33 + "\nwifi_country = GB\n", "wifi_ssid must be 1–32"),
        ("just some words\n", "line 1: expected `key = value`"),
        ("volume = 11\n", "line 1: unknown key 'volume'"),
        ("ssh = maybe\n", "ssh must be yes or no"),
        ("ssh = yes\n", "needs ssh_authorized_key"),
        ("timezone = Mars/Olympus\n", "unknown time zone"),
        ("timezone = ../../etc/passwd\n", "unknown time zone"),
        ("hostname = -bad-\n", "hostname '-bad-'"),
        ("wifi_ssid = a\nwifi_ssid = b\nwifi_country = GB\n", "line 2: wifi_ssid given twice"),
    ],
)
def test_mistakes_are_named_with_their_line(text, expected, tree):
    settings = parse_settings(text, zoneinfo=tree.root / "usr/share/zoneinfo")
    assert any(expected in problem for problem in settings.problems), settings.problems


def test_bad_wifi_is_not_written_but_the_rest_is(tree):
    (tree.boot / "appliance.txt").write_text(
        "wifi_ssid = Home\nwifi_password = long enough\nwifi_country = XYZ\n"
        "timezone = Europe/London\n"
    )
    firstboot.run(tree, live=False)
    assert not (tree.root / "etc/wpa_supplicant/wpa_supplicant-wlan0.conf").exists()
    assert os.readlink(tree.root / "etc/localtime") == "/usr/share/zoneinfo/Europe/London"
    status = json.loads((tree.data / "firstboot.json").read_text())
    assert status["ok"] is False
    assert status["settings_file"]["applied"] == ["time zone Europe/London"]
    assert any("wifi_country" in p for p in status["settings_file"]["problems"])


def test_good_file_sets_up_wifi_and_removes_the_passphrase(tree):
    (tree.boot / "appliance.txt").write_text(
        "wifi_ssid = Home\nwifi_password = correct horse\nwifi_country = gb\n"
    )
    steps = firstboot.run(tree, live=False)
    assert [s.name for s in steps] == ["hostname", "pairing", "settings"]
    assert all(s.ok for s in steps)
    conf = tree.root / "etc/wpa_supplicant/wpa_supplicant-wlan0.conf"
    assert conf.stat().st_mode & 0o777 == 0o600
    assert "country=GB" in conf.read_text() and "correct horse" not in conf.read_text()
    wants = tree.root / "etc/systemd/system/multi-user.target.wants/wpa_supplicant@wlan0.service"
    assert os.readlink(wants) == "/lib/systemd/system/wpa_supplicant@.service"
    assert not (tree.boot / "appliance.txt").exists()
    kept = (tree.boot / "appliance-imported.txt").read_text()
    assert "wifi_ssid = Home" in kept and "correct horse" not in kept


def test_hostname_from_the_machine_id(tree):
    firstboot.run(tree, live=False)
    assert (tree.root / "etc/hostname").read_text() == "appliance-3f9a\n"
    hosts = (tree.root / "etc/hosts").read_text().splitlines()
    assert "127.0.1.1\tappliance-3f9a" in hosts and "127.0.1.1\tappliance" not in hosts
    status = json.loads((tree.data / "firstboot.json").read_text())
    assert status["settings_file"]["found"] is False
    assert "no appliance.txt" in status["steps"][-1]["message"]


def test_no_pairing_code_comes_from_the_image(tree):
    """A code baked into the image would be shared by every card and told to no one: the
    first boot removes it, so the service makes (speaks and logs) this device's own."""
    baked = firstboot.pairing_state(tree.data)
    baked.parent.mkdir(parents=True)
    baked.write_text('{"code": {"salt": "00", "hash": "00", "created": 0}}')
    step = {s.name: s for s in firstboot.run(tree, live=False)}["pairing"]
    assert step.ok and "removed" in step.message and "journalctl -u appliance" in step.message
    assert not baked.exists()
    again = {s.name: s for s in firstboot.run(tree, live=False)}["pairing"]
    assert again.ok and again.message == firstboot.WHERE_THE_CODE_IS


def test_unset_machine_id_and_unreadable_file_are_recorded_and_boot_goes_on(tree):
    (tree.root / "etc/machine-id").write_text("")
    (tree.boot / "appliance.txt").write_bytes(b"\xff\xfe\x00garbage\x9c")
    steps = firstboot.run(tree, live=False)
    by_name = {s.name: s for s in steps}
    assert not by_name["hostname"].ok and "machine-id" in by_name["hostname"].message
    assert not by_name["settings"].ok and "plain UTF-8" in by_name["settings"].message
    assert (tree.data / "firstboot.json").exists()


def test_settings_only_entry_point(tree):
    (tree.boot / "appliance.txt").write_text("timezone = Europe/London\n")
    rc = firstboot.main(
        ["--root", str(tree.root), "--boot", str(tree.boot), "--data", str(tree.data),
         "--offline", "--settings-only"]
    )  # fmt: skip
    assert rc == 0
    status = json.loads((tree.data / "settings.json").read_text())
    assert status["ok"] and status["settings_file"]["applied"] == ["time zone Europe/London"]


def test_redacted_keeps_everything_but_the_passphrase():
    text = "wifi_ssid = a\n  WIFI_PASSWORD = secret123\nwifi_country = GB"
    out = redacted(text)
    assert "secret123" not in out and "wifi_ssid = a" in out and "removed" in out

"""The first-boot settings file on the FAT boot partition (`appliance.txt`): Wi-Fi and a few
device settings a user can type on any computer after flashing the card.

```
wifi_ssid = My network
wifi_password = correct horse battery
wifi_country = GB
timezone = Europe/London
ssh = yes
ssh_authorized_key = ssh-ed25519 AAAA... me@laptop
```

A bad line is recorded with its number and why, and the rest is still used: the first boot
never stops on this file.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

KEYS = (
    "wifi_ssid",
    "wifi_password",
    "wifi_country",
    "hostname",
    "timezone",
    "ssh",
    "ssh_authorized_key",
)
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_RAW_KEY = re.compile(r"^[0-9A-Fa-f]{64}$")
_HOSTNAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_TIMEZONE = re.compile(r"^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*$")
_KEY_TYPES = ("ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
              "ecdsa-sha2-nistp521", "sk-ssh-ed25519@openssh.com")  # fmt: skip


@dataclass(frozen=True)
class WifiSettings:
    ssid: str
    """The network name, as the router shows it (1–32 bytes)."""
    password: str
    """WPA2/WPA3 passphrase (8–63 characters) or the key itself (64 hex digits), or ""
    for an open network."""
    country: str
    """ISO 3166 country code: which radio channels are allowed."""

    def psk(self) -> str:
        """The 256-bit WPA key derived from the passphrase, so the passphrase itself is
        never stored on the card (64 hex digits are that key already)."""
        if _RAW_KEY.match(self.password):
            return self.password.lower()
        raw = hashlib.pbkdf2_hmac("sha1", self.password.encode(), self.ssid.encode(), 4096, 32)
        return raw.hex()

    def wpa_supplicant_conf(self) -> str:
        network = [f"    ssid={self.ssid.encode().hex()}"]  # hex: no quoting problems
        if self.password:
            network.append(f"    psk={self.psk()}")
        else:
            network.append("    key_mgmt=NONE")
        return (
            "# Written by the appliance's first boot from appliance.txt.\n"
            "ctrl_interface=DIR=/run/wpa_supplicant GROUP=netdev\n"
            "update_config=0\n"
            f"country={self.country}\n\n"
            "network={\n" + "\n".join(network) + "\n}\n"
        )


@dataclass(frozen=True)
class DeviceSettings:
    wifi: WifiSettings | None = None
    """Wi-Fi to join, or None (wired only, or nothing usable in the file)."""
    hostname: str = ""
    """A chosen host name, or "" for the generated `appliance-XXXX`."""
    timezone: str = ""
    """An IANA zone such as Europe/London, or "" to keep UTC."""
    ssh: bool = False
    """Start the SSH server (key login only)."""
    ssh_authorized_key: str = ""
    """A public key allowed to log in as root over SSH."""
    problems: tuple[str, ...] = field(default_factory=tuple)
    """What was wrong with the file, one sentence per problem, with the line number."""


def _countries(zoneinfo: Path) -> frozenset[str]:
    """The ISO 3166 codes tzdata lists (`iso3166.tab`); empty when it is missing."""
    try:
        lines = (zoneinfo / "iso3166.tab").read_text(encoding="utf-8").splitlines()
    except OSError:
        return frozenset()
    return frozenset(line.split("\t", 1)[0] for line in lines if line and line[0] != "#")


def parse_settings(text: str, *, zoneinfo: Path = Path("/usr/share/zoneinfo")) -> DeviceSettings:
    values: dict[str, tuple[int, str]] = {}
    problems: list[str] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip().lstrip("\ufeff")
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            problems.append(f"line {number}: expected `key = value`, got {line[:40]!r}")
            continue
        key, _, value = line.partition("=")
        key = key.strip().lower()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        if key not in KEYS:
            problems.append(f"line {number}: unknown key {key!r} (known: {', '.join(KEYS)})")
            continue
        if key in values:
            problems.append(f"line {number}: {key} given twice; the first one is used")
            continue
        values[key] = (number, value)

    def take(key: str) -> str:
        return values.get(key, (0, ""))[1]

    def where(key: str) -> str:
        return f"line {values[key][0]}" if key in values else "file"

    wifi: WifiSettings | None = None
    ssid, password, country = take("wifi_ssid"), take("wifi_password"), take("wifi_country")
    if ssid or password or country:
        country = country.upper()
        bad = []
        if not 1 <= len(ssid.encode()) <= 32:
            bad.append(f"{where('wifi_ssid')}: wifi_ssid must be 1–32 bytes")
        if password and not (8 <= len(password) <= 63 and password.isascii()) and \
                not _RAW_KEY.match(password):  # fmt: skip
            bad.append(
                f"{where('wifi_password')}: wifi_password must be 8–63 ASCII characters, "
                f"not {len(password)} (or the 64 hex digits of the key itself, or left out "
                "for an open network)"
            )
        known = _countries(zoneinfo)
        if not _COUNTRY.match(country):
            bad.append(
                f"{where('wifi_country')}: wifi_country must be a two-letter country code "
                "such as GB, US or DE (it decides which radio channels are legal)"
            )
        elif known and country not in known:
            bad.append(
                f"{where('wifi_country')}: {country} is not a country code; use your "
                "country's two letters, such as GB, US or DE (ISO 3166)"
            )
        if bad:
            bad.append("Wi-Fi not set up: put a corrected appliance.txt on the card and reboot")
            problems.extend(bad)
        else:
            wifi = WifiSettings(ssid, password, country)

    hostname = take("hostname").lower()
    if hostname and not _HOSTNAME.match(hostname):
        problems.append(
            f"{where('hostname')}: hostname {hostname!r} must be letters, digits and '-' "
            "(up to 63); using the generated name"
        )
        hostname = ""
    timezone = take("timezone")
    if timezone and not (_TIMEZONE.match(timezone) and (zoneinfo / timezone).is_file()):
        problems.append(f"{where('timezone')}: unknown time zone {timezone!r}; keeping UTC")
        timezone = ""
    ssh_text = take("ssh").lower()
    ssh = ssh_text in ("yes", "true", "on", "1")
    if ssh_text and not ssh and ssh_text not in ("no", "false", "off", "0"):
        problems.append(f"{where('ssh')}: ssh must be yes or no, got {ssh_text!r}; SSH stays off")
    key = take("ssh_authorized_key")
    if key and key.split(" ", 1)[0] not in _KEY_TYPES:
        problems.append(f"{where('ssh_authorized_key')}: not an OpenSSH public key line")
        key = ""
    if ssh and not key:
        problems.append("ssh = yes needs ssh_authorized_key (password login is off); SSH stays off")
        ssh = False
    return DeviceSettings(wifi, hostname, timezone, ssh, key, tuple(problems))


def redacted(text: str) -> str:
    """The file with its passphrase removed, kept on the boot partition as a record."""
    out = []
    for line in text.splitlines():
        if line.strip().lower().startswith("wifi_password"):
            line = "# wifi_password = (imported at first boot and removed from this file)"
        out.append(line)
    return "\n".join(out) + "\n"

"""Pairing: the code spoken at first start, browser sessions, API tokens, login limits.

Only hashes are stored (`data_dir()/web/auth.json`, mode 0600): the pairing code with
scrypt (it is short, so it is hashed slowly), sessions and tokens with SHA-256 (they are
256-bit random, so a fast hash is enough). Every check re-reads the file, so a
`appliance pairing reset` run from a shell takes effect in the running service at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import secrets
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CODE_DIGITS = 8
CODE_MINUTES = 10.0
"""How long a pairing code lets a browser in after it is made (spoken, logged, printed)."""
SESSION_DAYS = 30
_SEEN_EVERY = 3600.0
"""A session's last-seen time is written at most hourly (the SD card wears)."""
TOKEN_PREFIX = "apl_"


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _scrypt(code: str, salt: bytes) -> str:
    return hashlib.scrypt(code.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32).hex()


def normalise_code(code: str) -> str:
    """People type "1234 5678" or "1234-5678": keep the digits."""
    return "".join(ch for ch in code if ch.isdigit())


def csrf_token(session: str) -> str:
    """The form token for a session: derived from the (HttpOnly) session cookie, so a
    page on another site can neither read nor guess it."""
    return hmac.new(session.encode(), b"csrf", hashlib.sha256).hexdigest()[:40]


@dataclass(frozen=True)
class ApiToken:
    id: str
    """A short public handle (to revoke it); not the secret."""
    name: str
    created: float


@dataclass(frozen=True)
class PairingStatus:
    paired: bool
    """A pairing code exists (the appliance has started once)."""
    code_created: float | None
    sessions: int
    tokens: int
    code_expires: float | None = None
    """When the code stops letting browsers in (a time.time())."""


class PairingStore:
    def __init__(
        self,
        directory: Path,
        *,
        clock: Callable[[], float] = time.time,
        code_minutes: float = CODE_MINUTES,
    ) -> None:
        self.directory = Path(directory)
        self.path = self.directory / "auth.json"
        self._clock = clock
        self.code_minutes = code_minutes

    # ---- storage -----------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        """Read-modify-write under an exclusive lock (the CLI and the service may both
        write); the data is saved when the block ends without an exception."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.directory / ".auth.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            data = self._read()
            yield data
            self._write(data)

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text("utf-8"))
        except (OSError, ValueError):
            return {"sessions": {}, "tokens": {}}
        if not isinstance(data, dict):
            return {"sessions": {}, "tokens": {}}
        data.setdefault("sessions", {})
        data.setdefault("tokens", {})
        return data

    def _write(self, data: dict[str, Any]) -> None:
        fd, tmp = tempfile.mkstemp(prefix=".auth.", dir=self.directory)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    # ---- the pairing code -----------------------------------------------------------------

    def ensure_code(self) -> str | None:
        """At start: a new code to speak and log, on the first start, or when the last
        code has expired and nobody can get in (no live session, no API token). None
        otherwise."""
        with self._locked() as data:
            code = data.get("code")
            if code is None:
                return self._new_code(data)
            now = self._clock()
            nobody = not data["tokens"] and all(
                self._expired(s, now) for s in data["sessions"].values()
            )
            if nobody and self._code_expired(code, now):
                return self._new_code(data)
            return None

    def new_code(self) -> str:
        """A new code (for `code_minutes`); paired browsers and tokens stay."""
        with self._locked() as data:
            return self._new_code(data)

    def reset(self) -> str:
        """A new code; every session and API token stops working."""
        with self._locked() as data:
            data["sessions"] = {}
            data["tokens"] = {}
            return self._new_code(data)

    def _new_code(self, data: dict[str, Any]) -> str:
        code = "".join(secrets.choice("0123456789") for _ in range(CODE_DIGITS))
        salt = secrets.token_bytes(16)
        data["code"] = {"salt": salt.hex(), "hash": _scrypt(code, salt), "created": self._clock()}
        return code

    def _code_expired(self, code: dict[str, Any], now: float) -> bool:
        return now - float(code.get("created", 0.0)) > self.code_minutes * 60

    def check_code(self, code: str) -> bool:
        return self.try_code(code) == "ok"

    def try_code(self, code: str) -> str:
        """ "ok", "wrong", or "expired" (said whatever was typed: an expired code's hash
        is not compared, so a guess learns nothing)."""
        stored = self._read().get("code")
        if stored and self._code_expired(stored, self._clock()):
            return "expired"
        digits = normalise_code(code)
        if not stored or len(digits) != CODE_DIGITS:
            return "wrong"
        candidate = _scrypt(digits, bytes.fromhex(stored["salt"]))
        return "ok" if hmac.compare_digest(candidate, stored["hash"]) else "wrong"

    def status(self) -> PairingStatus:
        data = self._read()
        code = data.get("code")
        now = self._clock()
        live = [s for s in data["sessions"].values() if not self._expired(s, now)]
        return PairingStatus(
            paired=code is not None,
            code_created=code["created"] if code else None,
            sessions=len(live),
            tokens=len(data["tokens"]),
            code_expires=code["created"] + self.code_minutes * 60 if code else None,
        )

    # ---- browser sessions ----------------------------------------------------------------

    def new_session(self) -> str:
        token = secrets.token_urlsafe(32)
        now = self._clock()
        with self._locked() as data:
            sessions = data["sessions"]
            for key in [k for k, s in sessions.items() if self._expired(s, now)]:
                del sessions[key]
            sessions[_sha256(token)] = {"created": now, "seen": now}
        return token

    def session_valid(self, token: str | None) -> bool:
        if not token:
            return False
        key = _sha256(token)
        session = self._read()["sessions"].get(key)
        now = self._clock()
        if session is None or self._expired(session, now):
            return False
        if now - session["seen"] > _SEEN_EVERY:
            with self._locked() as data:
                if key in data["sessions"]:
                    data["sessions"][key]["seen"] = now
        return True

    def end_session(self, token: str | None) -> None:
        if token:
            with self._locked() as data:
                data["sessions"].pop(_sha256(token), None)

    @staticmethod
    def _expired(session: dict[str, float], now: float) -> bool:
        return now - session.get("seen", 0.0) > SESSION_DAYS * 86400

    # ---- API tokens -----------------------------------------------------------------------

    def new_token(self, name: str) -> tuple[str, ApiToken]:
        """A bearer token for the API; the secret is returned once and only its hash kept."""
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token = ApiToken(id=secrets.token_hex(4), name=name, created=self._clock())
        with self._locked() as data:
            data["tokens"][_sha256(secret)] = {
                "id": token.id, "name": token.name, "created": token.created,
            }  # fmt: skip
        return secret, token

    def tokens(self) -> list[ApiToken]:
        return sorted(
            (ApiToken(t["id"], t["name"], t["created"]) for t in self._read()["tokens"].values()),
            key=lambda t: t.created,
        )

    def revoke_token(self, token_id: str) -> bool:
        with self._locked() as data:
            found = [k for k, t in data["tokens"].items() if t["id"] == token_id]
            for key in found:
                del data["tokens"][key]
        return bool(found)

    def token_valid(self, secret: str) -> bool:
        if not secret.startswith(TOKEN_PREFIX):
            return False
        return _sha256(secret) in self._read()["tokens"]


class LoginLimiter:
    """Failed pairing attempts, per client address: `free` wrong codes, then a wait that
    doubles with each further one (`first_wait` seconds, up to `longest_wait`), forgotten
    after `forget` seconds without a failure or at a success. Per address only, so one
    host guessing cannot lock the others out; with eight digits and a code that expires
    in minutes, a handful of guesses per address is out of reach of luck."""

    def __init__(
        self,
        *,
        free: int = 5,
        first_wait: float = 30.0,
        longest_wait: float = 3600.0,
        forget: float = 3600.0,
        max_clients: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.free = free
        self.first_wait = first_wait
        self.longest_wait = longest_wait
        self.forget = forget
        self.max_clients = max_clients
        self._clock = clock
        self._failures: dict[str, tuple[int, float]] = {}
        """client → (failures, time of the last one), oldest first."""

    def _count(self, client: str, now: float) -> tuple[int, float]:
        count, last = self._failures.get(client, (0, now))
        if now - last > self.forget:
            self._failures.pop(client, None)
            return 0, now
        return count, last

    def retry_after(self, client: str) -> float:
        """Seconds until this client may try again (0 = now)."""
        now = self._clock()
        count, last = self._count(client, now)
        if count < self.free:
            return 0.0
        wait = min(self.longest_wait, self.first_wait * 2 ** (count - self.free))
        return max(0.0, last + wait - now)

    def failed(self, client: str) -> None:
        now = self._clock()
        count, _ = self._count(client, now)
        self._failures.pop(client, None)
        self._failures[client] = (count + 1, now)
        while len(self._failures) > self.max_clients:  # a flood of addresses: oldest go
            del self._failures[next(iter(self._failures))]

    def succeeded(self, client: str) -> None:
        self._failures.pop(client, None)

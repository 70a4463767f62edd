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
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CODE_DIGITS = 8
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


class PairingStore:
    def __init__(self, directory: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.directory = Path(directory)
        self.path = self.directory / "auth.json"
        self._clock = clock

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
        """On first start: create a code and return it (to be spoken and logged once).
        None when a code already exists."""
        with self._locked() as data:
            if "code" in data:
                return None
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

    def check_code(self, code: str) -> bool:
        stored = self._read().get("code")
        digits = normalise_code(code)
        if not stored or len(digits) != CODE_DIGITS:
            return False
        candidate = _scrypt(digits, bytes.fromhex(stored["salt"]))
        return hmac.compare_digest(candidate, stored["hash"])

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
    """Failed pairing attempts: at most `per_client` per `window` seconds from one
    address and `overall` from everyone together (a code has 10^8 values, so this
    puts guessing out of reach)."""

    def __init__(
        self,
        *,
        per_client: int = 5,
        overall: int = 20,
        window: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_client = per_client
        self.overall = overall
        self.window = window
        self._clock = clock
        self._failures: deque[tuple[float, str]] = deque()

    def _prune(self) -> float:
        now = self._clock()
        while self._failures and now - self._failures[0][0] > self.window:
            self._failures.popleft()
        return now

    def retry_after(self, client: str) -> float:
        """Seconds until this client may try again (0 = now)."""
        now = self._prune()
        mine = [t for t, c in self._failures if c == client]
        waits = []
        if len(mine) >= self.per_client:
            waits.append(mine[-self.per_client] + self.window - now)
        if len(self._failures) >= self.overall:
            waits.append(self._failures[-self.overall][0] + self.window - now)
        return max([0.0, *waits])

    def failed(self, client: str) -> None:
        self._failures.append((self._prune(), client))

"""A real Debian mosquitto for tests: loopback only, its own config, started and stopped
by the test; plus a plain subscriber that collects what arrives."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiomqtt

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Tls:
    ca: Path
    cert: Path
    key: Path


def make_certificates(folder: Path) -> Tls:
    """A self-signed CA and a server certificate for 127.0.0.1 signed by it (openssl)."""
    folder.mkdir(parents=True, exist_ok=True)

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=folder)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=appliance test CA")  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key",
            "-out", "server.csr", "-subj", "/CN=localhost")  # fmt: skip
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.pem", "-days", "2",
            "-extfile", "san.ext")  # fmt: skip
    return Tls(folder / "ca.pem", folder / "server.pem", folder / "server.key")


@dataclass
class Mosquitto:
    """mosquitto on 127.0.0.1:`port`; `tls_port` (if `tls`) serves TLS beside it."""

    folder: Path
    port: int = field(default_factory=free_port)
    password_file: Path | None = None
    tls: Tls | None = None
    tls_port: int = 0
    persistence: bool = False
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> Mosquitto:
        self.folder.mkdir(parents=True, exist_ok=True)
        lines = [
            "user root",  # stay root: the test's tmp folders are not readable by `mosquitto`
            f"persistence {'true' if self.persistence else 'false'}",
            f"persistence_location {self.folder}/",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            f"listener {self.port} 127.0.0.1",
        ]
        if self.password_file is not None:
            lines += ["allow_anonymous false", f"password_file {self.password_file}"]
        else:
            lines.append("allow_anonymous true")
        if self.tls is not None:
            self.tls_port = self.tls_port or free_port()
            lines += [
                f"listener {self.tls_port} 127.0.0.1",
                f"cafile {self.tls.ca}",
                f"certfile {self.tls.cert}",
                f"keyfile {self.tls.key}",
            ]
        conf = self.folder / "mosquitto.conf"
        conf.write_text("\n".join(lines) + "\n")
        self.process = subprocess.Popen(
            [MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode() if self.process.stderr else ""
                raise RuntimeError(f"mosquitto exited at start: {err}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2),
            ):
                return self
            time.sleep(0.02)
        raise RuntimeError("mosquitto did not start listening within 10 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process is not None and self.process.stderr:
            self.process.stderr.close()
        self.process = None


def add_user(path: Path, user: str, password: str) -> Path:
    path.touch()
    subprocess.run(["mosquitto_passwd", "-b", str(path), user, password], check=True)
    return path


class Collector:
    """The messages a separate subscriber received, in arrival order."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, str, bool]] = []
        self._changed = asyncio.Event()

    def add(self, message: aiomqtt.Message) -> None:
        payload = message.payload
        text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else str(payload)
        self.messages.append((str(message.topic), text, bool(message.retain)))
        self._changed.set()

    def on(self, topic: str) -> list[str]:
        return [payload for t, payload, _ in self.messages if t == topic]

    async def wait_for(self, predicate, seconds: float = 10.0) -> None:  # noqa: ANN001
        async with asyncio.timeout(seconds):
            while not predicate(self):
                self._changed.clear()
                await self._changed.wait()


@contextlib.asynccontextmanager
async def subscriber(
    port: int, *topics: str, identifier: str | None = None, clean_session: bool | None = None
) -> AsyncIterator[tuple[aiomqtt.Client, Collector]]:
    collector = Collector()
    async with aiomqtt.Client(
        "127.0.0.1", port, identifier=identifier, clean_session=clean_session
    ) as client:
        for topic in topics:
            await client.subscribe(topic, qos=1)

        async def read() -> None:
            async for message in client.messages:
                collector.add(message)

        reader = asyncio.create_task(read())
        try:
            yield client, collector
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await reader

"""The bigger box's servers, started for real on loopback for the tests and the bench:
llama-cpp-python's OpenAI-compatible `llama_cpp.server` (and, for the bad-input tests,
small servers that misbehave on purpose)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class LlamaServer:
    """`python -m llama_cpp.server` on a GGUF file, on 127.0.0.1; a context manager.
    `url` is its OpenAI base address (…/v1). `kill()` ends it at once (a box that dies)."""

    def __init__(self, model: Path, *, threads: int = 1, context: int = 2048) -> None:
        self.model = model
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self._args = [
            sys.executable, "-m", "llama_cpp.server", "--model", str(model),
            "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", str(context),
            "--n_threads", str(threads), "--n_threads_batch", str(threads),
        ]  # fmt: skip
        self.process: subprocess.Popen[bytes] | None = None
        self.log = b""

    def __enter__(self) -> LlamaServer:
        env = {**os.environ, "NO_PROXY": "*"}
        self.process = subprocess.Popen(
            self._args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env
        )
        reader = threading.Thread(target=self._read, daemon=True)
        reader.start()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited: {self.log[-2000:].decode()}")
            try:
                if requests.get(self.url + "/models", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.kill()
        raise RuntimeError(f"llama_cpp.server did not start: {self.log[-2000:].decode()}")

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            self.log = (self.log + line)[-20_000:]

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


class SilentServer:
    """Accepts connections on loopback and never answers: a box that hangs."""

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.port = int(self._sock.getsockname()[1])
        self.accepted = 0
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self.accepted += 1
            self._held.append(conn)

    def __enter__(self) -> SilentServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._sock.close()
        for conn in self._held:
            conn.close()


class WyomingProcess:
    """A Wyoming service started as a process on 127.0.0.1 (`wyoming-faster-whisper`,
    `wyoming-piper`, or `appliance serve-wyoming`); ready once it describes itself.
    `uri` is its address; a context manager."""

    def __init__(self, args: list[str], port: int, *, env: dict[str, str] | None = None,
                 ready_seconds: float = 120, host: str = "127.0.0.1") -> None:  # fmt: skip
        self.port = port
        self.uri = f"tcp://{host}:{port}"
        self._args = args
        self._env = {**os.environ, **(env or {})}
        self._ready_seconds = ready_seconds
        self.process: subprocess.Popen[bytes] | None = None
        self.log = b""

    @classmethod
    def faster_whisper(cls, model_dir: Path, data_dir: Path, *, netns: str = "",
                       host: str = "127.0.0.1") -> WyomingProcess:  # fmt: skip
        """`netns`: run it in that network namespace (root only), serving on `host`."""
        port = free_port()
        inside = ["ip", "netns", "exec", netns] if netns else []
        return cls([*inside, sys.executable, "-m", "wyoming_faster_whisper",
                    "--uri", f"tcp://{host}:{port}", "--model", str(model_dir),
                    "--data-dir", str(data_dir), "--local-files-only",
                    "--stt-library", "faster-whisper", "--language", "en",
                    "--cpu-threads", "1", "--beam-size", "1"], port, host=host)  # fmt: skip

    @classmethod
    def piper(cls, voice: Path) -> WyomingProcess:
        """`voice`: the .onnx file, its .onnx.json beside it."""
        port = free_port()
        return cls([sys.executable, "-m", "wyoming_piper", "--uri", f"tcp://127.0.0.1:{port}",
                    "--voice", voice.stem, "--data-dir", str(voice.parent)], port)  # fmt: skip

    def __enter__(self) -> WyomingProcess:
        from appliance.transport.wyoming import Address, WyomingFailure, describe

        self.process = subprocess.Popen(
            self._args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=self._env
        )
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.monotonic() + self._ready_seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self._name} exited: {self.log[-3000:].decode()}")
            try:
                describe(Address.parse(self.uri), timeout=1.0)
                return self
            except WyomingFailure:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self._name} did not start: {self.log[-3000:].decode()}")

    @property
    def _name(self) -> str:
        return self._args[self._args.index("-m") + 1] if "-m" in self._args else self._args[0]

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            self.log = (self.log + line)[-20_000:]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def __exit__(self, *exc: object) -> None:
        self.stop()

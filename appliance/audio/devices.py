"""Sound cards through PyAudio (PortAudio): listing, choosing by name or index,
a microphone source and a speaker sink.

PyAudio is imported lazily: the file pipeline, the tests and a board without sound
work without it. ALSA prints warnings to stderr while PortAudio probes cards; they are
silenced so that the user sees our message, not a wall of ALSA noise.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from appliance.audio.format import (
    PIPELINE_RATE,
    AudioChunk,
)
from appliance.audio.sinks import PlaybackLog, RealTimeSink
from appliance.audio.sources import DEFAULT_CHUNK_SAMPLES
from appliance.errors import AudioDeviceError, AudioOutputError

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeviceInfo:
    index: int
    name: str
    inputs: int
    outputs: int
    default_rate: int

    def describe(self) -> str:
        kinds = []
        if self.inputs:
            kinds.append(f"{self.inputs} in")
        if self.outputs:
            kinds.append(f"{self.outputs} out")
        return f"[{self.index}] {self.name} ({', '.join(kinds)}, {self.default_rate} Hz)"


_STDERR_LOCK = threading.RLock()
"""File descriptor 2 is one per process: the microphone and speaker threads take turns."""


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence C-level stderr (ALSA/JACK probing chatter) for the duration."""
    with _STDERR_LOCK:
        try:
            saved = os.dup(2)
        except OSError:
            yield
            return
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 2)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(devnull)


def _pyaudio() -> Any:
    try:
        import pyaudio
    except ImportError as err:
        raise AudioDeviceError(
            "PyAudio is not installed, so no microphone or speaker can be used; "
            "run ./setup.sh (it installs portaudio19-dev and pyaudio)"
        ) from err
    with _quiet_stderr():
        return pyaudio.PyAudio()


def list_devices() -> list[DeviceInfo]:
    """Every sound device PortAudio sees; empty when there is none (or no PyAudio)."""
    try:
        pa = _pyaudio()
    except AudioDeviceError:
        return []
    try:
        devices = []
        with _quiet_stderr():
            count = pa.get_device_count()
            for index in range(count):
                info = pa.get_device_info_by_index(index)
                devices.append(
                    DeviceInfo(
                        index=index,
                        name=str(info.get("name", f"device {index}")),
                        inputs=int(info.get("maxInputChannels", 0)),
                        outputs=int(info.get("maxOutputChannels", 0)),
                        default_rate=int(info.get("defaultSampleRate", 0)),
                    )
                )
        return devices
    finally:
        pa.terminate()


def choose_device(selector: str, *, want_input: bool) -> DeviceInfo:
    """Pick a device by index or by (part of) its name; '' means the first suitable one."""
    kind = "microphone" if want_input else "speaker"
    devices = list_devices()
    usable = [d for d in devices if (d.inputs if want_input else d.outputs) > 0]
    found = "\n".join(f"  {d.describe()}" for d in devices) or "  (no sound devices at all)"
    if not usable:
        raise AudioDeviceError(
            f"no {kind} found. Plug in a USB {kind} and check `arecord -l` / `aplay -l`.\n"
            f"Devices seen:\n{found}"
        )
    if selector == "":
        return usable[0]
    if selector.isdigit():
        for device in usable:
            if device.index == int(selector):
                return device
    else:
        for device in usable:
            if selector.lower() in device.name.lower():
                return device
    raise AudioDeviceError(f"no {kind} matches {selector!r}. Devices seen:\n{found}")


class MicrophoneSource:
    """Live microphone audio as 16 kHz mono int16 chunks of 80 ms.

    A reader thread does the blocking reads and hands each block to the event loop
    through a short queue. When the pipeline falls more than `max_lag` behind, the reader
    waits, the device's own buffer overflows, and the oldest audio is lost there: the
    appliance stays live instead of answering ever later. Lost audio is counted and
    reported at most every 10 s.
    """

    live = True

    def __init__(
        self,
        device: DeviceInfo,
        *,
        chunk_samples: int = DEFAULT_CHUNK_SAMPLES,
        max_lag: float = 2.0,
    ) -> None:
        self.device = device
        self._chunk = chunk_samples
        self._queue_size = max(1, int(max_lag * PIPELINE_RATE / chunk_samples))
        self.overflows = 0

    async def chunks(self) -> AsyncIterator[AudioChunk]:
        import pyaudio

        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[bytes, float]] = asyncio.Queue(maxsize=self._queue_size)
        stop = threading.Event()
        pa = _pyaudio()
        try:
            # 16 kHz mono is asked of the device itself: ALSA's plug layer ("default",
            # PipeWire, PulseAudio) converts, so no resampling runs in the audio loop.
            with _quiet_stderr():
                stream = pa.open(
                    format=pyaudio.paInt16,
                    channels=1,
                    rate=PIPELINE_RATE,
                    input=True,
                    input_device_index=self.device.index,
                    frames_per_buffer=self._chunk,
                )
        except Exception as err:
            pa.terminate()
            raise AudioDeviceError(
                f"cannot record 16 kHz mono from {self.device.describe()}: {err}. Another "
                f"program may hold it (`fuser -v /dev/snd/*`), or it is a raw hw: device that "
                f"cannot convert: choose the 'default' or 'pipewire'/'pulse' device instead "
                f"(`appliance devices`)"
            ) from err

        def read() -> None:
            last_report = 0.0
            try:
                while not stop.is_set():
                    if stream.get_read_available() > 4 * self._chunk:
                        self.overflows += 1
                    data = stream.read(self._chunk, exception_on_overflow=False)
                    item = (data, time.monotonic())
                    asyncio.run_coroutine_threadsafe(queue.put(item), loop).result()
                    if self.overflows and time.monotonic() - last_report > 10.0:
                        last_report = time.monotonic()
                        _LOGGER.warning(
                            "microphone: the pipeline fell behind the input %d time(s)",
                            self.overflows,
                        )
            except Exception as err:  # the device went away: end the stream
                if not stop.is_set():
                    _LOGGER.error("microphone %s failed: %s", self.device.name, err)
                    loop.call_soon_threadsafe(queue.put_nowait, (b"", 0.0))

        reader = threading.Thread(target=read, name="microphone", daemon=True)
        position = 0
        try:
            reader.start()
            while True:
                data, captured_at = await queue.get()
                if not data:
                    break
                block = np.frombuffer(data, dtype="<i2")
                yield AudioChunk(block, start=position / PIPELINE_RATE, captured_at=captured_at)
                position += len(block)
            raise AudioDeviceError(f"microphone {self.device.name} stopped delivering audio")
        finally:
            stop.set()
            while not queue.empty():  # unblock a reader waiting for room
                queue.get_nowait()
            await asyncio.to_thread(reader.join, 2.0)
            with _quiet_stderr():
                stream.stop_stream()
                stream.close()
                pa.terminate()


class SpeakerSink(RealTimeSink):
    """Plays on a sound card from its own thread, in 20 ms blocks (see RealTimeSink)."""

    def __init__(self, device: DeviceInfo, log: PlaybackLog | None = None) -> None:
        self.device = device
        self._pa: Any = None
        self._stream: Any = None
        self._rate = 0
        super().__init__(log, name="speaker")

    async def play(self, samples: np.ndarray, rate: int) -> None:
        if self.error is not None:
            raise AudioOutputError(f"speaker {self.device.name} failed: {self.error}")
        await super().play(samples, rate)

    def _open(self) -> None:
        self._pa = _pyaudio()

    def _output(self, block: np.ndarray, rate: int) -> None:
        import pyaudio

        if self._stream is None or self._rate != rate:
            if self._stream is not None:
                self._stream.close()
            with _quiet_stderr():
                self._stream = self._pa.open(
                    format=pyaudio.paInt16,
                    channels=1,
                    rate=rate,
                    output=True,
                    output_device_index=self.device.index,
                    frames_per_buffer=int(rate * self.BLOCK_SECONDS),
                )
            self._rate = rate
        self._stream.write(np.asarray(block, dtype="<i2").tobytes())

    def _finish(self) -> None:
        with _quiet_stderr():
            if self._stream is not None:
                self._stream.close()
            if self._pa is not None:
                self._pa.terminate()

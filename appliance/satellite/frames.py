"""The ESPHome native API's plaintext frames: a zero byte, then the payload's length and
the message type as protobuf varints, then the payload.

`FrameDecoder` takes bytes as they arrive and hands back whole frames; anything that is
not such a frame raises `FrameError`, and the connection is then closed: a stream that
lost its framing cannot be trusted again.
"""

from __future__ import annotations

from typing import Protocol

PREAMBLE = 0x00
NOISE_PREAMBLE = 0x01
MAX_FRAME_BYTES = 65535
"""The largest payload taken, as Home Assistant's client takes (it rejects larger ones
too)."""
_MAX_VARINT_BYTES = 4


class FrameError(Exception):
    """The bytes are no plaintext frame of the ESPHome native API."""


def varint(value: int) -> bytes:
    if value < 0:
        raise ValueError(f"a varint is not negative: {value}")
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def encode_frame(message_type: int, payload: bytes) -> bytes:
    if len(payload) > MAX_FRAME_BYTES:
        raise FrameError(f"a payload of {len(payload)} bytes is over {MAX_FRAME_BYTES}")
    return bytes([PREAMBLE]) + varint(len(payload)) + varint(message_type) + payload


def _read_varint(buffer: bytearray, at: int, what: str) -> tuple[int, int] | None:
    """(value, the index after it), or None when the buffer ends inside it."""
    value = shift = 0
    for index in range(at, min(len(buffer), at + _MAX_VARINT_BYTES)):
        byte = buffer[index]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, index + 1
        shift += 7
    if len(buffer) - at >= _MAX_VARINT_BYTES:
        raise FrameError(f"the frame's {what} is longer than {_MAX_VARINT_BYTES} bytes")
    return None


class FrameDecoder:
    def __init__(self, max_frame_bytes: int = MAX_FRAME_BYTES) -> None:
        self.max_frame_bytes = max_frame_bytes
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """The whole frames completed by `data`, as (message type, payload)."""
        self._buffer += data
        frames: list[tuple[int, bytes]] = []
        while self._buffer:
            first = self._buffer[0]
            if first != PREAMBLE:
                if first == NOISE_PREAMBLE:
                    raise FrameError(
                        "the client speaks the encrypted (Noise) protocol, and this "
                        "satellite has no encryption key set"
                    )
                raise FrameError(f"a frame starts with 0x{first:02x}, not 0x00")
            length = _read_varint(self._buffer, 1, "length")
            if length is None:
                break
            size, at = length
            if size > self.max_frame_bytes:
                raise FrameError(f"a frame of {size} bytes is over {self.max_frame_bytes}")
            kind = _read_varint(self._buffer, at, "message type")
            if kind is None:
                break
            message_type, at = kind
            if len(self._buffer) < at + size:
                break
            frames.append((message_type, bytes(self._buffer[at : at + size])))
            del self._buffer[: at + size]
        return frames


class Codec(Protocol):
    """One connection's framing: plaintext (`PlaintextCodec`) or encrypted
    (`noise.NoiseCodec`)."""

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """The messages (type, payload) completed by `data`; FrameError when the bytes
        break the framing (after `take_replies` has what should still be sent)."""
        ...

    def take_replies(self) -> bytes:
        """What must be sent back before anything else (a handshake), once."""
        ...

    def encode(self, message_type: int, payload: bytes) -> bytes: ...


class PlaintextCodec:
    def __init__(self) -> None:
        self._decoder = FrameDecoder()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        return self._decoder.feed(data)

    def take_replies(self) -> bytes:
        return b""

    def encode(self, message_type: int, payload: bytes) -> bytes:
        return encode_frame(message_type, payload)

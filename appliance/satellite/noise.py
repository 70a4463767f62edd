"""The encrypted form of the native API: Noise_NNpsk0_25519_ChaChaPoly_SHA256 with a
pre-shared 32-byte key, as ESPHome devices speak it and Home Assistant's client expects.

Every frame is a 0x01 byte, a two-byte big-endian length and the payload. The client
opens with an empty hello frame and its handshake message; we answer with our hello
(protocol 1, our name, our MAC) and the handshake's reply, or with a refusal
("Handshake MAC failure": the client's key is not ours). After that each payload is
encrypted, and holds the message type and length as two bytes each before the message.
"""

from __future__ import annotations

import binascii
import logging

from aioesphomeapi._frame_helper.noise_encryption import ESPHOME_NOISE_BACKEND
from cryptography.exceptions import InvalidTag
from noise.connection import NoiseConnection

from appliance.satellite.frames import FrameError

_LOGGER = logging.getLogger(__name__)
NOISE_PROTOCOL = b"Noise_NNpsk0_25519_ChaChaPoly_SHA256"
PROLOGUE = b"NoiseAPIInit\x00\x00"
"""What both sides mix into the handshake: the protocol's name and the client hello."""
MAX_NOISE_FRAME = 65535
_HELLO, _HANDSHAKE, _READY = 1, 2, 3


def decode_key(key: str) -> bytes:
    """The 32 bytes of a base64 key; ValueError when it is not one."""
    try:
        raw = binascii.a2b_base64(key.strip(), strict_mode=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise ValueError("the key must be 32 bytes written in base64 (44 characters)")
    return raw


def _frame(payload: bytes) -> bytes:
    return bytes((0x01, len(payload) >> 8, len(payload) & 0xFF)) + payload


class NoiseCodec:
    """One connection's frames, encrypted. `feed` returns the messages completed by the
    bytes it is given; `replies` holds what must go back (the handshake) first."""

    def __init__(self, key: bytes, name: str, mac_address: str) -> None:
        self._name = name
        self._mac = mac_address
        self._buffer = bytearray()
        self._state = _HELLO
        self.replies: list[bytes] = []
        noise = NoiseConnection.from_name(NOISE_PROTOCOL, backend=ESPHOME_NOISE_BACKEND)
        noise.set_as_responder()
        noise.set_psks(key)
        noise.set_prologue(PROLOGUE)
        noise.start_handshake()
        self._noise = noise

    def take_replies(self) -> bytes:
        out, self.replies = b"".join(self.replies), []
        return out

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self._buffer += data
        messages: list[tuple[int, bytes]] = []
        while len(self._buffer) >= 3:
            first = self._buffer[0]
            if first != 0x01:
                if first == 0x00:
                    # A plaintext client: a frame it reads as "encryption is required".
                    self.replies.append(_frame(b"\x01Encryption is required"))
                    raise FrameError("a plaintext client: this satellite is encrypted")
                raise FrameError(f"a frame starts with 0x{first:02x}, not 0x01")
            size = (self._buffer[1] << 8) | self._buffer[2]
            if len(self._buffer) < 3 + size:
                break
            payload = bytes(self._buffer[3 : 3 + size])
            del self._buffer[: 3 + size]
            message = self._payload(payload)
            if message is not None:
                messages.append(message)
        return messages

    def _payload(self, payload: bytes) -> tuple[int, bytes] | None:
        if self._state == _HELLO:
            if payload:
                raise FrameError("the client's Noise hello is not empty")
            self.replies.append(
                _frame(b"\x01" + self._name.encode() + b"\x00" + self._mac.encode() + b"\x00")
            )
            self._state = _HANDSHAKE
            return None
        if self._state == _HANDSHAKE:
            return self._handshake(payload)
        try:
            plain = self._noise.decrypt(payload)
        except InvalidTag:
            raise FrameError("a frame that does not decrypt with the key") from None
        if len(plain) < 4:
            raise FrameError("an encrypted frame too short for its header")
        message_type = (plain[0] << 8) | plain[1]
        size = (plain[2] << 8) | plain[3]
        if size != len(plain) - 4:
            raise FrameError(f"an encrypted frame says {size} bytes and holds {len(plain) - 4}")
        return message_type, bytes(plain[4:])

    def _handshake(self, payload: bytes) -> None:
        if not payload or payload[0] != 0x00:
            raise FrameError("the client's handshake frame is malformed")
        try:
            self._noise.read_message(payload[1:])
        except InvalidTag:
            self.replies.append(_frame(b"\x01Handshake MAC failure"))
            raise FrameError(
                "the client's encryption key is not this satellite's (Home Assistant must "
                "be given the key set in satellite.encryption_key)"
            ) from None
        except Exception as err:
            self.replies.append(_frame(b"\x01Handshake error"))
            raise FrameError(f"the Noise handshake failed: {err}") from None
        self.replies.append(_frame(b"\x00" + bytes(self._noise.write_message())))
        self._state = _READY
        return None

    def encode(self, message_type: int, payload: bytes) -> bytes:
        if self._state != _READY:
            raise FrameError("nothing can be sent before the handshake")
        header = bytes((message_type >> 8, message_type & 0xFF, len(payload) >> 8,
                        len(payload) & 0xFF))  # fmt: skip
        return _frame(self._noise.encrypt(header + payload))

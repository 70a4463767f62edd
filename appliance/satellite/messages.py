"""Message types of the ESPHome native API: the classes of `aioesphomeapi`'s generated
protobuf module, by their numbers, as Home Assistant's client knows them."""

from __future__ import annotations

from aioesphomeapi.core import MESSAGE_TYPE_TO_PROTO
from google.protobuf.message import DecodeError, Message

from appliance.satellite.frames import encode_frame

NUMBER_OF: dict[type[Message], int] = {kind: n for n, kind in MESSAGE_TYPE_TO_PROTO.items()}


class MessageError(Exception):
    """A frame whose type no ESPHome API message has, or whose payload is no such
    message."""


def decode(message_type: int, payload: bytes) -> Message:
    kind = MESSAGE_TYPE_TO_PROTO.get(message_type)
    if kind is None:
        raise MessageError(f"message type {message_type} is no ESPHome API message")
    message = kind()
    try:
        message.ParseFromString(payload)
    except DecodeError as err:
        raise MessageError(f"a {kind.__name__} that cannot be read: {err}") from None
    return message


def encode(message: Message) -> bytes:
    """`message` as a plaintext frame."""
    return encode_frame(*typed(message))


def typed(message: Message) -> tuple[int, bytes]:
    """`message` as (its type's number, its bytes), for any framing."""
    return NUMBER_OF[type(message)], message.SerializeToString()

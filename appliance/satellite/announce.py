"""Announcements Home Assistant asks for: a chime and a message as audio at URLs of its
own, fetched only from the Home Assistant that asked, and played like a reply.

When the audio cannot be had (a URL elsewhere, a server that does not answer, a file
that is no WAV), the message's text is spoken in the appliance's own voice instead, and
Home Assistant is told the announcement did not play: never silence, never a false
"done"."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import urllib.error
import urllib.request
from urllib.parse import urlsplit

import numpy as np

from appliance.audio.format import float_to_int16
from appliance.audio.wav import parse_wav
from appliance.errors import AudioInputError
from appliance.pipeline import Pipeline

_LOGGER = logging.getLogger(__name__)
MAX_MEDIA_BYTES = 20 * 1024 * 1024
"""About ten minutes of 16-bit audio at 16 kHz: an announcement is far shorter."""
FETCH_SECONDS = 10.0


class AnnouncementError(Exception):
    """The announcement's audio cannot be had or played."""


def _same_host(url: str, peer: str) -> bool:
    """Whether `url` points at the address `peer` (the connected client) has."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    try:
        wanted = ipaddress.ip_address(peer)
        found = {info[4][0] for info in socket.getaddrinfo(parts.hostname, None)}
    except (ValueError, OSError):
        return False
    return any(ipaddress.ip_address(address.split("%")[0]) == wanted for address in found)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect could lead anywhere: the address check holds for the URL given only."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        raise urllib.error.HTTPError(
            req.full_url, code, f"redirected to {newurl}, which is not followed", headers, fp
        )


_OPENER = urllib.request.build_opener(_NoRedirects)


def fetch(url: str, peer: str) -> bytes:
    """The bytes at `url`, if it is on the connected client's own address. Blocking."""
    if not _same_host(url, peer):
        raise AnnouncementError(
            f"{url} is not on the address of the Home Assistant that asked ({peer}): not "
            "fetched (set Home Assistant's internal URL to an address the appliance sees)"
        )
    try:
        with _OPENER.open(url, timeout=FETCH_SECONDS) as response:
            data = response.read(MAX_MEDIA_BYTES + 1)
    except (urllib.error.URLError, OSError, ValueError) as err:
        raise AnnouncementError(f"{url} could not be fetched: {err}") from None
    if len(data) > MAX_MEDIA_BYTES:
        raise AnnouncementError(f"{url} is over {MAX_MEDIA_BYTES // 2**20} MB")
    return data


def decode(data: bytes, url: str) -> tuple[np.ndarray, int]:
    """WAV bytes as int16 mono samples and their rate."""
    try:
        audio = parse_wav(data, url)
    except AudioInputError as err:
        raise AnnouncementError(str(err)) from None
    mono = audio.samples.mean(axis=1) if audio.samples.shape[1] > 1 else audio.samples[:, 0]
    return float_to_int16(mono.astype(np.float32)), audio.info.rate


class Announcer:
    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    async def _clip(self, url: str, peer: str) -> tuple[np.ndarray, int]:
        data = await asyncio.to_thread(fetch, url, peer)
        return decode(data, url)

    async def announce(self, media_id: str, text: str, preannounce_media_id: str,
                       peer: str) -> bool:  # fmt: skip
        """Play the chime (if any) and the message; True when all of it was played."""
        try:
            clips = []
            if preannounce_media_id:
                clips.append(await self._clip(preannounce_media_id, peer))
            clips.append(await self._clip(media_id, peer))
        except AnnouncementError as err:
            _LOGGER.warning("Home Assistant's announcement was not played: %s", err)
            if text:
                await self.pipeline.say(text)  # the words at least, in our own voice
            return False
        return await self.pipeline.play(clips, shown=text or media_id)

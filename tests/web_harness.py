"""The config page's server for tests: a real uvicorn on 127.0.0.1 (a free port) in a
thread with its own event loop, around a Pipeline with fake engines (or real ones)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from appliance.app import engine_settings
from appliance.audio.sinks import RecordingSink
from appliance.config import AppConfig, ConfigFallback, load_config_or_fallback
from appliance.events import EventBus
from appliance.pipeline import Engines, Pipeline, PipelineSettings
from appliance.web.auth import PairingStore
from appliance.web.cli import fake_engines
from appliance.web.paths import web_dir
from appliance.web.service import WebService


@dataclass
class RunningWeb:
    url: str
    service: WebService
    pipeline: Pipeline
    engines: Engines
    loop: asyncio.AbstractEventLoop
    code: str
    config_path: Path

    def call(self, coro: Coroutine[Any, Any, Any], timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def session(self, *, pair: bool = True) -> requests.Session:
        """A browser-like client; paired with the code unless told otherwise."""
        client = requests.Session()
        if pair:
            response = self.pair(client, self.code)
            assert response.status_code == 200 and response.url.endswith("/"), response.text
        return client

    def pair(self, client: requests.Session, code: str) -> requests.Response:
        page = client.get(self.url + "/pair")
        nonce = re.search(r'name="nonce" value="([^"]+)"', page.text)
        assert nonce, page.text
        return client.post(self.url + "/pair", data={"nonce": nonce.group(1), "code": code})

    def csrf(self, client: requests.Session) -> str:
        page = client.get(self.url + "/settings")
        found = re.search(r'name="csrf-token" content="([^"]*)"', page.text)
        assert found and found.group(1), page.text
        return found.group(1)


@contextlib.contextmanager
def running_web(
    tmp_path: Path,
    *,
    engines: Engines | None = None,
    config_text: str | None = None,
    settings: PipelineSettings | None = None,
    create_code: bool = True,
    upload_limit: int | None = None,
    vision: Callable[[EventBus], Any] | None = None,
) -> Iterator[RunningWeb]:
    """Needs APPLIANCE_DATA_DIR pointed at a temporary directory (the `web_env` fixture).
    `vision` makes the VisionService for POST /api/vision, given the pipeline's bus."""
    config_path = tmp_path / "config.toml"
    if config_text is not None:
        config_path.write_text(config_text)
    config, fallback = load_config_or_fallback(config_path if config_path.exists() else None)
    code = PairingStore(web_dir()).reset() if create_code else ""
    engines = engines or fake_engines()
    ready = threading.Event()
    holder: dict[str, Any] = {}
    loop = asyncio.new_event_loop()

    async def main() -> None:
        stop = asyncio.Event()
        holder["stop"] = stop
        pipeline = Pipeline(engines, RecordingSink(), EventBus(),
                            settings or PipelineSettings(system_prompt="be brief"))  # fmt: skip
        looking = vision(pipeline.bus) if vision is not None else None
        service = WebService(config, config_path, pipeline=pipeline, localhost_only=True,
                             port=0, fallback=fallback, mdns=False, vision=looking,
                             engine_settings=engine_settings(engines))  # fmt: skip
        if upload_limit is not None:
            service.ctx.upload_limit = upload_limit
        try:
            async with service:
                holder.update(service=service, pipeline=pipeline)
                ready.set()
                await stop.wait()
        except BaseException as err:
            holder["error"] = err
            ready.set()
            raise
        finally:
            pipeline.close()
            if looking is not None:
                looking.close()

    thread = threading.Thread(target=lambda: loop.run_until_complete(main()), daemon=True)
    thread.start()
    assert ready.wait(30), "web server did not start"
    if "error" in holder:
        raise holder["error"]
    service = holder["service"]
    try:
        yield RunningWeb(service.url, service, holder["pipeline"], engines, loop, code,
                         config_path)  # fmt: skip
    finally:
        loop.call_soon_threadsafe(holder["stop"].set)
        thread.join(15)
        loop.close()


def fallback_of(path: Path) -> ConfigFallback | None:
    return load_config_or_fallback(path)[1]


__all__ = ["AppConfig", "RunningWeb", "fallback_of", "running_web"]

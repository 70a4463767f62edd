"""The remote stages assembled from the configuration, for the composition root
(appliance/app.py): each stage with a `remote` set gets that engine in front of its
local one, with a breaker, a health check at start, and events (`remote_state` when a
remote goes down or comes back, `stage_fallback` when a turn went local)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from appliance import events as ev
from appliance.config import AppConfig
from appliance.pipeline import Engines
from appliance.remote.breaker import Breaker, RemoteStatus


@dataclass
class RemoteStages:
    breakers: dict[str, Breaker] = field(default_factory=dict)
    """Stage → its breaker, for the stages that have a remote."""


@contextlib.asynccontextmanager
async def remote_stages(
    config: AppConfig, engines: Engines, bus: ev.EventBus
) -> AsyncIterator[RemoteStages]:
    loop = asyncio.get_running_loop()

    def publish(event: ev.Event) -> None:  # from the engines' threads too
        with contextlib.suppress(RuntimeError):  # a check that ends after the app did
            loop.call_soon_threadsafe(bus.publish, event)

    def report(status: RemoteStatus) -> None:
        publish(ev.RemoteState(turn=0, stream_time=0.0, stage=status.stage,
                               remote=status.remote, up=status.up, reason=status.reason,
                               retry_seconds=status.retry_seconds))  # fmt: skip

    def fell_back(stage: str, reason: str) -> None:
        remote = stages.breakers[stage].remote
        publish(ev.StageFallback(turn=0, stream_time=0.0, stage=stage, remote=remote,
                                 reason=reason))  # fmt: skip

    stages = RemoteStages()
    local_llm, local_stt, local_tts = engines.llm, engines.stt, engines.tts
    if config.llm.remote:
        from appliance.llm.openai_compat import OpenAiCompatibleLlm
        from appliance.remote.llm import FallbackLlm

        llm = config.llm
        remote = OpenAiCompatibleLlm(
            llm.remote, model=llm.remote_model, api_key=llm.remote_api_key,
            ca_file=llm.remote_ca_file, timeout=llm.remote_timeout_seconds,
            deadline=llm.remote_deadline_seconds, max_tokens=llm.max_tokens,
            temperature=llm.temperature,
        )  # fmt: skip
        breaker = Breaker("llm", llm.remote, health=remote.health, report=report)
        stages.breakers["llm"] = breaker
        engines.llm = FallbackLlm(remote, local_llm, breaker, fell_back)
    if config.stt.remote and local_stt is not None:
        from appliance.remote.speech import FallbackStt
        from appliance.stt.wyoming import WyomingStt

        stt = config.stt
        remote_stt = WyomingStt(
            stt.remote, language=stt.language if stt.language != "auto" else "",
            timeout=stt.remote_timeout_seconds, deadline=stt.remote_deadline_seconds,
        )  # fmt: skip
        breaker = Breaker("stt", stt.remote, health=remote_stt.health, report=report)
        stages.breakers["stt"] = breaker
        engines.stt = FallbackStt(remote_stt, local_stt, breaker, fell_back)
    if config.tts.remote:
        from appliance.remote.speech import FallbackTts
        from appliance.tts.wyoming import WyomingTts

        tts = config.tts
        remote_tts = WyomingTts(
            tts.remote, sample_rate=local_tts.sample_rate, voice=tts.remote_voice,
            timeout=tts.remote_timeout_seconds, deadline=tts.remote_deadline_seconds,
        )  # fmt: skip
        breaker = Breaker("tts", tts.remote, health=remote_tts.health, report=report)
        stages.breakers["tts"] = breaker
        engines.tts = FallbackTts(remote_tts, local_tts, breaker, fell_back)
    # Each remote's state from the start (for the page), without delaying it; then, while
    # one is down, its health check when due, so that no turn waits for it.
    checks = [
        asyncio.create_task(_watch(breaker), name=f"remote-{breaker.stage}-health")
        for breaker in stages.breakers.values()
    ]
    try:
        yield stages
    finally:
        for task in checks:
            task.cancel()
        engines.llm, engines.stt, engines.tts = local_llm, local_stt, local_tts


async def _watch(breaker: Breaker, idle_seconds: float = 5.0) -> None:
    await asyncio.to_thread(breaker.check)
    while True:
        due = breaker.seconds_until_retry()
        if due is None:
            await asyncio.sleep(idle_seconds)
        else:
            await asyncio.sleep(due)
            if breaker.seconds_until_retry() == 0.0:
                await asyncio.to_thread(breaker.check)

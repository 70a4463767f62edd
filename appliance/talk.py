"""The commands that talk: `appliance run` (the microphone and the speaker, as the
service), `listen` (a WAV file), `demo` (the bundled request) and `ask` (typed). Each
loads the engines, builds the appliance through `app.App` and reports what happened."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import sys
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

from appliance import events as ev
from appliance.config import AppConfig, config_from_args, default_config_path
from appliance.console import Console, progress, quiet, run_async
from appliance.errors import AudioDeviceError

_LOGGER = logging.getLogger("appliance")
SAMPLES = Path(__file__).with_name("samples")
DEMO_WAV = SAMPLES / "demo_request.wav"


@contextlib.contextmanager
def _event_output(target: str | None, bus: ev.EventBus) -> Iterator[None]:
    if not target:
        yield
        return
    if target == "-":
        bus.subscribe(ev.JsonLinesWriter(sys.stdout))
        yield
        return
    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        bus.subscribe(ev.JsonLinesWriter(handle))
        yield


def _describe_results(results: list[Any], say: Console) -> None:
    from appliance.pipeline import TurnResult

    if not results:
        say("No wake word heard: nothing to answer.")
    for result in results:
        assert isinstance(result, TurnResult)
        say(f"turn {result.turn}: {result.outcome}")
        if result.transcript:
            say(f"  you said : {result.transcript}")
        if result.reply:
            say(f"  reply    : {result.reply}")
        for error in result.errors:
            say(f"  error    : {error}")
        if result.timings:
            shown = ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in result.timings.items())
            say(f"  timings  : {shown}")


def cmd_listen(args: argparse.Namespace, *, wav: Path | None = None, play: bool = False) -> int:
    from appliance.app import App, load
    from appliance.audio.sinks import RecordingSink, TeeSink
    from appliance.audio.sources import WavFileSource

    config = config_from_args(args)
    source = WavFileSource(wav or args.wav, realtime=getattr(args, "realtime", False))
    bus = ev.EventBus()
    recording = RecordingSink()
    sink: Any = recording
    speaker = _speaker(config.audio.output_device, args.say) if play else None
    if speaker is not None:
        sink = TeeSink(recording, speaker)
    with _event_output(args.events, bus):
        args.say(f"Loading models from {config.models_path()} …")
        engines = load(config, bus, progress=progress)
        args.say(
            f"Listening to {source.path.name} ({source.duration:.1f} s"
            f"{', real time' if source.live else ''}) …"
        )

        async def main() -> int:
            async with App(config, engines, sink, bus) as app:
                results = await app.pipeline.run(source)
            _describe_results(results, args.say)
            return 0

        code = _run_then_close(main, speaker, args.say)
    if args.reply_wav and recording.blocks:
        seconds = recording.save(args.reply_wav)
        args.say(f"Reply audio ({seconds:.1f} s) written to {args.reply_wav}")
    return code


def _run_then_close(main: Any, speaker: Any, say: Console) -> int:
    """Run the command's coroutine; the speaker (if one was opened) is closed after."""
    try:
        return run_async(main, say)
    finally:
        if speaker is not None:
            speaker.close()


def _speaker(selector: str, say: Console) -> Any:
    from appliance.audio.devices import SpeakerSink, choose_device

    try:
        return SpeakerSink(choose_device(selector, want_input=False))
    except AudioDeviceError as err:
        say(f"Not playing the reply aloud: {str(err).splitlines()[0]}")
        return None


def cmd_demo(args: argparse.Namespace) -> int:
    if args.reply_wav is None:
        args.reply_wav = Path("demo-reply.wav")
    args.realtime = False
    args.say(f'Demo: {DEMO_WAV.name} says "{(SAMPLES / "demo_request.txt").read_text().strip()}"')
    return cmd_listen(args, wav=DEMO_WAV, play=not args.no_play)


def cmd_ask(args: argparse.Namespace) -> int:
    from appliance.app import App, Parts, load
    from appliance.audio.sinks import RecordingSink, TeeSink

    config = config_from_args(args)
    bus = ev.EventBus()
    recording = RecordingSink()
    speaker = _speaker(config.audio.output_device, args.say) if args.speak else None
    sink: Any = TeeSink(recording, speaker) if speaker is not None else recording
    with _event_output(args.events, bus):
        shown = progress if args.verbose else quiet
        engines = load(config, bus, progress=shown, listening=False)

        async def main() -> int:
            async with App(config, engines, sink, bus, parts=Parts(origin="typed")) as app:
                result = await app.ask(args.text)
            args.say(result.reply or "(no reply)")
            for error in result.errors:
                print(f"error: {error}", file=sys.stderr)
            return 0 if result.outcome == "replied" else 6

        code = _run_then_close(main, speaker, args.say)
    if args.reply_wav and recording.blocks:
        recording.save(args.reply_wav)
    return code


def cmd_run(args: argparse.Namespace) -> int:
    from appliance.app import App, Parts, WebOptions, load
    from appliance.audio.devices import MicrophoneSource, SpeakerSink, choose_device
    from appliance.config import data_dir as config_data_dir
    from appliance.device.notify import SystemdNotifier, service_notifications
    from appliance.engines import pipeline_settings
    from appliance.service import serve
    from appliance.web.miclevel import LevelTap

    config, config_path, fallback = _service_config(args)
    if args.localhost_only:  # nothing reachable from the network: Home Assistant's API neither
        satellite = dataclasses.replace(config.satellite, host="127.0.0.1", mdns=False)
        config = dataclasses.replace(config, satellite=satellite)
    microphone = choose_device(args.input_device or config.audio.input_device, want_input=True)
    speaker_device = choose_device(
        args.output_device or config.audio.output_device, want_input=False
    )
    bus = ev.EventBus()
    bus.subscribe(_log_event)
    with _event_output(args.events, bus):
        # Ready to listen once the listening engines and the language model are: the
        # voice finishes loading meanwhile (appliance.deferred).
        engines = load(config, bus, progress=progress, defer=True)
        speaker = SpeakerSink(speaker_device)
        args.say(
            f"Listening on {microphone.describe()}, answering on {speaker_device.describe()}. "
            f'Say "{config.wake.model.replace("_", " ")}". Ctrl-C stops.'
        )

        async def main() -> int:
            from appliance.audio.aec import best_echo_canceller

            echo = best_echo_canceller()  # the speaker's sound comes back into the mic
            settings = dataclasses.replace(
                pipeline_settings(config), earcons=config.feedback.earcons
            )
            tap = LevelTap()  # levels for the config page's "test microphone"

            def open_microphone() -> Any:
                # After an unplug the device may come back under another index: look again.
                found = choose_device(
                    args.input_device or config.audio.input_device, want_input=True
                )
                return tap.wrap(MicrophoneSource(found))

            web = None
            if not args.no_web and config.web.enabled:
                web = WebOptions(config_path, localhost_only=args.localhost_only,
                                 port=args.web_port, required=False,
                                 microphone_levels=tap.levels)  # fmt: skip
            parts = Parts(mqtt=True, look_button=True, web=web, fallback=fallback, satellite=True)
            # Under systemd (Type=notify): READY=1, the watchdog and STATUS= lines.
            notices = service_notifications(
                SystemdNotifier.from_environment(), bus, data_dir=config_data_dir()
            )
            app = App(config, engines, speaker, bus, settings=settings, echo=echo, parts=parts)
            async with notices, app:
                await _serve_while_loading(engines, serve(app.pipeline, open_microphone))
            return 0

        try:
            return run_async(main, args.say)
        finally:
            speaker.close()


async def _serve_while_loading(engines: Any, serving: Coroutine[Any, Any, None]) -> None:
    """Serve; if the voice still loading fails, stop with its error (a service that cannot
    answer should say so and be restarted, not listen on in silence)."""
    from appliance.deferred import finish_loading

    loading = asyncio.ensure_future(asyncio.to_thread(finish_loading, engines.tts))
    task = asyncio.ensure_future(serving)
    try:
        await asyncio.wait({loading, task}, return_when=asyncio.FIRST_COMPLETED)
        if loading.done() and loading.exception() is not None:
            raise loading.exception()  # type: ignore[misc]
        await task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


def _service_config(args: argparse.Namespace) -> tuple[AppConfig, Path, Any]:
    """The service's configuration: a broken file falls back to its backup or the
    defaults (said on stderr, in the log, as an event and on the page) instead of
    keeping the appliance from starting."""
    from appliance.config import load_config_or_fallback, user_config_path

    path = args.config or default_config_path() or user_config_path()
    config, fallback = load_config_or_fallback(path if path.exists() else None)
    if fallback is not None:
        _LOGGER.error("config: %s", fallback.message)
    if getattr(args, "models_dir", None):
        config = dataclasses.replace(config, models_dir=str(args.models_dir))
    return config, path, fallback


def _log_event(event: ev.Event) -> None:
    if isinstance(event, ev.Transcript):
        _LOGGER.warning("heard: %s", event.text)
    elif isinstance(event, ev.Reply):
        _LOGGER.warning("replied: %s", event.text)
    elif isinstance(event, ev.Error):
        _LOGGER.error("%s failed: %s", event.stage, event.message)

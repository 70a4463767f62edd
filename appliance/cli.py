"""The `appliance` command: parse arguments, load the configuration, run one job.

Every error a user can cause (a bad file, a missing model, no microphone) is printed as
one plain message with a distinct exit code; see `appliance --help` and docs/commands.md.
"""

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
from appliance.errors import (
    EXIT_CODES,
    EXIT_INTERRUPTED,
    ApplianceError,
    AudioDeviceError,
    ConfigError,
)
from appliance.web.cli import add_web_commands, add_web_options

_LOGGER = logging.getLogger("appliance")
SAMPLES = Path(__file__).with_name("samples")
DEMO_WAV = SAMPLES / "demo_request.wav"


def _exit_code_help() -> str:
    lines = "\n".join(f"  {code:>3}  {meaning}" for code, meaning in EXIT_CODES.items())
    return f"exit codes:\n{lines}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="appliance",
        description="An offline voice appliance: wake word → speech-to-text → local LLM → speech.",
        epilog=_exit_code_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config",
        type=Path,
        help="TOML settings file (default: "
        "$APPLIANCE_CONFIG, ~/.config/appliance/config.toml, /etc/appliance/…)",
    )
    parser.add_argument(
        "--models-dir",
        type=Path,
        help="prepared models (default: $APPLIANCE_MODELS_DIR or ~/.local/share/appliance/models)",
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        return commands.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=_exit_code_help(),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    def reply_and_events(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--reply-wav",
            type=Path,
            metavar="OUT.wav",
            help="write every spoken reply to this WAV file",
        )
        p.add_argument(
            "--events",
            metavar="OUT.jsonl|-",
            help="write events as JSON Lines to a file, or - for stdout",
        )

    demo = command(
        "demo",
        "Answer the sample request that ships with the package "
        '("hey jarvis … what is the capital of France?") through the real pipeline.',
    )
    reply_and_events(demo)
    demo.add_argument("--no-play", action="store_true", help="do not play the reply aloud")
    demo.set_defaults(handler=cmd_demo)

    listen = command(
        "listen",
        "Treat a WAV recording as the microphone and answer every wake word + request in it.",
    )
    listen.add_argument(
        "wav",
        type=Path,
        metavar="FILE.wav",
        help="any PCM WAV: 8/16/24/32-bit or float, any rate, any channels",
    )
    reply_and_events(listen)
    listen.add_argument(
        "--realtime",
        action="store_true",
        help="feed the audio at the pace of a microphone, so latencies are real",
    )
    listen.set_defaults(handler=cmd_listen)

    run = command("run", "The service: microphone in, speaker out, until stopped.")
    run.add_argument("--input-device", help="microphone index or name (see `appliance devices`)")
    run.add_argument("--output-device", help="speaker index or name")
    run.add_argument("--events", metavar="OUT.jsonl|-", help="also write events as JSON Lines")
    run.add_argument("--no-web", action="store_true", help="do not serve the config page")
    add_web_options(run)
    run.set_defaults(handler=cmd_run)

    ask = command(
        "ask", "A typed request: text in, text (and optionally speech) out; no wake word, no STT."
    )
    ask.add_argument("text", help='the request, e.g. "what is the capital of France?"')
    reply_and_events(ask)
    ask.add_argument("--speak", action="store_true", help="also play the reply aloud")
    ask.set_defaults(handler=cmd_ask)

    doctor = command(
        "doctor",
        "Check this board: CPU, memory, zram, NPU, audio, models, and "
        "whether the language model fits; says how to fix what is wrong.",
    )
    doctor.set_defaults(handler=cmd_doctor)

    devices = command("devices", "List the microphones and speakers PortAudio can see.")
    devices.set_defaults(handler=cmd_devices)

    bench = command(
        "bench", "Measure latency, CPU and memory with the real models (prints a table and JSON)."
    )
    bench.add_argument("--turns", type=int, default=5, help="spoken turns to time (default 5)")
    bench.add_argument(
        "--listen-seconds",
        type=float,
        default=60.0,
        help="non-speech audio for the wake-listening CPU figure (default 60)",
    )
    bench.add_argument(
        "--self-speech-minutes",
        type=float,
        default=2.0,
        help="its own speech played into the mic, for false self-wakes per hour (default 2)",
    )
    bench.add_argument("--json", type=Path, metavar="OUT.json", help="also write the JSON here")
    bench.add_argument(
        "--only",
        choices=["actions", "understanding", "latency"],
        help="only these figures (actions: end of speech → action done, fast path vs the "
        "language model, and how often its phrasing is used; understanding: spoken "
        "commands judged by what ran, word error rate with and without the bias prompt; "
        "latency: last word → first reply audio, smart end-of-turn vs the fixed silence)",
    )
    bench.set_defaults(handler=cmd_bench)

    from appliance.actions.commands import add_actions_commands

    add_actions_commands(command("actions", "Actions: the audit log of everything done."))

    from appliance.models.commands import add_models_commands

    add_models_commands(
        command(
            "models",
            "Model files: list, verify, prepare, import, remove, use, measure, convert-whisper.",
        )
    )
    from appliance.vision.commands import add_vision_commands

    add_vision_commands(
        command("vision", "The camera: read text in view, describe it, or capture a frame.")
    )
    add_web_commands(command)
    return parser


# ---- shared plumbing -----------------------------------------------------------------


def _config(args: argparse.Namespace) -> AppConfig:
    return config_from_args(args)


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


# ---- commands --------------------------------------------------------------------------


def cmd_listen(args: argparse.Namespace, *, wav: Path | None = None, play: bool = False) -> int:
    from appliance.app import App, load
    from appliance.audio.sinks import RecordingSink, TeeSink
    from appliance.audio.sources import WavFileSource

    config = _config(args)
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

        try:
            code = run_async(main, args.say)
        finally:
            if speaker is not None:
                speaker.close()
    if args.reply_wav and recording.blocks:
        seconds = recording.save(args.reply_wav)
        args.say(f"Reply audio ({seconds:.1f} s) written to {args.reply_wav}")
    return code


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

    config = _config(args)
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

        try:
            code = run_async(main, args.say)
        finally:
            if speaker is not None:
                speaker.close()
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
            parts = Parts(mqtt=True, look_button=True, web=web, fallback=fallback)
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


def cmd_doctor(args: argparse.Namespace) -> int:
    import os

    from appliance.doctor import report, run_checks

    root = Path(os.environ.get("APPLIANCE_SYSROOT", "/"))
    return report(run_checks(_config(args), root), args.say)


def cmd_devices(args: argparse.Namespace) -> int:
    from appliance.audio.devices import list_devices

    devices = list_devices()
    if not devices:
        args.say("No sound devices found (is PyAudio installed and a USB mic/speaker plugged in?).")
        return 4
    for device in devices:
        args.say(device.describe())
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from appliance.bench.run import run_bench

    if args.turns < 1 or args.listen_seconds < 1:
        raise ConfigError("bench needs --turns ≥ 1 and --listen-seconds ≥ 1")
    return run_bench(
        _config(args),
        config_path=args.config or default_config_path(),
        turns=args.turns,
        listen_seconds=args.listen_seconds,
        self_speech_minutes=args.self_speech_minutes,
        json_path=args.json,
        say=args.say,
        progress=progress,
        only=args.only or "",
    )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    events_on_stdout = getattr(args, "events", None) == "-"
    args.say = Console(sys.stderr if events_on_stdout else sys.stdout)
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.handler(args))
    except ApplianceError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as err:  # a bug: say so briefly; the traceback only when asked
        if args.verbose:
            raise
        print(
            f"internal error: {type(err).__name__}: {err} (run with -v for details)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())

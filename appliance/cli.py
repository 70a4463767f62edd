"""The `appliance` command: parse arguments, load the configuration, run one job.

Every error a user can cause (a bad file, a missing model, no microphone) is printed as
one plain message with a distinct exit code; see `appliance --help` and docs/commands.md.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from appliance.config import AppConfig, config_from_args, default_config_path
from appliance.console import Console, progress
from appliance.errors import (
    EXIT_CODES,
    EXIT_INTERRUPTED,
    ApplianceError,
    ConfigError,
)
from appliance.talk import cmd_ask, cmd_demo, cmd_listen, cmd_run
from appliance.web.cli import add_web_commands, add_web_options


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
        choices=["actions", "understanding", "latency", "satellite", "remote", "rooms"],
        help="only these figures (actions: end of speech → action done, fast path vs the "
        "language model, and how often its phrasing is used; understanding: spoken "
        "commands judged by what ran, word error rate with and without the bias prompt; "
        "latency: last word → first reply audio, smart end-of-turn vs the fixed silence; "
        "satellite: wake word → first audio at Home Assistant, announcement → first sound; "
        "remote: felt latency through a bigger box's servers on loopback vs the own engines; "
        "rooms: three boxes in network namespaces, who answers and the arbitration delay)",
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
    from appliance.satellite.commands import add_satellite_commands

    add_satellite_commands(
        command("satellite", "Home Assistant's native API: a new encryption key, or its status.")
    )
    from appliance.remote.commands import add_serve_wyoming

    add_serve_wyoming(
        command(
            "serve-wyoming",
            "Offer this board's speech-to-text, voice and wake word as "
            "Wyoming services (for other appliances and Home Assistant).",
        )
    )
    add_web_commands(command)
    return parser


# ---- shared plumbing -----------------------------------------------------------------


def _config(args: argparse.Namespace) -> AppConfig:
    return config_from_args(args)


# ---- commands --------------------------------------------------------------------------


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

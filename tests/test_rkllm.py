"""The RKLLM (Rockchip NPU) backend against a real C stand-in for librkllmrt.so, and NPU
detection on fixture trees.

tests/native/fake_rkllm.c is compiled with gcc and driven through the same ctypes code
that would drive Rockchip's runtime: no mocks. It reports back what it read from the
structs, so a layout mismatch between the ctypes mirror and rkllm.h fails here.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.errors import LanguageModelError, ModelError
from appliance.llm import rkllm_abi
from appliance.llm.base import LanguageModel, Message
from appliance.llm.rkllm import CHATML, RkllmLlm, build_prompt
from appliance.npu import detect_npu

NATIVE = Path(__file__).parent / "native" / "fake_rkllm.c"
REPLY = "Paris is the capital of France."
SYSTEM = "You are a terse assistant."
QUESTION = "What is the capital of France?"
MESSAGES = [Message("system", SYSTEM), Message("user", QUESTION)]
FAKE_RELEASE = "1.2.3"
"""The fake follows rkllm.h 1.2.1–1.2.3; being no Rockchip build, it is declared so (as an
owner declares a runtime of their own build with llm.rkllm_runtime)."""


def _compile(out: Path, *defines: str) -> Path:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is needed to build the fake RKLLM runtime")
    cmd = ["gcc", "-shared", "-fPIC", "-O2", "-Wall", "-Werror", *defines, "-o", str(out)]
    subprocess.run([*cmd, str(NATIVE)], check=True, capture_output=True, text=True)
    return out


@pytest.fixture(scope="session")
def fake_lib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _compile(tmp_path_factory.mktemp("rkllm") / "libfake_rkllm.so")


@pytest.fixture(scope="session")
def hooks(fake_lib: Path) -> ctypes.CDLL:
    """The fake's test hooks, from the same loaded copy of the library RkllmLlm uses."""
    lib = ctypes.CDLL(str(fake_lib))
    for name in ("fake_rkllm_report", "fake_rkllm_last_prompt"):
        getattr(lib, name).restype = ctypes.c_char_p
    lib.fake_rkllm_layout.argtypes = [ctypes.c_char_p]
    lib.fake_rkllm_layout.restype = ctypes.c_long
    return lib


def _report(hooks: ctypes.CDLL) -> dict[str, str]:
    text = hooks.fake_rkllm_report().decode()
    return dict(item.split("=", 1) for item in text.split(";"))


def _model(tmp_path: Path, text: str = REPLY, name: str = "model.rkllm") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture
def llm(fake_lib: Path, tmp_path: Path) -> Iterator[RkllmLlm]:
    with RkllmLlm(
        _model(tmp_path), library=fake_lib, runtime=FAKE_RELEASE, context=1024, max_tokens=64
    ) as model:
        yield model


def _run(model: LanguageModel, messages: list[Message] = MESSAGES) -> list[str]:
    return list(model.stream(messages, threading.Event()))


# ---- the ctypes mirror against the C layout ------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("RKLLMExtendParam", ctypes.sizeof(rkllm_abi.RKLLMExtendParam)),
        ("RKLLMParam", ctypes.sizeof(rkllm_abi.RKLLMParam)),
        ("RKLLMParam.temperature", rkllm_abi.RKLLMParam.temperature.offset),
        ("RKLLMParam.skip_special_token", rkllm_abi.RKLLMParam.skip_special_token.offset),
        ("RKLLMParam.img_start", rkllm_abi.RKLLMParam.img_start.offset),
        ("RKLLMParam.extend_param", rkllm_abi.RKLLMParam.extend_param.offset),
        ("RKLLMInput", ctypes.sizeof(rkllm_abi.RKLLMInput)),
        ("RKLLMInput.input_type", rkllm_abi.RKLLMInput.input_type.offset),
        ("RKLLMInput.prompt_input", rkllm_abi.RKLLMInput._input.offset),
        ("RKLLMInferParam", ctypes.sizeof(rkllm_abi.RKLLMInferParam)),
        ("RKLLMInferParam.keep_history", rkllm_abi.RKLLMInferParam.keep_history.offset),
        ("RKLLMResult", ctypes.sizeof(rkllm_abi.RKLLMResult)),
        ("RKLLMResult.perf", rkllm_abi.RKLLMResult.perf.offset),
    ],
)
def test_ctypes_layout_matches_the_c_header(hooks: ctypes.CDLL, name: str, expected: int) -> None:
    assert hooks.fake_rkllm_layout(name.encode()) == expected


# ---- streaming ---------------------------------------------------------------------


def test_streams_the_reply_piece_by_piece(llm: RkllmLlm) -> None:
    pieces = _run(llm)
    assert len(pieces) == 6  # one per word: the callback hands over each token
    assert "".join(pieces) == REPLY


def test_prompt_and_parameters_arrive_intact(llm: RkllmLlm, hooks: ctypes.CDLL) -> None:
    _run(llm)
    prompt = hooks.fake_rkllm_last_prompt().decode()
    assert prompt == (
        CHATML.system.replace("{system}", SYSTEM) + CHATML.prefix + QUESTION + CHATML.postfix
    )
    report = _report(hooks)
    assert report["max_context_len"] == "1024"
    assert report["max_new_tokens"] == "64"
    assert report["top_k"] == "1"  # temperature 0: greedy
    assert report["temperature"] == "0.800"  # the runtime's default, left alone
    assert report["skip_special_token"] == "1"
    assert report["is_async"] == "0"
    assert report["n_batch"] == "1"  # a default from rkllm_createDefaultParam survived
    assert report["role"] == "user"
    assert report["enable_thinking"] == "0"
    assert report["input_type"] == "0"
    assert report["mode"] == "0"
    assert report["keep_history"] == "0"
    assert report["lora"] == "0" and report["prompt_cache"] == "0"


def test_temperature_and_max_tokens_reach_the_runtime(
    fake_lib: Path, tmp_path: Path, hooks: ctypes.CDLL
) -> None:
    with RkllmLlm(
        _model(tmp_path), library=fake_lib, runtime=FAKE_RELEASE, max_tokens=3, temperature=0.7
    ) as model:
        assert "".join(_run(model)) == "Paris is the"
    report = _report(hooks)
    assert report["temperature"] == "0.700"
    assert report["top_k"] == "40"  # the runtime's default
    assert report["max_new_tokens"] == "3"


def test_system_prompt_folded_into_the_user_turn(
    fake_lib: Path, tmp_path: Path, hooks: ctypes.CDLL
) -> None:
    with RkllmLlm(
        _model(tmp_path), library=fake_lib, runtime=FAKE_RELEASE, system_prompt_in_template=False
    ) as model:
        _run(model)
    assert hooks.fake_rkllm_last_prompt().decode() == (f"<builtin>{SYSTEM}\n\n{QUESTION}</builtin>")


def test_builtin_template_is_kept_until_a_system_prompt_is_set(
    llm: RkllmLlm, hooks: ctypes.CDLL
) -> None:
    _run(llm, [Message("user", QUESTION)])
    assert hooks.fake_rkllm_last_prompt().decode() == f"<builtin>{QUESTION}</builtin>"
    _run(llm)
    _run(llm, [Message("user", "Again?")])  # the system prompt is cleared, ChatML stays
    assert hooks.fake_rkllm_last_prompt().decode() == (CHATML.prefix + "Again?" + CHATML.postfix)


CONVERSATION = [
    Message("system", SYSTEM),
    Message("user", "Hello."),
    Message("assistant", "Hi, what can I do?"),
    Message("user", QUESTION),
]


def test_the_conversation_s_earlier_turns_reach_the_npu_in_the_template(
    llm: RkllmLlm, hooks: ctypes.CDLL
) -> None:
    _run(llm, CONVERSATION)
    assert hooks.fake_rkllm_last_prompt().decode() == (
        CHATML.system.replace("{system}", SYSTEM)
        + CHATML.prefix + "Hello." + CHATML.postfix + "Hi, what can I do?" + CHATML.turn_end
        + CHATML.prefix + QUESTION + CHATML.postfix
    )  # fmt: skip


def test_with_the_model_s_own_template_the_earlier_turns_are_a_transcript(
    fake_lib: Path, tmp_path: Path, hooks: ctypes.CDLL
) -> None:
    with RkllmLlm(
        _model(tmp_path), library=fake_lib, runtime=FAKE_RELEASE, system_prompt_in_template=False
    ) as model:
        _run(model, CONVERSATION)
    assert hooks.fake_rkllm_last_prompt().decode() == (
        f"<builtin>{SYSTEM}\n\nUser: Hello.\nAssistant: Hi, what can I do?\n\n{QUESTION}</builtin>"
    )
    prompt = build_prompt([Message("user", "One"), Message("user", "two"),
                           Message("assistant", "Yes."), Message("user", "Three")])  # fmt: skip
    assert prompt.earlier == (("One\ntwo", "Yes."),) and prompt.user == "Three"


def test_no_user_message_is_an_error(llm: RkllmLlm) -> None:
    with pytest.raises(LanguageModelError, match="no user message"):
        _run(llm, [Message("system", SYSTEM)])


def test_non_ascii_text_survives(fake_lib: Path, tmp_path: Path, hooks: ctypes.CDLL) -> None:
    with RkllmLlm(
        _model(tmp_path, "Ça coûte 5 €."), library=fake_lib, runtime=FAKE_RELEASE
    ) as model:
        assert "".join(_run(model, [Message("user", "Combien ? ☕")])) == "Ça coûte 5 €."
    assert "Combien ? ☕" in hooks.fake_rkllm_last_prompt().decode()


# ---- cancel --------------------------------------------------------------------------


def test_cancel_mid_stream_aborts_and_the_next_run_works(
    fake_lib: Path, tmp_path: Path, hooks: ctypes.CDLL, monkeypatch: pytest.MonkeyPatch
) -> None:
    long_reply = " ".join(f"w{i}" for i in range(200))
    monkeypatch.setenv("FAKE_RKLLM_DELAY_MS", "20")
    with RkllmLlm(
        _model(tmp_path, long_reply), library=fake_lib, runtime=FAKE_RELEASE, max_tokens=500
    ) as model:
        cancel = threading.Event()
        aborts_before = hooks.fake_rkllm_abort_calls()
        pieces = []
        started = time.monotonic()
        for piece in model.stream(MESSAGES, cancel):
            pieces.append(piece)
            if len(pieces) == 3:
                cancel.set()
        elapsed = time.monotonic() - started
        assert len(pieces) <= 5, pieces  # stopped within a couple of tokens
        assert elapsed < 1.0  # 200 tokens would take 4 s
        assert hooks.fake_rkllm_abort_calls() > aborts_before  # rkllm_abort, not just a break

        monkeypatch.setenv("FAKE_RKLLM_DELAY_MS", "0")
        assert "".join(_run(model)) == long_reply


def test_cancel_from_another_thread(
    fake_lib: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_RKLLM_DELAY_MS", "20")
    reply = " ".join(["word"] * 200)
    with RkllmLlm(
        _model(tmp_path, reply), library=fake_lib, runtime=FAKE_RELEASE, max_tokens=500
    ) as model:
        cancel = threading.Event()
        threading.Timer(0.15, cancel.set).start()
        started = time.monotonic()
        pieces = list(model.stream(MESSAGES, cancel))
        assert 0 < len(pieces) < 20
        assert time.monotonic() - started < 1.0


def test_cancel_before_start_yields_nothing(llm: RkllmLlm) -> None:
    cancel = threading.Event()
    cancel.set()
    assert list(llm.stream(MESSAGES, cancel)) == []


def test_callback_returns_zero_so_the_runtime_never_pauses(
    llm: RkllmLlm, hooks: ctypes.CDLL
) -> None:
    _run(llm)
    assert hooks.fake_rkllm_paused() == 0


# ---- errors --------------------------------------------------------------------------


def test_error_state_raises(fake_lib: Path, tmp_path: Path) -> None:
    model = RkllmLlm(_model(tmp_path, name="error.rkllm"), library=fake_lib, runtime=FAKE_RELEASE)
    with model, pytest.raises(LanguageModelError, match="RKLLM_RUN_ERROR"):
        _run(model)


def test_run_failure_raises(fake_lib: Path, tmp_path: Path) -> None:
    model = RkllmLlm(_model(tmp_path, name="runfail.rkllm"), library=fake_lib, runtime=FAKE_RELEASE)
    with model, pytest.raises(LanguageModelError, match="rkllm_run failed with code -5"):
        _run(model)


def test_missing_model(fake_lib: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"RKLLM model .*nowhere\.rkllm is missing"):
        RkllmLlm(tmp_path / "nowhere.rkllm", library=fake_lib, runtime=FAKE_RELEASE)


def test_model_the_runtime_rejects(fake_lib: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"rkllm_init returned -4"):
        RkllmLlm(_model(tmp_path, ""), library=fake_lib, runtime=FAKE_RELEASE)


def test_missing_library_by_path(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"librkllmrt\.so not found: .*RKLLM runtime"):
        RkllmLlm(_model(tmp_path), library=tmp_path / "librkllmrt.so")


def test_missing_library_by_name(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"librkllmrt-absent\.so not found: .*llama\.cpp"):
        RkllmLlm(_model(tmp_path), library="librkllmrt-absent.so")


def test_not_a_shared_library(tmp_path: Path) -> None:
    bogus = tmp_path / "librkllmrt.so"
    bogus.write_text("not ELF")
    with pytest.raises(ModelError, match="cannot be loaded"):
        RkllmLlm(_model(tmp_path), library=bogus)


def test_runtime_older_than_1_2_1_is_refused(tmp_path: Path) -> None:
    old = _compile(tmp_path / "libold_rkllm.so", "-DFAKE_RKLLM_OLD_RUNTIME")
    with pytest.raises(ModelError, match="older than RKLLM 1.2.1"):
        RkllmLlm(_model(tmp_path), library=old, runtime=FAKE_RELEASE)


# ---- lifecycle -----------------------------------------------------------------------


def test_close_twice_destroys_once(fake_lib: Path, tmp_path: Path, hooks: ctypes.CDLL) -> None:
    model = RkllmLlm(_model(tmp_path), library=fake_lib, runtime=FAKE_RELEASE)
    before = hooks.fake_rkllm_destroy_calls()
    model.close()
    model.close()
    assert hooks.fake_rkllm_destroy_calls() == before + 1
    with pytest.raises(LanguageModelError, match="closed"):
        _run(model)


def test_close_while_a_stream_is_suspended(
    fake_lib: Path, tmp_path: Path, hooks: ctypes.CDLL, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_RKLLM_DELAY_MS", "10")
    model = RkllmLlm(
        _model(tmp_path, " ".join(["x"] * 300)),
        library=fake_lib,
        runtime=FAKE_RELEASE,
        max_tokens=400,
    )
    stream = model.stream(MESSAGES, threading.Event())
    assert next(stream) == "x"
    before = hooks.fake_rkllm_destroy_calls()
    started = time.monotonic()
    model.close()  # must not wait for the suspended generator's lock
    assert time.monotonic() - started < 1.0
    assert hooks.fake_rkllm_destroy_calls() == before + 1
    assert len(list(stream)) < 300  # the stream ends quietly


def test_the_npu_model_does_not_wait_for_speech_synthesis(llm: RkllmLlm) -> None:
    # Its work is on the NPU: the pipeline lets it write while Piper has the CPU.
    assert llm.runs_on_cpu is False
    assert "".join(_run(llm)) == REPLY


def test_one_run_at_a_time(fake_lib: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_RKLLM_DELAY_MS", "5")
    with RkllmLlm(_model(tmp_path), library=fake_lib, runtime=FAKE_RELEASE) as model:
        results: list[str] = []
        threads = [
            threading.Thread(target=lambda: results.append("".join(_run(model)))) for _ in range(3)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert results == [REPLY] * 3


# ---- NPU detection on fixture trees --------------------------------------------------


def _board(
    root: Path,
    compatible: list[str] | None = None,
    model: str | None = None,
    files: dict[str, str] | None = None,
) -> Path:
    if compatible is not None or model is not None:
        dt = root / "proc/device-tree"
        dt.mkdir(parents=True)
        if compatible is not None:
            (dt / "compatible").write_bytes(b"".join(c.encode() + b"\0" for c in compatible))
        if model is not None:
            (dt / "model").write_bytes(model.encode() + b"\0")
    for rel, text in (files or {}).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


ROCK5B = ["radxa,rock-5b", "rockchip,rk3588"]
DEBUGFS_VERSION = "sys/kernel/debug/rknpu/version"


def test_rk3588_with_driver_and_runtime(tmp_path: Path, fake_lib: Path) -> None:
    root = _board(
        tmp_path, ROCK5B, "Radxa ROCK 5B",
        {"dev/rknpu": "", DEBUGFS_VERSION: "RKNPU driver: v0.9.8\n"},
    )  # fmt: skip
    status = detect_npu(root, library=str(fake_lib), declared=FAKE_RELEASE)
    assert (status.soc, status.npu_device, status.driver_version) == ("RK3588", True, "0.9.8")
    assert status.rkllm_supported and status.runtime_found and status.available
    assert status.reason == (
        "RK3588 with NPU driver 0.9.8 and libfake_rkllm.so 1.2.3: the NPU LLM path is on"
    )
    # Not declared, and no Rockchip release: found, and off, saying why.
    status = detect_npu(root, library=str(fake_lib))
    assert status.runtime_found and not status.available
    assert "not an RKLLM runtime release this appliance knows" in status.reason


def test_rk3588_without_runtime(tmp_path: Path) -> None:
    root = _board(
        tmp_path, ROCK5B, "Radxa ROCK 5B",
        {"dev/rknpu": "", DEBUGFS_VERSION: "RKNPU driver: v0.9.8\n"},
    )  # fmt: skip
    status = detect_npu(root)
    assert not status.runtime_found and not status.available
    assert status.reason == "RK3588 with NPU driver 0.9.8, but librkllmrt.so is not installed"
    assert not detect_npu(root, library=str(tmp_path / "nope/librkllmrt.so")).runtime_found


def test_runtime_in_the_trees_library_dir(tmp_path: Path) -> None:
    root = _board(tmp_path, ROCK5B, None, {"dev/rknpu": "", "usr/lib/librkllmrt.so": "elf"})
    status = detect_npu(root, declared="1.2.1")
    assert status.runtime_found and status.available
    assert status.reason == (
        "RK3588 with NPU driver (version unknown) and librkllmrt.so 1.2.1: the NPU LLM path is on"
    )
    from appliance.llm.rkllm_runtimes import git_blob_sha1

    assert git_blob_sha1(root / "usr/lib/librkllmrt.so") == (
        "b5479dcfa7a1434f71febb16542dce35c93a49cc"  # `printf elf | git hash-object --stdin`
    )


def test_rk3588s_drm_node_and_procfs_version(tmp_path: Path) -> None:
    root = _board(
        tmp_path, ["xunlong,orangepi-5", "rockchip,rk3588s"], "Orange Pi 5",
        {"proc/rknpu/version": "RKNPU driver: v0.9.6\n",
         "sys/bus/platform/drivers/RKNPU/.keep": ""},
    )  # fmt: skip
    device = root / "sys/devices/platform/fdab0000.npu"
    device.mkdir(parents=True)
    (device / "driver").symlink_to("../../../bus/platform/drivers/RKNPU")
    drm = root / "sys/class/drm/renderD129"
    drm.mkdir(parents=True)
    (drm / "device").symlink_to("../../../devices/platform/fdab0000.npu")
    status = detect_npu(root)
    assert (status.soc, status.npu_device, status.driver_version) == ("RK3588S", True, "0.9.6")
    assert status.rkllm_supported


def test_rk3566_is_refused_plainly(tmp_path: Path) -> None:
    root = _board(
        tmp_path, ["radxa,rock-3c", "rockchip,rk3566"], "Radxa ROCK 3C",
        {"dev/rknpu": "", DEBUGFS_VERSION: "RKNPU driver: v0.9.2\n"},
    )  # fmt: skip
    status = detect_npu(root)
    assert status.soc == "RK3566" and status.npu_device
    assert not status.rkllm_supported and not status.available
    assert status.reason.startswith("RK3566: Rockchip's RKLLM does not support this SoC")


def test_x86_machine_without_device_tree(tmp_path: Path) -> None:
    status = detect_npu(tmp_path)
    assert status.soc is None and not status.npu_device and not status.rkllm_supported
    assert status.reason.startswith("not a Rockchip board (")
    assert status.reason.endswith(", no device tree)")


def test_other_arm_board(tmp_path: Path) -> None:
    root = _board(tmp_path, ["raspberrypi,5-model-b", "brcm,bcm2712"], "Raspberry Pi 5 Model B")
    assert detect_npu(root).reason == "not a Rockchip board (Raspberry Pi 5 Model B)"


def test_soc_from_a_board_specific_compatible(tmp_path: Path) -> None:
    root = _board(tmp_path, ["rockchip,rk3576-evb1-v10"], None, {"dev/rknpu": ""})
    assert detect_npu(root).soc == "RK3576"


def test_supported_soc_without_npu_driver(tmp_path: Path) -> None:
    status = detect_npu(_board(tmp_path, ROCK5B, "Radxa ROCK 5B"))
    assert not status.npu_device
    assert "rknpu driver is not loaded" in status.reason


def test_mainline_rocket_driver_is_named(tmp_path: Path) -> None:
    root = _board(tmp_path, ROCK5B, "Radxa ROCK 5B")
    (root / "sys/bus/platform/drivers/rocket").mkdir(parents=True)
    accel = root / "sys/class/accel/accel0/device"
    accel.mkdir(parents=True)
    (accel / "driver").symlink_to("../../../../bus/platform/drivers/rocket")
    status = detect_npu(root)
    assert not status.npu_device
    assert "mainline 'rocket' driver" in status.reason


def test_unreadable_version_is_reported_not_raised(tmp_path: Path) -> None:
    root = _board(tmp_path, ROCK5B, "Radxa ROCK 5B", {"dev/rknpu": ""})
    (root / DEBUGFS_VERSION).mkdir(parents=True)  # reading it fails even as root
    status = detect_npu(root)
    assert status.npu_device and status.driver_version is None
    assert "version unreadable: /sys/kernel/debug/rknpu/version: is a directory" in status.reason


def test_unreadable_version_falls_back_to_another_file(tmp_path: Path) -> None:
    root = _board(tmp_path, ROCK5B, None, {"dev/rknpu": "", "sys/module/rknpu/version": "0.9.8\n"})
    (root / DEBUGFS_VERSION).mkdir(parents=True)
    assert detect_npu(root).driver_version == "0.9.8"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a mode-000 file anyway")
def test_permission_denied_version_file(tmp_path: Path) -> None:
    root = _board(tmp_path, ROCK5B, None, {"dev/rknpu": "", DEBUGFS_VERSION: "v0.9.8"})
    (root / DEBUGFS_VERSION).chmod(0)
    try:
        status = detect_npu(root)
    finally:
        (root / DEBUGFS_VERSION).chmod(0o644)
    assert "permission denied" in status.reason


# ---- which runtime: known by content, refused unless its header is the one followed -----


def test_a_runtime_is_known_by_its_content(fake_lib: Path, tmp_path: Path) -> None:
    from appliance.llm.rkllm_runtimes import git_blob_sha1

    known = {git_blob_sha1(fake_lib): "1.2.2"}
    with RkllmLlm(_model(tmp_path), library=fake_lib, known_runtimes=known) as model:
        assert model.runtime == "1.2.2"
        assert "".join(model.stream(MESSAGES, threading.Event())) == REPLY


@pytest.mark.parametrize(
    ("release", "why"),
    [("1.1.4", "no n_keep"), ("1.2.0", "no role"), ("1.2.1b1", "no role"),
     ("1.3.0", "RKLLMCallback struct")],
)  # fmt: skip
def test_a_runtime_of_another_header_is_refused_before_any_call(
    fake_lib: Path, tmp_path: Path, hooks: ctypes.CDLL, release: str, why: str
) -> None:
    from appliance.llm.rkllm_runtimes import git_blob_sha1

    inits = hooks.fake_rkllm_init_calls()
    known = {git_blob_sha1(fake_lib): release}
    with pytest.raises(ModelError, match=rf"is RKLLM runtime {release}, .*{why}.*1\.2\.3"):
        RkllmLlm(_model(tmp_path), library=fake_lib, known_runtimes=known)
    assert hooks.fake_rkllm_init_calls() == inits  # rkllm_init was never called


def test_a_1_3_runtime_with_the_same_names_is_refused_and_never_called(tmp_path: Path) -> None:
    """Built with rkllm.h 1.3.0's structs and rkllm_init: every name 1.2.3 exports, so
    only its content tells it apart; the table's 1.3.0 layout is the compiler's."""
    from appliance.llm.rkllm_runtimes import HEADERS, git_blob_sha1

    v130 = _compile(tmp_path / "librkllmrt.so", "-DFAKE_RKLLM_V130")
    lib = ctypes.CDLL(str(v130))
    lib.fake_rkllm_layout.argtypes = [ctypes.c_char_p]
    lib.fake_rkllm_layout.restype = ctypes.c_long
    header = next(h for h in HEADERS if h.releases == ("1.3.0",))
    for key, size in header.layout.items():
        assert lib.fake_rkllm_layout(key.encode()) == size, key
    known = {git_blob_sha1(v130): "1.3.0"}
    with pytest.raises(ModelError, match=r"is RKLLM runtime 1\.3\.0, .*RKLLMCallback"):
        RkllmLlm(_model(tmp_path), library=v130, known_runtimes=known)
    assert lib.fake_rkllm_init_calls() == 0


def test_a_runtime_build_it_does_not_know_is_refused_with_the_way_out(
    fake_lib: Path, tmp_path: Path
) -> None:
    with pytest.raises(ModelError, match=r"not an RKLLM runtime release this appliance knows "
                       r"\(git blob [0-9a-f]{12}\).*llm\.rkllm_runtime = \"1\.2\.3\""):  # fmt: skip
        RkllmLlm(_model(tmp_path), library=fake_lib)


def test_the_table_of_headers_matches_the_c_compiler_and_the_ctypes_structs(
    hooks: ctypes.CDLL,
) -> None:
    from appliance.llm.rkllm_runtimes import HEADERS, KNOWN_RUNTIMES, RELEASES, check_structs

    supported = [h for h in HEADERS if h.supported]
    assert len(supported) == 1 and supported[0].releases == ("1.2.1", "1.2.2", "1.2.3")
    for key, size in supported[0].layout.items():
        assert hooks.fake_rkllm_layout(key.encode()) == size, key
    check_structs(rkllm_abi.STRUCTS)
    with pytest.raises(ModelError, match=r"RKLLMParam is 208 bytes here and 184 in rkllm.h 1.3.0"):
        check_structs(rkllm_abi.STRUCTS, HEADERS[-1])
    assert set(KNOWN_RUNTIMES.values()) <= set(RELEASES)
    assert all(len(blob) == 40 for blob in KNOWN_RUNTIMES)


def test_the_loaded_file_is_found_in_the_process_maps(tmp_path: Path) -> None:
    from appliance.llm.rkllm_runtimes import loaded_file

    maps = tmp_path / "maps"
    maps.write_text(
        "7f00-7f10 r--p 00000000 08:01 12 /usr/lib/libc.so.6\n"
        "7f20-7f30 r-xp 00001000 08:01 34 /usr/lib/librkllmrt.so\n"
    )
    assert loaded_file("librkllmrt.so", maps) == Path("/usr/lib/librkllmrt.so")
    assert loaded_file("librknnrt.so", maps) is None
    assert loaded_file("/opt/rk/librkllmrt.so", maps) == Path("/opt/rk/librkllmrt.so")


def test_the_declared_runtime_is_checked_in_the_config() -> None:
    from appliance.errors import ConfigError
    from appliance.sections.llm import LlmConfig

    assert LlmConfig(rkllm_runtime="1.2.2").rkllm_runtime == "1.2.2"
    with pytest.raises(ConfigError, match="only runtimes 1.2.1, 1.2.2 and 1.2.3"):
        LlmConfig(rkllm_runtime="1.3.0")
    with pytest.raises(ConfigError, match="must be one of 1.0.0"):
        LlmConfig(rkllm_runtime="2.0")

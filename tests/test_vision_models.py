"""Vision models: importing a GGUF with its projector, the memory budget choosing it, and
the describe path run up to where a real vision model is needed (none ships: no registry
package carries one). SmolLM2 stands in for the language half, with a projector file the
tests write; llama.cpp refuses that pair, and the appliance says so without crashing."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
from pathlib import Path

import pytest

from appliance.config import AppConfig, default_models_dir
from appliance.errors import ModelError
from appliance.models.budget import read_memory_state, this_machine
from appliance.models.catalog import ModelStore
from appliance.models.gguf import GgufError, read_gguf_projector
from appliance.prepare.importer import import_model
from appliance.sections.vision import VisionConfig
from appliance.testing.images import render_sign
from appliance.vision.build import build_vision
from appliance.vision.errors import VisionModelMissing
from appliance.vision.vlm import choose_vision_model
from tests.fakes import appliance
from tests.test_gguf import GGML_F32, STRING, U32, gguf_bytes, llama_kvs

pytestmark = pytest.mark.e2e
SMOLLM2 = default_models_dir() / "llm" / "SmolLM2-135M-Instruct.Q4_1.gguf"
BOARDS = Path(__file__).parent / "fixtures" / "boards"


def projector_file(path: Path, architecture: str = "clip") -> Path:
    kvs = [
        ("general.architecture", STRING, architecture),
        ("clip.has_vision_encoder", U32, 1),
        ("clip.vision.image_size", U32, 224),
    ]
    path.write_bytes(gguf_bytes(kvs, [("v.patch_embd.weight", (16, 16), GGML_F32)]))
    return path


@pytest.fixture
def store(tmp_path: Path) -> ModelStore:
    return ModelStore(tmp_path / "models")


def test_a_projector_is_checked_like_a_model(tmp_path: Path) -> None:
    info = read_gguf_projector(projector_file(tmp_path / "mmproj.gguf"))
    assert info.architecture == "clip" and info.tensor_data_bytes == 16 * 16 * 4
    with pytest.raises(GgufError, match="not a multimodal projector.*'llama'"):
        read_gguf_projector(projector_file(tmp_path / "x.gguf", "llama"))
    truncated = tmp_path / "cut.gguf"
    truncated.write_bytes(projector_file(tmp_path / "p.gguf").read_bytes()[:-100])
    with pytest.raises(GgufError, match="needs"):
        read_gguf_projector(truncated)
    (tmp_path / "t.gguf").write_bytes(gguf_bytes(llama_kvs()))
    with pytest.raises(GgufError, match="not a multimodal projector"):
        read_gguf_projector(tmp_path / "t.gguf")


def test_import_refuses_a_bad_projector_and_leaves_nothing(store, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not a multimodal projector"):
        import_model(store, SMOLLM2, name="vlm", projector=projector_file(tmp_path / "p", "gpt2"))
    assert not store.root.exists() or not any(store.root.rglob("*.gguf"))
    assert "vlm" not in ModelStore(store.root).catalog


def test_import_a_vision_model_with_its_projector_then_choose_it(store, tmp_path) -> None:
    projector = projector_file(tmp_path / "mmproj.gguf")
    result = import_model(store, SMOLLM2, name="tiny-vlm", projector=projector, link=True)
    entry = ModelStore(store.root).catalog["tiny-vlm"]
    assert entry.role == "vision" and result.entry == entry
    assert [f.path for f in entry.files] == ["vision/user/tiny-vlm.gguf",
                                             "vision/user/tiny-vlm.mmproj.gguf"]  # fmt: skip
    assert (store.root / entry.files[1].path).read_bytes() == projector.read_bytes()
    choice = choose_vision_model(ModelStore(store.root), "", this_machine(), 2048)
    assert choice.entry.name == "tiny-vlm" and choice.projector_path.name.endswith(".mmproj.gguf")
    # A board with little memory left: refused with the numbers, not loaded.
    board = tmp_path / "board"
    shutil.copytree(BOARDS / "pi5-4gb", board)
    meminfo = board / "proc" / "meminfo"
    meminfo.write_text("\n".join(
        "MemAvailable:   51200 kB" if line.startswith("MemAvailable") else line
        for line in meminfo.read_text().splitlines()) + "\n")  # fmt: skip
    with pytest.raises(VisionModelMissing, match="no imported vision model fits.*tiny-vlm"):
        choose_vision_model(ModelStore(store.root), "", read_memory_state(board), 2048)


def test_describe_with_an_unloadable_vision_model_answers_and_recovers(store, tmp_path) -> None:
    import_model(store, SMOLLM2, name="tiny-vlm", link=True,
                 projector=projector_file(tmp_path / "mmproj.gguf"))  # fmt: skip
    config = dataclasses.replace(AppConfig(models_dir=str(store.root)), vision=VisionConfig())
    service, note = build_vision(config, force=True)
    assert service is not None and "llama.cpp tiny-vlm" in note
    from appliance.vision.image import encode_jpeg

    image = encode_jpeg(render_sign("EXIT"))

    async def looks():
        try:
            return [await service.look("describe", image=image),
                    await service.look("read", image=image)]  # fmt: skip
        finally:
            service.close()

    described, read = asyncio.run(looks())
    assert described.problem == "vision_model"
    assert described.text.startswith("My vision model failed: its process stopped")
    assert read.ok and "EXIT" in read.text  # OCR still works after the failure


def test_models_cli_imports_and_uses_a_vision_model(tmp_path: Path) -> None:
    env = {"APPLIANCE_MODELS_DIR": str(tmp_path / "models"),
           "APPLIANCE_CONFIG": str(tmp_path / "c.toml")}  # fmt: skip
    projector = projector_file(tmp_path / "mmproj.gguf")
    proc = appliance("models", "import", str(SMOLLM2), "--name", "tiny-vlm", "--projector",
                     str(projector), "--link", env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "multimodal projector" in proc.stdout
    assert "appliance models use vision tiny-vlm" in proc.stdout
    proc = appliance("models", "use", "vision", "tiny-vlm", env=env)
    assert proc.returncode == 0, proc.stderr
    assert 'vision_model = "tiny-vlm"' in (tmp_path / "c.toml").read_text()
    proc = appliance("models", "remove", "tiny-vlm", env=env)
    assert proc.returncode == 5 and "configured vision model" in proc.stderr

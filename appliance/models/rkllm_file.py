"""What can be checked of a `.rkllm` file before it is imported.

Rockchip has published no description of the format's header, so its fields (target
platform, toolkit version) cannot be read reliably; the runtime checks them when it loads
the model. What can be told from outside, and is refused here with the fix:

- a file too small to be a converted model;
- a file of another kind under the .rkllm name: a GGUF, a program, a zip archive, a web
  page or a Git LFS pointer (what a failed or half-done download leaves);
- a platform named in the file (its name, as converted models are usually named, e.g.
  "Qwen2.5-1.5B-Instruct_W8A8_RK3588.rkllm", or its first megabyte) that is not this
  board's SoC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from appliance.errors import ModelError

MIN_BYTES = 1 << 20
"""Smaller than any converted language model (the smallest are tens of megabytes)."""
_PLATFORM = re.compile(rb"(?<![a-z0-9])(rk3588s?|rk3576|rk3562|rk3566|rk3568|rv1126b)(?![0-9])",
                       re.I)  # fmt: skip
_OTHER_KINDS = (
    (b"GGUF", "a GGUF (llama.cpp) model: import it under its .gguf name"),
    (b"\x7fELF", "a program or library, not a model"),
    (b"PK\x03\x04", "a zip archive: unpack it and import the .rkllm inside"),
    (b"version https://git-lfs", "a Git LFS pointer, not the model: fetch it with `git lfs "
     "pull` (or download the file itself)"),
)  # fmt: skip


@dataclass(frozen=True)
class RkllmFileInfo:
    size: int
    platform: str | None
    """The SoC the file names (upper case), or None."""
    platform_from: str
    """"name" or "content" ("" when none)."""


def _same_soc(a: str, b: str) -> bool:
    """The RK3588S is an RK3588 in a smaller package: one NPU, one platform name."""
    return a.rstrip("S") == b.rstrip("S")


def read_rkllm_info(path: Path, board_soc: str | None = None) -> RkllmFileInfo:
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as file:
        head = file.read(1 << 20)
    for magic, what in _OTHER_KINDS:
        if head.startswith(magic):
            raise ModelError(f"{path.name} is {what}")
    if head.lstrip()[:1] == b"<":
        raise ModelError(f"{path.name} is a web page, not a model (a failed download?): "
                         "download the file itself")  # fmt: skip
    if size < MIN_BYTES:
        raise ModelError(
            f"{path.name} is {size:,} bytes: too small to be a converted model (they are "
            "tens of megabytes or more); is the download complete?"
        )
    found, where = _PLATFORM.search(path.name.encode()), "name"
    if found is None:
        found, where = _PLATFORM.search(head), "content"
    platform = found.group(1).decode().upper() if found else None
    if platform and board_soc and not _same_soc(platform, board_soc):
        said = "its name says" if where == "name" else "the file says"
        raise ModelError(
            f"{path.name} was converted for {platform} ({said} so) and this board is an "
            f"{board_soc}: a .rkllm runs only on the SoC it was converted for. Convert the "
            f'model again with rkllm-toolkit, target_platform="{board_soc.lower()}"'
        )
    return RkllmFileInfo(size, platform, where if platform else "")

"""Which RKLLM runtime a librkllmrt.so is, and whether the ctypes structs of `rkllm.py`
match its rkllm.h: checked before the first call into the library, because a struct of the
wrong layout is not an error the runtime can report, it is memory corruption.

The runtime has no version function, and its exported names do not tell 1.2.1–1.2.3 from
1.3.0, whose ABI differs. So a library is known by its content: the git blob SHA-1 of
each `librkllmrt.so` Rockchip published in airockchip/rknn-llm
(rkllm-runtime/Linux/librkllm_api/{aarch64,armhf}), read from that repository's trees.
A build the table does not know is refused, unless the owner says which header it was
built with (`llm.rkllm_runtime`).

HEADERS holds, for every distinct rkllm.h, the sizes and offsets the structs have on a
64-bit board (from Rockchip's headers, compiled), which runtime releases carry it, and
whether `rkllm.py` follows it. The ctypes structs are compared with the supported entry
before use.
"""

from __future__ import annotations

import ctypes
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from appliance.errors import ModelError


@dataclass(frozen=True)
class Header:
    """One published rkllm.h."""

    releases: tuple[str, ...]
    layout: Mapping[str, int]
    """sizeof / offsetof on LP64 (aarch64)."""
    supported: bool
    change: str = ""
    """How it differs from the header `rkllm.py` follows (for a refusal)."""


def _layout(extend: int, param: int, extend_at: int, input_: int, type_at: int,
            infer: int, result: int) -> dict[str, int]:  # fmt: skip
    return {"RKLLMExtendParam": extend, "RKLLMParam": param,
            "RKLLMParam.extend_param": extend_at, "RKLLMInput": input_,
            "RKLLMInput.input_type": type_at, "RKLLMInferParam": infer,
            "RKLLMResult": result}  # fmt: skip


HEADERS = (
    Header(("1.0.0", "1.0.1", "1.0.2"), {}, False,
           "rkllm_init takes RKLLMParam by value and rkllm_run a plain prompt"),
    Header(("1.1.0", "1.1.1", "1.1.2", "1.1.3", "1.1.4"),
           _layout(116, 200, 80, 32, 0, 24, 32), False,
           "RKLLMParam has no n_keep, RKLLMInput no role, the callback returns void"),
    Header(("1.2.0",), _layout(120, 208, 88, 32, 0, 32, 48), False,
           "RKLLMInput has no role, the callback returns void"),
    Header(("1.2.1b1",), _layout(120, 208, 88, 56, 0, 32, 48), False,
           "RKLLMInput has no role, the callback returns void"),
    Header(("1.2.1", "1.2.2", "1.2.3"), _layout(120, 208, 88, 64, 12, 32, 72), True),
    Header(("1.3.0",), _layout(120, 184, 60, 160, 12, 40, 72), False,
           "rkllm_init takes an RKLLMCallback struct, RKLLMParam lost img_start/end/content, "
           "RKLLMInferParam gained sampling_params"),
)  # fmt: skip
SUPPORTED = next(h for h in HEADERS if h.supported)

KNOWN_RUNTIMES: Mapping[str, str] = {
    # git blob SHA-1 of librkllmrt.so → release (Linux aarch64, then armhf where published)
    "53e00993ebbc7797df09673f806479e8642db946": "1.0.0",
    "a026cbe60905af0ad6c07dfa2fcc339dd4b9fa10": "1.0.1",
    "c913ab1569dfed48916c05fcd898f8d3f9dafe04": "1.0.2",
    "66dfdc7c25cdca9ccf9930798118e17abf7592ff": "1.1.0",
    "bfca051375287d0f5aa754a7b8681b4ede52e259": "1.1.1",
    "e8f4afc38c7394beeff83003dbc772412f649a44": "1.1.2",
    "68e79327e82f675413956be615f48c62ccd0f16e": "1.1.3",
    "3bb8cb6172c4c06e1c622c8f8c579888378784f4": "1.1.4",
    "d45ee9b8dcb9ef27d7dd875ce3be3d5e6dfb654d": "1.2.0",
    "db041c01bba5e0e8f624bb2ff50d48825dde1bfc": "1.2.1b1",
    "6b9439d59f2fe4bb8ef5ee2b09c102f1bf993da9": "1.2.1",
    "7025f35825e04ad75d839d10392e3c02cc88e57a": "1.2.1",
    "8ed9cca16f8d5ad8f7cdd7d393de6561182b3395": "1.2.2",
    "d5953fdad6e60521f1dc696f6d638425c93ba08d": "1.2.2",
    "0084abc34ab43359cfa9fd5d4c92ece34127dbd0": "1.2.3",
    "fe1ca6849603a770c54f82d26b826a120c79a01a": "1.2.3",
    "34167b32f99cb7ab19e21fb579fb750d96b878f1": "1.3.0",
    "17c9063b46168c4e7d093d6fedb097874f92d076": "1.3.0",
}
RELEASES = tuple(release for header in HEADERS for release in header.releases)
INSTALL = (
    "install librkllmrt.so 1.2.1, 1.2.2 or 1.2.3 from airockchip/rknn-llm "
    "(rkllm-runtime/Linux/librkllm_api/aarch64) with a model converted by the same toolkit "
    "version"
)


def git_blob_sha1(path: Path) -> str:
    """The id git gives the file's content (`git hash-object`)."""
    digest = hashlib.sha1(usedforsecurity=False)
    digest.update(b"blob %d\0" % path.stat().st_size)
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def loaded_file(name: str, maps: Path = Path("/proc/self/maps")) -> Path | None:
    """The file a library loaded by `name` (a path, or a soname found by the loader) was
    mapped from."""
    if "/" in name:
        return Path(name).resolve()
    try:
        lines = maps.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        mapped = line.split(maxsplit=5)
        if len(mapped) == 6 and Path(mapped[5]).name.startswith(name):
            return Path(mapped[5])
    return None


def header_of(release: str) -> Header | None:
    return next((h for h in HEADERS if release in h.releases), None)


def runtime_release(library: Path | None, declared: str = "",
                    known: Mapping[str, str] = KNOWN_RUNTIMES) -> str:  # fmt: skip
    """The runtime's release: `declared` (llm.rkllm_runtime), else found by content.
    ModelError when it cannot be known or its header is not the one `rkllm.py` follows."""
    where = str(library) if library is not None else "librkllmrt.so"
    if declared:
        release = declared
    elif library is None:
        raise ModelError(f"{where}: cannot find which file was loaded, so its version cannot "
                         f"be checked; {INSTALL}")  # fmt: skip
    else:
        blob = git_blob_sha1(library)
        found = known.get(blob)
        if found is None:
            raise ModelError(
                f"{where} is not an RKLLM runtime release this appliance knows (git blob "
                f"{blob[:12]}), so its structs cannot be checked against rkllm.h: {INSTALL}; "
                "or, for a build of your own from the 1.2.1–1.2.3 header, set llm.rkllm_runtime "
                '= "1.2.3"'
            )
        release = found
    header = header_of(release)
    if header is None:
        raise ModelError(f"RKLLM runtime {release!r} is not a known release (known: "
                         f"{', '.join(RELEASES)})")  # fmt: skip
    if not header.supported:
        raise ModelError(
            f"{where} is RKLLM runtime {release}, whose rkllm.h differs from the 1.2.1–1.2.3 "
            f"one this appliance's structs follow ({header.change}): {INSTALL}"
        )
    return release


def check_structs(structs: Mapping[str, type], header: Header = SUPPORTED) -> None:
    """The ctypes structs have the sizes and offsets of `header` (on a 64-bit board)."""
    if ctypes.sizeof(ctypes.c_void_p) != 8:
        raise ModelError("the RKLLM struct layouts are checked for 64-bit boards (aarch64); "
                         "this system is 32-bit")  # fmt: skip
    for key, expected in header.layout.items():
        struct_name, _, field = key.partition(".")
        struct = structs[struct_name]
        actual = getattr(struct, field).offset if field else ctypes.sizeof(struct)
        if actual != expected:
            raise ModelError(f"{key} is {actual} bytes here and {expected} in rkllm.h "
                             f"{header.releases[0]}: the RKLLM binding is broken")  # fmt: skip

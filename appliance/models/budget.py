"""The memory budget: what the board really has, and whether a model load will fit.

Two kinds of memory matter and they behave differently:

- **Weights** are mmap'ed file pages: clean, shared, evicted and re-read from the SD card
  under pressure, never written to zram or swap. A model whose weights do not fit in RAM
  still "loads" but thrashes the card on every token, so weights must fit in RAM.
- **Anonymous memory** (KV cache, compute buffers, the Python heap) can be pushed into
  zram, where it costs 1/ratio of its size at the compression ratio the board achieves
  (read from `mm_stat`), at a latency cost.

`read_memory_state(root)` reads `/proc` and `/sys` under `root`, so tests point it at
fixture trees of real boards. `plan_load()` decides: load as is, load with a smaller
context, fall back to a smaller model, or refuse with the numbers and the fix.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from appliance.models.gguf import GgufInfo

MIB = 1024 * 1024
DEFAULT_ZRAM_RATIO = {"lz4": 2.1, "lzo": 2.1, "lzo-rle": 2.1, "zstd": 2.9, "lz4hc": 2.3}
"""Typical ratios, used only until a zram device holds enough data to measure its own."""
_MIN_MEASURED_BYTES = 16 * MIB
RESERVE_BYTES = 128 * MIB
"""Kept free for the kernel, page cache of the running program and audio buffers."""


@dataclass(frozen=True)
class ZramDevice:
    name: str
    disksize: int
    orig_data_size: int
    compr_data_size: int
    mem_used_total: int
    algorithm: str
    is_swap: bool

    @property
    def measured(self) -> bool:
        return self.orig_data_size >= _MIN_MEASURED_BYTES and self.compr_data_size > 0

    @property
    def ratio(self) -> float:
        """Compression ratio achieved so far, or a typical one for the algorithm."""
        if self.measured:
            return self.orig_data_size / self.compr_data_size
        return DEFAULT_ZRAM_RATIO.get(self.algorithm, 2.0)

    @property
    def free(self) -> int:
        return max(0, self.disksize - self.orig_data_size)


@dataclass(frozen=True)
class MemoryState:
    mem_total: int
    mem_available: int
    swap_total: int
    swap_free: int
    zram: tuple[ZramDevice, ...] = ()
    swappiness: int | None = None
    cgroup_limit: int | None = None
    cgroup_usage: int | None = None
    notes: tuple[str, ...] = ()
    """Entries that could not be read, in plain words."""

    @property
    def zram_swap(self) -> tuple[ZramDevice, ...]:
        return tuple(z for z in self.zram if z.is_swap)

    @property
    def ram_headroom(self) -> int:
        """RAM a new load may take: MemAvailable, capped by the cgroup limit, less the
        reserve for the system."""
        room = self.mem_available
        if self.cgroup_limit is not None:
            room = min(room, self.cgroup_limit - (self.cgroup_usage or 0))
        return max(0, room - RESERVE_BYTES)

    @property
    def zram_capacity(self) -> int:
        """Anonymous bytes zram swap can still take (before compression)."""
        if self.swappiness == 0:
            return 0  # the kernel will not swap anonymous pages
        return sum(z.free for z in self.zram_swap)

    @property
    def zram_ratio(self) -> float:
        devices = self.zram_swap
        if not devices:
            return 1.0
        return sum(z.ratio for z in devices) / len(devices)


# ---- reading the board --------------------------------------------------------------


def _read(path: Path, notes: list[str]) -> str | None:
    try:
        return path.read_text("utf-8", errors="replace")
    except FileNotFoundError:
        return None
    except (PermissionError, IsADirectoryError, OSError) as err:
        notes.append(f"cannot read {path}: {getattr(err, 'strerror', None) or err}")
        return None


def _int(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text.strip().split()[0])
    except (ValueError, IndexError):
        return None


def _meminfo(text: str) -> dict[str, int]:
    values = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            scale = 1024 if len(parts) > 1 and parts[1] == "kB" else 1
            values[key.strip()] = int(parts[0]) * scale
    return values


def _active_algorithm(text: str | None) -> str:
    if not text:
        return "unknown"
    for word in text.split():
        if word.startswith("[") and word.endswith("]"):
            return word[1:-1]
    return text.split()[0]


def _cgroup_paths(root: Path, notes: list[str]) -> tuple[int | None, int | None]:
    """The memory limit and usage of this process's cgroup (v2, else v1)."""
    own = _read(root / "proc/self/cgroup", notes) or ""
    for line in own.splitlines():
        hierarchy, _, path = line.partition("::")
        if hierarchy == "0":  # cgroup v2 unified hierarchy
            base = root / "sys/fs/cgroup" / path.strip().lstrip("/")
            limit_text = _read(base / "memory.max", notes)
            usage = _int(_read(base / "memory.current", notes))
            if limit_text is None or limit_text.strip() == "max":
                return None, usage
            return _int(limit_text), usage
    v1 = root / "sys/fs/cgroup/memory"
    limit = _int(_read(v1 / "memory.limit_in_bytes", notes))
    usage = _int(_read(v1 / "memory.usage_in_bytes", notes))
    if limit is not None and limit >= 1 << 60:  # v1 writes a huge number for "no limit"
        limit = None
    return limit, usage


def read_memory_state(root: Path = Path("/")) -> MemoryState:
    notes: list[str] = []
    meminfo_text = _read(root / "proc/meminfo", notes)
    if meminfo_text is None:
        raise OSError(f"cannot read {root / 'proc/meminfo'}: is this Linux?")
    info = _meminfo(meminfo_text)
    swaps = _read(root / "proc/swaps", notes) or ""
    swap_names = {line.split()[0].rsplit("/", 1)[-1] for line in swaps.splitlines()[1:] if line}
    devices = []
    block = root / "sys/block"
    for device in sorted(block.glob("zram*")) if block.is_dir() else []:
        disksize = _int(_read(device / "disksize", notes)) or 0
        if disksize == 0:
            continue  # configured but not set up
        mm = (_read(device / "mm_stat", notes) or "").split()
        numbers = [int(x) for x in mm[:3]] if len(mm) >= 3 else [0, 0, 0]
        devices.append(
            ZramDevice(
                name=device.name,
                disksize=disksize,
                orig_data_size=numbers[0],
                compr_data_size=numbers[1],
                mem_used_total=numbers[2],
                algorithm=_active_algorithm(_read(device / "comp_algorithm", notes)),
                is_swap=device.name in swap_names,
            )
        )
    limit, usage = _cgroup_paths(root, notes)
    return MemoryState(
        mem_total=info.get("MemTotal", 0),
        mem_available=info.get("MemAvailable", info.get("MemFree", 0)),
        swap_total=info.get("SwapTotal", 0),
        swap_free=info.get("SwapFree", 0),
        zram=tuple(devices),
        swappiness=_int(_read(root / "proc/sys/vm/swappiness", notes)),
        cgroup_limit=limit,
        cgroup_usage=usage,
        notes=tuple(notes),
    )


# ---- what a model needs ---------------------------------------------------------------


@dataclass(frozen=True)
class ModelNeed:
    """What loading one model takes."""

    name: str
    weights: int
    """File-backed (mmap'ed) bytes: must fit in RAM, never go to zram."""
    anon: int
    """Anonymous bytes (KV cache, buffers): zram can absorb some."""
    context: int | None = None
    """For a language model, the context the anonymous part was computed for."""


def llm_need(
    name: str,
    *,
    weights: int,
    context: int,
    kv_bytes_per_token: int,
    vocab: int,
    heads: int,
) -> ModelNeed:
    """llama.cpp's allocation for a context, from the model's shape.

    KV cache: one K and one V vector per layer per token. Compute buffer: the larger of
    the logits of a 512-token batch and the attention scores of that batch over the
    context, as llama.cpp reserves them (SmolLM2-135M measured at 512/2048/8192 tokens:
    98/99/166 MiB, this gives 97/97/163; Gemma 3 270M with its 262k vocabulary at 2048:
    514.5 MiB, this gives 512). Plus 16 MiB of runtime state.
    """
    ubatch = min(512, context)
    compute = max(4 * ubatch * vocab, 4 * ubatch * context * (heads + 1))
    anon = kv_bytes_per_token * context + compute + 16 * MIB
    return ModelNeed(name, weights=weights, anon=anon, context=context)


def gguf_need(name: str, info: GgufInfo, context: int) -> ModelNeed:
    """What llama.cpp will take for this GGUF at a context (capped at its training one)."""
    return llm_need(
        name,
        weights=info.tensor_data_bytes,
        context=min(context, info.context_length or context),
        kv_bytes_per_token=info.kv_cache_bytes(1),
        vocab=info.vocab_size or 32_000,  # a typical vocabulary when the file has none
        heads=info.head_count,
    )


RKLLM_KV_PER_TOKEN = 64 * 1024
"""The NPU runtime's KV cache per token of context, reserved generously: a .rkllm file
does not state its model's shape here, and in float16 a Qwen2.5 1.5B takes 28 KiB per
token, a 3B 36 KiB, a 7B 56 KiB."""
RKLLM_RUNTIME = 128 * MIB
"""The runtime's own buffers, reserved."""


def rkllm_need(name: str, file_bytes: int, context: int) -> ModelNeed:
    """What Rockchip's NPU runtime takes. The NPU has no memory of its own: the runtime
    copies the weights into buffers of system RAM that are neither file-backed nor
    swappable, so all of it is counted as `weights` here (none of it can go to zram)."""
    need = file_bytes + RKLLM_KV_PER_TOKEN * context + RKLLM_RUNTIME
    return ModelNeed(name, weights=need, anon=0, context=context)


# ---- deciding -----------------------------------------------------------------------


@dataclass(frozen=True)
class LoadPlan:
    decision: str
    """load, load_with_zram, smaller_context, fallback or refuse."""
    model: str
    context: int | None
    need: ModelNeed | None
    zram_bytes: int = 0
    """Anonymous bytes expected to end up in zram."""
    mlock: bool = False
    """Pin the weights in RAM: only when there is room to spare."""
    message: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return self.decision != "refuse"


def _mb(n: float) -> str:
    return f"{n / MIB:,.0f} MB"


def fit(need: ModelNeed, state: MemoryState) -> tuple[bool, int]:
    """Does it fit, and how many anonymous bytes must go to zram for it to."""
    room = state.ram_headroom
    if need.weights > room:
        return False, 0
    total = need.weights + need.anon
    if total <= room:
        return True, 0
    ratio = state.zram_ratio
    if ratio <= 1.0 or state.zram_capacity == 0:
        return False, 0
    # Each byte moved to zram frees (1 - 1/ratio) of a byte of RAM.
    to_zram = int((total - room) / (1.0 - 1.0 / ratio)) + 1
    if to_zram > min(state.zram_capacity, need.anon):
        return False, 0
    return True, to_zram


ZRAM_SHARE_OK = 0.25
"""Up to this share of a model's working memory may live in zram before a smaller context
(all in RAM) is preferred: the KV cache is read on every token, and decompressing it
each time makes replies slow."""


def plan_load(
    need: ModelNeed,
    state: MemoryState,
    *,
    smaller_context: Callable[[int], ModelNeed] | None = None,
    fallbacks: Sequence[ModelNeed] = (),
    min_context: int = 512,
) -> LoadPlan:
    """Decide how (and whether) to load a model. Never plans a load that will not fit.

    In order of preference: as is in RAM (or with a little zram); with a smaller context;
    as is with much zram; a smaller model of the same role; refuse."""
    ok, zram = fit(need, state)
    if ok and zram <= ZRAM_SHARE_OK * need.anon:
        return _as_is(need, state, zram)
    if smaller_context is not None and need.context:
        context = need.context // 2
        while context >= min_context:
            smaller = smaller_context(context)
            small_ok, small_zram = fit(smaller, state)
            if small_ok and small_zram <= ZRAM_SHARE_OK * smaller.anon:
                return LoadPlan(
                    "smaller_context", need.name, context, smaller, small_zram, False,
                    f"{need.name}: context {need.context} needs {_mb(need.weights + need.anon)}"
                    f" but only {_mb(state.ram_headroom)} is free; loading with context "
                    f"{context} ({_mb(smaller.weights + smaller.anon)})",
                    state.notes,
                )  # fmt: skip
            context //= 2
    if ok:
        return _as_is(need, state, zram)
    for fallback in fallbacks:
        ok, zram = fit(fallback, state)
        if ok:
            return LoadPlan(
                "fallback", fallback.name, fallback.context, fallback, zram, False,
                f"{need.name} needs {_mb(need.weights + need.anon)} but only "
                f"{_mb(state.ram_headroom)} is free; using the smaller {fallback.name} "
                f"({_mb(fallback.weights + fallback.anon)}) instead",
                state.notes,
            )  # fmt: skip
    zram_note = (
        f" and zram can take {_mb(state.zram_capacity)} more at {state.zram_ratio:.1f}:1"
        if state.zram_capacity
        else " and there is no zram swap"
    )
    return LoadPlan(
        "refuse", need.name, need.context, need, 0, False,
        f"{need.name} needs {_mb(need.weights)} of weights + {_mb(need.anon)} of working "
        f"memory, but only {_mb(state.ram_headroom)} of RAM is free{zram_note}. Choose a "
        f"smaller model (`appliance models use llm NAME`), lower llm.context, or stop other "
        f"programs.",
        state.notes,
    )  # fmt: skip


def _as_is(need: ModelNeed, state: MemoryState, zram: int) -> LoadPlan:
    spare = state.ram_headroom - need.weights - need.anon
    mlock = zram == 0 and spare >= need.weights  # room for the weights twice over
    message = (
        f"{need.name}: {_mb(need.weights)} weights + {_mb(need.anon)} working memory "
        f"fit in {_mb(state.ram_headroom)} free"
    )
    if zram:
        message += f" with {_mb(zram)} of it in zram (slower)"
    decision = "load" if zram == 0 else "load_with_zram"
    return LoadPlan(decision, need.name, need.context, need, zram, mlock, message, state.notes)


def this_machine() -> MemoryState:
    return read_memory_state(Path(os.environ.get("APPLIANCE_SYSROOT", "/")))

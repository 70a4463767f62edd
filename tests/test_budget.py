"""The memory budget against fixture trees of real boards (their /proc and /sys)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from appliance.models.budget import (
    MIB,
    RESERVE_BYTES,
    MemoryState,
    ModelNeed,
    llm_need,
    plan_load,
    read_memory_state,
)

BOARDS = Path(__file__).parent / "fixtures" / "boards"
GIB = 1024 * MIB


def board(name: str) -> MemoryState:
    return read_memory_state(BOARDS / name)


def smollm2(context: int = 2048) -> ModelNeed:
    # SmolLM2-135M: 30 layers × 3 KV heads × 64 dims × K+V × f16 = 23,040 bytes per token
    return llm_need("smollm2-135m", weights=92 * MIB, context=context,
                    kv_bytes_per_token=23_040, vocab=49_152, heads=9)  # fmt: skip


def qwen_1_5b(context: int = 4096) -> ModelNeed:
    # Qwen2.5-1.5B Q4_K_M: 28 layers × 2 KV heads × 128 dims × 2 × 2 bytes = 28,672 B/token
    return llm_need("qwen2.5-1.5b", weights=1_066 * MIB, context=context,
                    kv_bytes_per_token=28_672, vocab=151_936, heads=12)  # fmt: skip


def test_llm_need_matches_what_llama_cpp_allocated_for_smollm2():
    # Measured with llama-cpp-python 0.3.36 (verbose load log): KV 11.25/45/180 MiB and
    # compute 98.25/99.38/166.38 MiB at 512/2048/8192 tokens.
    for context, measured_mib in ((512, 11.25 + 98.25), (2048, 45 + 99.38), (8192, 180 + 166.38)):
        estimate = (smollm2(context).anon - 16 * MIB) / MIB
        assert estimate == pytest.approx(measured_mib, rel=0.05), context


def test_llm_need_matches_what_llama_cpp_allocated_for_gemma3():
    # Gemma 3 270M at 2048 tokens: KV 6 + 30 MiB, compute 514.5 MiB (verbose load log).
    need = llm_need("gemma3", weights=235 * MIB, context=2048, kv_bytes_per_token=18_432,
                    vocab=262_144, heads=4)  # fmt: skip
    assert (need.anon - 16 * MIB) / MIB == pytest.approx(36 + 514.5, rel=0.02)


def test_pi4_2gb_with_zram_reads_its_real_state():
    state = board("pi4-2gb-zram")
    assert state.mem_total == 1893524 * 1024 and state.mem_available == 1204112 * 1024
    (zram,) = state.zram
    assert zram.is_swap and zram.algorithm == "zstd" and zram.measured
    assert zram.ratio == pytest.approx(104857600 / 36700160)
    assert zram.free == 968880128 - 104857600
    assert state.swappiness == 100 and state.cgroup_limit is None and state.notes == ()


def test_rk3588_zram_not_yet_used_falls_back_to_the_algorithms_typical_ratio():
    (zram,) = board("rk3588-8gb").zram
    assert not zram.measured and zram.algorithm == "lz4" and zram.ratio == pytest.approx(2.1)


def test_container_limit_caps_the_headroom():
    state = board("container-1gb")
    assert state.mem_available > 20 * GIB
    assert state.cgroup_limit == GIB and state.cgroup_usage == 300 * MIB
    assert state.ram_headroom == GIB - 300 * MIB - RESERVE_BYTES
    assert state.zram == () and state.zram_capacity == 0


@pytest.mark.parametrize("name", ["pi4-2gb-zram", "pi5-4gb", "rk3588-8gb", "container-1gb"])
def test_the_default_model_loads_on_every_board(name):
    plan = plan_load(smollm2(), board(name))
    assert plan.decision == "load" and plan.context == 2048


def test_a_1_5b_model_on_each_board():
    fallbacks = [smollm2()]
    decide = {
        name: plan_load(qwen_1_5b(), board(name), smaller_context=qwen_1_5b, fallbacks=fallbacks)
        for name in ("pi4-2gb-zram", "pi5-4gb", "rk3588-8gb", "container-1gb")
    }
    assert decide["pi5-4gb"].decision == "load"
    assert decide["rk3588-8gb"].decision == "load" and decide["rk3588-8gb"].mlock
    # 1 GiB container: the weights alone do not fit → the smaller model of the same role.
    assert decide["container-1gb"].decision == "fallback"
    assert decide["container-1gb"].model == "smollm2-135m"
    assert "qwen2.5-1.5b" in decide["container-1gb"].message
    # Pi 4 2 GB: 1,066 MB of weights exceed its 1,048 MB of headroom; zram cannot hold
    # weights, so it too falls back.
    assert decide["pi4-2gb-zram"].decision == "fallback"


def test_zram_absorbs_working_memory_but_never_weights():
    state = board("pi4-2gb-zram")
    room = state.ram_headroom
    # Working memory 200 MB over the RAM headroom: zram at ~2.9:1 takes ~300 MB of it.
    need = ModelNeed("big-kv", weights=room - 400 * MIB, anon=600 * MIB)
    plan = plan_load(need, state)
    assert plan.decision == "load_with_zram" and 250 * MIB < plan.zram_bytes < 350 * MIB
    assert "zram" in plan.message and not plan.mlock
    # The same total as weights cannot be swapped: refused.
    too_big = ModelNeed("big-weights", weights=room + 200 * MIB, anon=0)
    assert plan_load(too_big, state).decision == "refuse"


def test_swappiness_zero_means_zram_takes_nothing(tmp_path):
    import shutil

    root = tmp_path / "board"
    shutil.copytree(BOARDS / "pi4-2gb-zram", root)
    (root / "proc/sys/vm/swappiness").write_text("0\n")
    state = read_memory_state(root)
    assert state.zram_capacity == 0
    need = ModelNeed("big-kv", weights=state.ram_headroom - 400 * MIB, anon=600 * MIB)
    assert plan_load(need, state).decision == "refuse"


def test_a_smaller_context_before_a_fallback():
    state = board("rk3588-8gb")
    huge_context = qwen_1_5b(131072)
    plan = plan_load(huge_context, state, smaller_context=qwen_1_5b, fallbacks=[smollm2()])
    assert plan.decision == "smaller_context" and plan.model == "qwen2.5-1.5b"
    assert plan.context == 65536
    assert "context" in plan.message


def test_refusal_names_the_numbers_and_the_fix():
    state = board("container-1gb")
    plan = plan_load(qwen_1_5b(), state)
    assert plan.decision == "refuse" and not plan.ok
    assert "1,066 MB" in plan.message and "appliance models use llm" in plan.message
    assert "no zram" in plan.message


def test_unreadable_entries_are_reported_not_raised(tmp_path):
    import shutil

    root = tmp_path / "board"
    shutil.copytree(BOARDS / "pi4-2gb-zram", root)
    mm_stat = root / "sys/block/zram0/mm_stat"
    mm_stat.unlink()
    mm_stat.mkdir()  # reading it fails, as an unreadable sysfs file would
    state = read_memory_state(root)
    assert any("mm_stat" in note for note in state.notes)
    assert state.zram[0].orig_data_size == 0  # read as empty, not a crash


def test_no_plan_ever_exceeds_the_memory_it_counts_on():
    rng = random.Random(7)
    for _ in range(2000):
        state = MemoryState(
            mem_total=8 * GIB,
            mem_available=rng.randint(200, 8000) * MIB,
            swap_total=0,
            swap_free=0,
            swappiness=rng.choice([0, 60, 100]),
        )
        need = ModelNeed("m", weights=rng.randint(10, 6000) * MIB, anon=rng.randint(0, 3000) * MIB)
        plan = plan_load(need, state)
        if plan.ok:
            assert need.weights + need.anon - plan.zram_bytes <= state.ram_headroom

"""`appliance bench`: the figures as a table of (measure, value, target) rows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Say = Callable[..., None]


def say_table(rows: list[tuple[str, str, str]], say: Say) -> None:
    width = max((len(r[0]) for r in rows), default=10)
    say(f"\n{'measure'.ljust(width)}  {'value':>10}  target")
    for name, value, target in rows:
        say(f"{name.ljust(width)}  {value:>10}  {target}")
    say("")


def action_rows(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    acts = report.get("actions", {})
    if not acts:
        return []

    def ms(key: str) -> str:
        return f"{acts[key] * 1000:.0f} ms" if acts.get(key) else "no valid call"

    runs = acts.get("runs", 0)
    rows = [
        (f"End of speech → action done, fast path (median of {runs})", ms("fast_s"), ""),
        (f"End of speech → action done, LLM tool call (median of {runs})", ms("llm_s"), ""),
        ("End of speech → answer ready, fast path", ms("fast_answer_s"), ""),
        ("End of speech → answer ready, LLM call + phrasing", ms("llm_answer_s"), ""),
    ]
    if acts.get("llm_over_fast"):
        rows.append(("Action done: LLM path / fast path", f"{acts['llm_over_fast']:.1f}×", ""))
    if acts.get("llm_over_fast_answer"):
        rows.append(
            ("Answer ready: LLM path / fast path", f"{acts['llm_over_fast_answer']:.1f}×", "")
        )
    phrasing = acts.get("phrasing")
    if phrasing:
        rows.append(
            (
                "LLM phrasings that kept the facts (used)",
                f"{phrasing['accepted']}/{phrasing['requests']}",
                "",
            )
        )
    return rows


def print_table(report: dict[str, Any], say: Say) -> None:
    median = report["median"]
    stream = report["streaming"]
    wake = report["wake_listening"]
    cold = report["cold_start"]
    rows = [
        ("STT (whisper.cpp)", f"{median['stt'] * 1000:.0f} ms", ""),
        ("LLM first token", f"{median['llm_first_token'] * 1000:.0f} ms", ""),
        ("LLM first sentence", f"{median['llm_first_sentence'] * 1000:.0f} ms", ""),
        ("TTS first sentence", f"{median['tts_first_sentence'] * 1000:.0f} ms", ""),
        ("End of speech → first audio (TTFA)", f"{median['ttfa'] * 1000:.0f} ms", ""),
        ("Critical path, stages in isolation", f"{median['critical_path'] * 1000:.0f} ms", ""),
        ("TTFA / critical path", f"{median['ttfa_over_critical_path']:.2f}", "≤ 1.10"),
        (
            f"First audio: full reply / streaming ({stream['sentences']:.0f} sentences)",
            f"{stream['ratio_full_over_streaming']:.2f}×",
            "≥ 2×",
        ),
        (
            "Wake listening CPU (share of one core)",
            f"{wake['cpu_share_of_one_core'] * 100:.1f} %",
            "≤ 5 %",
        ),
        ("Peak RSS, all models loaded", f"{report['peak_rss_mb']:.0f} MB", "≤ 800 MB"),
        ("Cold start to listening", f"{cold['cold_start_s']:.2f} s", "≤ 1.5 s"),
        ("Cold start to every model loaded", f"{cold['all_loaded_s']:.2f} s", ""),
    ]
    barge = report.get("barge_in", {})
    if barge.get("interrupted"):
        rows.append(
            (
                "Barge-in: wake recognised → speaker silent",
                f"{barge['recognised_to_silence_s'] * 1000:.0f} ms",
                "",
            )
        )
    rows += action_rows(report)
    own = report.get("self_wakes")
    if own:
        rows.append(
            (
                f"False self-wakes/hour of own speech (Speex, {own['own_speech_minutes']:.0f} min)",
                f"{own['speex_per_hour']:.1f}",
                "",
            )
        )
        rows.append(
            (
                "False self-wakes/hour of own speech (no AEC, threshold 0.85)",
                f"{own['no_aec_per_hour']:.1f}",
                "",
            )
        )
        if "jarvis_replies" in own:
            rows.append(
                (
                    'Replies saying "Jarvis" early that woke it (Speex kept + gate / reset, '
                    "no gate)",
                    f"{own['jarvis_woke']:.0f} / {own['jarvis_woke_before']:.0f} of "
                    f"{own['jarvis_replies']:.0f}",
                    "",
                )
            )
        for name, label in (("speex", "Speex"), ("no_aec", "no AEC")):
            if f"{name}_stops_per_hour" in own:
                rows.append(
                    (
                        f'False "stop"s/hour of own speech ({label}, keyword head)',
                        f"{own[f'{name}_stops_per_hour']:.1f}",
                        "",
                    )
                )
    if "vision" in report:
        from appliance.bench.vision import table_rows

        rows += table_rows(report["vision"])
    say_table(rows, say)
    say(
        "language model            load (mmap / read)   RSS file+anon (mmap / read)     "
        "first token  tokens/s"
    )
    for name, row in report["llm_backends"].items():
        if name == "rkllm":
            state = "available" if row["available"] else "not available"
            say(f"{name:<26} {state}: {row['reason']}")
            continue
        m, r = row["mmap"], row["read"]
        say(
            f"{name:<26} {m['load_s']:5.2f} s / {r['load_s']:5.2f} s     "
            f"{m['file_mb']:4.0f}+{m['anon_mb']:4.0f} / {r['file_mb']:4.0f}+{r['anon_mb']:4.0f} MB"
            f"          {m['ttft_s'] * 1000:5.0f} ms  {m['tokens_per_s']:6.1f}"
        )
    say("")

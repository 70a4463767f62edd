"""Numbers and durations as people say them (and as whisper writes them): "twenty three",
"23", "an hour and a half", "ninety seconds", "2.5 minutes"; and back into words."""

from __future__ import annotations

import re
from collections.abc import Callable

_SMALL = {
    "zero": 0, "oh": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
    "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17,
    "eighteen": 18, "nineteen": 19,
}  # fmt: skip
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
         "eighty": 80, "ninety": 90}  # fmt: skip
_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000}
_NUMBER_WORDS = set(_SMALL) | set(_TENS) | set(_SCALES)
_DIGITS = re.compile(r"^\d+(?:\.\d+)?$")

UNITS = {
    "second": 1, "seconds": 1, "sec": 1, "secs": 1,
    "minute": 60, "minutes": 60, "min": 60, "mins": 60,
    "hour": 3600, "hours": 3600, "hr": 3600, "hrs": 3600,
    "day": 86400, "days": 86400, "week": 604800, "weeks": 604800,
    "month": 2_629_800, "months": 2_629_800, "year": 31_557_600, "years": 31_557_600,
}  # fmt: skip


def tokens(text: str) -> list[str]:
    """Lower-case words and numbers; "twenty-three" → twenty three, "1,000" → 1000,
    "50%" → 50 percent, "17 x 23" / "17*23" → 17 times 23."""
    text = text.lower().replace("’", "'")
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)
    text = re.sub(r"(\d)\s*%", r"\1 percent", text)
    text = re.sub(r"(?<=\d)\s*[x×*]\s*(?=\d)", " times ", text)
    text = re.sub(r"(?<=\d)\s*\+\s*(?=\d)", " plus ", text)
    text = re.sub(r"(?<=\d)\s+[-−–]\s+(?=\d)", " minus ", text)
    text = re.sub(r"(?<=\d)\s*[/÷]\s*(?=\d)", " divided by ", text)
    text = re.sub(r"(?<=\d)(?=[a-z])|(?<=[a-z])(?=\d)", " ", text)  # "5min" → 5 min
    text = re.sub(r"(?<!\d)\.|\.(?!\d)", " ", text)
    return re.findall(r"\d+(?:\.\d+)?|[a-z']+", text)


def parse_number(words: list[str], start: int) -> tuple[float, int] | None:
    """A number at `words[start]`: digits, or number words ("one hundred and five").
    Returns (value, index after it) or None."""
    if start >= len(words):
        return None
    if _DIGITS.match(words[start]):
        return float(words[start]), start + 1
    # What the last word was decides what may follow: "twenty five" and "one hundred and
    # five" go on; "ten ten" (whisper's stutter) or "two three" are two numbers, not one.
    total, current, i, last = 0, 0, start, ""
    while i < len(words):
        word = words[i]
        if word in _SMALL and word != "oh" and _may_follow(last, _SMALL[word]):
            current, last = current + _SMALL[word], "small"
        elif word in _TENS and last in ("", "hundred", "scale"):
            current, last = current + _TENS[word], "tens"
        elif word == "hundred" and last in ("small", "tens") and current < 100:
            current, last = current * 100, "hundred"
        elif word in ("thousand", "million") and last in ("small", "tens", "hundred"):
            total, current, last = total + current * _SCALES[word], 0, "scale"
        elif (word == "and" and last in ("hundred", "scale") and i + 1 < len(words)
              and words[i + 1] in _NUMBER_WORDS):  # fmt: skip
            i += 1
            continue
        else:
            break
        i += 1
    if not last:
        return None
    return float(total + current), i


def _may_follow(last: str, value: int) -> bool:
    """Whether a word of 0–19 may come after a number word of the kind `last`."""
    return last in ("", "hundred", "scale") or (last == "tens" and 1 <= value <= 9)


def every_value(
    words: list[str], parse: Callable[[list[str], int], tuple[float, int] | None]
) -> list[float]:
    """Every value `parse` (parse_number or parse_duration) finds, left to right."""
    found, i = [], 0
    while i < len(words):
        parsed = parse(words, i)
        if parsed is None:
            i += 1
            continue
        found.append(parsed[0])
        i = parsed[1]
    return found


def parse_duration(words: list[str], start: int = 0) -> tuple[float, int] | None:
    """A duration starting at `words[start]`, in seconds: "five minutes", "an hour and a
    half", "one and a half hours", "half an hour", "1 hour 30 minutes", "ninety seconds".
    Returns (seconds, index after it) or None."""
    total, i, found = 0.0, start, False
    while i < len(words):
        j = i + 1 if words[i] == "and" and found else i
        part = _duration_part(words, j)
        if part is None:
            break
        seconds, i = part
        total += seconds
        found = True
    return (total, i) if found else None


def _duration_part(words: list[str], i: int) -> tuple[float, int] | None:
    if i >= len(words):
        return None
    # "half an hour", "half a minute"
    if words[i] == "half" and i + 2 < len(words) and words[i + 1] in ("a", "an"):
        unit = UNITS.get(words[i + 2])
        if unit:
            return unit / 2, i + 3
    if words[i] in ("a", "an"):
        count, j = 1.0, i + 1
        if j < len(words) and words[j] == "couple" and j + 1 < len(words) and words[j + 1] == "of":
            count, j = 2.0, j + 2
    else:
        number = parse_number(words, i)
        if number is None:
            return None
        count, j = number
    # "one and a half hours"
    if words[j : j + 3] == ["and", "a", "half"]:
        count += 0.5
        j += 3
    unit = UNITS.get(words[j]) if j < len(words) else None
    if unit is None:
        return None
    j += 1
    # "an hour and a half"
    if words[j : j + 3] == ["and", "a", "half"]:
        count += 0.5
        j += 3
    return count * unit, j


def number_words(n: int) -> str:
    """23 → "twenty three" (0 ≤ n < 1,000,000); for spoken replies."""
    if n < 0:
        return "minus " + number_words(-n)
    small = {v: k for k, v in _SMALL.items() if k != "oh"}
    tens = {v: k for k, v in _TENS.items()}
    if n < 20:
        return small[n]
    if n < 100:
        return tens[n - n % 10] + ("" if n % 10 == 0 else " " + small[n % 10])
    if n < 1000:
        rest = n % 100
        return small[n // 100] + " hundred" + ("" if rest == 0 else " and " + number_words(rest))
    if n < 1_000_000:
        rest = n % 1000
        joiner = " and " if 0 < rest < 100 else " "
        return (
            number_words(n // 1000)
            + " thousand"
            + ("" if rest == 0 else joiner + number_words(rest))
        )
    return str(n)


def spoken_duration(seconds: float) -> str:
    """3600 → "one hour", 90 → "one minute and thirty seconds", 5400 → "one hour and
    thirty minutes"."""
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = []
    for count, unit in ((hours, "hour"), (minutes, "minute"), (secs, "second")):
        if count:
            parts.append(f"{number_words(count)} {unit}{'' if count == 1 else 's'}")
    if not parts:
        return "less than a second"
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def timer_label(seconds: float) -> str:
    """The adjective form: 600 → "ten minute", 5400 → "one hour and thirty minute"."""
    spoken = spoken_duration(seconds)
    return re.sub(r"(hour|minute|second)s\b", r"\1", spoken)

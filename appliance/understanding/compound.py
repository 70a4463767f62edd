"""Two commands in one breath: "turn off the kitchen light and the porch light", "turn on
the porch light and set a timer for ten minutes".

The library matches one intent per sentence, so such a request matched nothing and went
to the language model. Here it is cut at "and" / "then" into parts that are each a
command the house knows as said; a part without its verb ("… and the porch light") takes
the first part's. Any part that is not a sure command, and the request is left whole: a
half-understood compound is not half done.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable

from appliance.actions.numbers import parse_number, tokens
from appliance.understanding.recognition import Recognition

JOINS = re.compile(r"\s*,?\s+\b(?:and then|and also|and|then|also)\b\s+", re.IGNORECASE)
"""Where a request may be cut into commands."""
MAX_JOINS = 3
"""More "and"s than this: a sentence of its own ("salt and pepper and …"), not commands."""
_VERB_WORDS = 3
"""At most this many leading words of the first part make a verb for a part without one."""

Recognize = Callable[[str], "Recognition | None"]
"""`text` → a sure recognition of it alone, or None (the handler's test of a part)."""


def split_commands(text: str, sure: Recognize) -> list[tuple[str, Recognition]] | None:
    """The parts of `text` and what each is, when every part is a sure command; else None.
    Of the ways to cut at the joins, the one with the fewest parts that works wins (so
    "an hour and 30 minutes" stays in one part)."""
    pieces = JOINS.split(text.strip())
    if len(pieces) < 2 or len(pieces) - 1 > MAX_JOINS:
        return None
    joins = JOINS.findall(text.strip())
    cuts = range(1, len(pieces))
    for count in range(1, len(pieces)):
        for chosen in itertools.combinations(cuts, count):
            parts = _joined(pieces, joins, chosen)
            found = _all_sure(parts, sure)
            if found is not None:
                return found
    return None


def _joined(pieces: list[str], joins: list[str], cuts: tuple[int, ...]) -> list[str]:
    """The pieces put back together except at `cuts` (indexes of the pieces that start a
    new part)."""
    parts, current = [], pieces[0]
    for index in range(1, len(pieces)):
        if index in cuts:
            parts.append(current)
            current = pieces[index]
        else:
            current += joins[index - 1] + pieces[index]
    return [*parts, current]


def _all_sure(parts: list[str], sure: Recognize) -> list[tuple[str, Recognition]] | None:
    found: list[tuple[str, Recognition]] = []
    for index, part in enumerate(parts):
        recognized = sure(part)
        said = part
        if recognized is None and index > 0:
            said, recognized = _with_the_first_verb(parts[0], found[0][1], part, sure)
        if recognized is None:
            return None
        found.append((said, recognized))
    return found


def _with_the_first_verb(
    first: str, first_found: Recognition, part: str, sure: Recognize
) -> tuple[str, Recognition | None]:
    """ "the porch light" after "turn off the kitchen light": "turn off the porch light",
    when that is the same intent as the first part. Not a part that starts with a number:
    "… for one hour and 30 minutes" is one length, not a second timer."""
    if parse_number(tokens(part)[:1], 0) is not None:
        return part, None
    words = first.split()
    for count in range(1, min(_VERB_WORDS, len(words) - 1) + 1):
        said = " ".join([*words[:count], part])
        recognized = sure(said)
        if recognized is None or recognized.intent != first_found.intent:
            continue
        if "area" in recognized.slots and not {"name", "kind", "domain"} & recognized.slots.keys():
            continue  # a room alone: not every device in it
        return said, recognized
    return part, None

"""Which sentence was said, asked of the audio: whisper scores the sentences the house
could mean against the recording, next to its own transcript.

Text alone cannot tell "set the meant light to 50 percent" apart: *meant* is as near to
*bed* as to *porch* on paper. The recording can: whisper's decoder, forced through each
candidate sentence, says how likely that sentence is for this audio (`PhraseScorer`'s
`score`). A corrected sentence then acts only when the audio supports it about as well
as the transcript itself (the *gap*) and clearly better than every sentence that means
something else (the *margin*: the other devices, on for off, the other timer verbs).

The figures are in nats, summed over the sentence's tokens; they were set on the
understanding bench's recordings, where a right sentence was within 4 of the transcript
and a near miss ("don't turn on the bed light", "the kitchen light is broken") 10 or
more away.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from rapidfuzz import fuzz, process

if TYPE_CHECKING:
    from appliance.understanding.recognition import Recognition
    from appliance.understanding.recognizer import Recognizer

_LOGGER = logging.getLogger(__name__)
Scorer = Callable[[str, Sequence[str]], "list[float] | None"]
"""(transcript, sentences) → each sentence's log-likelihood for the transcript's audio,
or None when that audio is gone (`WhisperCppStt.score`)."""

ACT_GAP = 4.0
"""A sentence at most this far below the transcript is what was said (acts)."""
ASK_GAP = 8.0
"""Up to this far below, it is asked about; further, the audio does not support it."""
MARGIN = 3.0
"""How far it must lead every sentence that means something else and is as close to the
words heard, to act (and it must lead the others at all)."""
CLOSE_SLACK = 5.0
"""A rival within this (rapidfuzz ratio points) of the sentence's closeness to the words
heard counts as as close."""
ACT_GAP_HEARD_AGAIN = 6.0
"""The gap within which a sentence acts when the second listen (whisper prompted with
the house's words) wrote it word for word: two findings agree ("and milk to the
sharpened list", heard again "Add milk to the shopping list.", 4.1 below)."""
ACT_SCORE = 0.9
ASK_SCORE = 0.75
"""The scores given to a sentence the audio supports (acts) or half supports (asks)."""
SNAP_MIN_SCORE = 0.72
"""How close (rapidfuzz ratio, 0–1) a sentence of the house must be to the transcript to
be weighed at all: free questions stay far below."""
SNAP_CANDIDATES = 6
NAME_RIVALS = 4
_FLIP = {"on": "off", "off": "on"}


@dataclass(frozen=True)
class Weighed:
    """What the audio said of a recognition."""

    recognition: Recognition
    gap: float
    margin: float

    def evidence(self) -> str:
        margin = (
            "no other meaning"
            if math.isinf(self.margin)
            else (f"{self.margin:.1f} above the next meaning")
        )
        return f"audio: {self.gap:.1f} below the transcript, {margin}"


def weigh(recognizer: Recognizer, heard: str, found: Recognition | None,
          scorer: Scorer, *, also: Sequence[Recognition] = (),
          heard_again: str = "") -> Recognition | None:  # fmt: skip
    """`found` (or a sentence of the house when nothing was found) judged by the audio:
    kept, raised to act, lowered to ask, or replaced by a rival the audio prefers.
    `also`: more sentences to weigh with their rivals (what a second listen heard);
    `heard_again`: that second listen's transcript."""
    candidates: dict[str, Recognition] = {}
    for each in [found, *also] if found is not None else also:
        if not _unknown(each):  # only the house's names are weighed for it
            candidates.setdefault(each.text, each)
        for rival in _rivals(recognizer, each, heard):
            candidates.setdefault(rival.text, rival)
    for snapped in recognizer.snap_candidates(heard, SNAP_MIN_SCORE, SNAP_CANDIDATES):
        candidates.setdefault(snapped.text, snapped)
    if not candidates:
        return found
    sentences = list(candidates)
    scores = scorer(heard, [heard, *(styled(s, heard) for s in sentences)])
    if scores is None or len(scores) != len(sentences) + 1:
        return found
    reference, likelihood = scores[0], dict(zip(sentences, scores[1:], strict=True))
    said = _plain(heard)
    closeness = {s: fuzz.ratio(said, s) for s in sentences}
    _LOGGER.debug("weighing %r (%.1f): %s", heard, reference,
                  "; ".join(f"{s!r} {likelihood[s]:.1f}" for s in sentences))  # fmt: skip
    best = max(sentences, key=lambda s: likelihood[s])
    chosen = candidates[best]
    rivals = [s for s in sentences if _meaning(candidates[s]) != _meaning(chosen)]
    # A rival as close to the words heard must be clearly less likely; one further from
    # them (the transcript said "on", the rival says "off") only less likely.
    close = [s for s in rivals if closeness[s] >= closeness[best] - CLOSE_SLACK]
    margin = likelihood[best] - max((likelihood[s] for s in rivals), default=-math.inf)
    close_margin = likelihood[best] - max((likelihood[s] for s in close), default=-math.inf)
    gap = max(0.0, reference - likelihood[best])
    weighed = Weighed(chosen, round(gap, 2), round(min(margin, close_margin), 2))
    verbatim = bool(heard_again) and recognizer.same_words(heard_again, chosen.text)
    act_gap = ACT_GAP_HEARD_AGAIN if verbatim else ACT_GAP
    bare = chosen.metadata.get("bare", False)  # the doubt is in the words, not the sound
    if gap <= act_gap and close_margin >= MARGIN and margin > 0 and not bare:
        return replace(chosen, score=max(chosen.score, ACT_SCORE), evidence=weighed.evidence())
    if gap <= ASK_GAP and margin > 0:
        return replace(chosen, score=min(chosen.score, ASK_SCORE), evidence=weighed.evidence())
    if found is None or _unknown(found):
        return found  # "I don't know a device called garage light" stands
    # The audio supports no sentence of the house well: a correction is asked about.
    found_gap = max(0.0, reference - likelihood[found.text])
    return replace(found, score=min(found.score, ASK_SCORE),
                   evidence=f"audio: {found_gap:.1f} below the transcript")  # fmt: skip


def styled(sentence: str, heard: str) -> str:
    """`sentence` written as whisper wrote the transcript (capital, final stop, "%"), so
    that only the words differ between them when they are scored."""
    text = sentence
    if "%" in heard:
        text = re.sub(r"(\d+) percent\b", r"\1%", text)
    stripped = heard.strip()
    if stripped[:1].isupper():
        text = text[:1].upper() + text[1:]
    if stripped[-1:] in ".?!":
        text += stripped[-1]
    return text


def _plain(text: str) -> str:
    text = re.sub(r"(\d)\s*%", r"\1 percent", text.lower())
    return " ".join(re.sub(r"[^\w'\s]", " ", text).split())


def _meaning(found: Recognition) -> tuple[str, tuple[tuple[str, str], ...]]:
    """The intent and slots: "add 2 minutes" (2.0) means what "add two minutes" (2) does."""
    return found.intent, tuple(sorted((k, _value(v)) for k, v in found.slots.items()))


def _value(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _rivals(recognizer: Recognizer, found: Recognition, heard: str) -> list[Recognition]:
    """The sentences `found` could be confused with: on for off, and each other device
    name nearest to what was heard (for a name the house lacks, its nearest names)."""
    words = found.text.split()
    texts: list[str] = []
    flipped = [_FLIP.get(w, w) for w in words]
    if flipped != words and not _unknown(found):
        texts.append(" ".join(flipped))
    spoken = str(found.slots["name"]) if _unknown(found) else recognizer.spoken_name_in(found.text)
    if spoken:
        names = [n for n in recognizer.spoken_names() if n != spoken]
        for name, _, _ in process.extract(heard.lower(), names, scorer=fuzz.partial_ratio,
                                          limit=NAME_RIVALS):  # fmt: skip
            texts.append(re.sub(rf"\b{re.escape(spoken)}\b", name, found.text, count=1))
    rivals = []
    for text in texts:
        rival = recognizer.read(text, score=found.score)
        if rival is not None:
            rivals.append(rival)
    return rivals


def said_as_a_command(heard: str, found: Recognition, scorer: Scorer) -> Recognition:
    """A device switched with no verb, as it was heard ("Porch light on."), acts when the
    audio clearly prefers it to the question and the statement whisper can lose a word
    of ("is the porch light on", "the porch light is on") and to on for off; else it
    stays asked about."""
    words = found.text.split()
    if words[-1:] not in (["on"], ["off"]):
        return found
    named, state = " ".join(words[:-1]), words[-1]
    article = named if named.startswith("the ") else f"the {named}"
    others = [f"is {article} {state}", f"are {article} {state}", f"{article} is {state}",
              f"{article}'s {state}", f"{named} {_FLIP[state]}"]  # fmt: skip
    scores = scorer(heard, [heard, *(styled(t, heard) for t in [found.text, *others])])
    if scores is None or len(scores) != len(others) + 2:
        return found
    reference, own, rivals = scores[0], scores[1], scores[2:]
    gap, margin = max(0.0, reference - own), own - max(rivals)
    _LOGGER.debug("said as a command? %r: %.1f below, %.1f above the rest", heard, gap, margin)
    if gap > ACT_GAP or margin < MARGIN:
        return found
    evidence = f"audio: {gap:.1f} below the transcript, {margin:.1f} above a question or statement"
    return replace(found, score=max(found.score, ACT_SCORE), evidence=evidence)


def _unknown(found: Recognition) -> bool:
    """A command for a device the house lacks: what was heard, not a sentence of the
    house (`recognition.UNKNOWN_NAME`)."""
    return bool(found.metadata.get("unknown_name"))


def pick_answer(heard: str, answers: dict[str, Sequence[str]], scorer: Scorer) -> str | None:
    """Which of `answers` (a key → the ways it may be said) the audio of `heard` was, when
    the words were not clear enough to tell ("M-I-I-I-I" for "the kitchen one"): the
    best way said at most `ACT_GAP` below the transcript and `MARGIN` above every other
    answer's best; else None."""
    ways = [(key, way) for key, said in answers.items() for way in said]
    if len(answers) < 2 or not ways:
        return None
    scores = scorer(heard, [heard, *(styled(way, heard) for _, way in ways)])
    if scores is None or len(scores) != len(ways) + 1:
        return None
    best: dict[str, float] = {}
    for (key, _), score in zip(ways, scores[1:], strict=True):
        best[key] = max(best.get(key, -math.inf), score)
    ranked = sorted(best, key=lambda k: -best[k])
    gap = scores[0] - best[ranked[0]]
    margin = best[ranked[0]] - best[ranked[1]]
    _LOGGER.debug("answer %r (%.1f): %s", heard, scores[0], best)
    return ranked[0] if gap <= ACT_GAP and margin >= MARGIN else None


def ways_to_say(name: str, aliases: Sequence[str] = ()) -> list[str]:
    """How a person answers "which one?" with a device: "the porch light", "the porch
    one", "porch"."""
    ways: list[str] = []
    for spoken in (name, *aliases):
        words = spoken.lower().split()
        ways += [f"the {spoken.lower()}"]
        if len(words) > 1:
            ways += [f"the {' '.join(words[:-1])} one", " ".join(words[:-1])]
    return list(dict.fromkeys(ways))

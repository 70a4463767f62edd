"""Claims of an action in the language model's free text ("I set the timer for 30 seconds.").

The model's free text is spoken only when no handler took the request, so in that reply no
action ran: a sentence saying one was (or will be) done is false by construction, and the
pipeline replaces it with `truthful_reply`. The rules are shapes, not phrases:

- a first-person subject doing an action verb: "I set …", "I've turned on …", "I'll
  cancel.", "I'm turning …", "I will remind you …", "Let me switch …";
- a result said without a subject, at the start of the sentence (after "okay", "sure", …):
  "Locked the door.", "Starting a 10 minute timer", "Timer set.", "Lights off.", "Done!";
- a state claim about a device, timer or list: "The porch light is now on.", "Your timer
  is running.", "The alarm is set for 7", "Your shopping list now has eggs".

A question, a negation ("I can't turn on lights.") and quoted words ("say 'set a timer'")
claim nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Claim:
    kind: str
    """What was claimed: "timer", "device", "list" or "other"."""
    words: str
    """The claiming words found, as written."""


_VERBS = {
    # base: (past / participle forms, -ing form)
    "set": ("set", "setting"),
    "turn": ("turned", "turning"),
    "switch": ("switched", "switching"),
    "cancel": ("cancelled canceled", "cancelling canceling"),
    "lock": ("locked", "locking"),
    "unlock": ("unlocked", "unlocking"),
    "start": ("started", "starting"),
    "stop": ("stopped", "stopping"),
    "add": ("added", "adding"),
    "remove": ("removed", "removing"),
    "pause": ("paused", "pausing"),
    "resume": ("resumed", "resuming"),
    "dim": ("dimmed", "dimming"),
    "brighten": ("brightened", "brightening"),
    "open": ("opened", "opening"),
    "close": ("closed", "closing"),
    "activate": ("activated", "activating"),
    "deactivate": ("deactivated", "deactivating"),
    "schedule": ("scheduled", "scheduling"),
    "remind": ("reminded", "reminding"),
    "enable": ("enabled", "enabling"),
    "disable": ("disabled", "disabling"),
    "put": ("put", "putting"),
    "change": ("changed", "changing"),
    "adjust": ("adjusted", "adjusting"),
    "lower": ("lowered", "lowering"),
    "raise": ("raised", "raising"),
    "create": ("created", "creating"),
    "wake": ("woke woken", "waking"),
    "notify": ("notified", "notifying"),
    "alert": ("alerted", "alerting"),
    "play": ("played", "playing"),
    "send": ("sent", "sending"),
    "call": ("called", "calling"),
    "save": ("saved", "saving"),
    "book": ("booked", "booking"),
    "order": ("ordered", "ordering"),
}
_PAST = {p for past, _ in _VERBS.values() for p in past.split()}
_ING = {i for _, ing in _VERBS.values() for i in ing.split()}
_ANY_VERB = set(_VERBS) | _PAST | _ING | {f"{v}s" for v in _VERBS} | {"reset"}
# Past forms equal to the base ("set", "put") start instructions ("Set a timer by …"),
# not results, when they open a sentence.
_RESULT_START = (_PAST - set(_VERBS)) | _ING

_TIMER = {"timer", "timers", "alarm", "alarms", "reminder", "reminders", "countdown", "remind"}
_LIST = {"list", "lists"}
_DEVICE = {
    "light", "lights", "lamp", "lamps", "fan", "fans", "heater", "heating", "thermostat",
    "tv", "television", "door", "doors", "lock", "blinds", "curtains", "shades", "shutters",
    "switch", "plug", "socket", "outlet", "device", "devices", "brightness", "temperature",
    "ac", "aircon", "radiator", "kettle", "oven", "garage", "gate", "window", "windows",
    "porch", "bulb", "bulbs", "sprinkler", "speaker", "music", "radio", "volume",
}  # fmt: skip
_DEVICE_VERBS = {"turn", "switch", "dim", "brighten", "lock", "unlock", "open", "close"}
_NOUNS = _TIMER | _LIST | _DEVICE | {"everything", "it", "that", "they", "them"}
_STATES = {
    "on", "off", "set", "running", "started", "locked", "unlocked", "dimmed", "paused",
    "cancelled", "canceled", "stopped", "scheduled", "activated", "deactivated", "enabled",
    "disabled", "added", "removed", "open", "opened", "closed", "done", "ready", "going",
    "ticking", "counting", "turned", "switched", "updated", "changed", "adjusted", "at",
}  # fmt: skip

_NEGATION = re.compile(
    r"\b(?:not|no|never|cannot|unable|nothing|n't|can't|don't|didn't|won't|isn't|aren't|"
    r"wasn't|haven't|hasn't|couldn't|wouldn't|shouldn't)\b|n't\b",
    re.I,
)
_QUOTED = re.compile(r"(?<!\w)'[^']+'(?!\w)|\"[^\"]*\"|“[^”]*”|‘[^’]*’")
_CLAUSES = re.compile(r"\s*[,;:!.—–](?=\s|$)\s*|\s+-\s+|(?<!ahead)\s+and\s+|\s+(?:but|so)\s+")
_INTERJECTIONS = re.compile(
    r"^(?:ok|okay|sure|sure thing|alright|all right|right|yes|yeah|yep|certainly|of course|"
    r"absolutely|no problem|got it|great|perfect|there you go|here you go|gladly|"
    r"done|all done|all set|it's done|consider it done|you got it|will do|there|now)$"
)
_DONE = re.compile(
    r"^(?:(?:all|it's|it is|that's|that is|consider it|and it's)\s+)?(?:done|set|sorted)"
    r"(?:\s+now)?$|^(?:there you go|will do|you got it)$"
)
_FIRST_PERSON = re.compile(
    r"\b(?:i|we)(?:'ve|'ll|'m)?\s+"
    r"(?:(?:have|has|will|am|are|shall|just|already|now|also|successfully|quickly|"
    r"gone ahead and|went ahead and|go ahead and|going to|gonna|about to|been|now)\s+)*"
    r"(\w+)"
    r"|\blet me\s+(?:(?:just|now|quickly)\s+)?(\w+)"
)
_ADVERBS = {"now", "already", "all", "just", "successfully", "currently", "still", "been"}
_WILL_DO = {
    "go", "ring", "beep", "sound", "end", "remind", "alert", "notify", "start", "stop", "turn",
    "switch", "be",
}  # fmt: skip
_SUBJECT_PRONOUNS = {"it", "they", "everything", "that", "both", "all"}


_STATEMENT_VERBS = {
    "is", "are", "was", "can", "could", "helps", "saves", "makes", "takes", "requires",
    "means", "needs", "uses",
}  # fmt: skip


def find_claim(sentence: str) -> Claim | None:
    """The action `sentence` says was (or will be) done by the assistant, or None."""
    text = sentence.replace("’", "'").replace("‘", "'")
    if text.rstrip().endswith("?"):
        return None
    text = _QUOTED.sub(" ", text)
    clauses = [c for c in _CLAUSES.split(text) if c.strip()]
    at_start = True  # the clause opens the sentence (after interjections only)
    for clause in clauses:
        low = " ".join(clause.lower().split())
        words = _found(low, at_start)
        if words is not None:
            start = low.find(words)
            original = " ".join(clause.split())[start : start + len(words)]
            return Claim(_kind(sentence), original or words)
        at_start = at_start and bool(_INTERJECTIONS.match(low))
    return None


def _found(clause: str, at_start: bool) -> str | None:
    """The claiming words of one lower-case clause, or None."""
    if _NEGATION.search(clause):
        return None
    if at_start and _DONE.match(clause):
        return clause
    for match in _FIRST_PERSON.finditer(clause):
        verb = match.group(1) or match.group(2)
        following = clause[match.end() :].split()[:1]
        if verb in _ANY_VERB and following not in (["as"], ["out"]):
            return clause[match.start() : match.end()]  # not "I started out as …"
        if verb == "let" and following == ["you"]:
            return clause[match.start() : match.end()]  # "I'll let you know when …"
    words = clause.split()
    if at_start and words:
        if words[0] in _RESULT_START and not _gerund_subject(words):
            return " ".join(words[:2])
        if _command_said_back(words):
            return " ".join(words[:2])
        headline = _headline(words)
        if headline:
            return headline
    you_did = re.search(r"\byou(?:'ve| have)?\s+(\w+)", clause)
    if you_did and you_did.group(1) in _RESULT_START - _ING and _things(words):
        return you_did.group(0)  # "You turned on the light."
    return _state_claim(clause)


def _things(words: list[str]) -> bool:
    return any(w in _TIMER | _LIST | _DEVICE for w in words)


def _command_said_back(words: list[str]) -> bool:
    """ "Set a timer for 30 seconds.", "Turn on the kitchen light.": the request said back
    as a reply opening, which a listener takes for "done"; not an instruction ("… by
    saying", "if you want …", "when it is dark")."""
    return (
        words[0] in _VERBS
        and _things(words)
        and not set(words) & {"by", "say", "saying", "you", "your", "if", "when", "try"}
    )


def _gerund_subject(words: list[str]) -> bool:
    """ "Setting a timer is easy": the -ing phrase is the subject of a statement."""
    return words[0] in _ING and bool(set(words[1:]) & _STATEMENT_VERBS)


def _headline(words: list[str]) -> str | None:
    """ "Timer set", "Kitchen light switched on", "Lights off": a noun then its result."""
    for i, word in enumerate(words[:5]):
        if word in _TIMER | _LIST | _DEVICE:
            rest = words[i + 1 :]
            if not rest:
                return None
            if rest[0] in _PAST or (rest[0] in ("on", "off") and len(rest) <= 2):
                return " ".join(words[: i + 2])
            if rest[0] not in _TIMER | _LIST | _DEVICE:
                return None
        elif (
            word not in ("the", "your", "my", "a", "an", "all")
            and not word.isdigit()
            and (i > 2 or word in _ANY_VERB)
        ):
            return None
    return None


def _state_claim(clause: str) -> str | None:
    """ "The porch light is now on", "Your timer is running", "your list now has eggs",
    "It's on now": a device, timer or list (or "it" with "now") in a state only an action
    could have put it in."""
    tokens = _tokens(clause)
    words = [w for w, _, _ in tokens]
    for i, word in enumerate(words):
        after = words[i + 1 : i + 2]
        if word in ("is", "are", "remains", "stays"):
            j = i + 1
        elif word in ("was", "were") and after and after[0] in ("just", "successfully"):
            j = i + 1  # not "the door was closed when we arrived"
        elif word == "will" and after and after[0] in _WILL_DO:
            j = i + 1  # "your timer will go off in 30 seconds"
        elif (word, *after) in (("has", "been"), ("have", "been"), ("will", "be")):
            j = i + 2
        elif word in ("has", "have") and after and after[0] in _PAST:
            j = i + 1  # "the timer has started"
        else:
            continue
        subject = words[max(0, i - 5) : i]
        now = False
        while j < len(words) and words[j] in _ADVERBS:
            now = now or words[j] == "now"
            j += 1
        if j >= len(words):
            continue
        state, rest = words[j], words[j + 1 :]
        now = now or rest[:1] == ["now"]
        about_a_thing = any(w in _TIMER | _LIST | _DEVICE for w in subject)
        if not about_a_thing and not (subject and subject[-1] in _SUBJECT_PRONOUNS and now):
            continue
        if now or (word == "will" and subject[:1] in (["your"], ["the"])):
            return clause[tokens[max(0, i - len(subject))][1] : tokens[j][2]]
        if state in ("on", "off") and rest and rest[0] not in ("now", "again", "already"):
            continue  # "the light is on the table"
        if state == "at" and not (rest and (rest[0][:1].isdigit() or rest[0] in _NUMBER_WORDS)):
            continue
        if state in _STATES or state in _PAST:
            return clause[tokens[max(0, i - len(subject))][1] : tokens[j][2]]
    now_has = re.search(r"\b(\w+)\s+now\s+(?:has|contains|includes|shows)\b", clause)
    if now_has and now_has.group(1) in _NOUNS:
        return now_has.group(0)
    return None


def _tokens(clause: str) -> list[tuple[str, int, int]]:
    """Words with their spans; "lamp's" is "lamp" and "is", "they're" "they" and "are"."""
    tokens: list[tuple[str, int, int]] = []
    for match in re.finditer(r"[\w']+", clause):
        word, start, end = match.group(0), match.start(), match.end()
        for suffix, full in (("'s", "is"), ("'re", "are")):
            if word.endswith(suffix) and len(word) > len(suffix):
                cut = end - len(suffix)
                tokens += [(word[: -len(suffix)], start, cut), (full, cut, end)]
                break
        else:
            tokens.append((word, start, end))
    return tokens


_NUMBER_WORDS = {
    "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "twenty",
    "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety", "hundred", "half",
    "full", "maximum", "minimum",
}  # fmt: skip


def _kind(sentence: str) -> str:
    words = set(re.findall(r"[a-z]+", sentence.lower()))
    if words & _TIMER:
        return "timer"
    if words & _LIST:
        return "list"
    verbs = {w for w in words if w in _ANY_VERB}
    bases = {b for b, (past, ing) in _VERBS.items() if verbs & {b, *past.split(), *ing.split()}}
    if words & (_DEVICE - {"music", "radio", "speaker", "volume"}) or bases & _DEVICE_VERBS:
        return "device"
    return "other"


_TRUTHFUL = {
    "timer": "I didn't set a timer: I didn't catch a command I can do. Try saying, for "
    "example, 'set a timer for ten minutes'.",
    "device": "I didn't switch anything. Say, for example, 'turn on the porch light'.",
    "list": "I didn't change any list: I can't keep lists.",
    "other": "I didn't do anything: I didn't catch a command I can do. Please say it again.",
}


def truthful_reply(claim: Claim) -> str:
    """What to say instead of `claim`: that nothing was done, and how to ask for it."""
    return _TRUTHFUL.get(claim.kind, _TRUTHFUL["other"])

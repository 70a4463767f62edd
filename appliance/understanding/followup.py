"""Is what was heard in the follow-up window an answer, or the room talking?

After a reply that asks something the appliance listens a few seconds without the wake
word. People in the room go on talking to each other ("haha, this is the first place"),
and answering them is worse than missing an answer: the user can always say the wake word.
So a transcript no handler took is answered only when it is shaped like an answer.
"""

from __future__ import annotations

import re

YES_NO = {
    "yes", "yeah", "yep", "yup", "sure", "ok", "okay", "alright", "fine", "please",
    "no", "nope", "nah", "correct", "right", "exactly", "absolutely", "definitely", "certainly",
}  # fmt: skip
"""Words a yes/no answer starts with."""
_YES_NO_PHRASES = {
    "please do", "do it", "go ahead", "of course", "not really", "not now", "no thanks",
    "no thank you", "yes please", "thank you", "thanks", "never mind", "that's right",
    "that's it", "that one", "sounds good", "why not", "i do", "i don't", "i did", "i didn't",
    "you", "do", "please",
}  # fmt: skip
QUESTION_WORDS = {
    "what", "who", "where", "when", "why", "how", "which", "is", "are", "can", "could",
    "do", "does", "did", "will", "would", "should", "shall", "whose", "whom",
}  # fmt: skip
"""A transcript starting with one of these is a question back."""
_ANSWER_OPENERS = {
    "the", "a", "an", "my", "our", "in", "at", "on", "for", "to", "about", "from", "with",
    "i", "i'm", "i'd", "it", "it's", "just", "only", "both", "all", "none", "neither",
    "either", "maybe", "probably", "this", "that", "those", "these", "one", "make", "set",
    "turn", "switch", "tell", "give", "another", "more", "less", "some", "any",
}  # fmt: skip
"""How short answers start: "the kitchen one", "for ten minutes", "it's for the pasta"."""
_ASKING = QUESTION_WORDS - {"when", "will", "do"}
"""Sentence openers that ask ("When it rings, …" and "Do not worry." do not)."""
_FILLERS = {"um", "uh", "erm", "hmm", "hm", "oh", "well", "so", "ah"}
_LAUGHTER = re.compile(r"^(?:(?:ha)+h?|(?:he)+h?|lol|lmao|haha\w*|wow|omg)$")
_STATEMENT = re.compile(
    r"^(?:this|that|there|he|she|they|you)(?:'s| is| was| are| were)\b"
    r"|\b(?:he|she|they|you) (?:said|told|says|tells|was|is|went|know)\b|\bi know\b"
)
_NOISE = re.compile(r"\[[^\]]*\]|\([^)]*\)|\*[^*]*\*")
SHORT_ANSWER_WORDS = 6


def plausible_answer(text: str, asked: str) -> bool:
    """Whether `text`, heard in the follow-up window after the reply `asked`, answers it:
    a yes/no answer ("yes", "nope", "please do") to anything; after a question also a
    question back ("what about Germany?", "and tomorrow?", "how long is it?") or a short
    answer (at most six words: "ten minutes", "the kitchen one")."""
    words = _words(text)
    while words and words[0] in _FILLERS:
        words = words[1:]
    if not words or _LAUGHTER.match(words[0]):
        return False
    if _yes_no(words):
        return True
    if not asks(asked):
        return False
    if text.rstrip().endswith("?") or words[0] in QUESTION_WORDS or words[0] == "and":
        return True
    if words[:2] in (["what", "about"], ["how", "about"]):
        return True
    return _short_answer(words, asked)


def asks(reply: str) -> bool:
    """Whether a reply asks something: it ends with "?", or one of its sentences starts
    like a question ("Which light: porch or kitchen.", "Did you mean the porch light.")."""
    if reply.rstrip().endswith("?"):
        return True
    sentences = re.split(r"[.!?;:]\s+", reply.strip().lower())
    return any(s.split()[:1] and s.split()[0] in _ASKING for s in sentences)


def _words(text: str) -> list[str]:
    text = _NOISE.sub(" ", text.lower().replace("’", "'"))
    return re.findall(r"[a-z0-9]+(?:'[a-z]+)?", text)


def _yes_no(words: list[str]) -> bool:
    """ "yes", "no thanks", "sure, go ahead"; not "yeah I know, she told me yesterday at
    work" (a yes-word opening a story)."""
    phrase = " ".join(words)
    if phrase in _YES_NO_PHRASES or (len(words) <= 2 and words[0] in YES_NO):
        return True
    head = 0
    while head < len(words) and words[head] in YES_NO:
        head += 1
    return head > 0 and len(words) <= 4 and " ".join(words[head:]) in _YES_NO_PHRASES


def _short_answer(words: list[str], asked: str) -> bool:
    """A fragment answering the question: few words that share a word with the question or
    open like an answer ("the kitchen one", "ten minutes", "it's for the pasta"); not a
    remark about someone or something ("this is the first place", "she said so")."""
    while len(words) > 1 and words[0] in YES_NO:
        words = words[1:]  # "yeah, the kitchen one"
    if len(words) > SHORT_ANSWER_WORDS:
        return False
    asked_words = {w for w in _words(asked) if len(w) > 3}
    if asked_words & {w for w in words if len(w) > 3}:
        return True
    if _STATEMENT.search(" ".join(words)):
        return False
    return len(words) <= 2 or words[0] in _ANSWER_OPENERS or words[0][:1].isdigit()

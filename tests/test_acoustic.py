"""Weighing a corrected sentence against the audio (`understanding/acoustic.py`): with a
scorer that stands for whisper in the unit tests, and whisper itself at the end."""

from __future__ import annotations

import logging
import re
from time import monotonic

import pytest

from appliance.audio.format import int16_to_float
from appliance.config import default_models_dir
from appliance.errors import ModelError
from appliance.models.catalog import ModelStore
from appliance.stt import whisper_lib
from appliance.stt.base import PhraseScorer, Relistener
from appliance.stt.whispercpp import WhisperCppStt
from appliance.testing.speech import add_noise, compose, espeak_phrase
from appliance.understanding import acoustic
from appliance.understanding.handler import ACT_SCORE
from appliance.understanding.library import load_library
from appliance.understanding.recognizer import Recognizer
from tests.test_understanding import HOME, configs


def _key(text: str) -> str:
    text = text.lower().replace("%", " percent")
    return " ".join(re.sub(r"[^\w' ]", " ", text).split())


class Audio:
    """Stands for whisper: each sentence's likelihood from a table (-40 when absent), the
    transcript's own from `heard`."""

    def __init__(self, heard: float, table: dict[str, float]) -> None:
        self.heard, self.table = heard, {_key(k): v for k, v in table.items()}
        self.asked: list[list[str]] = []

    def __call__(self, transcript: str, texts) -> list[float] | None:
        self.asked.append(list(texts))
        return [self.heard if t == transcript else self.table.get(_key(t), -40.0)
                for t in texts]  # fmt: skip


def _intent_and_name(found) -> tuple[str, str] | None:
    return None if found is None else (found.intent, str(found.slots.get("name")))


@pytest.fixture(scope="module")
def plain():
    recognizer = Recognizer(load_library("en"), configs(HOME))
    recognizer.warm_up()
    return recognizer


@pytest.fixture
def weighed(plain):
    recognizer = Recognizer(load_library("en"), configs(HOME))
    recognizer._phrases = plain.phrases()  # the same sentences, made once
    yield recognizer
    recognizer.scorer = None


def test_a_misheard_name_the_audio_supports_is_the_device_meant(plain, weighed):
    heard = "Set the meant light to 50 percent."
    guess = plain.recognize(heard)
    assert guess is not None and guess.slots["name"] != "bed light"  # text alone guesses
    weighed.scorer = Audio(-2.0, {"set the bed light to 50 percent": -5.0,
                                  "set the porch light to 50 percent": -16.0})  # fmt: skip
    found = weighed.recognize(heard)
    assert found is not None
    assert (found.intent, found.slots["name"], found.slots["brightness"]) == (
        "HassLightSet",
        "bed light",
        50,
    )
    assert found.score >= ACT_SCORE
    assert "3.0 below the transcript" in found.evidence


def test_a_rival_meaning_as_close_in_words_and_almost_as_likely_is_asked_about(weighed):
    weighed.scorer = Audio(-4.0, {"turn on the ceiling fan": -6.0,
                                  "turn off the ceiling fan": -6.5})  # fmt: skip
    found = weighed.recognize("Turn of the ceiling fan.")  # "of": on or off?
    assert found is not None and found.slots["name"] == "ceiling fan"
    assert found.score < ACT_SCORE  # "Did you mean …?"


def test_a_rival_further_from_the_words_heard_need_only_be_less_likely(weighed):
    weighed.scorer = Audio(-4.0, {"turn the ceiling fan on": -6.0,
                                  "turn the ceiling fan off": -6.5})  # fmt: skip
    found = weighed.recognize("Turn the ceiling hang on.")  # whisper wrote "on"
    assert _intent_and_name(found) == ("HassTurnOn", "ceiling fan")
    assert found.score >= ACT_SCORE
    weighed.scorer = Audio(-4.0, {"turn the ceiling fan on": -6.5,
                                  "turn the ceiling fan off": -6.0})  # fmt: skip
    found = weighed.recognize("Turn the ceiling hang on.")
    assert found is None or found.score < ACT_SCORE  # the audio prefers the other


def test_a_sentence_far_below_the_transcript_is_not_taken(weighed):
    scorer = Audio(-2.0, {"turn on the bed light": -12.5})
    weighed.scorer = scorer
    assert weighed.recognize("Don't turn on the bed light.") is None
    assert scorer.asked, "the near sentence was weighed"


def test_a_device_the_house_lacks_is_one_it_has_when_the_audio_says_so(weighed):
    """ "Turn on the port swipe." (Piper's "porch light" in one bench run) was answered
    "I don't know a device called port swipe"."""
    weighed.scorer = Audio(-3.0, {"turn on the porch light": -5.5,
                                  "turn on the front light": -14.0})  # fmt: skip
    found = weighed.recognize("Turn on the port swipe.")
    assert _intent_and_name(found) == ("HassTurnOn", "porch light")
    assert found.score >= ACT_SCORE and "2.5 below the transcript" in found.evidence


def test_a_device_the_house_lacks_stays_unknown_when_the_audio_is_far_from_its_names(
    weighed,
):
    weighed.scorer = Audio(-3.0, {"turn on the bed light": -15.0,
                                  "turn on the porch light": -21.0})  # fmt: skip
    found = weighed.recognize("Turn on the garage light.")
    assert _intent_and_name(found) == ("HassTurnOn", "garage light")
    assert found.metadata.get("unknown_name") and found.score == 1.0


def test_a_device_switched_with_no_verb_acts_when_the_audio_heard_no_question(weighed):
    """ "Porch light on." is a command people give; "is the porch light on" with its first
    word lost is a question. The audio tells them apart."""
    weighed.scorer = Audio(-3.0, {"porch light on": -3.5, "is the porch light on": -12.0,
                                  "the porch light is on": -11.0})  # fmt: skip
    found = weighed.recognize("Porch light on.")
    assert _intent_and_name(found) == ("HassTurnOn", "porch light")
    assert found.score >= ACT_SCORE and "above a question or statement" in found.evidence


@pytest.mark.parametrize("question", ["is the porch light on", "the porch light is on"])
def test_a_device_switched_with_no_verb_is_asked_about_when_it_may_be_a_question(weighed, question):
    weighed.scorer = Audio(-3.0, {"porch light on": -3.5, question: -5.0})
    found = weighed.recognize("Porch light on.")
    assert found is None or found.score < ACT_SCORE


def test_a_device_named_with_no_verb_after_a_correction_is_only_asked_about(weighed):
    """ "The porch light's on." (said of it) reads as "the porch light on" only once
    "porch light's" is taken for the name: the doubt is in the words."""
    weighed.scorer = Audio(-3.0, {"the porch light on": -3.2})
    found = weighed.recognize("The porch light's on.")
    assert found is None or found.score < ACT_SCORE


def test_a_question_near_no_sentence_of_the_house_is_never_weighed(weighed):
    scorer = Audio(-1.0, {})
    weighed.scorer = scorer
    assert weighed.recognize("Who painted the Mona Lisa?") is None
    assert scorer.asked == []


def test_a_sentence_matched_as_said_asks_nothing_of_the_audio(weighed):
    scorer = Audio(-1.0, {})
    weighed.scorer = scorer
    found = weighed.recognize("Turn on the porch light.")
    assert found is not None and found.score == 1.0 and scorer.asked == []


def test_without_the_audio_the_text_reading_stands(plain, weighed):
    heard = "Console the timer."
    weighed.scorer = lambda transcript, texts: None  # typed, or another clip since
    assert weighed.recognize(heard) == plain.recognize(heard)


def test_a_failing_scorer_leaves_the_text_reading_and_says_so(plain, weighed, caplog):
    def broken(transcript, texts):
        raise RuntimeError("whisper_decode failed")

    weighed.scorer = broken
    with caplog.at_level(logging.ERROR):
        assert weighed.recognize("Console the timer.") == plain.recognize("Console the timer.")
    assert "against the audio failed" in caplog.text


def test_a_command_word_the_audio_supports_acts(weighed):
    weighed.scorer = Audio(-6.0, {"cancel the timer": -5.2, "continue the timer": -16.8})
    found = weighed.recognize("Console the timer.")
    assert found is not None and found.intent == "HassCancelTimer" and found.score >= ACT_SCORE


@pytest.mark.parametrize(
    ("sentence", "heard", "styled"),
    [
        (
            "set the bed light to 50 percent",
            "Set the meant light to 50%",
            "Set the bed light to 50%",
        ),
        ("is the porch light on", "is receiving fan off.", "is the porch light on."),
        ("what is the date today", "What is Mervate to May?", "What is the date today?"),
    ],
)
def test_sentences_are_written_as_whisper_wrote_the_transcript(sentence, heard, styled):
    assert acoustic.styled(sentence, heard) == styled


# ---- whisper itself ------------------------------------------------------------------------


def test_the_library_layout_is_checked_against_its_own_defaults(monkeypatch):
    whisper_lib.load_library()  # the shipped library: accepted
    monkeypatch.setitem(whisper_lib._EXPECTED_DEFAULTS, "grammar_penalty", 99.0)
    with pytest.raises(ModelError, match="laid out"):
        whisper_lib.load_library()


def test_a_file_that_is_no_whisper_model_is_a_model_error(tmp_path):
    bad = tmp_path / "ggml-tiny.en.bin"
    bad.write_bytes(b"not a model" * 100)
    with pytest.raises(ModelError, match="cannot load"):
        WhisperCppStt(bad, threads=1)


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("said", "acts"), [("Kitchen light on.", True), ("Is the kitchen light on?", False),
                       ("The kitchen light is on.", False)],
)  # fmt: skip
def test_whisper_tells_a_command_with_no_verb_from_a_question_or_statement(
    plain, weighed, said, acts
):
    store = ModelStore(default_models_dir())
    stt = WhisperCppStt(store.path("whisper-tiny.en", "stt"), threads=2)
    audio = add_noise(compose(0.4, espeak_phrase(said), 0.6))
    heard = stt.transcribe(int16_to_float(audio))
    weighed.scorer = stt.score
    found = weighed.recognize(heard)
    switches = found is not None and found.intent == "HassTurnOn" and found.score >= ACT_SCORE
    assert switches == acts, (heard, found)


@pytest.mark.e2e
def test_whisper_prefers_the_sentence_that_was_said():
    store = ModelStore(default_models_dir())
    stt = WhisperCppStt(store.path("whisper-tiny.en", "stt"), threads=2)
    assert isinstance(stt, PhraseScorer)
    audio = add_noise(compose(0.4, espeak_phrase("Set the bed light to fifty percent."), 0.6))
    heard = stt.transcribe(int16_to_float(audio))
    said, rival, other = stt.score(heard, ["Set the bed light to 50%.",
                                           "Set the porch light to 50%.",
                                           "Cancel the timer."])  # fmt: skip
    assert said > rival > other
    # Scored together the texts share the decoder's cache for their common beginning;
    # alone each is decoded from the start: the same figures.
    alone = [stt.score(heard, [text])[0] for text in ("Set the porch light to 50%.",
                                                       "Set the bed light to 50%.")]  # fmt: skip
    assert alone == pytest.approx([rival, said], abs=1e-3)
    assert stt.score("something else was heard", ["Set the bed light to 50%."]) is None
    stt.transcribe(int16_to_float(audio))  # scoring left the engine able to transcribe


def test_a_running_timers_name_makes_sentences_to_weigh(weighed):
    weighed.use_timer_names(["pasta"])
    try:
        assert "cancel the pasta timer" in weighed.phrases()
        weighed.scorer = Audio(-7.2, {"cancel the pasta timer": -8.0,
                                      "cancel the timer": -14.3})  # fmt: skip
        found = weighed.recognize("Can salt the pasta timer?")
        assert found is not None and found.intent == "HassCancelTimer"
        assert found.slots["name"] == "pasta" and found.score >= ACT_SCORE
    finally:
        weighed.use_timer_names([])
    assert "cancel the pasta timer" not in weighed.phrases()


@pytest.mark.e2e
def test_the_same_clip_gives_the_same_words_whatever_came_before():
    from appliance.bench.recordings import Recorder
    from appliance.bench.testset import spoken_items

    store = ModelStore(default_models_dir())
    stt = WhisperCppStt(store.path("whisper-tiny.en", "stt"), threads=2)
    recorder = Recorder(None)  # type: ignore[arg-type]  (espeak voices only)
    items = spoken_items()
    # Clip 14 of the bench, as it speaks it, was heard "vent light" alone and "satellite",
    # "mid light" or "Met Light" after another clip, when one state served every clip.
    before, clip = (int16_to_float(recorder.record(items[n].text, items[n].voice, items[n].noise,
                                                   items[n].snr_db, seed=n))
                    for n in (3, 14))  # fmt: skip
    first = stt.transcribe(clip)
    stt.transcribe(before)
    assert stt.transcribe(clip) == first


def test_a_timer_named_by_a_little_word_is_asked_about_not_set(tmp_path):
    from tests.test_understanding import House, running

    with running(House(tmp_path, HOME)) as house:
        (asked,) = house.say("Set an end timer for 4 minutes.")
        assert asked.follow_up and "timer called end, for four minutes" in asked.reply
        assert house.actions.timers.active() == []
        (named,) = house.say("Set a pasta timer for 4 minutes.")
        assert [t.name for t in house.actions.timers.active()] == ["pasta"], named.reply


def test_a_garbled_answer_to_which_one_is_asked_of_the_audio(tmp_path):
    from tests.test_understanding import House, running

    with running(House(tmp_path, HOME)) as house:
        house.actions.recognizer.scorer = Audio(-30.0, {"the kitchen one": -9.0,
                                                        "the porch one": -21.0,
                                                        "the kitchen light": -12.0})  # fmt: skip
        asked, answered = house.say("Turn on the light.", "M-I-I-I-I-I-I-I-I")
        assert asked.follow_up and "which" in asked.reply.lower()
        assert answered is not None and answered.action == "device_on", answered
        assert list(house.switched()) == ["kitchen light"]
        # The room talking in the window is far more likely as itself: not an answer.
        house.actions.recognizer.scorer = Audio(-3.0, {"the kitchen one": -25.0})
        asked, talk = house.say("Turn on the light.", "Yeah, she told me yesterday.")
        assert talk is None and house.switched() == {}
        house.actions.recognizer.scorer = None


class Relisten:
    """Stands for whisper hearing the same audio again with the house's words as prompt."""

    def __init__(self, again: str) -> None:
        self.again, self.heard = again, []

    def __call__(self, heard: str) -> str | None:
        self.heard.append(heard)
        return self.again


def _weighings(scorer: Audio) -> int:
    """Sentences scored (not the mere "is the audio still there?", with none)."""
    return sum(1 for texts in scorer.asked if texts)


def test_a_pause_s_weighing_is_the_one_the_request_ending_on_its_words_gets(weighed):
    heard = "Set the meant light to 50 percent."
    weighed.scorer = scorer = Audio(-2.0, {"set the bed light to 50 percent": -5.0,
                                           "set the porch light to 50 percent": -16.0})  # fmt: skip
    assert weighed.prepare(heard)
    asked = _weighings(scorer)
    assert asked, "weighed at the pause"
    found = weighed.recognize(heard)
    assert _weighings(scorer) == asked, "not weighed twice"
    assert _intent_and_name(found) == ("HassLightSet", "bed light")
    assert found.score >= ACT_SCORE and "3.0 below the transcript" in found.evidence
    weighed.recognize(heard)  # used once: a later request is weighed on its own audio
    assert _weighings(scorer) > asked


def test_a_request_that_went_on_past_the_pause_is_weighed_afresh(weighed):
    weighed.scorer = scorer = Audio(-2.0, {"set the bed light to 50 percent": -5.0})
    assert weighed.prepare("Set the meant light to")
    asked = _weighings(scorer)
    weighed.recognize("Set the meant light to 50 percent.")
    assert _weighings(scorer) > asked


def test_a_pause_s_weighing_is_not_kept_when_its_audio_is_gone_or_old(weighed, monkeypatch):
    heard = "Set the meant light to 50 percent."
    weighed.scorer = lambda transcript, texts: None  # another transcription since
    assert not weighed.prepare(heard)
    weighed.scorer = scorer = Audio(-2.0, {"set the bed light to 50 percent": -5.0})
    assert weighed.recognize(heard) is not None and _weighings(scorer)
    assert weighed.prepare("Set the meant light to 40 percent.")
    asked = _weighings(scorer)
    later = monotonic() + 60  # a minute on: of other audio
    monkeypatch.setattr("appliance.understanding.recognizer.time.monotonic", lambda: later)
    weighed.recognize("Set the meant light to 40 percent.")
    assert _weighings(scorer) > asked


def test_a_pause_s_weighing_is_not_used_for_the_same_words_without_their_audio(weighed):
    """The same words typed, or transcribed again since: the pause's audio is not theirs,
    so its weighing does not switch anything for them."""
    heard = "Set the meant light to 50 percent."
    weighed.scorer = Audio(-2.0, {"set the bed light to 50 percent": -5.0,
                                  "set the porch light to 50 percent": -16.0})  # fmt: skip
    assert weighed.prepare(heard)
    weighed.scorer = lambda transcript, texts: None  # that audio is gone
    found = weighed.recognize(heard)
    assert weighed.pause_weighings.used == 0
    assert found is None or found.score < ACT_SCORE or found.slots.get("name") != "bed light"


def test_no_second_listen_at_a_pause(weighed):
    heard = "and milk to the sharpened list."
    weighed.relisten = relisten = Relisten("Add milk to the shopping list.")
    weighed.scorer = Audio(-99.0, {heard: -6.0, "Add milk to the shopping list.": -8.0})
    assert not weighed.prepare(heard)  # only a second listen could settle it
    assert relisten.heard == []
    found = weighed.recognize(heard)  # the request ended on it: now it listens again
    assert relisten.heard == [heard] and found is not None and found.score >= ACT_SCORE


def test_a_second_listen_the_audio_supports_is_acted_on(weighed):
    heard = "and milk to the sharpened list."  # whisper, for "Add milk to the shopping list."
    weighed.relisten = relisten = Relisten("Add milk to the shopping list.")
    scorer = Audio(-99.0, {heard: -6.0, "Add milk to the shopping list.": -8.0})
    weighed.scorer = scorer
    found = weighed.recognize(heard)
    assert relisten.heard == [heard]
    assert found is not None and (found.intent, found.slots) == (
        "HassShoppingListAddItem", {"item": "milk"},
    )  # fmt: skip
    assert found.score >= ACT_SCORE and "heard again: 'Add milk" in found.evidence


def test_a_second_listen_the_audio_does_not_support_is_dropped(weighed):
    """A prompt makes whisper hear the house's words in anything: what it heard must be
    about as likely as the first transcript, for the audio without the prompt."""
    heard = "Tell me about the history of the light world."
    weighed.relisten = Relisten("Turn on the light in the bedroom.")
    weighed.scorer = Audio(-99.0, {heard: -9.0, "turn on the light in the bedroom": -30.0})
    assert weighed.recognize(heard) is None


@pytest.mark.parametrize(("likelihood", "acts"), [(-10.5, True), (-13.0, False)])
def test_a_sentence_heard_again_word_for_word_acts_a_little_further_below(
    weighed, likelihood, acts
):
    """4.5 below the transcript is asked about on the audio alone; when the second listen
    wrote that very sentence it acts (up to `ACT_GAP_HEARD_AGAIN`), and 7 below is still
    asked about."""
    heard = "and milk to the sharpened list."
    weighed.relisten = Relisten("Add milk to the shopping list.")
    weighed.scorer = Audio(-99.0, {heard: -6.0, "Add milk to the shopping list.": likelihood})
    found = weighed.recognize(heard)
    assert found is not None and found.slots == {"item": "milk"}
    assert (found.score >= ACT_SCORE) is acts


def test_sentences_near_what_was_heard_again_are_weighed_too(weighed):
    """The second listen's "right" for "brightness": its nearest sentence of the house is
    weighed, not only the reading that drops the word."""
    heard = "Set the porch light right to stay deeper sand."
    weighed.relisten = Relisten("Set the porch light right to 80 percent.")
    weighed.scorer = Audio(
        -99.0,
        {
            heard: -8.2,
            "set the porch light to 80 percent": -14.0,
            "set the porch light brightness to 80 percent": -8.5,
        },
    )
    found = weighed.recognize(heard)
    assert found is not None and found.text == "set the porch light brightness to 80 percent"
    assert (found.slots["name"], found.slots["brightness"]) == ("porch light", 80)
    assert found.score >= ACT_SCORE


def test_the_same_sentence_with_digits_or_words_is_one_meaning(weighed):
    """ "add 2 minutes" and "add two minutes" are not rivals of each other: the audio's
    slight preference between them is no reason to ask."""
    weighed.use_timer_names(["pasta"])
    try:
        heard = "And to men it's to the past a timer."  # no number: nothing to snap to
        weighed.relisten = Relisten("And two minutes to the pasta timer.")
        weighed.scorer = Audio(-99.0, {heard: -8.0, "add 2 minutes to the pasta timer": -10.0,
                                       "add two minutes to the pasta timer": -9.9})  # fmt: skip
        found = weighed.recognize(heard)
        assert found is not None and found.intent == "HassIncreaseTimer"
        assert found.slots["name"] == "pasta" and found.score >= ACT_SCORE
    finally:
        weighed.use_timer_names([])


def test_the_librarys_full_timer_sentences_are_sentences_of_the_house(weighed):
    """The Speech-to-Phrase set lacks "what timers do I have"; the library has it."""
    phrases = set(weighed.phrases())
    assert {
        "what timers do i have",
        "set a timer for 7 minutes",
        "turn on the porch light",
    } <= phrases
    weighed.scorer = Audio(-7.5, {"what timers do i have": -9.0})
    found = weighed.recognize("What, I must do I harm.")
    assert found is not None and found.intent == "HassTimerStatus" and found.score >= ACT_SCORE


@pytest.mark.parametrize("heard", ["Who painted the Mona Lisa?", "What, I must do I harm."])
def test_a_transcript_without_the_houses_words_is_not_heard_again(weighed, heard):
    weighed.relisten = relisten = Relisten("What time is it?")
    weighed.scorer = Audio(-1.0, {})
    assert weighed.recognize(heard) is None and relisten.heard == []


@pytest.mark.e2e
def test_whisper_hears_the_same_audio_again_with_a_prompt():
    store = ModelStore(default_models_dir())
    stt = WhisperCppStt(store.path("whisper-tiny.en", "stt"), threads=2)
    assert isinstance(stt, Relistener)
    audio = add_noise(compose(0.4, espeak_phrase("Turn on the porch light."), 0.6))
    heard = stt.transcribe(int16_to_float(audio))
    again = stt.relisten(heard, "The porch light, the kitchen light. Turn on the porch light.")
    assert again and "porch light" in again.lower(), (heard, again)
    # Its scoring is now of the second listen; the first transcript's audio is gone.
    assert stt.score(heard, ["Turn on the porch light."]) is None or heard == again
    said, other = stt.score(again, ["Turn on the porch light.", "Cancel the timer."])
    assert said > other
    assert stt.relisten("something else", "The porch light.") is None
    stt.close()

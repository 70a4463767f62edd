from __future__ import annotations

from appliance.pipeline.sentences import SentenceSplitter, clean_for_speech


def split_stream(pieces: list[str]) -> list[str]:
    splitter = SentenceSplitter()
    out: list[str] = []
    for piece in pieces:
        out += splitter.feed(piece)
    return out + splitter.flush()


def test_sentences_come_out_as_soon_as_they_are_complete():
    splitter = SentenceSplitter()
    assert splitter.feed("The capital of France") == []
    assert splitter.feed(" is Paris.") == []  # no white space after the stop yet
    assert splitter.feed(" It has") == ["The capital of France is Paris."]
    assert splitter.feed(" museums!\nAnd") == ["It has museums!"]
    assert splitter.flush() == ["And"]


def test_numbers_abbreviations_and_short_fragments_do_not_split():
    text = "It costs 3.5 euros. Dr. Smith agrees. 1. Yes. That is all."
    pieces = [text[i : i + 3] for i in range(0, len(text), 3)]
    assert split_stream(pieces) == [
        "It costs 3.5 euros.",
        "Dr. Smith agrees.",
        "1. Yes. That is all.",
    ]


def test_markdown_is_not_read_aloud():
    assert clean_for_speech("**Paris** is `the` capital #1") == "Paris is the capital 1"
    assert split_stream(["* one thing is here.\n", "* another thing here"]) == [
        "one thing is here.",
        "another thing here",
    ]


def test_empty_stream_gives_nothing():
    assert split_stream([]) == []
    assert split_stream(["   ", "\n"]) == []


def test_a_run_on_sentence_is_cut_at_a_comma():
    clause = "the model keeps writing words without ever stopping"
    text = f"{clause}, {clause} and {clause}, {clause} and {clause}, {clause}"
    parts = split_stream([text[i : i + 4] for i in range(0, len(text), 4)])
    assert len(parts) >= 2 and all(len(p) <= 160 for p in parts)
    assert parts[0].endswith(",")
    assert " ".join(parts) == clean_for_speech(text)


def test_a_long_text_without_commas_is_cut_at_a_space():
    text = " ".join(["word"] * 80)
    parts = split_stream([text])
    assert all(len(p) <= 160 for p in parts) and " ".join(parts) == text


def _pieces(text: str, **options) -> list[str]:
    splitter = SentenceSplitter(**options)
    out = []
    for i in range(0, len(text), 3):  # as a model writes: a few characters at a time
        out += splitter.feed(text[i : i + 3])
    return out + splitter.flush()


def test_a_long_first_sentence_is_spoken_from_its_first_clause():
    text = "The moon is about 384,400 kilometers from Earth, and it takes 27 days. It glows."
    assert _pieces(text, first_clause_chars=24) == [
        "The moon is about 384,400 kilometers from Earth,",
        "and it takes 27 days.",
        "It glows.",
    ]
    assert (
        _pieces(text)[0] == "The moon is about 384,400 kilometers from Earth, and it takes 27 days."
    )


def test_only_the_first_piece_is_a_clause_and_only_where_a_clause_starts():
    text = "Paris is the capital of France, and a big city. Lyon is big, and it is old."
    assert _pieces(text, first_clause_chars=24) == [
        "Paris is the capital of France,",
        "and a big city.",
        "Lyon is big, and it is old.",
    ]
    # a conjunction between two verbs starts no clause; a short opener is not cut off
    editing = "Well, I can help with editing and improving your text for the next meeting."
    assert _pieces(editing, first_clause_chars=24) == [editing]
    assert _pieces("The capital of France is Paris.", first_clause_chars=24) == [
        "The capital of France is Paris."
    ]


def test_a_sentence_that_opens_as_a_question_is_never_cut():
    text = "Shall I set a timer for the pasta, or would you rather wait a bit? Fine."
    assert _pieces(text, first_clause_chars=24)[0] == (
        "Shall I set a timer for the pasta, or would you rather wait a bit?"
    )

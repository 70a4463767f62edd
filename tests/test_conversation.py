from __future__ import annotations

from appliance.pipeline.conversation import Conversation, estimate_tokens


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_messages_carry_the_exchanges_in_order():
    conversation = Conversation()
    conversation.add("capital of France?", "Paris.")
    roles = [(m.role, m.content) for m in conversation.messages("sys", "and Germany?")]
    assert roles == [("system", "sys"), ("user", "capital of France?"),
                     ("assistant", "Paris."), ("user", "and Germany?")]  # fmt: skip


def test_oldest_exchanges_go_first_when_over_the_token_budget():
    conversation = Conversation(max_tokens=40)
    for i in range(10):
        conversation.add(f"question number {i} " * 2, f"answer number {i} " * 2)
    kept = conversation.exchanges
    assert kept and kept[-1].user.startswith("question number 9")
    assert sum(estimate_tokens(e.user) + estimate_tokens(e.assistant) for e in kept) <= 40
    assert all("number 0 " not in e.user for e in kept)


def test_forgotten_after_inactivity():
    clock = Clock()
    conversation = Conversation(idle_seconds=60, clock=clock)
    conversation.add("hi", "hello")
    clock.now = 59
    assert len(conversation.exchanges) == 1
    clock.now = 59 + 61
    assert conversation.exchanges == ()
    assert [m.role for m in conversation.messages("", "new")] == ["user"]


def test_an_empty_reply_is_not_remembered():
    conversation = Conversation()
    conversation.add("hello?", "   ")
    assert conversation.exchanges == ()

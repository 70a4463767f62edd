"""The command handler: a recognised intent becomes tool calls, or a question, or an honest
answer; never a guess.

- A sentence the library matched as said, or with a correction scoring at least
  `ACT_SCORE`, runs its tools at once.
- A middling match asks first ("Did you mean the porch light?") and keeps the calls;
  "yes" in the follow-up runs them, "no" drops them.
- "the light" with three lights asks which; the answer completes it.
- An intent the board has nothing for (weather, media, locks) is answered with what is
  missing.

Every reply that says something was done is the sentence of a tool that ran and
succeeded in this turn (`ToolRegistry.call`). Each recognition is published as an
`intent` event and written to the audit log with the calls it made.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from appliance import events as ev
from appliance.actions.devices import Ambiguous, Device, DeviceDirectory, Match
from appliance.actions.tools import CallContext, ToolRegistry
from appliance.handlers import Handled
from appliance.understanding import acoustic, arithmetic
from appliance.understanding.answers import (
    after_no,
    answer_words,
    did_you_mean,
    drops_it,
    is_no,
    is_yes,
    timer_named_instead,
)
from appliance.understanding.compound import split_commands
from appliance.understanding.intents import Call, Plan, plan_for
from appliance.understanding.recognition import DEVICE_INTENTS, Recognition
from appliance.understanding.recognizer import Recognizer
from appliance.understanding.replies import group_reply
from appliance.understanding.responses import Responses

_LOGGER = logging.getLogger(__name__)
NAME = "intents"
ACT_SCORE = 0.85
"""A corrected match at least this sure acts; below it the appliance asks first."""
PENDING_SECONDS = 60.0
"""How long a question ("which light?", "did you mean …?") waits for its answer."""
LAST_DEVICE_SECONDS = 120.0
"""How long "it" means the device a command last switched."""
_PRONOUN = re.compile(r"\b(?:it|that)\b", re.IGNORECASE)


@dataclass
class _Pending:
    question: str
    calls: tuple[Call, ...] = ()
    """Confirm: what "yes" runs."""
    which: tuple[Device, ...] = ()
    """Which one: the candidates; `calls` then have device "" to fill in."""
    recognition: Recognition | None = None
    asked_at: float = field(default_factory=time.monotonic)
    complete: str = ""
    """What is missing: the sentence the answer completes ("set a timer for {}")."""


class IntentHandler:
    """A `TextHandler`, first in the pipeline's list."""

    name = NAME

    def __init__(
        self,
        recognizer: Recognizer,
        registry: ToolRegistry,
        devices: DeviceDirectory,
        *,
        timers: Any = None,
        max_timer_hours: float = 24.0,
        origin: str = "voice",
        clock: Callable[[], float] = time.monotonic,
        responses: Responses | None = None,
    ) -> None:
        """`responses`: the library's reply templates, for a language other than English."""
        self.recognizer = recognizer
        self.responses = responses
        self.registry = registry
        self.devices = devices
        self.timers = timers
        self.max_timer_hours = max_timer_hours
        self.origin = origin
        self.clock = clock
        self._pending: _Pending | None = None
        self._last_device: tuple[str, float] | None = None
        """The device a command last switched, and when ("turn it off")."""
        self.last: Recognition | None = None
        """The last recognition (for tests and the benchmark)."""

    def forget_pending(self) -> None:
        """A new request (the wake word said again): an open question is dropped."""
        self._pending = None

    def forget(self) -> None:
        """As if just started: no open question, and no device that "it" means."""
        self._pending = None
        self._last_device = None

    async def prepare(self, text: str) -> None:
        """At a pause (`handlers.Prepares`): weigh the words heard so far against their
        audio now, beside the wait for the end of the request, not after it. Only what
        `handle` would weigh: not an answer to a question asked back, nor a sum."""
        if self.recognizer.scorer is None or self._pending is not None:
            return
        if arithmetic.parse(text) is not None:
            return
        self._name_the_timers()
        await asyncio.to_thread(self.recognizer.prepare, text)

    def _name_the_timers(self) -> None:
        """The running timers' names are sentences of the house now."""
        if self.timers is not None:
            self.recognizer.use_timer_names(t.name for t in self.timers.active() if t.name)

    async def handle(self, text: str, turn: int) -> Handled | None:
        pending, self._pending = self._pending, None
        if pending is not None and self.clock() - pending.asked_at < PENDING_SECONDS:
            answered = await self._answer(pending, text, turn)
            if answered is not None:
                return answered
        sum_ = arithmetic.parse(text)
        if sum_ is not None:
            found = Recognition("ApplianceCalculate", sum_, 1.0, "library", text)
            return await self._act(found, (Call("calculate", sum_),), text, turn)
        self._name_the_timers()
        if self.recognizer.scorer is not None:  # it may ask whisper: not on the event loop
            found = await asyncio.to_thread(self.recognizer.recognize, text)
        else:
            found = self.recognizer.recognize(text)
        self.last = found
        if found is None or found.score < ACT_SCORE:
            parts = await asyncio.to_thread(split_commands, text, self._sure)
            if parts is not None:
                return await self._act_each(parts, turn)
        if found is None:
            found = self._about_the_last_device(text)
        if found is None:
            return None
        plan = plan_for(found, self)
        if plan is None:
            return None
        if plan.answer is not None and not plan.calls:
            self._publish(found, turn, found.path)
            self._audit_refusal(found, plan, text, turn)
            if plan.which:
                self._pending = _Pending(plan.answer, plan.which_calls, plan.which, found,
                                         self.clock())  # fmt: skip
            elif plan.complete:
                self._pending = _Pending(plan.answer, recognition=found, asked_at=self.clock(),
                                         complete=plan.complete)  # fmt: skip
            action = plan.tool or found.intent
            follow_up = bool(plan.which or plan.complete)
            return Handled(plan.answer, NAME, action, follow_up=follow_up, acted=False)
        if found.score < ACT_SCORE or plan.confirm:
            question = plan.question or did_you_mean(found)
            self._publish(found, turn, "confirm")
            self._pending = _Pending(question, plan.calls, (), found, self.clock())
            return Handled(question, NAME, plan.calls[0].tool, follow_up=True, acted=False)
        return await self._act(found, plan.calls, text, turn)

    def _about_the_last_device(self, text: str) -> Recognition | None:
        """ "Turn it off." / "Make it brighter." a little after a device was switched: that
        device, when the sentence with its name is a library sentence as said."""
        if self._last_device is None or not _PRONOUN.search(text):
            return None
        name, when = self._last_device
        if self.clock() - when > LAST_DEVICE_SECONDS:
            return None
        said = _PRONOUN.sub(f"the {name}", text, count=1)
        found = self.recognizer.recognize(said, weigh=False)
        if found is None or found.path != "library" or found.score < 1.0:
            return None
        if found.intent not in DEVICE_INTENTS:  # "what is it?" asks about no light
            return None
        if self.recognizer.device_for(str(found.slots.get("name", ""))) != name:
            return None
        return replace(found, text=said)

    def _sure(self, part: str) -> Recognition | None:
        """A part of a compound request (`compound.split_commands`) that is a command to
        run at once: the library's sentence as said (the audio, which is of the whole
        request, cannot vouch for a corrected part)."""
        found = self.recognizer.recognize(part, weigh=False)
        if found is None or found.path != "library" or found.score < 1.0:
            return None
        plan = plan_for(found, self)
        if plan is None or not plan.calls or plan.confirm or plan.answer is not None:
            return None
        return found

    async def _act_each(self, parts: list[tuple[str, Recognition]], turn: int) -> Handled:
        """Each command of a compound request, in order; the replies said one after the
        other, each saying only what its own tools did."""
        replies, tool = [], ""
        for said, found in parts:
            plan = plan_for(found, self)
            assert plan is not None  # `_sure` made one
            handled = await self._act(found, plan.calls, said, turn)
            replies.append(handled.reply)
            tool = tool or handled.action
        return Handled(" ".join(r for r in replies if r), NAME, tool)

    async def _answer(self, pending: _Pending, text: str, turn: int) -> Handled | None:
        words = answer_words(text)
        if pending.complete:
            return await self._completed(pending.complete, text, words, turn)
        if pending.which:
            chosen = self.devices.pick(text, pending.which) or await self._pick_by_audio(
                text, pending.which
            )
            if chosen is None:
                return None
            calls = tuple(c.with_device(chosen.name) for c in pending.calls)
            assert pending.recognition is not None
            return await self._act(pending.recognition, calls, text, turn)
        if is_yes(words):
            assert pending.recognition is not None
            return await self._act(pending.recognition, pending.calls, text, turn,
                                   path="confirm")  # fmt: skip
        if is_no(words):
            own = self.recognizer.recognize(after_no(words), weigh=False)
            if own is not None and own.path == "library" and own.score >= 1.0:
                # "No, turn off the kitchen light.": a request of its own, not the asked
                # command on another device.
                return await self.handle(after_no(words), turn)
            named = timer_named_instead(pending.calls, words)
            if named is not None:  # "Did you mean a timer called end?" "No, egg."
                asked = pending.recognition
                assert asked is not None
                found = replace(asked, slots={**asked.slots, "name": named[0].arguments["name"]})
                return await self._act(found, named, text, turn, path="confirm")
            other = self._instead(pending, words)
            if other is not None:  # "No, the bed light.": that one, then
                asked = pending.recognition
                assert asked is not None
                found = replace(asked, slots={**asked.slots, "name": other.name})
                calls = tuple(c.with_device(other.name) for c in pending.calls)
                return await self._act(found, calls, text, turn, path="confirm")
            return Handled("OK, I won't.", NAME, "confirm_declined")
        return None

    def _instead(self, pending: _Pending, words: str) -> Device | None:
        """The device a "no" names instead of the one asked about, if it names one."""
        rest = after_no(words)
        asked = {c.arguments.get("device") for c in pending.calls}
        if not rest or not pending.calls or None in asked:
            return None
        other = self.devices.pick(rest, list(self.devices))
        return other if other is not None and other.name not in asked else None

    async def _completed(self, sentence: str, text: str, words: str, turn: int) -> Handled | None:
        """The answer to "for how long?" put into the sentence it completes; None (the
        answer is then a request of its own) when it is a whole command itself ("Cancel
        the pasta timer.") or completes none."""
        if drops_it(words):
            return Handled("OK.", NAME, "confirm_declined")
        own = self.recognizer.recognize(text, weigh=False)  # its words alone: no whisper
        if own is not None and own.path == "library" and own.score >= ACT_SCORE:
            return None
        answer = text.strip().rstrip(".!?").strip()
        before, _, after = sentence.partition("{}")
        joint = before.split()[-1:] if before.split() else []
        if joint and answer.lower().split()[:1] == joint:  # "for ten minutes", "the porch light"
            answer = answer.split(None, 1)[1] if len(answer.split()) > 1 else ""
        follows = after.split()[:1]  # "cancel the {} timer": "pasta one", "pasta timer"
        if follows and len(answer.split()) > 1 and answer.lower().split()[-1] in {*follows, "one"}:
            answer = answer.rsplit(None, 1)[0]
        if not answer:
            return None
        return await self.handle(sentence.replace("{}", answer), turn)

    async def _pick_by_audio(self, text: str, which: tuple[Device, ...]) -> Device | None:
        """The answer to "which one?" asked of the audio, when its words named none."""
        scorer = self.recognizer.scorer
        if scorer is None or not text.strip():
            return None
        answers = {d.name: acoustic.ways_to_say(d.name, d.config.aliases) for d in which}
        try:
            chosen = await asyncio.to_thread(acoustic.pick_answer, text, answers, scorer)
        except Exception:
            _LOGGER.exception("asking the audio which device %r was failed", text)
            return None
        return next((d for d in which if d.name == chosen), None)

    async def _act(
        self,
        found: Recognition,
        calls: tuple[Call, ...],
        text: str,
        turn: int,
        *,
        path: str | None = None,
    ) -> Handled:
        path = path or found.path
        self._publish(found, turn, path)
        context = CallContext("intent", turn, text, self.origin, intent=_intent_json(found, path))
        replies, failures, done = [], [], 0
        for call in calls:
            outcome = await self.registry.call(call.tool, dict(call.arguments), context)
            if outcome.ok:
                done += 1
                if "device" in call.arguments and len(calls) == 1:
                    self._last_device = (str(call.arguments["device"]), self.clock())
                if outcome.message:
                    replies.append(outcome.message)
            else:
                failures.append(outcome.message)
        tool = calls[0].tool if calls else ""
        if self.responses is not None and calls and not failures:
            named = (
                {"name": str(calls[0].arguments["device"])}
                if "device" in calls[0].arguments
                else {}
            )
            said = self.responses.render(found.intent, found.response, {**found.slots, **named})
            if said is not None:
                return Handled(said, NAME, tool)
        if len(calls) > 1 and not failures:
            return Handled(group_reply(calls, replies), NAME, tool)
        return Handled(" ".join([*replies, *failures]).strip(), NAME, tool)

    def _publish(self, found: Recognition, turn: int, path: str) -> None:
        self.registry.bus.publish(
            ev.IntentRecognized(
                turn=turn,
                stream_time=0.0,
                intent=found.intent,
                slots=_plain(found.slots),
                score=found.score,
                path=path,
                text=found.text,
                evidence=found.evidence,
            )
        )

    def _audit_refusal(self, found: Recognition, plan: Plan, text: str, turn: int) -> None:
        if not plan.tool:
            return
        context = CallContext("intent", turn, text, self.origin,
                              intent=_intent_json(found, found.path))  # fmt: skip
        self.registry.refuse(plan.tool, _plain(found.slots), plan.answer or "", context)

    # ---- what the plans need to know of the house --------------------------------------

    def device_named(self, spoken: str) -> Device | None:
        name = self.recognizer.device_for(spoken)
        return self.devices.get(name) if name else None

    def resolve_kind(self, kind: str) -> Match | Ambiguous | None:
        found = self.devices.resolve(kind)
        return found if isinstance(found, Match | Ambiguous) else None

    def timer_named(self, name: str) -> str:
        """The running timer's own name for a spoken one ("past" → "pasta"), or as said."""
        if not name or self.timers is None:
            return name
        found = {t.name for t in self.timers.find(name)}
        return found.pop() if len(found) == 1 and "" not in found else name

    def running_timers(self) -> int:
        return len(self.timers.active()) if self.timers is not None else 0

    def timer_labels(self, state: str = "") -> list[str]:
        """How the timers (running or paused, "" = both) are spoken of: "pasta timer"."""
        if self.timers is None:
            return []
        return [t.label for t in self.timers.active() if not state or t.state == state]

    def has_tool(self, name: str) -> bool:
        return self.registry.get(name) is not None


def _plain(slots: dict[str, Any]) -> dict[str, Any]:
    return {k: v if isinstance(v, str | int | float | bool) else str(v) for k, v in slots.items()}


def _intent_json(found: Recognition, path: str) -> str:
    return json.dumps(
        {"intent": found.intent, "slots": _plain(found.slots), "score": found.score,
         "path": path, **({"evidence": found.evidence} if found.evidence else {})},
        ensure_ascii=False,
    )  # fmt: skip

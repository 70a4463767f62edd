"""Replies in the library's language: for a language other than English, what was done is
said with the sentence library's own response templates ("Stehlampe eingeschaltet").

The templates are Jinja, as Home Assistant renders them, with the intent's slots. They
are rendered only after every tool of the request ran and succeeded, so they never say
more than was done. A template that needs what we do not give it (a list of timer
objects) fails to render, and the tool's own (English) sentence is said instead.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from appliance.understanding.library import SentenceLibrary

_LOGGER = logging.getLogger(__name__)


class Responses:
    def __init__(
        self, library: SentenceLibrary, *, now: Callable[[], dt.datetime] = dt.datetime.now
    ) -> None:
        self.language = library.language
        self.templates: dict[str, dict[str, str]] = library.data.get("responses", {}).get(
            "intents", {}
        )
        self.now = now
        self._env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)

    def render(self, intent: str, key: str, slots: dict[str, Any]) -> str | None:
        """The library's reply for a done intent, or None (no template, or it needs what
        we do not have)."""
        choices = self.templates.get(intent, {})
        template = choices.get(key) or choices.get("default")
        if not template:
            return None
        moment = self.now()
        # Home Assistant gives the templates the words as said ("10"), not numbers.
        said = {k: _as_said(v) for k, v in slots.items()}
        values = {"time": moment.time(), "date": moment.date(), **said}
        try:
            text = self._env.from_string(template).render(slots=values)
        except (TemplateError, TypeError, ValueError, AttributeError) as err:
            _LOGGER.info("no %s reply for %s/%s (%s)", self.language, intent, key, err)
            return None
        return " ".join(text.split()) or None


def _as_said(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value

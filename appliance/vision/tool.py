"""The `look` tool: requests about looking that the spoken trigger (`intents.py`) does not
catch, such as "could you check what the label on this says", can reach the camera through
the language model's tool call. It is registered only when vision is on.

Like the device and timer tools, the model's call is checked against the words before the
camera is used: the request must be about reading or seeing, and what to do (read or
describe) comes from the words, not from the model. The question is the transcript.
"""

from __future__ import annotations

from typing import Any

from appliance.actions.numbers import tokens
from appliance.actions.tools import Param, Tool, ToolError
from appliance.vision.service import VisionService

READ_WORDS = frozenset({"read", "label", "labels", "sign", "signs", "written", "writing",
                        "says", "text", "menu", "note", "letter", "printed", "poster",
                        "screen", "page", "words", "spell"})  # fmt: skip
"""Words of a request to read the text in view."""
SCENE_WORDS = frozenset({"camera", "describe", "anyone", "anybody", "someone", "somebody",
                         "picture", "photo"})  # fmt: skip
"""Words of a request to describe the scene."""
_LOOK = frozenset({"see", "look", "looking", "seeing"})
_ASKING = frozenset({"what", "who", "anything", "can", "could", "do", "is", "whats", "what's"})


def look_tool(service: VisionService) -> Tool:
    async def look(arguments: dict[str, Any]) -> str:
        answer = await service.look(arguments["kind"], question=arguments.get("question", ""))
        if not answer.ok and answer.problem != "no_vision_model":
            raise ToolError(answer.text)  # no camera, nothing visible, …: said, logged
        return answer.text

    return Tool(
        "look",
        "Look through the camera: kind read reads the text in view (a label, a sign); "
        "kind describe says what is there.",
        look,
        (
            Param("kind", "string", "read or describe", enum=("read", "describe")),
            Param("question", "string", "what was asked", required=False),
        ),
        hints=READ_WORDS | SCENE_WORDS | _LOOK,
        words_check=check_look,
    )


def check_look(arguments: dict[str, Any], text: str) -> dict[str, Any] | None:
    """The call as the words support it: read when they ask for text, describe when they
    ask what is there; None (no look) when they are about neither."""
    words = set(tokens(text))
    if words & READ_WORDS:
        kind = "read"
    elif words & SCENE_WORDS or (words & _LOOK and words & _ASKING):
        kind = "describe"
    else:
        return None
    return {"kind": kind, "question": " ".join(text.split())[:500]}

"""Applying saved settings to the running appliance, stage by stage, where that can be
done without reloading a model; everything else is reported as needing a restart."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from appliance.config import AppConfig
from appliance.web.settings import DEVICES, FIELDS_BY_NAME


@dataclass
class LiveTargets:
    """What the running appliance offers to live changes (all optional: the page also
    runs without a pipeline, e.g. while models load)."""

    pipeline: Any = None
    on_device_name: Callable[[str], None] | None = None
    """Called with the new name (the mDNS advertiser re-announces)."""
    on_keep_transcripts: Callable[[bool], None] | None = None
    extra: dict[str, Callable[[Any], bool]] = field(default_factory=dict)
    """More "section.key" → apply(value) -> applied? hooks: the engines' declared
    settings (`app.engine_settings`: the wake word's threshold, the voice's rate)."""


@dataclass(frozen=True)
class ApplyReport:
    applied: tuple[str, ...]
    """One line per setting applied live, naming the stage that took it."""
    restart: tuple[str, ...]
    """Settings saved that take effect at the next start."""


def apply_changes(targets: LiveTargets, new: AppConfig, changed: tuple[str, ...]) -> ApplyReport:
    applied: list[str] = []
    restart: list[str] = []
    for name in changed:
        if name == DEVICES:
            restart.append(
                "Devices: saved; they take effect when the appliance restarts (the pins, "
                "the fast path and the language model's tools are set up at start)"
            )
            continue
        item = FIELDS_BY_NAME[name]
        value = getattr(getattr(new, item.section), item.key)
        if _apply(targets, name, value, new):
            applied.append(f"{item.label}: applied ({item.live})")
        else:
            restart.append(f"{item.label}: saved; takes effect when the appliance restarts")
    return ApplyReport(tuple(applied), tuple(restart))


def _apply(targets: LiveTargets, name: str, value: Any, new: AppConfig) -> bool:
    if name in targets.extra:
        return targets.extra[name](value)
    pipeline = targets.pipeline
    if name == "web.device_name" and targets.on_device_name is not None:
        targets.on_device_name(value)
        return True
    if name == "web.keep_transcripts" and targets.on_keep_transcripts is not None:
        targets.on_keep_transcripts(value)
        return True
    if pipeline is None:
        return False
    settings = pipeline.settings
    if name == "llm.system_prompt":
        pipeline.settings = dataclasses.replace(settings, system_prompt=value)
        return True
    if name in ("conversation.follow_up_seconds", "conversation.follow_up"):
        pipeline.settings = dataclasses.replace(settings, conversation=new.conversation)
        return True
    if name == "feedback.earcons":
        pipeline.settings = dataclasses.replace(settings, earcons=value)
        return True
    return False

"""The project keeps its own promises: lint-clean, and the manual (docs/) documents the code."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

from appliance import events as ev
from appliance.errors import EXIT_CODES

ROOT = Path(__file__).resolve().parents[1]
EVENTS_DOC = (ROOT / "docs" / "events.md").read_text("utf-8")
COMMANDS_DOC = (ROOT / "docs" / "commands.md").read_text("utf-8")


def test_ruff_lint_and_format_are_clean():
    for args in (["check", "."], ["format", "--check", "."]):
        proc = subprocess.run([sys.executable, "-m", "ruff", *args], cwd=ROOT,
                              capture_output=True, text=True)  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_manual_documents_every_event_and_its_fields():
    for cls in ev.EVENT_TYPES:
        row = re.search(rf"^\| `{cls.type}` \|(.*)$", EVENTS_DOC, re.M)
        assert row, f"event {cls.type} missing from docs/events.md's event table"
        for field in dataclasses.fields(cls):
            if field.name not in ("turn", "stream_time", "wall_time"):
                assert f"`{field.name}`" in row.group(1), (cls.type, field.name)


def test_the_manual_documents_every_exit_code():
    for code in EXIT_CODES:
        assert re.search(rf"^\| {code} \|", COMMANDS_DOC, re.M), (
            f"exit code {code} not in docs/commands.md"
        )


def test_top_level_layout():
    for name in ("appliance", "image-build", "systemd", "models", "tests", "setup.sh",
                 "README.md", "pyproject.toml", ".ci/run"):  # fmt: skip
        assert (ROOT / name).exists(), name

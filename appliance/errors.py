"""Errors a user can see: each has a stable code, a message that says how to fix it,
and a process exit code. One subclass per pipeline stage, as in Home Assistant's
assist_pipeline, so a failed turn names the stage that failed."""

from __future__ import annotations


class ApplianceError(Exception):
    """Base of every error that is reported to a user instead of a traceback."""

    code: str = "appliance_error"
    exit_code: int = 1

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return self.message


class ConfigError(ApplianceError):
    code = "config_invalid"
    exit_code = 2


class AudioInputError(ApplianceError):
    """The input recording or microphone could not be read."""

    code = "audio_input"
    exit_code = 3


class AudioDeviceError(ApplianceError):
    """No usable microphone or speaker."""

    code = "audio_device"
    exit_code = 4


class ModelError(ApplianceError):
    """A model file is missing, corrupt, or fails to load."""

    code = "model"
    exit_code = 5


class PipelineError(ApplianceError):
    """A stage failed during a turn. The turn is abandoned, the session goes on."""

    code = "pipeline"
    exit_code = 6
    stage: str = "pipeline"


class ActionError(PipelineError):
    """A request handler (the actions fast path, vision, …) failed."""

    code = "action_failed"
    stage = "actions"


class WakeWordError(PipelineError):
    code = "wake_failed"
    stage = "wake"


class SpeechToTextError(PipelineError):
    code = "stt_failed"
    stage = "stt"


class LanguageModelError(PipelineError):
    code = "llm_failed"
    stage = "llm"


class GrammarUnsupportedError(LanguageModelError):
    """The language model backend cannot constrain its output (RKLLM): no tool calls."""

    code = "llm_no_grammar"


class TextToSpeechError(PipelineError):
    code = "tts_failed"
    stage = "tts"


class AudioOutputError(PipelineError):
    code = "audio_output"
    stage = "output"


# Exit codes, documented in docs/commands.md and `appliance --help`.
EXIT_OK = 0
EXIT_INTERRUPTED = 130
EXIT_CODES: dict[int, str] = {
    0: "success",
    1: "unexpected internal error (a bug: please report it with the log)",
    2: "invalid command line or configuration",
    3: "the input audio file is missing, empty, truncated or not a PCM WAV",
    4: "no usable audio device (microphone or speaker)",
    5: "a model file is missing, corrupt or failed to load (run ./setup.sh or "
    "`appliance models prepare`)",
    6: "a pipeline stage failed",
    8: "`appliance doctor` found a problem",
    10: "the camera or the image could not be used (missing, busy, unreadable, too large, "
    "or nothing visible)",
    130: "interrupted (Ctrl-C / SIGINT)",
}

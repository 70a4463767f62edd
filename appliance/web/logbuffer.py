"""Recent log lines for the logs page, kept in memory (bounded)."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass

SECRET_LOGGER = "appliance.pairing.code"
"""The one logger that carries a secret (the pairing code, logged once for the journal):
never kept here, so it never reaches the page."""


@dataclass(frozen=True)
class LogLine:
    time: float
    level: str
    logger: str
    message: str

    def text(self) -> str:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.time))
        return f"{stamp} {self.level:<7} {self.logger}: {self.message}"


class LogBuffer(logging.Handler):
    """A logging handler that keeps the last `capacity` records."""

    def __init__(self, capacity: int = 1000) -> None:
        super().__init__(level=logging.INFO)
        self._lines: deque[LogLine] = deque(maxlen=capacity)
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(SECRET_LOGGER):
            return
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not break logging
            message = str(record.msg)
        if record.exc_info and record.exc_info[1] is not None:
            message += f" ({type(record.exc_info[1]).__name__}: {record.exc_info[1]})"
        with self._guard:
            self._lines.append(LogLine(record.created, record.levelname, record.name, message))

    def lines(self, limit: int | None = None) -> list[LogLine]:
        with self._guard:
            lines = list(self._lines)
        return lines[-limit:] if limit else lines

    def attach(self, logger: logging.Logger) -> None:
        """Keep INFO lines and up here, without making the console chattier: console
        handlers that had no level of their own keep the root logger's."""
        root = logging.getLogger()
        for handler in root.handlers:
            if handler.level == logging.NOTSET:
                handler.setLevel(root.level)
        logger.addHandler(self)
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)

    def detach(self, logger: logging.Logger) -> None:
        logger.removeHandler(self)

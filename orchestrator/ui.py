"""What a command talks to the user through: a Rich console and the chosen output format.

Passed down explicitly (never a global), so a test hands in Console(file=io.StringIO()) and reads
exactly what the user would see.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from rich.console import Console


class OutputFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


@dataclass(frozen=True)
class UI:
    console: Console = field(default_factory=Console)
    output: OutputFormat = OutputFormat.TEXT
    assume_yes: bool = False

    @property
    def live(self) -> bool:
        """A live progress display only on a terminal, and never when JSON is asked for."""
        return self.output is OutputFormat.TEXT and self.console.is_terminal

    @property
    def interactive(self) -> bool:
        return self.console.is_terminal and sys.stdin is not None and sys.stdin.isatty()

    def emit(self, kind: str, **fields: Any) -> None:
        """One machine-readable JSON object per line in --output json; nothing in text mode."""
        if self.output is OutputFormat.JSON:
            self.console.print_json(json.dumps({"type": kind, **fields}, default=str), indent=None)

    def confirm(self, question: str, *, why: str) -> None:
        """Go on only with a yes: --yes, or a person answering at a terminal. Otherwise refuse (exit 2)."""
        from orchestrator.errors import Cancelled, UsageError

        if self.assume_yes:
            return
        if not self.interactive:
            raise UsageError(f"{why}; refusing to go on without a terminal to ask",
                             hint="review it with `rds-streams plan`, then pass --yes")
        from rich.prompt import Confirm

        if not Confirm.ask(question, console=self.console, default=False):
            raise Cancelled("nothing was changed: you answered no")

    def say(self, message: str) -> None:
        """A human line in text mode; nothing in JSON mode (the emitted objects say it there)."""
        if self.output is OutputFormat.TEXT:
            self.console.print(message, highlight=False, soft_wrap=not self.console.is_terminal)

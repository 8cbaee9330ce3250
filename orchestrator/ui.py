"""What a command talks to the user through: the one place that prints.

Passed down explicitly (never a global), so a test hands in Console(file=io.StringIO()) and reads
exactly what the user would see.

Markup is only ever read from our own literal strings. Everything else (names, ARNs, values from
the database, AWS messages) goes in as data and is printed literally, never as markup or emoji:

    ui.say("[green]deleted[/] {name}", name=stack_name)   # the template is ours, `name` is data

Off a terminal, text mode prints plain lines: no colour, no boxes, no wrapping. `--output json` prints
one object per line with a `type` (the contract in README.md, "Machine-readable output").
"""

from __future__ import annotations

import json
import string
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum, StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

_SLOT = "\ue000"  # a private-use character marks where data goes while our template is parsed as markup


class OutputFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


def _default_console() -> Console:
    from rich.console import Console

    return Console()


@dataclass(frozen=True)
class Styled:
    """A piece of data shown in one of our styles (e.g. a table cell): the text stays literal."""

    text: str
    style: str = ""


Cell = str | Styled | int | float | None


@dataclass(frozen=True)
class UI:
    console: Console = field(default_factory=_default_console)
    output: OutputFormat = OutputFormat.TEXT
    assume_yes: bool = False

    @property
    def json(self) -> bool:
        return self.output == OutputFormat.JSON

    @property
    def live(self) -> bool:
        """A live progress display only on a terminal, and never when JSON is asked for."""
        return self.output == OutputFormat.TEXT and self.console.is_terminal

    @property
    def interactive(self) -> bool:
        return self.console.is_terminal and sys.stdin is not None and sys.stdin.isatty()

    # --- machine-readable ----------------------------------------------------------------------------
    def emit(self, kind: str, **fields: Any) -> None:
        """One JSON object per line in --output json; nothing in text mode."""
        if self.json:
            self.console.file.write(json_line({"type": kind, **fields}) + "\n")
            self.console.file.flush()

    def result(self, *, ok: bool, exit_code: int, summary: str, **fields: Any) -> None:
        """The last object of every command in --output json."""
        self.emit("result", ok=ok, exit_code=exit_code, summary=summary, **fields)

    def error(self, *, message: str, hint: str | None, exit_code: int) -> None:
        self.emit("error", message=message, hint=hint, exit_code=exit_code)

    # --- for people ----------------------------------------------------------------------------------
    def say(self, template: str = "", /, **data: Any) -> None:
        """A line in text mode (nothing in JSON mode, where the emitted objects say it).

        `template` is our own literal text and may carry markup; each `{name}` in it is filled with
        `data[name]` printed literally.
        """
        if self.output == OutputFormat.TEXT:
            self._print(compose(template, data))

    def text(self, line: str, style: str = "") -> None:
        """A line of data, printed literally (in text mode)."""
        if self.output == OutputFormat.TEXT:
            from rich.text import Text

            self._print(Text(line, style=style))

    def table(self, columns: Sequence[str], rows: Iterable[Sequence[Cell]], *, title: str | None = None,
              header: bool = True) -> None:
        """Rows under a header: aligned columns on a terminal, plain lines elsewhere (no box, no wrap)."""
        if self.output != OutputFormat.TEXT:
            return
        rows = [[_cell(c) for c in row] for row in rows]
        if not self.console.is_terminal:
            self._plain_table(columns, rows, title, header)
            return
        from rich.table import Table
        from rich.text import Text

        table = Table(title=Text(title, style="bold") if title else None, title_justify="left", box=None,
                      header_style="bold", show_header=header)
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*(Text(c.text, style=c.style) for c in row))
        self.console.print(table)

    def _plain_table(self, columns: Sequence[str], rows: list[list[Styled]], title: str | None, header: bool) -> None:
        from rich.text import Text

        widths = [max([len(col)] + [len(r[i].text) for r in rows]) for i, col in enumerate(columns)]
        if title:
            self._print(Text(title))
        for cells in ([list(columns)] if header else []) + [[c.text for c in r] for r in rows]:
            line = "  ".join(cell.ljust(w) for cell, w in zip(cells, widths, strict=True)).rstrip()
            self._print(Text(line))

    def command_line(self, template: str, /, **data: Any) -> None:
        """Like `say`, never wrapped, on a terminal too: a shell command the user copies as one line."""
        if self.output == OutputFormat.TEXT:
            self._print(compose(template, data), wrap=False)

    @contextmanager
    def progress(self, label: str, total: int, unit: str = "rows") -> Iterator[Callable[[int, float], None]]:
        """Progress of one long job: a Rich bar (done, rate, time left) on a terminal; off one, a plain line
        every few seconds; with --output json a `progress` object at most once a second. Yields
        `update(done, per_second)`; `label` is data, printed literally."""
        if self.live:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            with Progress(TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),
                          TextColumn("{task.fields[rate]}", markup=False), TimeRemainingColumn(),
                          console=self.console) as bar:
                task = bar.add_task(label, total=max(total, 1), rate="")
                yield lambda done, rate: bar.update(task, completed=done, total=max(total, done, 1),
                                                    rate=f"{rate:,.0f} {unit}/s")
            return
        every = 1.0 if self.json else 5.0
        shown_at, pending = [-every], [None]  # the last line's time; the newest figures not shown yet

        def update(done: int, rate: float) -> None:
            pending[0] = (done, rate)
            if time.monotonic() - shown_at[0] >= every:
                shown_at[0], pending[0] = time.monotonic(), None
                self._progress_line(label, total, unit, done, rate)

        yield update
        if pending[0] is not None:
            self._progress_line(label, total, unit, *pending[0])

    def _progress_line(self, label: str, total: int, unit: str, done: int, rate: float) -> None:
        left = max(total - done, 0) / rate if rate > 0 else None
        self.emit("progress", label=label, done=done, total=total, unit=unit, per_second=round(rate, 1),
                  seconds_left=None if left is None else round(left, 1))
        self.say("  {label}: {done} of about {total} {unit}, {rate:,.0f} {unit}/s, {left} left", label=label,
                 done=done, total=total, unit=unit, rate=rate, left="?" if left is None else f"{left:.0f} s")

    def _print(self, text: Text, *, wrap: bool = True) -> None:
        self.console.print(text, highlight=False, soft_wrap=not (wrap and self.console.is_terminal))

    def confirm(self, question: str, *, why: str, **data: Any) -> None:
        """Go on only with a yes: --yes, or a person answering at a terminal. Otherwise refuse (exit 2).

        `question` is a template as for `say`."""
        from orchestrator.errors import Cancelled, UsageError

        if self.assume_yes:
            return
        if not self.interactive:
            raise UsageError(f"{why}; refusing to go on without a terminal to ask",
                             hint="review it with `rds-streams plan`, then pass --yes")
        from rich.prompt import Confirm

        if not Confirm.ask(compose(question, data), console=self._prompt_console(), default=False):
            raise Cancelled("nothing was changed: you answered no")

    def ask(self, question: str, default: str, **data: Any) -> str:
        """A free-text answer at a terminal; the default anywhere else."""
        if not self.interactive:
            return default
        from rich.prompt import Prompt

        return Prompt.ask(compose(question, data), console=self._prompt_console(),
                          default=default).strip() or default

    def _prompt_console(self) -> Console:
        """Questions go to stderr in --output json, so stdout stays one JSON object per line."""
        if not self.json:
            return self.console
        from rich.console import Console

        return Console(stderr=True)


def compose(template: str, data: dict[str, Any]) -> Text:
    """Our markup template with each `{field}` filled by literal data (styled as the markup around it)."""
    from rich.text import Text

    if not data:
        return Text.from_markup(template, emoji=False)
    markup, values = [], []
    for literal, name, spec, conversion in string.Formatter().parse(template):
        markup.append(literal.replace(_SLOT, ""))
        if name is not None:
            value = data[name]
            value = repr(value) if conversion == "r" else str(value) if conversion == "s" else value
            values.append(format(value, spec or ""))
            markup.append(_SLOT)
    parsed = Text.from_markup("".join(markup), emoji=False)
    out, start, slots = Text(), 0, iter(values)
    for offset, char in enumerate(parsed.plain):
        if char == _SLOT:
            out.append_text(parsed[start:offset])
            piece = Text(next(slots))
            for span in parsed[offset:offset + 1].spans:
                piece.stylize(span.style)
            out.append_text(piece)
            start = offset + 1
    out.append_text(parsed[start:])
    return out


def _cell(value: Cell) -> Styled:
    if isinstance(value, Styled):
        return value
    return Styled("" if value is None else str(value))


def iso_utc(moment: datetime | float | int) -> str:
    """ISO 8601 in UTC with a Z; a number is epoch milliseconds (as CloudWatch Logs gives them)."""
    if not isinstance(moment, datetime):
        moment = datetime.fromtimestamp(moment / 1000, tz=UTC)
    elif moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # our database times are UTC
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not part of the JSON contract")


def json_line(obj: dict[str, Any]) -> str:
    return json.dumps(obj, default=_json_default, separators=(",", ":"), allow_nan=False)

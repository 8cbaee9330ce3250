"""ui.progress: a Rich bar on a terminal, plain lines off one, `progress` objects with --output json;
the label is data, printed literally."""

from __future__ import annotations

import io
import json

from rich.console import Console

from orchestrator.ui import UI, OutputFormat


def run(ui: UI) -> None:
    with ui.progress("flights.[bold]routes[/]", 3000) as update:
        update(1000, 500.0)
        update(3000, 600.0)


def test_off_a_terminal_progress_is_plain_lines_with_rate_and_time_left():
    out = io.StringIO()
    run(UI(console=Console(file=out, force_terminal=False)))
    lines = out.getvalue().splitlines()
    assert lines[0] == "  flights.[bold]routes[/]: 1000 of about 3000 rows, 500 rows/s, 4 s left"
    assert lines[-1] == "  flights.[bold]routes[/]: 3000 of about 3000 rows, 600 rows/s, 0 s left"


def test_with_json_progress_is_objects_of_the_contract():
    out = io.StringIO()
    run(UI(console=Console(file=out), output=OutputFormat.JSON))
    objects = [json.loads(line) for line in out.getvalue().splitlines()]
    assert objects[0] == {"type": "progress", "label": "flights.[bold]routes[/]", "done": 1000, "total": 3000,
                          "unit": "rows", "per_second": 500.0, "seconds_left": 4.0}
    assert objects[-1]["done"] == 3000


def test_on_a_terminal_progress_is_a_bar_showing_the_label_literally():
    out = io.StringIO()
    run(UI(console=Console(file=out, force_terminal=True, width=120)))
    text = out.getvalue()
    assert "flights.[bold]routes[/]" in text and "3000/3000" in text and "600 rows/s" in text

"""The consumer handler logs one JSON line per record and never raises, whatever it is given."""

from __future__ import annotations

import json

import pytest

from blueprints.consumer_handler import handler


def test_each_record_is_logged_as_one_json_line_findable_by_event_id(capsys):
    records = [{"eventID": f"id-{n}", "eventName": "INSERT", "dynamodb": {"Keys": {"k": {"N": str(n)}}}}
               for n in range(3)]
    assert handler({"Records": records}) == {"records": 3}
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line) for line in lines] == records
    assert all(f'"id-{n}"' in lines[n] for n in range(3))


@pytest.mark.parametrize("event", [{"probe": "marker-123"}, "text", None, 42, [1, 2], {"Records": "x"}])
def test_anything_that_is_not_a_batch_is_logged_whole_and_not_raised_on(capsys, event):
    assert handler(event) == {"records": 0}
    (line,) = capsys.readouterr().out.splitlines()
    assert json.loads(line) == {"rds_streams": "message", "payload": event}


def test_malformed_records_inside_a_batch_are_logged_and_skipped(capsys):
    assert handler({"Records": [{"eventID": "a"}, "junk", {"no": "id"}]}) == {"records": 1}
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[0] == {"eventID": "a"}
    assert lines[1] == {"rds_streams": "malformed-record", "record": "junk"}

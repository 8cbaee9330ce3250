"""The consumer Lambda: logs each change record as one JSON line.

This file is inlined verbatim into the consumer stack's template (as index.py) and run as deployed by
the sandbox's runner, so it must stay standard-library only and small. One line per record lets
CloudWatch Logs find a record by its quoted eventID.
"""

import json


def _line(value):
    return json.dumps(value, default=str, separators=(",", ":"), sort_keys=True)


def handler(event, context=None):
    records = event.get("Records") if isinstance(event, dict) else None
    if not isinstance(records, list):
        # A probe payload or anything else: logged whole, never raised on.
        print(_line({"rds_streams": "message", "payload": event}))
        return {"records": 0}
    logged = 0
    for record in records:
        if isinstance(record, dict) and "eventID" in record:
            print(_line(record))
            logged += 1
        else:
            print(_line({"rds_streams": "malformed-record", "record": record}))
    return {"records": logged}

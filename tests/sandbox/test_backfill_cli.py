"""`rds-streams backfill` end to end on the sandbox, both deliveries: `up` runs the backfill step for a table
marked `backfill = true`; the command, with a writer throughout, brings every row to the consumer's log
(relay, runner, moto logs), and replaying the log gives the table; `status` shows it done."""

from __future__ import annotations

import random
import threading

import pytest

from orchestrator.database.catalog import read_table_shape
from tests.database import backfill_support as support
from tests.database.consumers import consume
from tests.sandbox.conftest import ROUTE_INSERT, ROUTE_UPDATE, local_config, logged_records, root_connection, wait_for

TERM = "BACKFILL-T"
ROWS = 600


@pytest.fixture(scope="module", params=["outbox", "direct"])
def backfill_sandbox(request, tmp_path_factory):
    from orchestrator.cli import main

    config_path = local_config(tmp_path_factory.mktemp("backfill"),
                               {"stream": {"delivery": request.param, "batch_size": 200}})
    text = config_path.read_text().replace('name = "routes"', 'name = "routes"\nbackfill = true')
    config_path.write_text(text)
    assert main(["up", "--config", str(config_path), "--yes", "--output", "json"]) == 0
    yield config_path
    assert main(["down", "--config", str(config_path), "--yes", "--output", "json"]) == 0


def test_up_backfills_a_marked_table_once_and_the_command_brings_every_row_under_a_writer(backfill_sandbox, cli):
    code, lines = cli("status", "--config", str(backfill_sandbox))
    assert code == 0
    [status] = [o for o in lines if o["type"] == "status"]
    assert status["backfills"]["flights.routes"]["state"] == "done"  # up's step, on the empty table

    conn = root_connection(backfill_sandbox)
    with conn.cursor() as cursor:
        cursor.executemany(ROUTE_INSERT, [(f"B{i:05d}", TERM, "XX") for i in range(ROWS)])
    conn.commit()
    stop, failures, writes = threading.Event(), [], [0]

    def write() -> None:
        rnd, writer = random.Random(1), root_connection(backfill_sandbox)
        writer.autocommit(True)
        while not stop.is_set():
            key = f"B{rnd.randrange(ROWS + 100):05d}"
            try:
                with writer.cursor() as cursor:
                    choice = rnd.random()
                    if choice < 0.6:
                        cursor.execute(ROUTE_UPDATE, (f"W{writes[0] % 1000}", key, TERM))
                    elif choice < 0.8:
                        cursor.execute("DELETE FROM `flights`.`routes` WHERE `airportFrom` = %s AND `airportTo` = %s",
                                       (key, TERM))
                    else:
                        cursor.execute(ROUTE_INSERT.replace("INSERT", "INSERT IGNORE"), (key, TERM, "NW"))
                writes[0] += 1
            except Exception as err:  # noqa: BLE001  (every failed write is the test's failure)
                failures.append(str(err))
        writer.close()

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    try:
        code, lines = cli("backfill", "--config", str(backfill_sandbox), "--restart", "--chunk", "100")
    finally:
        stop.set()
        thread.join(30)
    assert code == 0, lines
    assert failures == [] and writes[0] > 20
    [result] = [o for o in lines if o["type"] == "result"]
    done = result["tables"]["flights.routes"]["rows"]
    assert done >= ROWS * 0.7

    shape = read_table_shape(conn, "flights", "routes")
    wait_for(lambda: _outbox_empty(backfill_sandbox), 60, "the relay to deliver the outbox")
    records = wait_for(lambda: [r for r in logged_records(backfill_sandbox, TERM)
                                if "rdsStreamsSnapshot" in r["dynamodb"]] and logged_records(backfill_sandbox, TERM),
                       30, "the snapshot records in the consumer's log")
    for record in records:
        consume(record)
    assert sum("rdsStreamsSnapshot" in r["dynamodb"] for r in records) == done
    state, faults = support.replay(records, shape)
    final = {k: v for k, v in support.table_rows(conn, shape).items() if k[1] == TERM}
    assert faults == []
    assert state == final
    conn.close()

    code, lines = cli("status", "--config", str(backfill_sandbox))
    [status] = [o for o in lines if o["type"] == "status"]
    assert status["backfills"]["flights.routes"]["state"] == "done"
    assert status["backfills"]["flights.routes"]["rows_done"] == done


def _outbox_empty(config_path) -> bool:
    conn = root_connection(config_path)
    with conn.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM `rds_streams`.`outbox`")
        waiting = cursor.fetchone()[0]
    conn.close()
    return waiting == 0


def test_an_unknown_table_or_contradicting_flags_are_refused_before_anything_is_touched(backfill_sandbox, cli):
    code, lines = cli("backfill", "--config", str(backfill_sandbox), "--table", "nope")
    assert code == 2
    [error] = [o for o in lines if o["type"] == "error"]
    assert "not a streamed table: nope" in error["message"] and "routes" in error["message"]
    code, lines = cli("backfill", "--config", str(backfill_sandbox), "--resume", "--restart")
    assert code == 2


def test_resume_with_nothing_unfinished_emits_nothing(backfill_sandbox, cli):
    code, lines = cli("backfill", "--config", str(backfill_sandbox), "--resume")
    assert code == 0
    assert any(o.get("status") == "nothing to resume" for o in lines if o["type"] == "backfill")
    [result] = [o for o in lines if o["type"] == "result"]
    assert result["rows"] == 0


def test_ctrl_c_stops_after_the_current_chunk_says_how_to_resume_and_the_next_run_resumes(backfill_sandbox, cli):
    import json
    import signal
    import subprocess
    import sys
    import time

    conn = root_connection(backfill_sandbox)
    with conn.cursor() as cursor:
        cursor.executemany(ROUTE_INSERT, [(f"C{i:05d}", "CTRL-C", "XX") for i in range(1500)])
    conn.commit()
    conn.close()
    child = subprocess.Popen([sys.executable, "-m", "orchestrator.cli", "backfill", "--config", str(backfill_sandbox),
                              "--restart", "--chunk", "100", "--rate", "1000", "--output", "json"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: _backfill_state(backfill_sandbox) == "in progress", 30, "the backfill to start")
    time.sleep(0.5)
    child.send_signal(signal.SIGINT)
    out, _ = child.communicate(timeout=30)
    assert child.returncode == 130
    objects = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    [error] = [o for o in objects if o["type"] == "error"]
    assert "stopped after chunk" in error["message"] and "resumes at the next chunk" in error["hint"]
    assert _backfill_state(backfill_sandbox) == "in progress"

    code, lines = cli("status", "--config", str(backfill_sandbox))
    [status] = [o for o in lines if o["type"] == "status"]
    stopped = status["backfills"]["flights.routes"]
    assert stopped["state"] == "in progress" and 0 < stopped["rows_done"] < stopped["rows_total"]
    code, lines = cli("backfill", "--config", str(backfill_sandbox), "--resume")
    assert code == 0
    [started] = [o for o in lines if o["type"] == "backfill" and o["status"] != "done"]
    assert started["status"] == "resumed" and started["rows_done"] == stopped["rows_done"]
    [result] = [o for o in lines if o["type"] == "result"]
    assert result["rows"] >= stopped["rows_total"]

    code, lines = cli("up", "--config", str(backfill_sandbox), "--yes")
    assert code == 0
    assert {"type": "step", "name": "backfill", "status": "already done"} in [
        {k: o[k] for k in ("type", "name", "status")} for o in lines if o["type"] == "step"]


def _backfill_state(config_path) -> str | None:
    conn = root_connection(config_path)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT `finished_at` IS NULL FROM `rds_streams`.`backfills` WHERE `table_name` = 'routes'")
            row = cursor.fetchone()
    finally:
        conn.close()
    return None if row is None else ("in progress" if row[0] else "done")

"""A warm Lambda worker: `python lambda_worker.py HANDLER PATH...`.

Puts PATH... on sys.path (the function's private dependencies, then its code: the shipped handler the
runner wrote from the template, or your unpacked package), imports HANDLER (module.function) as
Lambda does, then answers one JSON line per invocation on stdin with one JSON line on stdout: what the
handler printed, its result or error, and how long it took. Run as a script, standard library only,
so nothing of ours is on the handler's path. The sink fault patch (tests and benchmarks), installed only when the
runner names a faults file, is loaded from its file beside this one and uses botocore, which the function has.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import json
import os
import sys
import time
import traceback
from pathlib import Path


class Context:
    def __init__(self, request: dict) -> None:
        self.aws_request_id = request["request_id"]
        self.function_name = request["function_name"]
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = request.get("memory_mb", 128)
        self.invoked_function_arn = request["function_arn"]
        self.log_group_name = f"/aws/lambda/{request['function_name']}"
        self._deadline = time.monotonic() + request.get("timeout_s", 30)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def install_sink_faults() -> None:
    faults = os.environ.pop("RDS_STREAMS_SANDBOX_SINK_FAULTS", None)
    if not (faults and os.environ.get("RDS_STREAMS_SINK")):
        return
    spec = importlib.util.spec_from_file_location("rds_streams_sink_faults", Path(__file__).with_name("sink_faults.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.install(faults)


def load_handler(handler_name: str, paths: list[str]):  # noqa: ANN201
    sys.path[:1] = paths  # replaces this script's own folder
    module_name, function_name = handler_name.rsplit(".", 1)
    return getattr(importlib.import_module(module_name), function_name)


def main() -> None:
    replies = sys.stdout
    install_sink_faults()
    handler, load_error = None, None
    try:
        with contextlib.redirect_stdout(sys.stderr):  # what the module prints on import goes to the runner's log
            handler = load_handler(sys.argv[1], sys.argv[2:])
    except Exception as err:  # as Lambda: every invocation fails with the import error, the runtime stays up
        load_error = {"errorType": "Runtime.ImportModuleError",
                      "errorMessage": f"Unable to import module '{sys.argv[1].rsplit('.', 1)[0]}': {err}",
                      "trace": traceback.format_exc()}
    for line in sys.stdin:
        request = json.loads(line)
        printed = io.StringIO()
        started = time.perf_counter()
        reply: dict = {"error": None, "result": None}
        if load_error:
            reply["error"] = load_error
        else:
            with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
                try:
                    reply["result"] = handler(json.loads(request["payload"]), Context(request))
                except Exception as err:  # the handler's failure is the invocation's result, as in Lambda
                    reply["error"] = {"errorType": type(err).__name__, "errorMessage": str(err),
                                      "trace": traceback.format_exc()}
        reply["duration_ms"] = (time.perf_counter() - started) * 1000
        reply["output"] = printed.getvalue()
        replies.write(json.dumps(reply, default=str) + "\n")
        replies.flush()


if __name__ == "__main__":
    main()

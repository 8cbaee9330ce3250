"""A warm Lambda worker: `python -m orchestrator.sandbox.lambda_worker INDEX_PY HANDLER`.

Loads the function's code as deployed (the runner writes the template's inline source to INDEX_PY),
then answers one JSON line per invocation on stdin with one JSON line on stdout: what the handler
printed, its result or error, and how long it took. Standard library only, like the function (the sink
fault patch, installed only when the runner names a faults file, uses botocore, which the function has).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import sys
import time
import traceback


class Context:
    def __init__(self, request: dict) -> None:
        self.aws_request_id = request["request_id"]
        self.function_name = request["function_name"]
        self.memory_limit_in_mb = request.get("memory_mb", 128)
        self.invoked_function_arn = request["function_arn"]
        self._deadline = time.monotonic() + request.get("timeout_s", 30)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def main() -> None:
    source, handler_name = sys.argv[1], sys.argv[2]
    faults = os.environ.pop("RDS_STREAMS_SANDBOX_SINK_FAULTS", None)
    if faults and os.environ.get("RDS_STREAMS_SINK"):
        from orchestrator.sandbox.sink_faults import install

        install(faults)
    module_name, function_name = handler_name.rsplit(".", 1)
    spec = importlib.util.spec_from_file_location(module_name, source)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    handler = getattr(module, function_name)
    replies = sys.stdout
    for line in sys.stdin:
        request = json.loads(line)
        printed = io.StringIO()
        started = time.perf_counter()
        reply: dict = {"error": None, "result": None}
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

"""The sandbox's stand-in for Lambda: drains the emulated invocation queue in MariaDB, runs the
consumer's code as deployed in a warm worker, and writes what it printed to CloudWatch Logs (moto)
with Lambda's START / END / REPORT lines. A handler that raises is logged as Lambda logs it and,
for async invocations, retried twice, as Lambda does. A handler that runs past the function's
Timeout is stopped, as Lambda stops it. A synchronous call (lambda_sync) is answered once the
invocation is logged: success, or the function's error document (aurora_emulation.SyncAnswers).

`python -m orchestrator.sandbox.runner STATE_DIR` runs it until SIGTERM.
"""

from __future__ import annotations

import json
import math
import os
import select
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from orchestrator.sandbox.aurora_emulation import (
    LambdaCall,
    SyncAnswers,
    delete_calls,
    fetch_calls,
    fetch_sync_calls,
    waiting_sync_calls,
)
from orchestrator.sandbox.function_code import DeployedFunction, deployed_function, prepare

ASYNC_ATTEMPTS = 3       # the call and Lambda's two retries
RETRY_DELAY = 0.2        # Lambda waits minutes; the sandbox keeps the retry semantics, not the delay
IDLE_POLL = 0.02
PREPARE_RETRY = 2.0


SINK_FAULTS_FILE = "sink_faults.json"
SINK_FAULTS_VARIABLE = "RDS_STREAMS_SANDBOX_SINK_FAULTS"
# Inherited variables that would point a handler's AWS SDK elsewhere than the sandbox's moto.
FOREIGN_AWS = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
               "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "AWS_CA_BUNDLE", "AWS_ROLE_ARN",
               "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
               "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")


def lambda_environment(state: Any, function_name: str, *, memory_mb: int = 128, handler: str = "",
                       variables: dict[str, str] | None = None) -> dict[str, str]:
    """The environment Lambda gives a function, for a worker of the sandbox: its region, credentials
    (the sandbox's own, standing in for the function's role) and AWS_ENDPOINT_URL at the sandbox's
    moto, so a handler's boto3 calls (DynamoDB, Kinesis, SQS...) land there; plus the function's own
    variables. Everything else is inherited from the runner, minus what would point at real AWS."""
    from orchestrator.sandbox.moto_server import load_credentials

    credentials = load_credentials(state.root)
    environment = {k: v for k, v in os.environ.items() if k not in FOREIGN_AWS and not k.startswith("AWS_ENDPOINT_URL")}
    environment.update(variables or {})
    environment.update({
        "AWS_REGION": state.region, "AWS_DEFAULT_REGION": state.region,
        "AWS_ACCESS_KEY_ID": credentials["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": credentials["aws_secret_access_key"],
        "AWS_ENDPOINT_URL": state.moto_url,
        "AWS_LAMBDA_FUNCTION_NAME": function_name, "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb), "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function_name}",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12", "_HANDLER": handler,
        # Where a test may ask the sink calls to be refused for a while (sandbox/sink_faults.py).
        SINK_FAULTS_VARIABLE: str(state.root / SINK_FAULTS_FILE),
    })
    return environment


class Worker:
    """One warm worker process for one function; restarted if it dies."""

    def __init__(self, code: DeployedFunction, paths: list[Path], environment: dict[str, str]) -> None:
        self.code = code
        self.paths = paths
        self.environment = {**environment, "LAMBDA_TASK_ROOT": str(paths[-1])}
        self.process: subprocess.Popen[str] | None = None

    def _ensure(self) -> subprocess.Popen[str]:
        if self.process is None or self.process.poll() is not None:
            # Run as a script (standard library only), in the code's folder as Lambda does.
            self.process = subprocess.Popen(
                [sys.executable, str(Path(__file__).with_name("lambda_worker.py")), self.code.handler,
                 *map(str, self.paths)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
                cwd=self.paths[-1], env=self.environment,
            )
        return self.process

    def invoke(self, request_id: str, payload: str) -> dict[str, Any]:
        process = self._ensure()
        request = {"request_id": request_id, "payload": payload, "function_name": self.code.name,
                   "function_arn": self.code.arn, "memory_mb": self.code.memory_mb, "timeout_s": self.code.timeout_s}
        assert process.stdin and process.stdout
        started = time.perf_counter()
        try:
            process.stdin.write(json.dumps(request) + "\n")
            process.stdin.flush()
            ready, _, _ = select.select([process.stdout], [], [], self.code.timeout_s)
            line = process.stdout.readline() if ready else None
        except BrokenPipeError:
            line = ""
        if line is None:
            # Lambda stops a handler at its Timeout; so does the sandbox, and the next call gets a fresh runtime.
            self.stop(kill=True)
            self.process = None
            message = (f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime())}.000Z {request_id} "
                       f"Task timed out after {self.code.timeout_s:.2f} seconds")
            return {"error": {"errorType": "Sandbox.Timedout", "errorMessage": message}, "output": message,
                    "duration_ms": (time.perf_counter() - started) * 1000, "timed_out": True}
        if not line:
            self.process = None
            return {"error": {"errorType": "Runtime.ExitError", "errorMessage": "the runtime exited"},
                    "output": "", "duration_ms": 0.0}
        return json.loads(line)

    def stop(self, kill: bool = False) -> None:
        if self.process and self.process.poll() is None:
            if kill:
                self.process.kill()
            else:
                self.process.terminate()
            self.process.wait(timeout=5)


class LogWriter:
    """Lambda's log lines for one invocation, to /aws/lambda/<function> in CloudWatch Logs."""

    def __init__(self, logs: Any) -> None:
        self.logs = logs
        self.streams: dict[str, str] = {}

    def _stream(self, function: str) -> tuple[str, str]:
        group = f"/aws/lambda/{function}"
        if function not in self.streams:
            existing = self.logs.describe_log_groups(logGroupNamePrefix=group).get("logGroups", [])
            if not any(g["logGroupName"] == group for g in existing):
                self.logs.create_log_group(logGroupName=group)  # as Lambda does when it is missing
            stream = time.strftime("%Y/%m/%d/[$LATEST]") + uuid.uuid4().hex
            self.logs.create_log_stream(logGroupName=group, logStreamName=stream)
            self.streams[function] = stream
        return group, self.streams[function]

    def lines(self, code: DeployedFunction, request_id: str, reply: dict[str, Any]) -> list[str]:
        lines = [f"START RequestId: {request_id} Version: $LATEST"]
        lines += [line for line in reply.get("output", "").splitlines() if line]
        if reply.get("error") and not reply.get("timed_out"):  # a timeout's line is its output
            error = reply["error"]
            lines.append(f"[ERROR] {error['errorType']}: {error['errorMessage']}\n{error.get('trace', '')}".rstrip())
        duration = reply.get("duration_ms", 0.0)
        lines.append(f"END RequestId: {request_id}")
        lines.append(f"REPORT RequestId: {request_id}\tDuration: {duration:.2f} ms\tBilled Duration: "
                     f"{max(1, math.ceil(duration))} ms\tMemory Size: {code.memory_mb} MB")
        return lines

    def write(self, function: str, lines: list[tuple[int, str]]) -> None:
        """One PutLogEvents for a batch of invocations: what keeps the runner ahead of a busy writer."""
        group, stream = self._stream(function)
        for start in range(0, len(lines), 5000):  # PutLogEvents takes at most 10,000 events
            self.logs.put_log_events(logGroupName=group, logStreamName=stream,
                                     logEvents=[{"timestamp": at, "message": m} for at, m in lines[start:start + 5000]])


def failure_destination_record(code: DeployedFunction, request_id: str, payload: str, reply: dict[str, Any],
                               attempts: int) -> str:
    """What Lambda sends to an on-failure destination once an async event's retries are exhausted."""
    try:
        request_payload = json.loads(payload)
    except json.JSONDecodeError:
        request_payload = payload
    error = reply.get("error") or {}
    return json.dumps({
        "version": "1.0", "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
        "requestContext": {"requestId": request_id, "functionArn": f"{code.arn}:$LATEST",
                           "condition": "RetriesExhausted", "approximateInvokeCount": attempts},
        "requestPayload": request_payload,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorMessage": error.get("errorMessage"), "errorType": error.get("errorType")},
    })


class Runner:
    def __init__(self, connect: Any, cfn: Any, logs: Any, consumer_stack: str, work_dir: Path,
                 sqs: Any = None, s3: Any = None, state: Any = None) -> None:
        self.connect = connect
        self.cfn = cfn
        self.s3 = s3
        self.state = state
        self.sqs = sqs
        self.dead_letter_url = _dead_letter_url(cfn, consumer_stack) if sqs is not None else None
        self.consumer_stack = consumer_stack
        self.work_dir = work_dir
        self.log = LogWriter(logs)
        self.workers: dict[str, Worker | None] = {}
        self.stopping = threading.Event()

    def worker_for(self, arn: str) -> Worker | None:
        if arn not in self.workers:
            name = arn.rsplit(":", 1)[-1]
            code = deployed_function(self.cfn, self.consumer_stack, name, arn)
            worker = None
            if code is not None:
                try:
                    paths = prepare(code, self.s3, self.work_dir)
                except Exception as err:
                    raise RuntimeError(f"cannot prepare {name}'s code: {err}") from err
                environment = lambda_environment(self.state, name, memory_mb=code.memory_mb, handler=code.handler,
                                                 variables=code.environment) if self.state else dict(os.environ)
                worker = Worker(code, paths, environment)
            self.workers[arn] = worker
        return self.workers[arn]

    def handle(self, call: LambdaCall, pending: dict[str, list[tuple[int, str]]]) -> dict[str, Any]:
        """Run one queued call (with Lambda's retries for async ones); its log lines go to `pending`.
        Returns the last attempt's reply."""
        worker = self.worker_for(call.function_arn)
        if worker is None:
            print(f"runner: no deployed function for {call.function_arn}; call {call.id} dropped", file=sys.stderr)
            return {"error": {"errorType": "ResourceNotFoundException",
                              "errorMessage": f"Function not found: {call.function_arn}"}}
        request_id = str(uuid.uuid4())
        attempts = ASYNC_ATTEMPTS if call.invocation_type == "Event" else 1
        for attempt in range(attempts):
            reply = worker.invoke(request_id, call.payload)
            now = int(time.time() * 1000)
            pending.setdefault(worker.code.name, []).extend(
                (now, line) for line in self.log.lines(worker.code, request_id, reply))
            if not reply.get("error"):
                return reply
            if attempt + 1 < attempts and self.stopping.wait(RETRY_DELAY * (attempt + 1)):
                return reply
        if call.invocation_type == "Event" and self.dead_letter_url:
            self.sqs.send_message(QueueUrl=self.dead_letter_url, MessageBody=failure_destination_record(
                worker.code, request_id, call.payload, reply, attempts))
        return reply

    def run(self) -> None:
        conn = self.connect()
        answers = SyncAnswers(conn)
        try:
            while not self.stopping.is_set():
                answers.settle(waiting_sync_calls(conn))
                sync_calls = fetch_sync_calls(conn, skip=answers.answered)
                calls = fetch_calls(conn, after_id=0, limit=200)
                if not calls and not sync_calls:
                    self.stopping.wait(IDLE_POLL)
                    continue
                pending: dict[str, list[tuple[int, str]]] = {}
                try:
                    replies = [(call, self.handle(call, pending)) for call in sync_calls]
                    for call in calls:
                        self.handle(call, pending)
                except Exception as err:  # the code could not be made ready (say moto's S3 hiccuped):
                    # the calls stay queued and run once it can; nothing is dropped
                    print(f"runner: {err}; retrying", file=sys.stderr, flush=True)
                    self.stopping.wait(PREPARE_RETRY)
                    continue
                for function, lines in pending.items():
                    self.log.write(function, lines)
                # Answered only once logged: the relay deletes what lambda_sync confirms.
                for call, reply in replies:
                    answers.answer(call.id, error_document(reply), response_document(reply))
                # Gone only once logged: a runner killed mid-batch runs those calls again (at least once).
                if calls:
                    delete_calls(conn, calls[-1].id)
        finally:
            for worker in self.workers.values():
                if worker:
                    worker.stop()
            conn.close()


def error_document(reply: dict[str, Any]) -> str | None:
    """The error document a synchronous Invoke returns when the function failed (FunctionError), else None."""
    error = reply.get("error")
    if not error:
        return None
    return json.dumps({"errorMessage": error.get("errorMessage"), "errorType": error.get("errorType")})


def response_document(reply: dict[str, Any]) -> str | None:
    """What a successful synchronous Invoke returns: the function's return value as JSON."""
    if reply.get("error"):
        return None
    return json.dumps(reply.get("result"), default=str, separators=(",", ":"))


def _dead_letter_url(cfn: Any, consumer_stack: str) -> str | None:
    from orchestrator.deploy.stacks import describe_stack

    return describe_stack(cfn, consumer_stack).outputs.get("DeadLetterQueueUrl")


def main(state_dir: str) -> None:
    from orchestrator.sandbox.state import SandboxState

    state = SandboxState.load(Path(state_dir))
    aws = state.aws()
    runner = Runner(connect=state.root_connection, cfn=aws.client("cloudformation"), logs=aws.client("logs"),
                    consumer_stack=state.consumer_stack, work_dir=Path(state_dir) / "functions",
                    sqs=aws.client("sqs"), s3=aws.client("s3"), state=state)
    signal.signal(signal.SIGTERM, lambda *_: runner.stopping.set())
    signal.signal(signal.SIGINT, lambda *_: runner.stopping.set())
    runner.run()


if __name__ == "__main__":
    main(sys.argv[1])

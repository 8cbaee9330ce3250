"""The sandbox's warm worker runs a handler from folders on its path, as Lambda imports it; a handler
that cannot be imported fails each invocation with Lambda's Runtime.ImportModuleError, never silently."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import orchestrator.sandbox.lambda_worker as lambda_worker

WORKER = Path(lambda_worker.__file__)


def invoke(handler: str, paths: list[Path], payload: dict) -> dict:
    request = {"request_id": "r1", "payload": json.dumps(payload), "function_name": "fn",
               "function_arn": "arn:aws:lambda:eu-west-1:123456789012:function:fn"}
    out = subprocess.run([sys.executable, str(WORKER), handler, *map(str, paths)], input=json.dumps(request) + "\n",
                         capture_output=True, text=True, timeout=30, cwd=paths[-1])
    return json.loads(out.stdout.splitlines()[0])


def test_a_packaged_handler_imports_its_dependency_from_the_private_folder_first(tmp_path):
    deps, code = tmp_path / "deps", tmp_path / "code"
    (deps / "helper").mkdir(parents=True)
    (deps / "helper" / "__init__.py").write_text("WHO = 'private dependency'\n")
    (code / "pkg").mkdir(parents=True)
    (code / "pkg" / "__init__.py").write_text("")
    (code / "pkg" / "app.py").write_text(
        "import helper\n\ndef handler(event, context):\n"
        "    print('got', event['n'])\n    return {'who': helper.WHO, 'fn': context.function_name}\n")
    reply = invoke("pkg.app.handler", [deps, code], {"n": 7})
    assert reply["error"] is None
    assert reply["result"] == {"who": "private dependency", "fn": "fn"}
    assert reply["output"] == "got 7\n"


def test_a_handler_that_cannot_be_imported_fails_each_invocation_like_lambda(tmp_path):
    (tmp_path / "app.py").write_text("import not_installed_anywhere\n\ndef handler(event, context):\n    return 1\n")
    reply = invoke("app.handler", [tmp_path], {})
    assert reply["error"]["errorType"] == "Runtime.ImportModuleError"
    assert "Unable to import module 'app'" in reply["error"]["errorMessage"]
    assert "not_installed_anywhere" in reply["error"]["errorMessage"]

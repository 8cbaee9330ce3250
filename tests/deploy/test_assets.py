"""The assets bucket against moto: created before the consumer, holding the package under a key with
its hash; `down` removes our objects (every version) and then the stack, and leaves a bucket holding
someone else's objects, saying what to do."""

from __future__ import annotations

from tests.factories import write_config, write_consumer

STACKS = ("--only", "assets", "--only", "consumer")
HANDLER = "def handler(event, context):\n    return {'records': len(event.get('Records', []))}\n"


def events_of(kind, objects):
    return [o for o in objects if o["type"] == kind]


def live_stacks(aws):
    return {s["StackName"] for s in aws("cloudformation").list_stacks()["StackSummaries"]
            if s["StackStatus"] != "DELETE_COMPLETE"}


def test_down_removes_our_packages_then_the_bucket_and_leaves_a_bucket_with_foreign_content(aws, aws_config, cli, tmp_path):
    consumer = write_consumer(tmp_path / "consumer", HANDLER)
    config = str(aws_config({"consumer": {"source": "consumer", "handler": "app.handler"}}))
    code, out = cli("up", "--config", config, "--yes", "--only", "consumer")
    assert code == 0, out
    assert live_stacks(aws) == {"rds-streams-assets", "rds-streams-consumer"}
    [uploaded] = events_of("package_uploaded", out)
    s3 = aws("s3")
    bucket = uploaded["bucket"]
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    assert s3.get_object(Bucket=bucket, Key=uploaded["key"])["Body"].read()[:2] == b"PK"
    function = aws("lambda").get_function(FunctionName="rds-streams-consumer")["Configuration"]
    assert function["Handler"] == "app.handler"

    (consumer / "app.py").write_text(HANDLER + "# changed\n")
    code, out = cli("up", "--config", config, "--yes", "--only", "consumer")
    assert code == 0, out
    assert len(events_of("package_uploaded", out)) == 1, "a changed package is a new object beside the old one"

    s3.put_object(Bucket=bucket, Key="team/notes.txt", Body=b"not ours")
    code, out = cli("down", "--config", config, "--yes", *STACKS)
    assert code == 0, out
    [report] = events_of("down", out)
    assert report["deleted"] == ["rds-streams-consumer"]
    assert any(bucket in kept and "team/notes.txt" in kept for kept in report["kept"])
    assert live_stacks(aws) == {"rds-streams-assets"}
    assert {o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]} >= {"team/notes.txt"}

    for version in s3.list_object_versions(Bucket=bucket, Prefix="team/")["Versions"]:
        s3.delete_object(Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"])
    code, out = cli("down", "--config", config, "--yes", *STACKS)
    assert code == 0, out
    assert events_of("down", out)[0]["deleted"] == ["rds-streams-assets"]
    assert live_stacks(aws) == set()
    assert s3.list_buckets()["Buckets"] == []


def test_switching_between_own_code_and_the_shipped_consumer_updates_the_function(aws, cli, tmp_path):
    write_consumer(tmp_path / "own" / "consumer", HANDLER)
    own = str(write_config(tmp_path / "own", {"project": {"target": "aws"},
                                              "consumer": {"source": "consumer", "handler": "app.handler"}}))
    shipped = str(write_config(tmp_path / "shipped", {"project": {"target": "aws"}}))
    handler = lambda: aws("lambda").get_function(FunctionName="rds-streams-consumer")["Configuration"]["Handler"]  # noqa: E731
    for config, expected in ((own, "app.handler"), (shipped, "index.handler"), (own, "app.handler")):
        code, out = cli("up", "--config", config, "--yes", "--only", "consumer")
        assert code == 0, out
        assert events_of("stack_event", out), "each switch is a change"
        assert handler() == expected
    code, out = cli("up", "--config", own, "--yes", "--only", "consumer")
    assert events_of("stack_event", out) == [], "and no switch is none"

"""The consumer stack: the Lambda that receives change records, its role and its log group."""

from __future__ import annotations

from awacs import logs as logs_actions
from awacs import sqs as sqs_actions
from awacs.aws import Allow, PolicyDocument, Principal, Statement
from awacs.sts import AssumeRole
from troposphere import GetAtt, Output, Parameter, Ref, Sub, Template, awslambda, iam, logs, sqs

from blueprints.common import new_template, tag_everything
from orchestrator.config import Config


def handler_source() -> str:
    from orchestrator.resources import consumer_handler_source

    return consumer_handler_source()


def log_group(t: Template, config: Config) -> logs.LogGroup:
    """Declared explicitly: the group Lambda would create itself outlives the stack."""
    group = t.add_resource(logs.LogGroup(
        "ConsumerLogGroup", LogGroupName=f"/aws/lambda/{config.consumer.function_name}",
        RetentionInDays=config.consumer.log_retention_days,
        DeletionPolicy="Delete", UpdateReplacePolicy="Delete",
    ))
    t.add_output(Output("LogGroupName", Value=Ref(group)))
    return group


def dead_letter_queue(t: Template) -> sqs.Queue:
    """Direct delivery: where Lambda's async queue puts events it gave up on (after 2 retries or 6 h),
    instead of dropping them."""
    queue = t.add_resource(sqs.Queue("DeadLetterQueue", MessageRetentionPeriod=14 * 24 * 3600,
                                     SqsManagedSseEnabled=True))
    t.add_output(Output("DeadLetterQueueUrl", Value=Ref(queue)))
    t.add_output(Output("DeadLetterQueueArn", Value=GetAtt(queue, "Arn")))
    return queue


def async_invoke_config(t: Template, function: awslambda.Function, queue: sqs.Queue) -> None:
    t.add_resource(awslambda.EventInvokeConfig(
        "ConsumerAsyncConfig", FunctionName=Ref(function), Qualifier="$LATEST", MaximumRetryAttempts=2,
        MaximumEventAgeInSeconds=6 * 3600,
        DestinationConfig=awslambda.DestinationConfig(
            OnFailure=awslambda.OnFailure(Destination=GetAtt(queue, "Arn"))),
    ))


def consumer_role(t: Template, config: Config, group: logs.LogGroup, queue: sqs.Queue | None,
                  sink: Statement | None = None) -> iam.Role:
    """May write to its own log group (not the managed policy, whose resource is *), in direct
    mode to its own dead-letter queue, and with a sink to that one sink only."""
    statements = [Statement(
        Effect=Allow, Action=[logs_actions.CreateLogStream, logs_actions.PutLogEvents],
        Resource=[Sub("${Group}:*", Group=GetAtt(group, "Arn"))],
    )]
    if queue is not None:
        statements.append(Statement(Effect=Allow, Action=[sqs_actions.SendMessage], Resource=[GetAtt(queue, "Arn")]))
    if sink is not None:
        statements.append(sink)
    return t.add_resource(iam.Role(
        "ConsumerRole",
        AssumeRolePolicyDocument=PolicyDocument(Version="2012-10-17", Statement=[Statement(
            Effect=Allow, Principal=Principal("Service", ["lambda.amazonaws.com"]), Action=[AssumeRole],
        )]),
        Policies=[iam.Policy(PolicyName="WriteOwnLogs", PolicyDocument=PolicyDocument(
            Version="2012-10-17", Statement=statements,
        ))],
        # What your own handler calls beyond its logs (a DynamoDB table, say): managed policies you name.
        **({"ManagedPolicyArns": list(config.consumer.policy_arns)} if config.consumer.policy_arns else {}),
    ))


# Parameters of the consumer stack when it runs your own code: the assets bucket (from the assets
# stack's output) and the package's key there, which carries its hash (filled in by `up` and `plan`).
CODE_BUCKET, CODE_KEY = "CodeBucket", "CodeKey"
# With a sink and your own code, the forwarder rides in your package under this module name.
FORWARDER_MODULE = "rds_streams_forwarder"


def function_code(t: Template, config: Config) -> tuple[awslambda.Code, str, str]:
    """The code, handler and description. Without your source: the shipped logger, or with a sink our
    forwarder, inline. With it: your package from the bucket, entered through the forwarder if there
    is a sink (it calls your handler once every record reached the sink)."""
    forwarding = config.consumer.sink != "log"
    sink_note = f"puts each change record into the {config.consumer.sink} sink"
    if config.consumer.source is None:
        if forwarding:
            from orchestrator.resources import forwarder_source

            return awslambda.Code(ZipFile=forwarder_source()), "index.handler", f"rds-streams forwarder: {sink_note}"
        return (awslambda.Code(ZipFile=handler_source()), "index.handler",
                "rds-streams consumer: logs each change record as one JSON line")
    bucket = t.add_parameter(Parameter(CODE_BUCKET, Type="String", Description="the assets bucket"))
    key = t.add_parameter(Parameter(CODE_KEY, Type="String", Description="the deployment package's key (by its hash)"))
    code = awslambda.Code(S3Bucket=Ref(bucket), S3Key=Ref(key))
    if forwarding:
        return code, f"{FORWARDER_MODULE}.handler", f"rds-streams forwarder: {sink_note}, then your handler"
    return code, config.consumer.handler or "", "rds-streams consumer: your handler from [consumer] source"


def function_environment(config: Config, sink_target: object) -> dict[str, object]:
    variables: dict[str, object] = dict(config.consumer.environment)
    if sink_target is not None:
        variables.update({"RDS_STREAMS_SINK": config.consumer.sink, "RDS_STREAMS_SINK_TARGET": sink_target})
        if config.consumer.handler is not None:
            variables["RDS_STREAMS_USER_HANDLER"] = config.consumer.handler
    return {"Environment": awslambda.Environment(Variables=variables)} if variables else {}


def consumer_function(t: Template, config: Config, role: iam.Role, group: logs.LogGroup,
                      sink_target: object = None) -> awslambda.Function:
    code, handler, description = function_code(t, config)
    extra = function_environment(config, sink_target)
    timeout = 30 if sink_target is None else 60  # room for the forwarder's backoff before it gives up
    function = t.add_resource(awslambda.Function(
        "ConsumerFunction", FunctionName=config.consumer.function_name, Runtime="python3.12",
        Handler=handler, Code=code, Architectures=[config.consumer.architecture],
        Role=GetAtt(role, "Arn"), MemorySize=128, Timeout=timeout,
        LoggingConfig=awslambda.LoggingConfig(LogGroup=Ref(group)),
        Description=description, **extra,
    ))
    t.add_output(Output("FunctionArn", Value=GetAtt(function, "Arn")))
    t.add_output(Output("FunctionName", Value=Ref(function)))
    return function


def consumer_template(config: Config) -> Template:
    t = new_template(config, "consumer", "the Lambda that receives change records")
    group = log_group(t, config)
    queue = dead_letter_queue(t) if config.stream.delivery == "direct" else None
    sink_target, sink_statement = None, None
    if config.consumer.sink != "log":
        from blueprints.sinks import sink_resource

        _sink, sink_target, sink_statement = sink_resource(t, config)
    role = consumer_role(t, config, group, queue, sink_statement)
    function = consumer_function(t, config, role, group, sink_target)
    if queue is not None:
        async_invoke_config(t, function, queue)
    return tag_everything(t, config)

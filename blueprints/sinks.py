"""The managed sink a consumer stack may end in, and the one statement that lets our forwarder write to it.

Kinesis: an on-demand stream (per-shard order by partition key). SQS: a FIFO queue, content-based
deduplication off (the forwarder sets each message's deduplication id to the record's eventID), high
throughput (deduplication and order per message group, the group being a record's table and keys).
EventBridge: a custom bus (no order at all).
"""

from __future__ import annotations

from awacs import events as events_actions
from awacs import kinesis as kinesis_actions
from awacs import sqs as sqs_actions
from awacs.aws import Allow, Statement
from troposphere import AWSObject, GetAtt, Output, Ref, Template, events, kinesis, sqs

from orchestrator.config import Config

RETENTION_S = 4 * 24 * 3600  # SQS's default; Kinesis keeps 24 h


def sink_name(config: Config) -> str:
    base = f"{config.project.name}-changes"
    return f"{base}.fifo" if config.consumer.sink == "sqs" else base


def sink_resource(t: Template, config: Config) -> tuple[AWSObject, object, Statement]:
    """The sink, what the forwarder addresses it by (stream name, queue URL, bus name), and the
    statement allowing exactly its write action on exactly its ARN."""
    name, kind = sink_name(config), config.consumer.sink
    if kind == "kinesis":
        resource: AWSObject = t.add_resource(kinesis.Stream(
            "SinkStream", Name=name, StreamModeDetails=kinesis.StreamModeDetails(StreamMode="ON_DEMAND"),
            StreamEncryption=kinesis.StreamEncryption(EncryptionType="KMS", KeyId="alias/aws/kinesis"),
            DeletionPolicy="Delete", UpdateReplacePolicy="Delete",
        ))
        target: object = name
        actions = [kinesis_actions.PutRecords, kinesis_actions.PutRecord]
    elif kind == "sqs":
        resource = t.add_resource(sqs.Queue(
            "SinkQueue", QueueName=name, FifoQueue=True, ContentBasedDeduplication=False,
            DeduplicationScope="messageGroup", FifoThroughputLimit="perMessageGroupId",
            MessageRetentionPeriod=RETENTION_S, SqsManagedSseEnabled=True,
            DeletionPolicy="Delete", UpdateReplacePolicy="Delete",
        ))
        target = Ref(resource)
        actions = [sqs_actions.SendMessage]  # SendMessageBatch is authorised as SendMessage
    elif kind == "eventbridge":
        resource = t.add_resource(events.EventBus("SinkBus", Name=name, DeletionPolicy="Delete",
                                                  UpdateReplacePolicy="Delete"))
        target = name  # the bus's name as given (moto's Ref of a bus is not its name)
        actions = [events_actions.PutEvents]
    else:
        raise ValueError(f"no sink resource for sink {kind!r}")
    t.add_output(Output("SinkKind", Value=kind))
    t.add_output(Output("SinkTarget", Value=target))
    t.add_output(Output("SinkArn", Value=GetAtt(resource, "Arn")))
    return resource, target, Statement(Effect=Allow, Action=actions, Resource=[GetAtt(resource, "Arn")])

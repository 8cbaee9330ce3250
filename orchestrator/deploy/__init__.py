"""The CloudFormation side of `up`, `plan` and `down`: stack graph, change sets, waiting, teardown."""

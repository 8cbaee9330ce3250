"""rds-streams: DynamoDB Streams-shaped change streams for Aurora MySQL tables."""

__version__ = "0.1.0"

"""`rds-streams verify`: prove the stream end to end."""

"""The database side: tunnel, credentials, schema, grants, and the triggers that emit change records."""

"""The call record: its schema, what the caller's thread captures and what the background derives."""

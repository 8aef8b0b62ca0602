"""Use cases. Each takes a session and an actor, validates, writes, records audit events and commits."""

"""Serving: the event store (mistrec.serve.store); the HTTP service builds on it (docs/serving.md)."""

"""Serving: the HTTP service (mistrec.serve.app) on a trained run and the event store (mistrec.data.store);
docs/serving.md."""

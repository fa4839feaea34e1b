"""The pipeline: consume micro-batches, validate, route to processors, write, then commit."""

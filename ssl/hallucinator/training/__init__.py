"""The pretraining engine: data pipeline, schedule, checkpoints, provenance, the training loop."""

"""Evaluation of frozen backbones: feature extraction, kNN, linear probes."""

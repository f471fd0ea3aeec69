"""Procedural RGB-D scenes with exact depth, for training, evaluation and the flicker measurements."""

"""Evaluation: the MiDaS zero-shot metrics (AbsRel, delta1) and the protocol that applies them."""

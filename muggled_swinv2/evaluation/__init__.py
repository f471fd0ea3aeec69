"""Evaluation: the MiDaS zero-shot metrics (AbsRel, delta1), the protocol that applies them, flicker.

Below training in the layers: the trainer validates with this protocol, and nothing here imports
training/ (the synthetic scenes both use are in synthetic/).
"""

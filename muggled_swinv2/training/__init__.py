"""Training: synthetic RGB-D scenes, datasets, the MiDaS losses and the trainer."""

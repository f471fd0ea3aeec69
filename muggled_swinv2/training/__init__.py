"""Training: batches of random crops, the MiDaS losses and the trainer."""

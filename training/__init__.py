"""Data preparation, training and tuning of the counting model (the training issue)."""

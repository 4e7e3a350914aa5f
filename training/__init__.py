"""Data preparation, training and evaluation of the counting model."""

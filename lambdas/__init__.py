"""The Lambda functions, one folder each: ``checker`` and ``retraining``."""

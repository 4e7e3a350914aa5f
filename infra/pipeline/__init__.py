"""The retraining pipeline: a Step Functions state machine that tunes and trains on spot
capacity, evaluates, and promotes a better model to the counting endpoint.

``construct`` builds it from ``flow`` (the states in order), ``states`` (the building
blocks), ``jobs`` (the SageMaker requests), ``promotion`` (model, endpoint configuration,
update), ``access`` (roles), ``code`` (the training code asset) and ``record`` (the
production model's first record).
"""

from .construct import TrainingPipeline

__all__ = ["TrainingPipeline"]

"""The training pipeline's two small functions: validate a run request, compare models.

Relative imports only, like the checker: the package runs as ``lambdas.pipeline`` here and
as ``pipeline`` in Lambda, with nothing beyond the runtime's boto3.
"""

"""The retraining pipeline's two small functions: validate a run request, compare models.

Relative imports only: the package runs as ``lambdas.retraining`` here and as
``retraining`` in Lambda (its asset is this folder alone), with nothing beyond the
runtime's boto3.
"""

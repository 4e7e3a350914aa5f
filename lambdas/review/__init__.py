"""The review function: the HTTP API a person settles pending checks through
(``handler.lambda_handler``, behind an API Gateway HTTP API with a Cognito JWT authorizer).

Pure request parsing and views (``requests.py``, ``views.py``, ``errors.py``), the use cases
(``service.py``), one thin adapter per AWS service (``adapters/``), the wiring (``app.py``).
Relative imports within the package, ``contract`` for what it shares with the rest of the
system: its asset is this folder and ``contract/`` side by side, so it runs as
``lambdas.review`` here and as ``review`` in Lambda.
"""

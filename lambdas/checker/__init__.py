"""The checker function: one verdict per photo (``handler.lambda_handler``).

Relative imports within the package, ``contract`` for what it shares with the rest of the
system: its asset is this folder and ``contract/`` side by side, so it runs as
``lambdas.checker`` here and as ``checker`` in Lambda.
"""

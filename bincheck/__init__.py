"""Operator tooling for the bin inventory checker: the ``bincheck`` command and the local stack."""

"""The CDK app (``cdk.json`` runs ``infra.app``): one construct per concern, every setting
in ``config.BinCheckConfig``, the retraining state machine in ``infra.pipeline``.

It imports no torch: ``make synth`` and ``make deploy`` install only the ``infra`` extra.
"""

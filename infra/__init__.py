"""The CDK app (``cdk.json`` runs ``infra.app``): one construct per concern.

Not built yet: it lands with the infrastructure issue. The checker it will deploy reads its
configuration from the environment variables documented in the README.
"""

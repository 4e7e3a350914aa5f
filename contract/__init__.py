"""The shared contract: what the checker, the CDK app, the local stack, the operator CLI and
evaluation agree on (photo keys, timestamps, bins, statuses and the decision rule, the check
record and alert, human review of a check, resource names and defaults).

Pure Python, no dependencies and no I/O: it ships inside the checker's Lambda asset, and
``docs/contracts.md`` describes it for the systems around.
"""

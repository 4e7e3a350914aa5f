"""The CDK app: ``cdk synth`` / ``cdk deploy`` run this (see ``cdk.json``)."""

from __future__ import annotations

import os

from aws_cdk import App, Environment, Validations
from cdk_nag import AwsSolutionsChecks

from .config import BinCheckConfig
from .stack import BinCheckStack


def build(app: App, env: Environment | None = None) -> BinCheckStack:
    """The stack, checked by cdk-nag's AwsSolutions pack: findings fail synthesis."""
    config = BinCheckConfig.from_context(app.node)
    stack = BinCheckStack(
        app,
        app.node.try_get_context("stack_name") or "BinCheck",
        config=config,
        description="Bin inventory checker: photos -> counting endpoint -> verdicts -> alerts",
        env=env
        or Environment(
            account=os.environ.get("CDK_DEFAULT_ACCOUNT"),
            region=os.environ.get("CDK_DEFAULT_REGION"),
        ),
    )
    Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    return stack


def main() -> None:
    app = App()
    build(app)
    app.synth()


if __name__ == "__main__":
    main()

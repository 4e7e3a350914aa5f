"""SNS topics, encrypted with customer-managed KMS keys: alerts (for people) and ops."""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from .config import BinCheckConfig


class Topics(Construct):
    def __init__(self, scope: Construct, id: str, *, config: BinCheckConfig) -> None:
        super().__init__(scope, id)
        self.alerts = self._topic("Alerts", "Bin check alerts", config.alert_email)
        self.ops = self._topic("Ops", "Bin checker operations", config.ops_email)
        # CloudWatch alarms publish to the ops topic: its key must let CloudWatch use it.
        self.ops.master_key.add_to_resource_policy(  # type: ignore[union-attr]
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy, "*" means this key
            )
        )

    def _topic(self, id: str, display_name: str, email: str | None) -> sns.Topic:
        key = kms.Key(self, f"{id}Key", enable_key_rotation=True, description=display_name)
        topic = sns.Topic(self, id, display_name=display_name, master_key=key, enforce_ssl=True)
        if email:
            topic.add_subscription(subscriptions.EmailSubscription(email))
        return topic

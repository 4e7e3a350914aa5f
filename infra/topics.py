"""SNS topics, encrypted with customer-managed KMS keys: alerts (for people) and ops (where
every alarm of the stack notifies)."""

from __future__ import annotations

from typing import Any

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from .config import BinCheckConfig

CLOUDWATCH = iam.ServicePrincipal("cloudwatch.amazonaws.com")


class Topics(Construct):
    def __init__(self, scope: Construct, id: str, *, config: BinCheckConfig) -> None:
        super().__init__(scope, id)
        self.alerts = self._topic("Alerts", "Bin check alerts", config.alert_email)
        self.ops = self._topic("Ops", "Bin checker operations", config.ops_email)
        self._let_alarms_publish(self.ops)

    def _topic(self, id: str, display_name: str, email: str | None) -> sns.Topic:
        key = kms.Key(self, f"{id}Key", enable_key_rotation=True, description=display_name)
        topic = sns.Topic(self, id, display_name=display_name, master_key=key, enforce_ssl=True)
        if email:
            topic.add_subscription(subscriptions.EmailSubscription(email))
        return topic

    def _let_alarms_publish(self, topic: sns.Topic) -> None:
        """CloudWatch publishes alarm notifications as its service principal. The topic's
        policy (the TLS-only statement) replaces SNS's default one, which would have let the
        account's alarms publish: this lets them again, and lets them use the topic's key.
        Both for alarms of this account and region only, so that no other account's alarm
        can reach the topic through CloudWatch (the confused deputy)."""
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[CLOUDWATCH],
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                conditions=self._own_alarms(),
            )
        )
        topic.master_key.add_to_resource_policy(  # type: ignore[union-attr]
            iam.PolicyStatement(
                principals=[CLOUDWATCH],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy, "*" means this key
                conditions=self._own_alarms(),
            )
        )

    def _own_alarms(self) -> dict[str, Any]:
        stack = Stack.of(self)
        alarms = stack.format_arn(
            service="cloudwatch",
            resource="alarm",
            resource_name="*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        return {
            "StringEquals": {"aws:SourceAccount": stack.account},
            "ArnLike": {"aws:SourceArn": alarms},
        }

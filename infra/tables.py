"""DynamoDB tables: bins (the warehouse's expectations), checks (one per photo), idempotency."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from contract.names import BY_STATUS_INDEX

from .config import BinCheckConfig


def _key(name: str) -> dynamodb.Attribute:
    return dynamodb.Attribute(name=name, type=dynamodb.AttributeType.STRING)


class Tables(Construct):
    def __init__(self, scope: Construct, id: str, *, config: BinCheckConfig) -> None:
        super().__init__(scope, id)
        common = dict(
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
        )
        data_removal = RemovalPolicy.RETAIN if config.retain_data else RemovalPolicy.DESTROY
        self.bins = dynamodb.Table(
            self, "Bins", partition_key=_key("bin_id"), removal_policy=data_removal, **common
        )
        self.checks = dynamodb.Table(
            self,
            "Checks",
            partition_key=_key("bin_id"),
            sort_key=_key("check_id"),
            removal_policy=data_removal,
            **common,
        )
        self.checks.add_global_secondary_index(
            index_name=BY_STATUS_INDEX, partition_key=_key("status"), sort_key=_key("check_id")
        )
        self.idempotency = dynamodb.Table(
            self,
            "Idempotency",
            partition_key=_key("id"),
            time_to_live_attribute="expiration",  # Powertools' attribute name
            removal_policy=RemovalPolicy.DESTROY,
            **common,
        )

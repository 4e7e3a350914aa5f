"""DynamoDB tables: bins (the warehouse's expectations), checks (one per photo, indexed by
status and by pending review), idempotency."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from constructs import Construct

from contract.names import BY_STATUS_INDEX, PENDING_REVIEW_INDEX
from contract.review import PENDING_REVIEW_KEY

from .config import BinCheckConfig


def grant_items(table: dynamodb.ITable, grantee: iam.IGrantable, *actions: str) -> iam.Grant:
    """Item ``actions`` (``GetItem``...) on ``table`` itself, not its indexes: where
    ``grant_read_data``/``grant_write_data`` would add Scan, Query and batch calls."""
    return iam.Grant.add_to_principal(
        grantee=grantee,
        actions=[f"dynamodb:{action}" for action in actions],
        resource_arns=[table.table_arn],
    )


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
        # The review queue: sparse (only pending checks hold the key), oldest capture first
        # (check_id starts with the capture time); ALL, as the review lists whole checks.
        self.checks.add_global_secondary_index(
            index_name=PENDING_REVIEW_INDEX,
            partition_key=_key(PENDING_REVIEW_KEY),
            sort_key=_key("check_id"),
            projection_type=dynamodb.ProjectionType.ALL,
        )
        self.idempotency = dynamodb.Table(
            self,
            "Idempotency",
            partition_key=_key("id"),
            time_to_live_attribute="expiration",  # Powertools' attribute name
            removal_policy=RemovalPolicy.DESTROY,
            **common,
        )

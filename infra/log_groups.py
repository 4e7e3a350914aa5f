"""Log groups the stack declares, so that their events expire (``log_retention_days``), and
the Lambda role that writes to its function's group alone.

Lambda's default role would carry the AWS-managed ``AWSLambdaBasicExecutionRole``, whose
log actions are allowed on every log group of the account (``Resource: *``); a function
given its own group and this role can write to that group only.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from .config import BinCheckConfig

RETENTION = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1096: logs.RetentionDays.THREE_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    2192: logs.RetentionDays.SIX_YEARS,
    2557: logs.RetentionDays.SEVEN_YEARS,
    2922: logs.RetentionDays.EIGHT_YEARS,
    3288: logs.RetentionDays.NINE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}


def log_group(
    scope: Construct, id: str, *, config: BinCheckConfig, name: str | None = None
) -> logs.LogGroup:
    """A log group kept ``log_retention_days``, deleted with the stack (its events expire
    anyway, and a kept group of a fixed ``name`` would block the next deployment)."""
    return logs.LogGroup(
        scope,
        id,
        log_group_name=name,
        retention=RETENTION[config.log_retention_days],
        removal_policy=RemovalPolicy.DESTROY,
    )


def function_role(
    scope: Construct, id: str, *, logs_to: logs.ILogGroup, description: str
) -> iam.Role:
    """A Lambda function's role that may write to ``logs_to`` and nothing else yet."""
    role = iam.Role(
        scope,
        id,
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        description=description,
    )
    logs_to.grant_write(role)  # CreateLogStream and PutLogEvents, on this group
    return role

"""cdk-nag findings acknowledged in this stack, each scoped to its construct with a reason.

Everything else cdk-nag's AwsSolutions pack finds fails synthesis (and the tests).
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, Stack, Validations
from constructs import IConstruct

from .checker import CheckerService
from .config import BinCheckConfig
from .endpoint import CountingEndpoint

PACK = "AwsSolutions::AwsSolutions-"
LAMBDA_LOGS = (
    "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]"
)


def _ack(scope: IConstruct, rule: str, reason: str) -> None:
    Validations.of(scope).acknowledge(Acknowledgment(id=PACK + rule, reason=reason))


def acknowledge_findings(
    stack: Stack, *, config: BinCheckConfig, checker: CheckerService, endpoint: CountingEndpoint
) -> None:
    function = checker.function
    policy = function.role.node.find_child("DefaultPolicy")  # type: ignore[union-attr]
    _ack(
        function,
        "L1",
        "Python 3.13 is the newest runtime the AWS-managed Powertools v3 layer this function "
        "uses is published for; the runtime is configuration (python_runtime).",
    )
    _ack(
        function,
        LAMBDA_LOGS,
        "The basic execution role only lets the function write its own CloudWatch logs.",
    )
    _ack(
        policy,
        "IAM5[Resource::*]",
        "X-Ray PutTraceSegments/PutTelemetryRecords (active tracing) have no resource-level "
        "permissions.",
    )
    _ack(
        policy,
        "IAM5[Resource::<StoragePhotos333B189A.Arn>/bins/*]",
        "GetObject on photo keys only (bins/<bin_id>/<capture>): the function reads any photo "
        "it is notified about.",
    )
    _ack(
        policy,
        "IAM5[Resource::<TablesChecks927F8C21.Arn>/index/*]",
        "grant_write_data covers the checks table's own by-status index.",
    )
    _ack(
        policy,
        "IAM5[Action::kms:GenerateDataKey*]",
        "Publishing to the KMS-encrypted alerts topic needs data keys of that topic's key only "
        "(the statement is scoped to the key's ARN).",
    )

    role_policy = endpoint.role.node.find_child("DefaultPolicy")
    _ack(
        role_policy,
        "IAM5[Resource::*]",
        "ecr:GetAuthorizationToken and cloudwatch:PutMetricData have no resource-level "
        "permissions; PutMetricData is limited to SageMaker's namespace by condition.",
    )
    _ack(
        role_policy,
        "IAM5[Resource::<StoragePhotos333B189A.Arn>/bins/*]",
        "The model reads the photo named in an s3_uri request: photo keys only.",
    )
    _ack(
        role_policy,
        "IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:"
        "/aws/sagemaker/Endpoints/bincheck-counter:*]",
        "Log streams of this endpoint's own log group; SageMaker names the streams.",
    )

    if config.data_capture_percent:
        _ack(
            role_policy,
            "IAM5[Resource::<StoragePhotos333B189A.Arn>/data-capture/*]",
            "Data capture writes its own files under data-capture/ in the photos bucket.",
        )
        for action in ("kms:GenerateDataKey*", "kms:ReEncrypt*"):
            _ack(
                role_policy,
                f"IAM5[Action::{action}]",
                "Encrypting captured data with the endpoint's own volume key (scoped to its ARN).",
            )

    notifications = stack.node.try_find_child(
        "BucketNotificationsHandler050a0587b7544547bf325f094a3db834"
    )
    if notifications is not None:
        _ack(
            notifications,
            LAMBDA_LOGS,
            "CDK's own custom resource that configures the bucket notification writes its logs.",
        )

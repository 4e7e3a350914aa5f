"""cdk-nag findings acknowledged in this stack, each scoped to its construct with a reason.

Everything else cdk-nag's AwsSolutions pack finds fails synthesis (and the tests).
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, Stack, Token, Validations
from constructs import IConstruct

from .checker import CheckerService
from .config import BinCheckConfig
from .endpoint import CountingEndpoint
from .pipeline import TrainingPipeline
from .review import ReviewService

PACK = "AwsSolutions::AwsSolutions-"
LAMBDA_LOGS = (
    "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]"
)


# Reasons given for more than one function.
RUNTIME_REASON = (
    "Python 3.13 is the newest runtime the AWS-managed Powertools v3 layer this function uses "
    "is published for; the runtime is configuration (python_runtime)."
)
XRAY_REASON = (
    "X-Ray PutTraceSegments/PutTelemetryRecords (active tracing) have no resource-level "
    "permissions."
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
        RUNTIME_REASON,
    )
    _ack(
        policy,
        "IAM5[Resource::*]",
        XRAY_REASON,
    )
    _ack(
        policy,
        "IAM5[Resource::<StoragePhotos333B189A.Arn>/bins/*]",
        "GetObject on photo keys only (bins/<bin_id>/<capture>): the function reads any photo "
        "it is notified about.",
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
    if not endpoint.network_isolation:
        _ack(
            role_policy,
            "IAM5[Resource::<StoragePhotos333B189A.Arn>/bins/*]",
            "The model reads the photo named in an s3_uri request: photo keys only.",
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
            "CDK's own handler that configures the bucket notification at deployment: CDK "
            "gives it the managed basic execution role (log actions on any log group) and "
            "no way to replace it; the stack's own functions write only to their own groups.",
        )


def acknowledge_pipeline_findings(pipeline: TrainingPipeline) -> None:
    """The training pipeline's findings (infra/pipeline*.py)."""
    stack = Stack.of(pipeline)

    def arn(construct: IConstruct) -> str:
        """How cdk-nag names a resource's ARN in a finding: ``<LogicalId.Arn>``."""
        return f"<{stack.resolve(stack.get_logical_id(construct.node.default_child))}.Arn>"

    def policy(role: IConstruct) -> IConstruct:
        return role.node.find_child("DefaultPolicy")

    bucket = arn(pipeline.bucket)
    for function, objects, reason in (
        (
            pipeline.validate_function,
            "data/*",
            "HeadObject of each channel's labels.csv, under data/ only: data folders vary by run.",
        ),
        (
            pipeline.compare_function,
            "jobs/*/output/output.tar.gz",
            "GetObject of training jobs' output.tar.gz (metrics.json) only: job names vary.",
        ),
    ):
        _ack(policy(function.role), f"IAM5[Resource::{bucket}/{objects}]", reason)

    training = policy(pipeline.training_role)
    folders = [
        ("data/*", "Training jobs read the run's data folder; data folders vary by run."),
        ("checkpoints/*", "Spot training jobs write and read back their own checkpoints."),
        ("jobs/*", "Training jobs write model.tar.gz and output.tar.gz under their own names."),
        (
            "promoted/*/model.tar.gz",
            "Training jobs score the production model, a promoted copy (read only), on their "
            "test photos; model versions vary by run.",
        ),
    ]
    log_groups = [("TrainingJobs", "training jobs")]
    namespaces = "training namespace"
    if pipeline.profiled:  # the final job's Debugger profiler and ProfilerReport rule
        folders.append(
            (
                "profiler/*",
                "The final training job's profiler writes its system metrics under "
                "profiler/<run>/, and its ProfilerReport rule reads them and writes its report "
                "there; run and job names vary.",
            )
        )
        log_groups.append(
            ("ProcessingJobs", "processing jobs (the ProfilerReport rule runs as one)")
        )
        namespaces = "training and processing job namespaces"
    for folder, reason in folders:
        _ack(training, f"IAM5[Resource::{bucket}/{folder}]", reason)
    _ack(
        training,
        "IAM5[Resource::*]",
        "ecr:GetAuthorizationToken and cloudwatch:PutMetricData have no resource-level "
        f"permissions; PutMetricData is limited to SageMaker's {namespaces} by condition.",
    )
    for group, jobs in log_groups:
        _ack(
            training,
            "IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:"
            f"/aws/sagemaker/{group}:*]",
            f"SageMaker's log group for {jobs}; each job writes its own streams.",
        )
    _ack(
        policy(pipeline.endpoint_role),
        f"IAM5[Resource::{bucket}/promoted/*/model.tar.gz]",
        "The endpoint serves the models the pipeline promotes: the copies under promoted/ "
        "only, whose versions vary by run.",
    )

    machine = policy(pipeline.state_machine.role)
    # format_arn writes the stack's region and account as they are known at synthesis:
    # literal under `cdk deploy` (the CLI sets them), tokens in an environment-agnostic app.
    partition, region, account = (
        fallback if Token.is_unresolved(value) else value
        for value, fallback in (
            (stack.partition, "<AWS::Partition>"),
            (stack.region, "<AWS::Region>"),
            (stack.account, "<AWS::AccountId>"),
        )
    )
    for kind in ("hyper-parameter-tuning-job", "training-job", "model", "endpoint-config"):
        _ack(
            machine,
            f"IAM5[Resource::arn:{partition}:sagemaker:{region}:{account}:{kind}/bincheck-*]",
            f"Each run creates and describes its own {kind} named bincheck-<run id>; the "
            "prefix keeps the pipeline to its own resources.",
        )
    for function in (pipeline.validate_function, pipeline.compare_function):
        _ack(
            machine,
            f"IAM5[Resource::{arn(function)}:*]",
            "CDK's LambdaInvoke grant covers the function's versions and aliases.",
        )
    _ack(
        machine,
        f"IAM5[Resource::{bucket}/jobs/*/output/model.tar.gz]",
        "The promotion copies the candidate's model.tar.gz (GetObject) from its training "
        "job's output; job names vary by run.",
    )
    _ack(
        machine,
        f"IAM5[Resource::{bucket}/promoted/*/model.tar.gz]",
        "The promotion writes the copy the endpoint serves under promoted/<version>/ "
        "(PutObject); only the state machine writes there, versions vary by run.",
    )
    _ack(
        machine,
        "IAM5[Resource::*]",
        "X-Ray tracing (PutTraceSegments, GetSamplingRules...) and CloudWatch Logs delivery "
        "(CreateLogDelivery...) have no resource-level permissions.",
    )
    _ack(
        machine,
        "IAM5[Action::kms:GenerateDataKey*]",
        "Publishing to the KMS-encrypted ops topic needs data keys of that topic's key only "
        "(the statement is scoped to the key's ARN).",
    )


def acknowledge_review_findings(review: ReviewService) -> None:
    """The review's findings (infra/review.py)."""
    photos = "<StoragePhotos333B189A.Arn>"
    for function in (review.function, review.backlog_function):
        _ack(
            function,
            "L1",
            RUNTIME_REASON,
        )
    policy = review.function.role.node.find_child("DefaultPolicy")  # type: ignore[union-attr]
    _ack(
        policy,
        "IAM5[Resource::*]",
        XRAY_REASON,
    )
    _ack(
        policy,
        f"IAM5[Resource::{photos}/bins/*]",
        "GetObject on photo keys only (bins/<bin_id>/<capture>): the review's presigned links "
        "show a reviewer the photo of any pending check.",
    )
    _ack(
        policy,
        "IAM5[Action::kms:GenerateDataKey*]",
        "Publishing REVIEWED notices to the KMS-encrypted alerts topic needs data keys of that "
        "topic's key only (the statement is scoped to the key's ARN).",
    )
    pool = review.user_pool.node.default_child
    _ack(
        pool,  # type: ignore[arg-type]
        "COG8",
        "The Plus feature plan (threat protection) is billed per monthly active user on top of "
        "Essentials; a handful of reviewers accounts, created by an administrator, with a "
        "12-character, four-class password policy does not warrant it.",
    )
    _ack(
        pool,  # type: ignore[arg-type]
        "COG2",
        "MFA is off: the review page signs in with USER_PASSWORD_AUTH and answers no MFA "
        "challenge; reviewers are created by an administrator (no self sign-up).",
    )
    _ack(
        review.page_route[0],
        "APIG4",
        "GET / serves the review page's HTML, which holds no data; the page signs in with "
        "Cognito and every data route is behind the JWT authorizer.",
    )

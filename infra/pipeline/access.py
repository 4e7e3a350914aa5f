"""Who may touch the training bucket, and how: the bucket's folders are the permission
boundaries.

    data/<name>/{train,validation,test}/   people upload; training jobs and validation read
    checkpoints/<run>/{tuning,final}/      training jobs write and read back (spot restarts)
    jobs/<run>/<job>/output/               training jobs write model.tar.gz, output.tar.gz
    promoted/<version>/model.tar.gz        the state machine alone writes: a copy of the
                                           model it promotes, which the endpoint serves and
                                           the jobs score as production
    profiler/<run>/                        with training_profiler: the final training job
                                           writes its system metrics; its ProfilerReport
                                           rule reads them, writes a report

The bucket is versioned, and the production record names the promoted copy's version: no
training job can change what the endpoint runs (the artifact's ``code/`` included).

S3 grants here are statements on folders rather than ``grant_read``/``grant_write``, which
would give ``s3:List*``/``s3:GetBucket*`` on the whole bucket.
"""

from __future__ import annotations

from aws_cdk import Aws
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3

DATA = "data/"
CHECKPOINTS = "checkpoints/"
JOBS = "jobs/"
PROFILER = "profiler/"
PROMOTED = "promoted/"
MODELS = f"{JOBS}*/output/model.tar.gz"
PROMOTED_KEY = f"{PROMOTED}{{}}/model.tar.gz"  # the model's version in the braces
PROMOTED_MODELS = PROMOTED_KEY.format("*")
OUTPUTS = f"{JOBS}*/output/output.tar.gz"
# SageMaker's log groups and metric namespaces: the jobs', and the processing jobs' that run
# the final job's ProfilerReport rule (with the training_profiler setting).
TRAINING_JOBS = "/aws/sagemaker/TrainingJobs"
PROCESSING_JOBS = "/aws/sagemaker/ProcessingJobs"


def grant_list(role: iam.IRole, bucket: s3.IBucket, *folders: str) -> None:
    """ListBucket under ``folders`` only: SageMaker lists a channel's prefix and a
    checkpoint folder; HeadObject answers 404 (not 403) for a missing key only with it."""
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["s3:ListBucket"],
            resources=[bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{folder}*" for folder in folders]}},
        )
    )


def grant_objects(role: iam.IRole, bucket: s3.IBucket, actions: list[str], *keys: str) -> None:
    role.add_to_principal_policy(
        iam.PolicyStatement(actions=actions, resources=[bucket.arn_for_objects(k) for k in keys])
    )


def training_role(
    scope, bucket: s3.IBucket, registry: str, rule_registry: str | None = None
) -> iam.Role:
    """What a training job may do: read the data, keep checkpoints, write its outputs, read
    the promoted models (its ``production`` channel) but not write them, pull the PyTorch
    training image, write its own logs and metrics. With ``rule_registry`` (the final job
    is profiled), also what the profiler and its ``ProfilerReport`` rule need: SageMaker
    runs the rule as a processing job with this role, on Debugger's rule image (from
    ``rule_registry``), reading the profiler's output and writing its report under
    ``profiler/``."""
    profiled = rule_registry is not None
    profiler = (f"{PROFILER}*",) if profiled else ()
    role = iam.Role(
        scope,
        "TrainingRole",
        assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
        description="Training pipeline jobs: read data/, write checkpoints/"
        + (", jobs/ and profiler/" if profiled else " and jobs/"),
    )
    grant_list(role, bucket, DATA, CHECKPOINTS, JOBS, PROMOTED, *([PROFILER] if profiled else []))
    grant_objects(
        role, bucket, ["s3:GetObject"], f"{DATA}*", f"{CHECKPOINTS}*", PROMOTED_MODELS, *profiler
    )
    grant_objects(role, bucket, ["s3:PutObject"], f"{CHECKPOINTS}*", f"{JOBS}*", *profiler)
    repositories = [f"{registry}:repository/pytorch-training"]
    if profiled:
        repositories.append(f"{rule_registry}:repository/sagemaker-debugger-rules")
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
            resources=[f"arn:{Aws.PARTITION}:ecr:{Aws.REGION}:{r}" for r in repositories],
        )
    )
    role.add_to_policy(iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"]))
    groups = [TRAINING_JOBS, PROCESSING_JOBS] if profiled else [TRAINING_JOBS]
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["cloudwatch:PutMetricData"],
            resources=["*"],
            conditions={
                "StringEquals": {"cloudwatch:namespace": groups if profiled else TRAINING_JOBS}
            },
        )
    )
    role.add_to_policy(
        iam.PolicyStatement(
            actions=[
                "logs:CreateLogGroup",
                "logs:CreateLogStream",
                "logs:PutLogEvents",
                "logs:DescribeLogStreams",
            ],
            resources=[
                f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:{group}:*"
                for group in groups
            ],
        )
    )
    return role

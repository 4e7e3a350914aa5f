"""Who may touch the training bucket, and how: the bucket's folders are the permission
boundaries.

    data/<name>/{train,validation,test}/   people upload; training jobs and validation read
    checkpoints/<run>/{tuning,final}/      training jobs write and read back (spot restarts)
    jobs/<run>/<job>/output/               training jobs write model.tar.gz, output.tar.gz
                                           and read a promoted one (the production model)

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
MODELS = f"{JOBS}*/output/model.tar.gz"
OUTPUTS = f"{JOBS}*/output/output.tar.gz"


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


def training_role(scope, bucket: s3.IBucket, registry: str) -> iam.Role:
    """What a training job may do: read the data, keep checkpoints, write its outputs, read
    the promoted models (its ``production`` channel), pull the PyTorch training image,
    write its own logs and metrics."""
    role = iam.Role(
        scope,
        "TrainingRole",
        assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
        description="Training pipeline jobs: read data/, write checkpoints/ and jobs/",
    )
    grant_list(role, bucket, DATA, CHECKPOINTS, JOBS)
    grant_objects(role, bucket, ["s3:GetObject"], f"{DATA}*", f"{CHECKPOINTS}*", MODELS)
    grant_objects(role, bucket, ["s3:PutObject"], f"{CHECKPOINTS}*", f"{JOBS}*")
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
            resources=[
                f"arn:{Aws.PARTITION}:ecr:{Aws.REGION}:{registry}:repository/pytorch-training"
            ],
        )
    )
    role.add_to_policy(iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"]))
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["cloudwatch:PutMetricData"],
            resources=["*"],
            conditions={"StringEquals": {"cloudwatch:namespace": "/aws/sagemaker/TrainingJobs"}},
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
                f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:"
                "/aws/sagemaker/TrainingJobs:*"
            ],
        )
    )
    return role

"""The photos bucket: private, encrypted, TLS only, access-logged, aged out by lifecycle."""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_s3 as s3
from constructs import Construct

from .config import BinCheckConfig


def secure_bucket_options(config: BinCheckConfig) -> dict[str, Any]:
    """What every bucket of the stack is: encrypted, private, TLS only, kept or not with the
    data."""
    return dict(
        encryption=s3.BucketEncryption.S3_MANAGED,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        removal_policy=RemovalPolicy.RETAIN if config.retain_data else RemovalPolicy.DESTROY,
        auto_delete_objects=not config.retain_data,
    )


class PhotoStorage(Construct):
    def __init__(self, scope: Construct, id: str, *, config: BinCheckConfig) -> None:
        super().__init__(scope, id)
        secure = secure_bucket_options(config)
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            # Log delivery is granted by bucket policy, not by a legacy ACL.
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(90))],
            **secure,
        )
        self.bucket = s3.Bucket(
            self,
            "Photos",
            versioned=False,  # each capture has its own key; a re-upload is a new check
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="photos/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="age-out-photos",
                    transitions=[
                        s3.Transition(
                            storage_class=s3.StorageClass.INFREQUENT_ACCESS,
                            transition_after=Duration.days(config.photo_infrequent_access_days),
                        )
                    ],
                    expiration=Duration.days(config.photo_expiration_days),
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                )
            ],
            **secure,
        )

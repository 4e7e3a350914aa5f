"""The stack: builds each construct and wires them together with grants."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from contract.keys import PHOTO_PREFIX

from .checker import CheckerService
from .config import BinCheckConfig
from .endpoint import CountingEndpoint
from .monitoring import Monitoring
from .nag import acknowledge_findings, acknowledge_pipeline_findings, acknowledge_review_findings
from .pipeline import TrainingPipeline
from .review import ReviewService
from .storage import PhotoStorage
from .tables import Tables, grant_items
from .topics import Topics


class BinCheckStack(Stack):
    def __init__(self, scope: Construct, id: str, *, config: BinCheckConfig, **kwargs: Any) -> None:
        super().__init__(scope, id, **kwargs)
        storage = PhotoStorage(self, "Storage", config=config)
        tables = Tables(self, "Tables", config=config)
        topics = Topics(self, "Topics", config=config)
        endpoint = CountingEndpoint(self, "Counter", config=config, photos=storage.bucket)
        checker = CheckerService(
            self,
            "Checker",
            config=config,
            photos=storage.bucket,
            environment={
                "BINS_TABLE": tables.bins.table_name,
                "CHECKS_TABLE": tables.checks.table_name,
                "IDEMPOTENCY_TABLE": tables.idempotency.table_name,
                "ALERTS_TOPIC_ARN": topics.alerts.topic_arn,
                "ENDPOINT_NAME": endpoint.endpoint_name,
            },
        )
        function = checker.function
        # The item calls the checker makes (lambdas/checker/adapters, and Powertools'
        # idempotency layer), and no Scan, Query or batch writes.
        grant_items(tables.bins, function, "GetItem")
        grant_items(tables.checks, function, "PutItem")
        grant_items(tables.idempotency, function, "GetItem", "PutItem", "UpdateItem", "DeleteItem")
        # HeadObject (capture time) and GetObject (bytes mode) on photos, and nothing else.
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=[storage.bucket.arn_for_objects(f"{PHOTO_PREFIX}*")],
            )
        )
        topics.alerts.grant_publish(function)
        endpoint.grant_invoke(function)

        review = ReviewService(
            self,
            "Review",
            config=config,
            checks=tables.checks,
            bins=tables.bins,
            alerts=topics.alerts,
            photos=storage.bucket,
        )

        self.monitoring = Monitoring(
            self,
            "Monitoring",
            config=config,
            function=function,
            queue=checker.queue,
            dead_letters=checker.dead_letters,
            endpoint=endpoint,
            alarms=[checker.dead_letter_alarm, endpoint.latency_alarm, endpoint.error_alarm],
            ops=topics.ops,
            review=review,
        )
        pipeline = TrainingPipeline(
            self,
            "Training",
            config=config,
            endpoint=endpoint,
            ops=topics.ops,
            access_logs=storage.access_logs,
        )
        for name, value in {
            "PhotosBucket": storage.bucket.bucket_name,
            "BinsTable": tables.bins.table_name,
            "ChecksTable": tables.checks.table_name,
            "AlertsTopic": topics.alerts.topic_arn,
            "OpsTopic": topics.ops.topic_arn,
            "PhotoEventsDLQ": checker.dead_letters.queue_url,
            "EndpointName": endpoint.endpoint_name,
            "TrainingPipeline": pipeline.state_machine.state_machine_arn,
            "TrainingBucket": pipeline.bucket.bucket_name,
            "ProductionModelRecord": pipeline.record.parameter_name,
            "ReviewApiUrl": review.url,
            "ReviewUserPoolId": review.user_pool.user_pool_id,
            "ReviewUserPoolClientId": review.client.user_pool_client_id,
        }.items():
            CfnOutput(self, name, value=value)
        acknowledge_findings(self, config=config, checker=checker, endpoint=endpoint)
        acknowledge_pipeline_findings(pipeline)
        acknowledge_review_findings(review)

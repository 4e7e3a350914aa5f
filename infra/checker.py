"""Photo notifications -> queue (+DLQ) -> the checker function."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as notifications
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from contract.keys import PHOTO_PREFIX

from .config import BinCheckConfig
from .functions import powertools_function, powertools_layer
from .log_groups import log_group


class CheckerService(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: BinCheckConfig,
        photos: s3.IBucket,
        environment: dict[str, str],
    ) -> None:
        super().__init__(scope, id)
        self.dead_letters = sqs.Queue(
            self,
            "DeadLetters",
            retention_period=Duration.days(14),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
        )
        self.queue = sqs.Queue(
            self,
            "PhotoEvents",
            visibility_timeout=Duration.seconds(config.queue_visibility_timeout_s),
            retention_period=Duration.days(4),
            encryption=sqs.QueueEncryption.SQS_MANAGED,  # S3 can notify SSE-SQS queues
            enforce_ssl=True,
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dead_letters, max_receive_count=config.max_receive_count
            ),
        )
        photos.add_object_created_notification(
            notifications.SqsDestination(self.queue), s3.NotificationKeyFilter(prefix=PHOTO_PREFIX)
        )
        self.dead_letter_alarm = cloudwatch.Alarm(
            self,
            "DeadLettersAlarm",
            alarm_description="Photos the checker gave up on: inspect, fix, then redrive",
            metric=self.dead_letters.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(1)
            ),
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

        powertools = powertools_layer(self, "Powertools", config)
        self.logs = log_group(self, "FunctionLogs", config=config)
        self.function = powertools_function(
            self,
            "Function",
            config=config,
            package="checker",  # lambdas/checker/ and contract/ only
            handler="checker.handler.lambda_handler",
            description="Checks each bin photo against the bin's expected quantity",
            layer=powertools,
            logs_to=self.logs,
            role_description="Checker function: its own logs; the stack grants the rest",
            timeout_s=config.function_timeout_s,
            memory_mb=config.function_memory_mb,
            environment={**environment, **config.checker_environment()},
        )
        self.function.add_event_source(
            sources.SqsEventSource(
                self.queue,
                batch_size=config.batch_size,
                max_batching_window=Duration.seconds(config.max_batching_window_s),
                max_concurrency=config.max_concurrency,
                report_batch_item_failures=True,
            )
        )

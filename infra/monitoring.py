"""The dashboard, and every alarm routed to the ops topic."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from contract.decision import Status

from .config import BinCheckConfig
from .endpoint import CountingEndpoint
from .review import ReviewService


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: BinCheckConfig,
        function: lambda_.IFunction,
        queue: sqs.IQueue,
        dead_letters: sqs.IQueue,
        endpoint: CountingEndpoint,
        alarms: list[cloudwatch.Alarm],
        ops: sns.ITopic,
        review: ReviewService,
    ) -> None:
        super().__init__(scope, id)
        checks = {
            status: cloudwatch.Metric(
                namespace=config.metrics_namespace,
                metric_name="Checks",
                dimensions_map={"service": config.service_name, "status": str(status)},
                statistic="Sum",
                period=Duration.minutes(5),
                label=str(status),
            )
            for status in Status
        }
        mismatch_rate = cloudwatch.MathExpression(
            expression="100 * mismatch / MAX([total, 1])",
            using_metrics={
                "mismatch": checks[Status.MISMATCH],
                "total": cloudwatch.MathExpression(
                    expression=" + ".join(f"FILL(s{i}, 0)" for i in range(len(checks))),
                    using_metrics={f"s{i}": m for i, m in enumerate(checks.values())},
                    period=Duration.minutes(5),
                ),
            },
            label="mismatch rate (%)",
            period=Duration.minutes(5),
        )
        queue_age = queue.metric_approximate_age_of_oldest_message(period=Duration.minutes(1))
        function_errors = function.metric_errors(period=Duration.minutes(1))

        # lambdas/review/backlog.py publishes both every five minutes.
        pending_reviews, oldest_review = (
            cloudwatch.Metric(
                namespace=config.metrics_namespace,
                metric_name=name,
                dimensions_map={"service": config.service_name},
                statistic="Maximum",
                period=Duration.minutes(5),
                label=label,
            )
            for name, label in (
                ("PendingReviews", "pending reviews"),
                ("OldestPendingReviewAgeSeconds", "oldest pending review (s)"),
            )
        )
        alarms = [
            *alarms,
            cloudwatch.Alarm(
                self,
                "ReviewBacklogAlarm",
                alarm_description=f"At least {config.review_backlog_alarm} checks wait for review",
                metric=pending_reviews,
                threshold=config.review_backlog_alarm,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                evaluation_periods=1,
            ),
            cloudwatch.Alarm(
                self,
                "OldestReviewAlarm",
                alarm_description=(
                    f"A check has waited for review more than {config.review_oldest_alarm_h} h"
                ),
                metric=oldest_review,
                threshold=config.review_oldest_alarm_h * 3600,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                evaluation_periods=1,
            ),
            cloudwatch.Alarm(
                self,
                "ReviewErrorsAlarm",
                alarm_description=(
                    "The review API answered 5xx (the function failed, timed out or was "
                    "throttled) or the backlog function failed invocations"
                ),
                metric=cloudwatch.MathExpression(
                    expression="FILL(api, 0) + FILL(http5xx, 0) + FILL(backlog, 0)",
                    using_metrics={
                        "api": review.function.metric_errors(period=Duration.minutes(5)),
                        "http5xx": review.api.metric_server_error(period=Duration.minutes(5)),
                        "backlog": review.backlog_function.metric_errors(
                            period=Duration.minutes(5)
                        ),
                    },
                    period=Duration.minutes(5),
                ),
                threshold=0,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                evaluation_periods=1,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
            cloudwatch.Alarm(
                self,
                "QueueAgeAlarm",
                alarm_description=f"Photos waiting more than {config.queue_age_alarm_s} s",
                metric=queue_age,
                threshold=config.queue_age_alarm_s,
                evaluation_periods=3,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
            cloudwatch.Alarm(
                self,
                "FunctionErrorsAlarm",
                alarm_description="The checker function failed invocations",
                metric=function_errors,
                threshold=0,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                evaluation_periods=3,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
        ]
        for alarm in alarms:
            alarm.add_alarm_action(actions.SnsAction(ops))
            alarm.add_ok_action(actions.SnsAction(ops))
        self.alarms = alarms

        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", default_interval=Duration.hours(6))
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Checks by status", left=list(checks.values()), stacked=True, width=12
            ),
            cloudwatch.GraphWidget(title="Mismatch rate", left=[mismatch_rate], width=12),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Endpoint latency (microseconds)", left=[endpoint.latency], width=8
            ),
            cloudwatch.GraphWidget(
                title="Endpoint invocations and 5xx",
                left=[endpoint.invocations],
                right=[endpoint.server_errors],
                width=8,
            ),
            cloudwatch.GraphWidget(title="Checker errors", left=[function_errors], width=8),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Oldest photo waiting (s)", left=[queue_age], width=12),
            cloudwatch.GraphWidget(
                title="Dead letters",
                left=[dead_letters.metric_approximate_number_of_messages_visible()],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Review backlog", left=[pending_reviews], right=[oldest_review], width=24
            ),
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=alarms, width=24),
        )

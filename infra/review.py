"""Human review (docs/review.md): the reviewers' Cognito user pool, the review HTTP API behind
its JWT authorizer, the review function, and the scheduled backlog metrics.

The review function may read and settle checks, and nothing else of them: its UpdateItem is
limited by condition to the review attributes (``contract.review.REVIEW_FIELDS``), the
pending key and the table's keys.
"""

from __future__ import annotations

import jsii
from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

from contract.keys import PHOTO_PREFIX
from contract.names import PENDING_REVIEW_INDEX
from contract.review import PENDING_REVIEW_KEY, REVIEW_API_ROUTES, REVIEW_FIELDS

from .config import BinCheckConfig
from .functions import powertools_function, powertools_layer
from .log_groups import log_group
from .tables import grant_items

# What a settled review writes: the checks table's keys, the review attributes and the
# pending key it removes (lambdas/review/adapters/store.py); a bin's quantity and its time.
CHECK_KEYS = ("bin_id", "check_id")
REVIEW_ATTRIBUTES = (*CHECK_KEYS, *REVIEW_FIELDS, PENDING_REVIEW_KEY)
BIN_ATTRIBUTES = ("bin_id", "expected_quantity", "updated_at")
# One JSON object per request, in the API's access log group.
ACCESS_LOG_FORMAT = (
    '{"requestId":"$context.requestId","ip":"$context.identity.sourceIp",'
    '"requestTime":"$context.requestTime","routeKey":"$context.routeKey",'
    '"status":"$context.status","responseLength":"$context.responseLength",'
    '"latencyMs":"$context.responseLatency","user":"$context.authorizer.claims.username",'
    '"authorizerError":"$context.authorizer.error",'
    '"integrationError":"$context.integrationErrorMessage"}'
)


def only_attributes(names: tuple[str, ...]) -> dict[str, dict[str, list[str]]]:
    """An UpdateItem condition: the request names no attribute outside ``names``, and asks
    for no item back."""
    return {
        "ForAllValues:StringEquals": {"dynamodb:Attributes": sorted(set(names))},
        "StringEqualsIfExists": {"dynamodb:ReturnValues": ["NONE"]},
    }


@jsii.implements(apigwv2.IAccessLogSettings)
class AccessLogSettings:
    """The stage's access logs: one JSON object per request (``ACCESS_LOG_FORMAT``)."""

    def __init__(self, group: logs.ILogGroup) -> None:
        self._group = group

    @property
    def destination(self) -> apigwv2.IAccessLogDestination:
        return apigwv2.LogGroupLogDestination(self._group)

    @property
    def format(self) -> apigw.AccessLogFormat:
        return apigw.AccessLogFormat.custom(ACCESS_LOG_FORMAT)


class ReviewService(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: BinCheckConfig,
        checks: dynamodb.ITable,
        bins: dynamodb.ITable,
        alerts: sns.ITopic,
        photos: s3.IBucket,
    ) -> None:
        super().__init__(scope, id)
        powertools = powertools_layer(self, "Powertools", config)
        pending_index = f"{checks.table_arn}/index/{PENDING_REVIEW_INDEX}"

        # The review API's function.
        self.logs = log_group(self, "FunctionLogs", config=config)
        self.function = powertools_function(
            self,
            "Function",
            config=config,
            package="review",  # lambdas/review/ and contract/ only
            handler="review.handler.lambda_handler",
            description="The review API: the pending checks, one check, settling a check",
            layer=powertools,
            logs_to=self.logs,
            role_description="Review function: its own logs, reading and settling checks",
            timeout_s=config.review_function_timeout_s,
            memory_mb=256,
            environment={
                "CHECKS_TABLE": checks.table_name,
                "BINS_TABLE": bins.table_name,
                "ALERTS_TOPIC_ARN": alerts.topic_arn,
                **config.review_environment(),
            },
        )
        function = self.function
        grant_items(checks, function, "GetItem")
        function.add_to_role_policy(  # the queue (the index) and one bin's checks (the table)
            iam.PolicyStatement(
                actions=["dynamodb:Query"], resources=[checks.table_arn, pending_index]
            )
        )
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["dynamodb:UpdateItem"],
                resources=[checks.table_arn],
                conditions=only_attributes(REVIEW_ATTRIBUTES),
            )
        )
        if config.review_updates_bins:  # the bin's quantity, in the settling transaction
            grant_items(bins, function, "GetItem")
            function.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["dynamodb:UpdateItem"],
                    resources=[bins.table_arn],
                    conditions=only_attributes(BIN_ATTRIBUTES),
                )
            )
        alerts.grant_publish(function)  # the REVIEWED notice (and the topic key's data keys)
        function.add_to_role_policy(  # presigned photo links are signed with this role
            iam.PolicyStatement(
                actions=["s3:GetObject"], resources=[photos.arn_for_objects(f"{PHOTO_PREFIX}*")]
            )
        )

        # The backlog metrics, every five minutes.
        self.backlog_logs = log_group(self, "BacklogLogs", config=config)
        self.backlog_function = powertools_function(
            self,
            "Backlog",
            config=config,
            package="review",
            handler="review.backlog.lambda_handler",
            description="Publishes the review backlog: PendingReviews, oldest pending age",
            layer=powertools,
            logs_to=self.backlog_logs,  # its metrics too (embedded metric format)
            role_description="Review backlog function: its own logs, querying the pending index",
            timeout_s=60,
            memory_mb=128,
            environment={
                "CHECKS_TABLE": checks.table_name,
                "POWERTOOLS_SERVICE_NAME": config.service_name,
                "POWERTOOLS_METRICS_NAMESPACE": config.metrics_namespace,
            },
            tracing=False,
        )
        self.backlog_function.add_to_role_policy(
            iam.PolicyStatement(actions=["dynamodb:Query"], resources=[pending_index])
        )
        events.Rule(
            self,
            "BacklogSchedule",
            description="Measures the review backlog",
            schedule=events.Schedule.rate(Duration.minutes(5)),
            targets=[targets.LambdaFunction(self.backlog_function, retry_attempts=0)],
        )

        # The reviewers: accounts an administrator creates (docs/review.md).
        self.user_pool = cognito.UserPool(
            self,
            "Reviewers",
            self_sign_up_enabled=False,
            sign_in_aliases=cognito.SignInAliases(username=True, email=True),
            sign_in_case_sensitive=False,
            feature_plan=cognito.FeaturePlan.ESSENTIALS,
            password_policy=cognito.PasswordPolicy(
                min_length=12,
                require_lowercase=True,
                require_uppercase=True,
                require_digits=True,
                require_symbols=True,
                temp_password_validity=Duration.days(3),
            ),
            mfa=cognito.Mfa.OFF,
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            removal_policy=RemovalPolicy.RETAIN if config.retain_data else RemovalPolicy.DESTROY,
        )
        # The review page signs in from the browser with Cognito's InitiateAuth
        # (USER_PASSWORD_AUTH, over TLS to Cognito): a public client, so no secret.
        self.client = self.user_pool.add_client(
            "ReviewPage",
            generate_secret=False,
            disable_o_auth=True,  # no hosted UI: the page calls InitiateAuth itself
            auth_flows=cognito.AuthFlow(user_srp=True, user_password=True),
            prevent_user_existence_errors=True,
            enable_token_revocation=True,
            access_token_validity=Duration.hours(1),
            id_token_validity=Duration.hours(1),
            refresh_token_validity=Duration.hours(config.review_refresh_token_h),
        )
        # The page the function serves at GET / signs in against this pool and client.
        function.add_environment("USER_POOL_ID", self.user_pool.user_pool_id)
        function.add_environment("USER_POOL_CLIENT_ID", self.client.user_pool_client_id)

        # The API: every review route behind the JWT authorizer; GET / (the review page)
        # open, served by the same function.
        self.api = apigwv2.HttpApi(
            self,
            "Api",
            description="Bin check review API",
            create_default_stage=False,
        )
        self.access_logs = log_group(self, "AccessLogs", config=config)
        self.stage = apigwv2.HttpStage(
            self,
            "DefaultStage",
            http_api=self.api,
            stage_name="$default",
            auto_deploy=True,
            access_log_settings=AccessLogSettings(self.access_logs),
            throttle=apigwv2.ThrottleSettings(
                rate_limit=config.review_api_rate_limit,
                burst_limit=config.review_api_burst_limit,
            ),
        )
        integration = integrations.HttpLambdaIntegration("Review", function)
        self.authorizer = authorizers.HttpUserPoolAuthorizer(
            "Reviewers", self.user_pool, user_pool_clients=[self.client]
        )
        for route in REVIEW_API_ROUTES:
            method, path = route.split(" ", 1)
            self.api.add_routes(
                path=path,
                methods=[apigwv2.HttpMethod(method)],
                integration=integration,
                authorizer=self.authorizer,
            )
        self.page_route = self.api.add_routes(
            path="/", methods=[apigwv2.HttpMethod.GET], integration=integration
        )

    @property
    def url(self) -> str:
        return self.stage.url

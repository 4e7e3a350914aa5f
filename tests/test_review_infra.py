"""The review's AWS side (infra/review.py): the HTTP API and its JWT authorizer, the reviewers'
user pool, what the review functions may do, the pending index and the backlog alarms.

cdk-nag and cfn-lint run on the whole stack, review included, in tests/test_infra.py."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from aws_cdk import App, Environment, Stack
from aws_cdk.assertions import Template

from contract.names import PENDING_REVIEW_INDEX
from contract.review import PENDING_REVIEW_KEY, REVIEW_API_ROUTES, REVIEW_FIELDS
from infra.config import BinCheckConfig
from infra.review import ReviewService
from infra.storage import PhotoStorage
from infra.tables import Tables
from infra.topics import Topics
from tests.test_infra import REPO, synth


@pytest.fixture(scope="module")
def raw(model_artifact, tmp_path_factory) -> dict[str, Any]:
    _, stack = synth(tmp_path_factory.mktemp("cdk-review"), model_artifact)
    return Template.from_stack(stack).to_json()


def review_only(**settings) -> dict[str, Any]:
    """The review's resources and what they use, without the rest of the stack (fast)."""
    config = BinCheckConfig(**settings)
    context = json.loads((REPO / "cdk.json").read_text())["context"]  # the feature flags
    stack = Stack(
        App(context=context), "Review", env=Environment(account="123456789012", region="eu-west-1")
    )
    tables = Tables(stack, "Tables", config=config)
    ReviewService(
        stack,
        "Review",
        config=config,
        checks=tables.checks,
        bins=tables.bins,
        alerts=Topics(stack, "Topics", config=config).alerts,
        photos=PhotoStorage(stack, "Storage", config=config).bucket,
    )
    return Template.from_stack(stack).to_json()


def of_type(raw: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: r["Properties"] for k, r in raw["Resources"].items() if r["Type"] == kind}


def function_named(raw: dict[str, Any], handler: str) -> dict[str, Any]:
    [function] = [
        f for f in of_type(raw, "AWS::Lambda::Function").values() if f.get("Handler") == handler
    ]
    return function


def statements(raw: dict[str, Any], function: dict[str, Any]) -> list[dict[str, Any]]:
    role = {"Ref": function["Role"]["Fn::GetAtt"][0]}
    return [
        statement
        for policy in of_type(raw, "AWS::IAM::Policy").values()
        if role in policy["Roles"]
        for statement in policy["PolicyDocument"]["Statement"]
    ]


def actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else action


def logical_id(raw, kind: str) -> str:
    [name] = [n for n, r in raw["Resources"].items() if r["Type"] == kind]
    return name


def test_every_review_route_needs_a_reviewers_token_and_only_the_page_is_open(raw):
    [api] = of_type(raw, "AWS::ApiGatewayV2::Api").values()
    [(authorizer_id, authorizer)] = of_type(raw, "AWS::ApiGatewayV2::Authorizer").items()
    [pool] = of_type(raw, "AWS::Cognito::UserPool")
    [client] = of_type(raw, "AWS::Cognito::UserPoolClient")
    assert authorizer["AuthorizerType"] == "JWT"
    assert authorizer["IdentitySource"] == ["$request.header.Authorization"]
    jwt = authorizer["JwtConfiguration"]
    assert jwt["Audience"] == [{"Ref": client}]  # tokens of the review page's client only
    issuer = jwt["Issuer"]["Fn::Join"][1]
    assert issuer == ["https://cognito-idp.eu-west-1.amazonaws.com/", {"Ref": pool}]

    routes = {r["RouteKey"]: r for r in of_type(raw, "AWS::ApiGatewayV2::Route").values()}
    assert set(routes) == {*REVIEW_API_ROUTES, "GET /"}
    for key in REVIEW_API_ROUTES:
        assert routes[key]["AuthorizationType"] == "JWT", key
        assert routes[key]["AuthorizerId"] == {"Ref": authorizer_id}, key
    assert routes["GET /"]["AuthorizationType"] == "NONE"
    assert "AuthorizerId" not in routes["GET /"]
    # One function answers them all, the page included.
    [integration] = of_type(raw, "AWS::ApiGatewayV2::Integration").values()
    assert integration["PayloadFormatVersion"] == "2.0"
    targets = {json.dumps(r["Target"]) for r in routes.values()}
    assert len(targets) == 1
    function = integration["IntegrationUri"]["Fn::GetAtt"][0]
    assert raw["Resources"][function]["Properties"]["Handler"] == "review.handler.lambda_handler"
    assert api["ProtocolType"] == "HTTP" and "CorsConfiguration" not in api


def test_the_default_stage_logs_each_request_and_is_throttled(raw):
    [stage] = of_type(raw, "AWS::ApiGatewayV2::Stage").values()
    assert stage["StageName"] == "$default" and stage["AutoDeploy"] is True
    assert stage["DefaultRouteSettings"] == {"ThrottlingBurstLimit": 40, "ThrottlingRateLimit": 20}
    group = stage["AccessLogSettings"]["DestinationArn"]["Fn::GetAtt"][0]
    assert raw["Resources"][group]["Properties"]["RetentionInDays"] == 90
    entry = json.loads(stage["AccessLogSettings"]["Format"])
    assert entry["routeKey"] == "$context.routeKey" and entry["status"] == "$context.status"


def test_reviewers_are_created_by_an_administrator_with_strong_passwords(raw):
    [pool] = of_type(raw, "AWS::Cognito::UserPool").values()
    assert pool["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    assert pool["Policies"]["PasswordPolicy"] == {
        "MinimumLength": 12,
        "RequireLowercase": True,
        "RequireUppercase": True,
        "RequireNumbers": True,
        "RequireSymbols": True,
        "TemporaryPasswordValidityDays": 3,
    }
    assert pool["MfaConfiguration"] == "OFF"
    [client] = of_type(raw, "AWS::Cognito::UserPoolClient").values()
    assert client["GenerateSecret"] is False  # a browser page: a public client
    assert sorted(client["ExplicitAuthFlows"]) == [
        "ALLOW_REFRESH_TOKEN_AUTH",
        "ALLOW_USER_PASSWORD_AUTH",
        "ALLOW_USER_SRP_AUTH",
    ]
    assert "AllowedOAuthFlows" not in client  # no hosted UI
    assert client["PreventUserExistenceErrors"] == "ENABLED"
    # The page the review function serves signs in against them.
    environment = function_named(raw, "review.handler.lambda_handler")["Environment"]["Variables"]
    assert environment["USER_POOL_ID"] == {"Ref": logical_id(raw, "AWS::Cognito::UserPool")}
    assert environment["USER_POOL_CLIENT_ID"] == {
        "Ref": logical_id(raw, "AWS::Cognito::UserPoolClient")
    }
    # Kept with the data by default (retain_data), as the tables are.
    [pool_resource] = [
        r for r in raw["Resources"].values() if r["Type"] == "AWS::Cognito::UserPool"
    ]
    assert pool_resource["DeletionPolicy"] == "Retain"


def test_the_review_function_may_read_and_settle_checks_and_nothing_else(raw):
    function = function_named(raw, "review.handler.lambda_handler")
    assert function["Timeout"] == 15 and function["TracingConfig"] == {"Mode": "Active"}
    variables = function["Environment"]["Variables"]
    assert variables["UPDATE_BINS"] == "false" and variables["PHOTO_URL_TTL_S"] == "300"
    assert {"CHECKS_TABLE", "BINS_TABLE", "ALERTS_TOPIC_ARN"} <= set(variables)
    checks = variables["CHECKS_TABLE"]["Ref"]
    alerts = variables["ALERTS_TOPIC_ARN"]["Ref"]
    granted = {}
    for statement in statements(raw, function):
        for action in actions(statement):
            granted.setdefault(action, []).append(statement)
    assert sorted(a for a in granted if a.startswith("dynamodb:")) == [
        "dynamodb:GetItem",
        "dynamodb:Query",
        "dynamodb:UpdateItem",
    ]
    table_arn = {"Fn::GetAtt": [checks, "Arn"]}
    [query] = granted["dynamodb:Query"]
    index = {"Fn::Join": ["", [table_arn, f"/index/{PENDING_REVIEW_INDEX}"]]}
    assert query["Resource"] == [table_arn, index]
    [get] = granted["dynamodb:GetItem"]
    assert get["Resource"] == table_arn  # not the bins table: UPDATE_BINS is off
    [update] = granted["dynamodb:UpdateItem"]
    assert update["Resource"] == table_arn
    allowed = update["Condition"]["ForAllValues:StringEquals"]["dynamodb:Attributes"]
    assert set(allowed) == {"bin_id", "check_id", PENDING_REVIEW_KEY, *REVIEW_FIELDS}
    assert "status" not in allowed and "expected_quantity" not in allowed
    assert update["Condition"]["StringEqualsIfExists"] == {"dynamodb:ReturnValues": ["NONE"]}
    [publish] = granted["sns:Publish"]
    assert publish["Resource"] == {"Ref": alerts}
    [photos] = granted["s3:GetObject"]
    assert photos["Resource"]["Fn::Join"][1][1] == "/bins/*"
    assert not [a for a in granted if a.startswith("s3:") and a != "s3:GetObject"]


def test_the_backlog_function_may_only_query_the_pending_index_every_five_minutes(raw):
    function = function_named(raw, "review.backlog.lambda_handler")
    variables = function["Environment"]["Variables"]
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "BinChecker"
    assert variables["POWERTOOLS_SERVICE_NAME"] == "bin-checker"
    dynamodb = [s for s in statements(raw, function) if actions(s)[0].startswith("dynamodb:")]
    [query] = dynamodb
    assert actions(query) == ["dynamodb:Query"]
    assert query["Resource"]["Fn::Join"][1][1] == f"/index/{PENDING_REVIEW_INDEX}"
    [rule] = [
        r
        for r in of_type(raw, "AWS::Events::Rule").values()
        if r.get("ScheduleExpression") == "rate(5 minutes)"
    ]
    [target] = rule["Targets"]
    backlog = [
        k
        for k, r in raw["Resources"].items()
        if r["Type"] == "AWS::Lambda::Function"
        and r["Properties"].get("Handler") == "review.backlog.lambda_handler"
    ]
    assert target["Arn"] == {"Fn::GetAtt": [backlog[0], "Arn"]}


def test_the_checks_table_indexes_pending_reviews_oldest_capture_first(raw):
    [checks] = [
        t
        for t in of_type(raw, "AWS::DynamoDB::Table").values()
        if len(t["KeySchema"]) == 2 and t["KeySchema"][1]["AttributeName"] == "check_id"
    ]
    [index] = [
        i for i in checks["GlobalSecondaryIndexes"] if i["IndexName"] == PENDING_REVIEW_INDEX
    ]
    assert index["KeySchema"] == [
        {"AttributeName": PENDING_REVIEW_KEY, "KeyType": "HASH"},
        {"AttributeName": "check_id", "KeyType": "RANGE"},
    ]
    assert index["Projection"] == {"ProjectionType": "ALL"}


def test_the_review_backlog_alarms_notify_the_ops_topic(raw):
    outputs = raw["Outputs"]
    ops = outputs["OpsTopic"]["Value"]
    alarms = {}
    for alarm in of_type(raw, "AWS::CloudWatch::Alarm").values():
        for query in alarm.get("Metrics", []):
            stat = query.get("MetricStat", {})
            if stat.get("Metric", {}).get("Namespace") == "BinChecker":
                alarms[stat["Metric"]["MetricName"]] = (alarm, stat)
    (pending, _), (oldest, _) = alarms["PendingReviews"], alarms["OldestPendingReviewAgeSeconds"]
    assert (pending["Threshold"], pending["ComparisonOperator"]) == (
        200,
        "GreaterThanOrEqualToThreshold",
    )
    assert (oldest["Threshold"], oldest["ComparisonOperator"]) == (
        24 * 3600,
        "GreaterThanThreshold",
    )
    for alarm, stat in alarms.values():
        assert stat["Metric"]["Dimensions"] == [{"Name": "service", "Value": "bin-checker"}]
        assert (stat["Period"], stat["Stat"]) == (300, "Maximum")
        assert alarm["AlarmActions"] == [ops]


def test_the_review_apis_5xx_and_function_errors_raise_one_alarm(raw):
    ops = raw["Outputs"]["OpsTopic"]["Value"]
    [alarm] = [
        a
        for a in of_type(raw, "AWS::CloudWatch::Alarm").values()
        if "review API answered 5xx" in a.get("AlarmDescription", "")
    ]
    expression = next(q for q in alarm["Metrics"] if "Expression" in q)["Expression"]
    assert expression == "FILL(api, 0) + FILL(http5xx, 0) + FILL(backlog, 0)"
    metrics = {q["Id"]: q["MetricStat"]["Metric"] for q in alarm["Metrics"] if "MetricStat" in q}
    assert (metrics["http5xx"]["Namespace"], metrics["http5xx"]["MetricName"]) == (
        "AWS/ApiGateway",
        "5xx",
    )
    assert metrics["http5xx"]["Dimensions"][0]["Name"] == "ApiId"
    assert {metrics[i]["MetricName"] for i in ("api", "backlog")} == {"Errors"}
    assert (alarm["Threshold"], alarm["AlarmActions"]) == (0, [ops])


def test_the_review_settings_reach_the_functions_and_alarms():
    raw = review_only(review_updates_bins=True, review_photo_url_ttl_s=120, review_api_rate_limit=5)
    function = function_named(raw, "review.handler.lambda_handler")
    variables = function["Environment"]["Variables"]
    assert variables["UPDATE_BINS"] == "true" and variables["PHOTO_URL_TTL_S"] == "120"
    bins = {"Fn::GetAtt": [variables["BINS_TABLE"]["Ref"], "Arn"]}
    on_bins = {a: s for s in statements(raw, function) if s["Resource"] == bins for a in actions(s)}
    assert set(on_bins) == {"dynamodb:GetItem", "dynamodb:UpdateItem"}
    allowed = on_bins["dynamodb:UpdateItem"]["Condition"]["ForAllValues:StringEquals"]
    assert allowed == {"dynamodb:Attributes": ["bin_id", "expected_quantity", "updated_at"]}
    [stage] = of_type(raw, "AWS::ApiGatewayV2::Stage").values()
    assert stage["DefaultRouteSettings"]["ThrottlingRateLimit"] == 5


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"review_photo_url_ttl_s": 7200}, "review_photo_url_ttl_s must be 1..3600"),
        ({"review_backlog_alarm": 0}, "review_backlog_alarm and review_oldest_alarm_h"),
    ],
)
def test_bad_review_settings_are_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        BinCheckConfig(**settings)


def test_the_checker_is_told_which_statuses_wait_for_review():
    assert BinCheckConfig().checker_environment()["REVIEW_STATUSES"] == "MISMATCH,UNCERTAIN"
    chosen = BinCheckConfig.from_values({"review_statuses": ["UNCERTAIN"]})
    assert chosen.checker_environment()["REVIEW_STATUSES"] == "UNCERTAIN"

"""The training pipeline: a Step Functions state machine that tunes, trains on spot
capacity, evaluates, and promotes to the counting endpoint only a model that beats the one
in production; with the training bucket, the roles, the two small functions, the record of
the production model, an alarm for executions that end outside the catches, and an
optional schedule.
"""

from __future__ import annotations

import json

from aws_cdk import Aws, CfnMapping, Duration, Stack, Token
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as assets
from aws_cdk import aws_sns as sns
from aws_cdk import aws_ssm as ssm
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from lambdas.retraining.request import InvalidRequest, RunRequest, parse_request

from ..config import BinCheckConfig
from ..endpoint import CountingEndpoint, pytorch_images
from ..functions import function_code
from ..log_groups import function_role, log_group
from ..storage import secure_bucket_options
from . import access, jobs
from .code import ENTRY, build_training_code
from .flow import build_flow
from .record import initial_record
from .states import States

# How often each loop asks SageMaker: jobs take hours, an endpoint update minutes.
POLL_S = {"tuning job": 300, "candidate training job": 300, "endpoint": 60}
CHECKPOINT_DAYS = 30  # checkpoints matter only while their job may restart
REPLACED_DAYS = 30  # how long an overwritten object's old version is kept (promoted: always)


class TrainingPipeline(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: BinCheckConfig,
        endpoint: CountingEndpoint,
        ops: sns.ITopic,
        access_logs: s3.IBucket,
    ) -> None:
        super().__init__(scope, id)
        self.profiled = config.training_profiler  # the final job, with Debugger (cdk-nag reads)
        timeout_s = config.pipeline_timeout_h * 3600
        defaults = check_settings(config, timeout_s)
        self.bucket = self._training_bucket(config, access_logs)
        code = assets.Asset(self, "TrainingCode", path=str(build_training_code()))
        images = CfnMapping(
            self,
            "PyTorchTrainingImage",
            mapping=pytorch_images(config, scope="training", instance_type=defaults.instance_type),
        )
        rules = self._profiler_rule_images() if self.profiled else None
        self.training_role = self._training_role(images, rules, code, endpoint)
        self.endpoint_role = self._endpoint_role(endpoint)
        self.record = self._production_record(config, endpoint)
        environment = self._function_environment(config, timeout_s)
        self.validate_function = self._function(config, "Validate", environment)
        self.compare_function = self._function(config, "Compare", environment)
        self._grant_function_reads()
        definition = self._flow(config, endpoint, ops, images, rules, code)
        self.state_machine = self._state_machine(config, definition, timeout_s)
        self._let_functions_list_runs()
        self._grant_state_machine(endpoint, ops)
        self.stranded_alarm = self._stranded_alarm(ops)
        self.schedule = self._schedule(config)

    def _training_bucket(self, config: BinCheckConfig, access_logs: s3.IBucket) -> s3.Bucket:
        """Versioned: the production record names its promoted model's version. Old versions
        of what is overwritten elsewhere (checkpoints every epoch) do not pile up."""
        replaced = [
            s3.LifecycleRule(
                id=f"forget-replaced-{folder.rstrip('/')}",
                prefix=folder,
                noncurrent_version_expiration=Duration.days(REPLACED_DAYS),
            )
            for folder in (access.DATA, access.JOBS, access.PROFILER)
        ]
        return s3.Bucket(
            self,
            "Bucket",
            versioned=True,
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix="training/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-checkpoints",
                    prefix=access.CHECKPOINTS,
                    expiration=Duration.days(CHECKPOINT_DAYS),
                    noncurrent_version_expiration=Duration.days(1),
                ),
                *replaced,
                s3.LifecycleRule(abort_incomplete_multipart_upload_after=Duration.days(7)),
            ],
            **secure_bucket_options(config),
        )

    def _profiler_rule_images(self) -> CfnMapping:
        """Debugger's rule image by region, for the final job's ``ProfilerReport`` rule; a
        stack whose region is known at synthesis must be one of them."""
        region = Stack.of(self).region
        return CfnMapping(
            self,
            "ProfilerRuleImage",
            mapping=jobs.profiler_rule_images(None if Token.is_unresolved(region) else region),
        )

    def _training_role(
        self,
        images: CfnMapping,
        rules: CfnMapping | None,
        code: assets.Asset,
        endpoint: CountingEndpoint,
    ) -> iam.Role:
        role = access.training_role(
            self,
            self.bucket,
            images.find_in_map(Aws.REGION, "registry"),
            rules.find_in_map(Aws.REGION, "registry") if rules is not None else None,
        )
        access.grant_objects(role, code.bucket, ["s3:GetObject"], code.s3_object_key)
        # The model the CDK app deployed is production until a first promotion: every job
        # scores it on its test photos (its ``production`` channel).
        shipped = endpoint.model_artifact
        access.grant_list(role, shipped.bucket, shipped.s3_object_key)
        access.grant_objects(role, shipped.bucket, ["s3:GetObject"], shipped.s3_object_key)
        return role

    def _endpoint_role(self, endpoint: CountingEndpoint) -> iam.Role:
        # Promoted models are served by the endpoint's own role: the copies under promoted/.
        access.grant_objects(endpoint.role, self.bucket, ["s3:GetObject"], access.PROMOTED_MODELS)
        return endpoint.role

    def _production_record(
        self, config: BinCheckConfig, endpoint: CountingEndpoint
    ) -> ssm.StringParameter:
        return ssm.StringParameter(
            self,
            "ProductionModel",
            description="The counting endpoint's model and its test figures (training pipeline)",
            string_value=json.dumps(
                initial_record(config.model_artifact_path, endpoint.model_data_url)
            ),
        )

    def _function_environment(self, config: BinCheckConfig, timeout_s: int) -> dict[str, str]:
        return {
            "TRAINING_BUCKET": self.bucket.bucket_name,
            "PIPELINE_DEFAULTS": json.dumps(config.pipeline_defaults),
            "PIPELINE_TIMEOUT_S": str(timeout_s),
            "PRODUCTION_RECORD": self.record.parameter_name,
        }

    def _function(
        self, config: BinCheckConfig, name: str, environment: dict[str, str]
    ) -> lambda_.Function:
        logs_to = log_group(self, f"{name}Logs", config=config)
        return lambda_.Function(
            self,
            name,
            description=f"Training pipeline: {name.lower()} (lambdas/retraining/handlers.py)",
            # No Powertools layer to match (boto3 comes with the runtime): the newest Python.
            runtime=lambda_.Runtime.PYTHON_3_14,
            architecture=lambda_.Architecture.ARM_64,
            code=function_code("retraining"),  # lambdas/retraining/ only: boto3 is the runtime's
            handler=f"retraining.handlers.{name.lower()}",
            timeout=Duration.seconds(60),
            memory_size=256,
            environment=environment,
            log_group=logs_to,
            role=function_role(
                self,
                f"{name}Role",
                logs_to=logs_to,
                description=f"Training pipeline's {name.lower()} function",
            ),
        )

    def _grant_function_reads(self) -> None:
        access.grant_list(self.validate_function.role, self.bucket, access.DATA)
        # GetParameter only (grant_read adds DescribeParameters and the history). Compare
        # reads it again: another run may have promoted meanwhile.
        for function in (self.validate_function, self.compare_function):
            iam.Grant.add_to_principal(
                grantee=function,
                actions=["ssm:GetParameter"],
                resource_arns=[self.record.parameter_arn],
            )
        access.grant_objects(
            self.validate_function.role, self.bucket, ["s3:GetObject"], f"{access.DATA}*"
        )
        access.grant_objects(
            self.compare_function.role, self.bucket, ["s3:GetObject"], access.OUTPUTS
        )

    def _flow(
        self,
        config: BinCheckConfig,
        endpoint: CountingEndpoint,
        ops: sns.ITopic,
        images: CfnMapping,
        rules: CfnMapping | None,
        code: assets.Asset,
    ) -> sfn.IChainable:
        profiling = (
            jobs.Profiling(
                training_bucket=self.bucket.bucket_name,
                rule_image=rules.find_in_map(Aws.REGION, "uri"),
            )
            if rules is not None
            else None
        )
        requests = jobs.JobRequests(
            training_image=images.find_in_map(Aws.REGION, "uri"),
            training_role_arn=self.training_role.role_arn,
            profiling=profiling,
        )
        states = States(self, ops=ops, poll_s=POLL_S)
        return build_flow(
            self,
            states=states,
            requests={
                "tuning": requests.tuning_job(),
                "training": requests.final_training_job(),
                "model": jobs.model(endpoint),
                "endpoint_config": jobs.endpoint_config(config, endpoint),
                "endpoint_update": jobs.endpoint_update(
                    config, endpoint, rollback_alarms(endpoint)
                ),
            },
            code={
                "sagemaker_program": ENTRY,
                "sagemaker_submit_directory": code.s3_object_url,
                "sagemaker_container_log_level": "20",
            },
            validate=self.validate_function,
            compare=self.compare_function,
            record=self.record,
            bucket=self.bucket,
            endpoint_name=endpoint.endpoint_name,
            endpoint_arn=endpoint.endpoint_arn,
        )

    def _state_machine(
        self, config: BinCheckConfig, definition: sfn.IChainable, timeout_s: int
    ) -> sfn.StateMachine:
        return sfn.StateMachine(
            self,
            "StateMachine",
            comment="Tune, train on spot capacity, evaluate, promote only a better model",
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            timeout=Duration.seconds(timeout_s),
            tracing_enabled=True,
            logs=sfn.LogOptions(
                destination=log_group(self, "Logs", config=config), level=sfn.LogLevel.ALL
            ),
        )

    def _let_functions_list_runs(self) -> None:
        # Validate and compare stop a run while an earlier one is still running. Not
        # through grant(): a function's default policy would then depend on the state
        # machine, which depends on the function.
        iam.Policy(
            self,
            "FunctionsListRuns",
            roles=[self.validate_function.role, self.compare_function.role],
            statements=[
                iam.PolicyStatement(
                    actions=["states:ListExecutions"],
                    resources=[self.state_machine.state_machine_arn],
                )
            ],
        )

    def _grant_state_machine(self, endpoint: CountingEndpoint, ops: sns.ITopic) -> None:
        # The roles the jobs and the new model run as, and only to SageMaker.
        iam.Grant.add_to_principal(
            grantee=self.state_machine,
            actions=["iam:PassRole"],
            resource_arns=[self.training_role.role_arn, endpoint.role.role_arn],
            conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        )
        ops.grant_publish(self.state_machine)  # and the topic key's data keys
        # Whoever calls UpdateEndpoint must be allowed to use the endpoint's volume key; the
        # grant it creates can only be for an AWS service (SageMaker's instances).
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["kms:CreateGrant"],
                resources=[endpoint.volume_key.key_arn],
                conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
            )
        )
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["kms:DescribeKey"], resources=[endpoint.volume_key.key_arn]
            )
        )
        # SageMaker reads the rollback alarms of an UpdateEndpoint as its caller.
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:DescribeAlarms"],
                resources=[alarm.alarm_arn for alarm in rollback_alarms(endpoint)],
            )
        )

    def _stranded_alarm(self, ops: sns.ITopic) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self,
            "StrandedAlarm",
            alarm_description=(
                "A training pipeline execution timed out or was aborted: no notice was sent, "
                "and its SageMaker jobs may still be running (stop them)"
            ),
            metric=cloudwatch.MathExpression(
                expression="timedout + aborted",
                using_metrics={
                    "timedout": self.state_machine.metric_timed_out(),
                    "aborted": self.state_machine.metric_aborted(),
                },
                period=Duration.minutes(5),
            ),
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(actions.SnsAction(ops))
        return alarm

    def _schedule(self, config: BinCheckConfig) -> events.Rule | None:
        if not config.pipeline_schedule:
            return None
        return events.Rule(
            self,
            "Schedule",
            description="Retrains the counting model with the deployment's defaults",
            schedule=events.Schedule.expression(config.pipeline_schedule),
            targets=[
                targets.SfnStateMachine(
                    self.state_machine, input=events.RuleTargetInput.from_object({})
                )
            ],
        )


def rollback_alarms(endpoint: CountingEndpoint) -> list[cloudwatch.Alarm]:
    """The alarms SageMaker watches while a promoted model bakes, and rolls back on."""
    return [endpoint.latency_alarm, endpoint.error_alarm]


def check_settings(config: BinCheckConfig, timeout_s: int) -> RunRequest:
    """The deployment's run defaults, checked at synthesis with the validate function's own
    rules: a bad cdk.json fails ``cdk synth``, not the first scheduled run."""
    defaults = dict(config.pipeline_defaults)
    if config.pipeline_schedule:
        if not config.pipeline_schedule.startswith(("rate(", "cron(")):
            raise ValueError(
                "pipeline_schedule must be rate(...) or cron(...), "
                f"got {config.pipeline_schedule!r}"
            )
        if "data" not in defaults:
            raise ValueError("pipeline_schedule needs pipeline_defaults.data: what to train on")
    if not 0 <= config.deployment_bake_s <= 3600:
        raise ValueError("deployment_bake_s must be 0..3600 (SageMaker's limit)")
    defaults.setdefault("data", "s3://placeholder/data/any/")
    try:
        return parse_request({}, defaults=defaults, timeout_s=timeout_s)
    except InvalidRequest as error:
        raise ValueError(f"pipeline_defaults: {error}") from error

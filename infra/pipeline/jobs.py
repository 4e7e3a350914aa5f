"""The SageMaker requests of the training pipeline, as its states' parameters: the tuning
job, the final training job, the model, the endpoint configuration and the endpoint update.

Values that vary by run are JSON paths into the validated run (``$.run``, built by
``lambdas/retraining/plan.py``); what the deployment fixes (images, roles, spot, checkpoints,
optional profiling, rollback alarms) is written here, where the template tests read it. The
jobs' channels are the plan's (``$.run.channels``, ``plan.channels``) as a whole: their
number follows the request's ``extra_data``, and a state's JSON paths cannot make a list
of varying length.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk.aws_stepfunctions import JsonPath

from ..config import BinCheckConfig
from ..endpoint import VARIANT, CountingEndpoint
from .access import PROFILER

CHECKPOINTS = "/opt/ml/checkpoints"  # where train.py writes them; SageMaker syncs it to S3
# The names train.py's metrics line prints: the tuning objective is one of the val_ ones;
# the last four are the epoch's speed (training time, photos a second, the wait for data).
LINE_METRICS = (
    "train_loss",
    "val_loss",
    "val_accuracy",
    "val_off_by_one",
    "val_rmse",
    "val_mae",
    "train_s",
    "samples_per_s",
    "data_wait_s",
    "data_wait_share",
)
MAX_DEPLOYMENT_S = 8 * 3600  # SageMaker's ceiling on a blue/green deployment
PROFILING_INTERVAL_MS = 500  # system metrics (CPU, GPU, memory, I/O) twice a second
PROFILER_REPORT = "ProfilerReport"  # Debugger's built-in rule that runs all profiler rules


def metric_definitions() -> list[dict[str, str]]:
    return [{"Name": name, "Regex": rf"{name}=([-+0-9.eE]+)"} for name in LINE_METRICS]


def profiler_rule_images(region: str | None = None) -> dict[str, dict[str, str]]:
    """SageMaker Debugger's rule evaluator image, which runs the ``ProfilerReport`` rule, for
    every region the SageMaker SDK knows it in (its accounts are AWS's "Amazon SageMaker
    Debugger Registry URLs for Built-in Rule Evaluators"), resolved now and pinned in the
    template. ``region``, the stack's where it is known at synthesis, must be one of them."""
    from sagemaker.core import image_uris

    registries = image_uris.config_for_framework("debugger")["versions"]["latest"]["registries"]
    if region is not None and region not in registries:
        raise ValueError(
            f"cannot deploy to {region}: the training pipeline's final job runs SageMaker "
            f"Debugger's {PROFILER_REPORT} rule, whose image is not published there (it is "
            f"in {', '.join(sorted(registries))}); or set training_profiler to false"
        )
    return {
        name: {"uri": image_uris.retrieve("debugger", region=name), "registry": account}
        for name, account in registries.items()
    }


@dataclass(frozen=True)
class Profiling:
    """SageMaker Debugger's system metrics (CPU, GPU, memory, I/O) every
    ``PROFILING_INTERVAL_MS``, and its ``ProfilerReport`` rule, which runs beside the job as a
    processing job with the job's role and writes an HTML report of them, both under
    ``profiler/<run>/`` of the training bucket. CreateTrainingJob only: a tuning job's
    TrainingJobDefinition has no profiler fields."""

    training_bucket: str  # the bucket's name
    rule_image: str  # Debugger's rule evaluator, for the ProfilerReport rule

    def request(self) -> dict[str, Any]:
        output = JsonPath.format(
            f"s3://{self.training_bucket}/{PROFILER}{{}}/", JsonPath.string_at("$.run.run_id")
        )
        return {
            "ProfilerConfig": {
                "S3OutputPath": output,
                "ProfilingIntervalInMilliseconds": PROFILING_INTERVAL_MS,
            },
            "ProfilerRuleConfigurations": [
                {
                    "RuleConfigurationName": PROFILER_REPORT,
                    "RuleEvaluatorImage": self.rule_image,
                    "RuleParameters": {"rule_to_invoke": PROFILER_REPORT},
                    "S3OutputPath": output,
                }
            ],
        }


@dataclass(frozen=True)
class JobRequests:
    training_image: str
    training_role_arn: str
    profiling: Profiling | None = None  # the final job's, with the training_profiler setting

    def _job(self, checkpoints: str) -> dict[str, Any]:
        """What every training job is, tuning or final: the project's code on the PyTorch
        image, the plan's channels (the data folder as ``data``, train.py's
        ``SM_CHANNEL_DATA``: it splits it, test photos held out; extra training folders as
        ``extra``, ``extra1``, ...; the production model as ``production``,
        ``SM_CHANNEL_PRODUCTION``: train.py scores it on the same test photos), managed spot
        capacity with checkpoints in S3."""
        return {
            "AlgorithmSpecification": {
                "TrainingImage": self.training_image,
                "TrainingInputMode": "File",
                "MetricDefinitions": metric_definitions(),
            },
            "RoleArn": self.training_role_arn,
            "InputDataConfig": JsonPath.list_at("$.run.channels"),
            "OutputDataConfig": {"S3OutputPath": JsonPath.string_at("$.run.output_path")},
            "ResourceConfig": {
                "InstanceType": JsonPath.string_at("$.run.instance_type"),
                "InstanceCount": 1,
                "VolumeSizeInGB": JsonPath.number_at("$.run.volume_gb"),
            },
            "StoppingCondition": {
                "MaxRuntimeInSeconds": JsonPath.number_at("$.run.max_runtime_s"),
                "MaxWaitTimeInSeconds": JsonPath.number_at("$.run.max_wait_s"),
            },
            "EnableManagedSpotTraining": True,
            "CheckpointConfig": {
                "S3Uri": JsonPath.string_at(checkpoints),
                "LocalPath": CHECKPOINTS,
            },
        }

    def tuning_job(self) -> dict[str, Any]:
        ranges = "$.run.ranges"
        return {
            "HyperParameterTuningJobName": JsonPath.string_at("$.run.tuning_job"),
            "HyperParameterTuningJobConfig": {
                "Strategy": "Bayesian",
                "HyperParameterTuningJobObjective": {
                    "Type": JsonPath.string_at("$.run.objective.type"),
                    "MetricName": JsonPath.string_at("$.run.objective.metric"),
                },
                "ResourceLimits": {
                    "MaxNumberOfTrainingJobs": JsonPath.number_at("$.run.max_jobs"),
                    "MaxParallelTrainingJobs": JsonPath.number_at("$.run.max_parallel_jobs"),
                },
                "ParameterRanges": {
                    "ContinuousParameterRanges": [
                        _range("lr", f"{ranges}.lr", "Logarithmic"),
                        _range("weight-decay", f"{ranges}.weight_decay", "Linear"),
                    ],
                    "IntegerParameterRanges": [
                        _range("batch-size", f"{ranges}.batch_size", "Logarithmic")
                    ],
                    "CategoricalParameterRanges": [
                        {"Name": "loss", "Values": JsonPath.list_at(f"{ranges}.losses")}
                    ],
                },
                # SageMaker stops trials whose objective trails the others' at the same epoch.
                "TrainingJobEarlyStoppingType": "Auto",
            },
            "TrainingJobDefinition": {
                "StaticHyperParameters": JsonPath.json_merge(
                    JsonPath.object_at("$.code"), JsonPath.object_at("$.run.hyperparameters")
                ),
                **self._job("$.run.checkpoints.tuning"),
            },
        }

    def final_training_job(self) -> dict[str, Any]:
        """The best trial's hyperparameters over the run's, on the same data and capacity."""
        static = JsonPath.json_merge(
            JsonPath.object_at("$.code"), JsonPath.object_at("$.run.hyperparameters")
        )
        return {
            "TrainingJobName": JsonPath.string_at("$.run.training_job"),
            "HyperParameters": JsonPath.json_merge(
                static, JsonPath.object_at("$.best.hyperparameters")
            ),
            **self._job("$.run.checkpoints.final"),
            **(self.profiling.request() if self.profiling else {}),
        }


def model(endpoint: CountingEndpoint) -> dict[str, Any]:
    """The candidate, as copied for production, as a model of the counting endpoint: same
    image, role, environment and network isolation."""
    return {
        "ModelName": JsonPath.string_at("$.run.model"),
        "ExecutionRoleArn": endpoint.role.role_arn,
        "PrimaryContainer": {
            "Image": endpoint.image_uri,
            "ModelDataUrl": JsonPath.string_at("$.promoted.model_data"),
            "Environment": endpoint.container_environment,
        },
        "EnableNetworkIsolation": endpoint.network_isolation,
    }


def endpoint_config(config: BinCheckConfig, endpoint: CountingEndpoint) -> dict[str, Any]:
    """The CDK app's endpoint configuration, with the candidate for model."""
    request: dict[str, Any] = {
        "EndpointConfigName": JsonPath.string_at("$.run.endpoint_config"),
        "KmsKeyId": endpoint.volume_key.key_arn,
        "ProductionVariants": [
            {
                "VariantName": VARIANT,
                "ModelName": JsonPath.string_at("$.run.model"),
                "InstanceType": config.instance_type,
                "InitialInstanceCount": config.min_instances,
                "InitialVariantWeight": 1,
            }
        ],
    }
    if config.data_capture_percent:
        request["DataCaptureConfig"] = {
            "EnableCapture": True,
            "InitialSamplingPercentage": config.data_capture_percent,
            "DestinationS3Uri": endpoint.data_capture_uri,
            "KmsKeyId": endpoint.volume_key.key_arn,
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        }
    return request


def endpoint_update(
    config: BinCheckConfig, endpoint: CountingEndpoint, alarms: list[cloudwatch.IAlarm]
) -> dict[str, Any]:
    """Blue/green, all traffic at once, then ``deployment_bake_s`` watching the endpoint's
    alarms: if one fires, SageMaker moves the traffic back to the old fleet by itself.
    The instance counts that auto scaling chose are kept."""
    bake = config.deployment_bake_s
    return {
        "EndpointName": endpoint.endpoint_name,
        "EndpointConfigName": JsonPath.string_at("$.run.endpoint_config"),
        "RetainAllVariantProperties": True,
        "DeploymentConfig": {
            "BlueGreenUpdatePolicy": {
                "TrafficRoutingConfiguration": {
                    "Type": "ALL_AT_ONCE",
                    "WaitIntervalInSeconds": bake,
                },
                "TerminationWaitInSeconds": bake,
                "MaximumExecutionTimeoutInSeconds": min(2 * bake + 3600, MAX_DEPLOYMENT_S),
            },
            "AutoRollbackConfiguration": {
                "Alarms": [{"AlarmName": alarm.alarm_name} for alarm in alarms]
            },
        },
    }


def _range(name: str, path: str, scaling: str) -> dict[str, Any]:
    return {
        "Name": name,
        "MinValue": JsonPath.string_at(f"{path}.min"),
        "MaxValue": JsonPath.string_at(f"{path}.max"),
        "ScalingType": scaling,
    }

"""What SageMaker does between the training pipeline's calls, played on moto's backend.

moto stores the jobs the pipeline creates (so the requests can be read back as SageMaker
would have them), but calls every job Completed at once, gives any tuning job a made-up
best trial and has no UpdateEndpoint. Here a job the pipeline starts answers InProgress to
its first describes, then ends the way the test's ``Scenario`` says:

- a tuning job picks its best trial: a training job with the tuned values (which must lie
  within the ranges the pipeline asked for) over the static hyperparameters, and leaves
  what train.py leaves in S3;
- a training job completes, writing ``model.tar.gz`` and ``output.tar.gz`` (``metrics.json``
  in train.py's layout: with a ``production`` channel, the model there scored on the same
  test photos, as ``--against`` does), or fails with a reason; a channel with no object
  behind it fails the job, as SageMaker's download would;
- UpdateEndpoint (added to moto) leaves the endpoint Updating, then in service on the new
  configuration, or rolled back to the old one.
"""

from __future__ import annotations

import io
import json
import math
import tarfile
from dataclasses import dataclass, field
from typing import Any

import boto3
from moto.core.responses import ActionResult
from moto.sagemaker.exceptions import ValidationError
from moto.sagemaker.models import SageMakerModelBackend
from moto.sagemaker.responses import SageMakerResponse


def figures(accuracy: float, off_by_one: float, rmse: float, mae: float) -> dict[str, float]:
    """Test figures as train.py's ``evaluate`` reports them (counts 0-5, then all)."""
    return {
        "accuracy": accuracy,
        "off_by_one": off_by_one,
        "rmse": rmse,
        "mae": mae,
        "n": 281.0,
        "accuracy_all": accuracy - 0.01,
        "off_by_one_all": off_by_one - 0.01,
        "rmse_all": rmse + 0.08,
        "mae_all": mae + 0.05,
        "n_all": 306.0,
    }


@dataclass
class Scenario:
    polls: int = 2  # describes that answer InProgress/Updating before a job or update ends
    tuned: dict[str, str] = field(
        default_factory=lambda: {
            "lr": "0.0012",
            "batch-size": "32",
            "weight-decay": "0.04",
            "loss": "ordinal",
        }
    )
    trial_figures: dict[str, float] = field(default_factory=lambda: figures(0.39, 0.83, 1.1, 0.8))
    final_figures: dict[str, float] = field(default_factory=lambda: figures(0.41, 0.86, 1.0, 0.7))
    # The production model on a job's test photos, and the half-width of the paired 95%
    # interval of each difference (about 0.005 for accuracy on 36,000 photos, 0.06 on 281).
    production_figures: dict[str, float] = field(
        default_factory=lambda: figures(0.36, 0.81, 1.17, 0.86)
    )
    paired_half_width: float = 0.02
    tuning_failure: str | None = None
    training_failure: str | None = None
    rollback: str | None = None  # a rolled-back update's FailureReason ("" for none)


class SageMakerSim:
    def __init__(self, scenario: Scenario, *, model_bytes: bytes) -> None:
        self.scenario = scenario
        self.model_bytes = model_bytes
        self.pending: dict[str, int] = {}
        self.updates: list[dict[str, Any]] = []  # UpdateEndpoint requests as received
        self.targets: dict[str, str] = {}

    def install(self, monkeypatch: Any) -> None:
        sim = self
        original = {
            name: getattr(SageMakerModelBackend, name)
            for name in (
                "create_hyper_parameter_tuning_job",
                "describe_hyper_parameter_tuning_job",
                "create_training_job",
                "describe_training_job",
                "describe_endpoint",
            )
        }
        self.create_training_job = original["create_training_job"]

        def create_tuning(backend, **kwargs):
            arn = original["create_hyper_parameter_tuning_job"](backend, **kwargs)
            job = backend.hyper_parameter_tuning_jobs[kwargs["hyper_parameter_tuning_job_name"]]
            job.hyper_parameter_tuning_job_status = "InProgress"
            job.best_training_job = job.OverallBestTrainingJob = None
            job.failure_reason = None
            sim.pending[job.hyper_parameter_tuning_job_name] = sim.scenario.polls
            return arn

        def describe_tuning(backend, hyper_parameter_tuning_job_name):
            name = hyper_parameter_tuning_job_name
            if sim._tick(name):
                sim._end_tuning(backend, backend.hyper_parameter_tuning_jobs[name])
            return _present(original["describe_hyper_parameter_tuning_job"](backend, name))

        def create_training(backend, **kwargs):
            job = original["create_training_job"](backend, **kwargs)
            job.training_job_status = job.secondary_status = "InProgress"
            sim.pending[job.training_job_name] = sim.scenario.polls
            return job

        def describe_training(backend, training_job_name):
            name = training_job_name
            if sim._tick(name):
                sim._end_training(backend.training_jobs[name], sim.scenario.final_figures)
            return _present(original["describe_training_job"](backend, name))

        def describe_endpoint(backend, endpoint_name):
            name = endpoint_name
            if sim._tick(name):
                sim._end_update(backend.endpoints[name])
            return original["describe_endpoint"](backend, name)

        def update_endpoint(response):
            sim._update(response.sagemaker_backend, json.loads(response.body))
            return ActionResult({"EndpointArn": "updated"})

        for name, replacement in (
            ("create_hyper_parameter_tuning_job", create_tuning),
            ("describe_hyper_parameter_tuning_job", describe_tuning),
            ("create_training_job", create_training),
            ("describe_training_job", describe_training),
            ("describe_endpoint", describe_endpoint),
        ):
            monkeypatch.setattr(SageMakerModelBackend, name, replacement)
        monkeypatch.setattr(SageMakerResponse, "update_endpoint", update_endpoint, raising=False)

    def _tick(self, name: str) -> bool:
        """One more describe of ``name``: True when that is the one that sees it end."""
        if name not in self.pending:
            return False
        self.pending[name] -= 1
        if self.pending[name] > 0:
            return False
        del self.pending[name]
        return True

    def _end_tuning(self, backend: SageMakerModelBackend, job: Any) -> None:
        if self.scenario.tuning_failure:
            job.hyper_parameter_tuning_job_status = "Failed"
            job.failure_reason = self.scenario.tuning_failure
            return
        config = job.hyper_parameter_tuning_job_config
        _check_within_ranges(self.scenario.tuned, config["ParameterRanges"])
        definition = job.training_job_definition
        trial_name = f"{job.hyper_parameter_tuning_job_name}-002-7f3a9c1e"
        objective = config["HyperParameterTuningJobObjective"]
        trial = self.create_training_job(
            backend,
            training_job_name=trial_name,
            hyper_parameters={
                **definition["StaticHyperParameters"],
                **self.scenario.tuned,
                "_tuning_objective_metric": objective["MetricName"],
            },
            algorithm_specification=dict(definition["AlgorithmSpecification"]),
            role_arn=definition["RoleArn"],
            input_data_config=definition["InputDataConfig"],
            output_data_config=definition["OutputDataConfig"],
            resource_config=definition["ResourceConfig"],
            vpc_config=None,
            stopping_condition=definition["StoppingCondition"],
            tags=None,
            enable_network_isolation=False,
            enable_inter_container_traffic_encryption=False,
            enable_managed_spot_training=definition.get("EnableManagedSpotTraining", False),
            checkpoint_config=definition.get("CheckpointConfig"),
            debug_hook_config=None,
            debug_rule_configurations=None,
            tensor_board_output_config=None,
            experiment_config=None,
        )
        self._end_training(trial, self.scenario.trial_figures, pending=False)
        job.hyper_parameter_tuning_job_status = "Completed"
        job.best_training_job = {
            "TrainingJobName": trial_name,
            "TrainingJobArn": trial.arn,
            "CreationTime": trial.creation_time,
            "TrainingJobStatus": "Completed",
            "TunedHyperParameters": dict(self.scenario.tuned),
            "FinalHyperParameterTuningJobObjectiveMetric": {
                "Type": objective["Type"],
                "MetricName": objective["MetricName"],
                "Value": 0.4,
            },
            "ObjectiveStatus": "Succeeded",
        }

    def _end_training(self, job: Any, test: dict[str, float], *, pending: bool = True) -> None:
        if pending and self.scenario.training_failure:
            job.training_job_status = job.secondary_status = "Failed"
            job.failure_reason = self.scenario.training_failure
            return
        s3 = boto3.client("s3")
        channels = {
            c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"]
            for c in job.input_data_config
        }
        against = None
        if "production" in channels:
            version = _card_version(s3, channels["production"])
            if version is None:
                job.training_job_status = job.secondary_status = "Failed"
                job.failure_reason = (
                    f"ClientError: no objects at {channels['production']} (channel production)"
                )
                return
            against = self._scored_against(version, test)
        job.training_job_status = job.secondary_status = "Completed"
        bucket, key = job.model_artifacts["S3ModelArtifacts"][5:].split("/", 1)
        s3.put_object(Bucket=bucket, Key=key, Body=self.model_bytes)
        output = key.rsplit("/", 1)[0] + "/output.tar.gz"
        s3.put_object(Bucket=bucket, Key=output, Body=train_py_output(test, against))

    def _scored_against(self, version: str, test: dict[str, float]) -> dict[str, Any]:
        """What train.py's --against writes: production's figures on the job's test photos
        and the paired differences."""
        theirs, width = self.scenario.production_figures, self.scenario.paired_half_width
        difference = {}
        for name in ("accuracy", "off_by_one", "rmse", "mae"):
            value = round(test[name] - theirs[name], 4)
            difference[name] = {"value": value, "interval": [value - width, value + width]}
        return {
            "model_version": version,
            "photos": "test",
            "metrics": theirs,
            "difference": difference,
        }

    def _update(self, backend: SageMakerModelBackend, request: dict[str, Any]) -> None:
        name, config = request["EndpointName"], request["EndpointConfigName"]
        if name not in backend.endpoints:
            raise ValidationError(message=f"Could not find endpoint '{name}'.")
        if config not in backend.endpoint_configs:
            raise ValidationError(message=f"Could not find endpoint configuration '{config}'.")
        self.updates.append(request)
        backend.endpoints[name].endpoint_status = "Updating"
        self.targets[name] = config
        self.pending[name] = self.scenario.polls

    def _end_update(self, endpoint: Any) -> None:
        endpoint.endpoint_status = "InService"
        if self.scenario.rollback is None:
            endpoint.endpoint_config_name = self.targets.pop(endpoint.endpoint_name)
        else:
            endpoint.failure_reason = self.scenario.rollback or None


def train_py_output(test: dict[str, float], against: dict[str, Any] | None = None) -> bytes:
    """``output.tar.gz`` as SageMaker packs train.py's output folder (metrics.json; the plots
    are left out)."""
    best = {"epoch": 7, "train_loss": 1.95, "val_loss": 2.35, "val_accuracy": 0.38}
    metrics = {"epochs": [best], "best": best, "best_epoch": 7, "validation": best, "test": test}
    if against is not None:
        metrics["against"] = against
    data = json.dumps(metrics).encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("metrics.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _card_version(s3: Any, uri: str) -> str | None:
    """The version on the card of the model artifact at ``uri``; None if there is none."""
    bucket, key = uri[5:].split("/", 1)
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except s3.exceptions.ClientError:
        return None
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
        return json.load(tar.extractfile("model_card.json"))["version"]


def _present(description: dict[str, Any]) -> dict[str, Any]:
    """SageMaker leaves out a field with no value; moto answers null or ""."""
    return {k: v for k, v in description.items() if v not in (None, "")}


def _check_within_ranges(tuned: dict[str, str], ranges: dict[str, Any]) -> None:
    """A tuning job only tries values within the requested ranges."""
    for kind in ("ContinuousParameterRanges", "IntegerParameterRanges"):
        for span in ranges.get(kind, []):
            low, high, value = (
                float(span["MinValue"]),
                float(span["MaxValue"]),
                float(tuned[span["Name"]]),
            )
            assert low <= value <= high and low < high, (span, value)
            if span.get("ScalingType") == "Logarithmic":
                assert low > 0 and math.isfinite(math.log(low)), span
    for span in ranges.get("CategoricalParameterRanges", []):
        assert tuned[span["Name"]] in span["Values"], (span, tuned)

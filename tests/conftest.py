"""Layered moto fixtures: credentials -> mocked AWS -> the checker's resources -> helpers."""

from __future__ import annotations

import csv
import importlib.util
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
import requests
from botocore.retries.standard import ExponentialBackoff
from moto import mock_aws

from bincheck.local.event_source import LocalLambdaContext, SqsEventSource
from bincheck.local.resources import Resources, provision
from bincheck.local.responses import http_response
from lambdas.checker import handler

SAMPLES = Path(__file__).resolve().parents[1] / "bincheck" / "samples"
SAMPLE_COUNTS = {
    row["image_id"]: int(row["count"])
    for row in csv.DictReader((SAMPLES / "labels.csv").read_text().splitlines())
}
MODEL_VERSION = "counter-test-1"


def load_benchmark(name: str) -> ModuleType:
    """``benchmarks/<name>.py`` (a script folder, not a package) as a module."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MOTO_ENDPOINT_RESULTS = "http://motoapi.amazonaws.com/moto-api/static/sagemaker/endpoint-results"


@pytest.fixture(autouse=True)
def aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "1",
        "POWERTOOLS_METRICS_NAMESPACE": "BinCheckerTests",
        "POWERTOOLS_SERVICE_NAME": "bin-checker",
    }.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore still retries; it just does not sleep between attempts."""
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0.0)


@pytest.fixture
def resources(monkeypatch: pytest.MonkeyPatch, no_backoff: None) -> Iterator[Resources]:
    with mock_aws():
        created = provision()
        for name, value in created.checker_environment().items():
            monkeypatch.setenv(name, value)
        handler.get_app.cache_clear()
        yield created
        handler.get_app.cache_clear()


def invoke(event: dict) -> dict:
    return handler.lambda_handler(event, LocalLambdaContext())


@pytest.fixture
def event_source(resources: Resources) -> SqsEventSource:
    return SqsEventSource(
        boto3.client("sqs"), resources.queue_url, handler.lambda_handler, retry_delay_s=0
    )


@dataclass
class Inbox:
    """An SQS queue subscribed to the alerts topic: alerts as a subscriber receives them."""

    sqs: Any
    queue_url: str

    def alerts(self) -> list[dict]:
        received = []
        while messages := self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10
        ).get("Messages"):
            for message in messages:
                envelope = json.loads(message["Body"])
                received.append(
                    {
                        "subject": envelope.get("Subject"),
                        "body": json.loads(envelope["Message"]),
                        "attributes": {
                            name: attribute["Value"]
                            for name, attribute in envelope.get("MessageAttributes", {}).items()
                        },
                    }
                )
                self.sqs.delete_message(
                    QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"]
                )
        return received


@pytest.fixture
def inbox(resources: Resources) -> Inbox:
    sqs = boto3.client("sqs")
    queue_url = sqs.create_queue(QueueName="alerts-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    boto3.client("sns").subscribe(
        TopicArn=resources.alerts_topic_arn, Protocol="sqs", Endpoint=queue_arn
    )
    return Inbox(sqs, queue_url)


@dataclass
class Warehouse:
    """Helpers to act as the warehouse system and its cameras."""

    resources: Resources

    def set_bin(self, bin_id: str, quantity: int, updated_at: str | None = None) -> None:
        item = {"bin_id": {"S": bin_id}, "expected_quantity": {"N": str(quantity)}}
        if updated_at:
            item["updated_at"] = {"S": updated_at}
        boto3.client("dynamodb").put_item(TableName=self.resources.names.bins_table, Item=item)

    def upload(
        self,
        key: str,
        image_id: str = "00579",
        *,
        captured_at: str | None = None,
        body: bytes | None = None,
    ) -> str:
        data = (SAMPLES / "images" / f"{image_id}.jpg").read_bytes() if body is None else body
        extra = {"Metadata": {"captured-at": captured_at}} if captured_at else {}
        boto3.client("s3").put_object(
            Bucket=self.resources.names.bucket, Key=key, Body=data, **extra
        )
        return key

    def checks(self) -> list[dict]:
        table = boto3.resource("dynamodb").Table(self.resources.names.checks_table)
        return table.scan()["Items"]


@pytest.fixture
def warehouse(resources: Resources) -> Warehouse:
    return Warehouse(resources)


def distribution(count: int, p: float, max_count: int = 5) -> dict:
    """An endpoint answer putting mass ``p`` on ``count``, the rest spread evenly."""
    rest = (1.0 - p) / max_count
    probabilities = [rest] * (max_count + 1)
    probabilities[min(count, max_count)] = p
    return {
        "count": min(count, max_count),
        "probabilities": probabilities,
        "max_count": max_count,
        "model_version": MODEL_VERSION,
    }


class Endpoint:
    """moto answers invoke_endpoint with queued results, one per distinct request."""

    def answer(self, *results: dict) -> None:
        requests.post(
            MOTO_ENDPOINT_RESULTS,
            json={
                "results": [
                    {"Body": json.dumps(result), "ContentType": "application/json"}
                    for result in results
                ]
            },
            timeout=5,
        )

    def fail(self, *responses: tuple[int, dict, dict]) -> list[dict]:
        """Answer the next calls with raw HTTP errors (status, headers, JSON body), so
        botocore's real retry and error parsing run; returns the requests seen.

        botocore calls every before-send handler and uses the first response, so moto
        still sees each request: harmless here, moto's InvokeEndpoint has no side effect
        beyond caching its answer per request body."""
        pending = list(responses)
        seen: list[dict] = []

        def before_send(request: Any, **kwargs: Any) -> Any:
            seen.append({"body": request.body})
            if not pending:
                return None
            return http_response(request.url, *pending.pop(0))

        client = handler.get_app().checker.endpoint.client
        client.meta.events.register_first(
            "before-send.sagemaker-runtime.InvokeEndpoint", before_send
        )
        return seen


THROTTLED = (400, {"x-amzn-ErrorType": "ThrottlingException"}, {"message": "Rate exceeded"})
SERVER_ERROR = (500, {"x-amzn-ErrorType": "InternalFailure"}, {"message": "Internal failure"})


def model_error(original_status: int, original_message: str) -> tuple[int, dict, dict]:
    """SageMaker's answer when the model container itself returns an error status."""
    return (
        424,
        {"x-amzn-ErrorType": "ModelError"},
        {
            "ErrorCode": "CLIENT_ERROR_FROM_MODEL",
            "Message": f"Received client error ({original_status}) from primary",
            "OriginalStatusCode": original_status,
            "OriginalMessage": original_message,
            "LogStreamArn": "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/x",
        },
    )


@pytest.fixture
def endpoint(resources: Resources) -> Endpoint:
    return Endpoint()


# --- the counting model ------------------------------------------------------------------

SHARED_WEIGHTS = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "weights"
    / "tf_efficientnet_lite0.imagenet.pth"
)


def default_model_card() -> dict[str, Any]:
    """The card of the shipped default model (``model/default/model.tar.gz``)."""
    import tarfile

    artifact = SAMPLES.parents[1] / "model" / "default" / "model.tar.gz"
    with tarfile.open(artifact) as tar:
        return json.load(tar.extractfile("model_card.json"))


def sample_photo(image_id: str = "00579") -> bytes:
    return (SAMPLES / "images" / f"{image_id}.jpg").read_bytes()


@pytest.fixture(scope="session")
def model_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small real network (random weights): for formats and plumbing, not for counting."""
    import torch

    from model.artifact import build_model, write_artifact
    from model.card import ModelCard

    torch.manual_seed(0)
    card = ModelCard(
        version="test-1", backbone="timm/tf_efficientnet_lite0", max_count=5, input_size=(96, 128)
    )
    path = tmp_path_factory.mktemp("model") / "model.tar.gz"
    return write_artifact(path, build_model(card), card)


@pytest.fixture(scope="session")
def confident_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared ImageNet backbone with a sharpened random head: confident, image-dependent
    predictions, so a preprocessing difference between two paths shows up in the counts."""
    import torch

    from model.artifact import build_model, write_artifact
    from model.card import ModelCard

    if not SHARED_WEIGHTS.is_file():
        pytest.skip(f"needs the shared pretrained backbone at {SHARED_WEIGHTS}")
    torch.manual_seed(0)
    card = ModelCard(
        version="confident-1",
        backbone="timm/tf_efficientnet_lite0",
        max_count=5,
        input_size=(240, 320),
    )
    model = build_model(card, SHARED_WEIGHTS)
    with torch.no_grad():
        model.head[1].weight.mul_(10.0)
    return write_artifact(tmp_path_factory.mktemp("confident") / "model.tar.gz", model, card)


def sample_folder(folder: Path, roles: tuple[str, ...]) -> Path:
    """A data folder of the sample photos, each once per role (``train``, ``val``, ``test``),
    the split named in labels.csv as ``bincheck data abid`` writes it."""
    (folder / "images").mkdir(parents=True)
    rows = []
    for copy, role in enumerate(roles):
        for image_id, count in SAMPLE_COUNTS.items():
            shutil.copy(
                SAMPLES / "images" / f"{image_id}.jpg", folder / "images" / f"{copy}{image_id}.jpg"
            )
            rows.append(f"{copy}{image_id},{count},{role}")
    (folder / "labels.csv").write_text("image_id,count,split\n" + "\n".join(rows) + "\n")
    return folder


@pytest.fixture(scope="session")
def split_photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Each sample photo four times, the split named in labels.csv: 14 train, 7 val, 7 test."""
    return sample_folder(tmp_path_factory.mktemp("photos"), ("train", "train", "val", "test"))


def tiny_run(photos: Path, out: Path, *extra: str) -> list[str]:
    """``training.train``'s arguments for a one-epoch run on tiny photos, no backbone weights."""
    return [
        "--data", str(photos), "--weights", "none", "--height", "32", "--width", "48",
        "--batch-size", "4", "--epochs", "1", "--output-dir", str(out), "--version", "tiny",
        *extra,
    ]  # fmt: skip

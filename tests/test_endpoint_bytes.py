"""The raw-bytes endpoint option. moto cannot decode binary bodies, so botocore's Stubber
stands in for SageMaker here while S3, DynamoDB and SNS stay on moto."""

from __future__ import annotations

import io
import json

import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from lambdas.checker import handler

from .conftest import SAMPLES, distribution


@pytest.fixture
def stubbed_endpoint(resources, monkeypatch):
    monkeypatch.setenv("ENDPOINT_INPUT", "bytes")
    handler.get_app.cache_clear()
    with Stubber(handler.get_app().checker.endpoint.client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def _answer(result: dict) -> dict:
    body = json.dumps(result).encode()
    return {"Body": StreamingBody(io.BytesIO(body), len(body)), "ContentType": "application/json"}


def test_bytes_mode_sends_the_photo_itself(stubbed_endpoint, warehouse, event_source):
    photo = (SAMPLES / "images" / "08155.jpg").read_bytes()
    warehouse.set_bin("P-1", 2)
    warehouse.upload("bins/P-1/cap-1.jpg", "08155")
    warehouse.upload("bins/P-1/cap-2.PNG", "08155")
    for content_type in ("image/jpeg", "image/png"):
        stubbed_endpoint.add_response(
            "invoke_endpoint",
            _answer(distribution(2, 0.7)),
            expected_params={
                "EndpointName": "bincheck-counter",
                "ContentType": content_type,
                "Accept": "application/json",
                "Body": photo,
            },
        )

    assert event_source.drain().failed == 0

    assert sorted((c["capture_id"], c["status"]) for c in warehouse.checks()) == [
        ("cap-1", "MATCH"),
        ("cap-2", "MATCH"),
    ]


def test_bytes_mode_records_a_photo_the_model_rejects(stubbed_endpoint, warehouse, event_source):
    warehouse.set_bin("P-2", 2)
    warehouse.upload("bins/P-2/cap-1.jpg", body=b"GIF89a not a jpeg")
    stubbed_endpoint.add_client_error(
        "invoke_endpoint",
        service_error_code="ModelError",
        service_message="Received client error (415) from primary",
        http_status_code=424,
        modeled_fields={
            "OriginalStatusCode": 415,
            "OriginalMessage": '{"error": "unsupported image format GIF"}',
        },
    )

    assert event_source.drain().failed == 0

    [check] = warehouse.checks()
    assert check["status"] == "INVALID_IMAGE"
    assert check["detail"] == "model rejected the photo: unsupported image format GIF"

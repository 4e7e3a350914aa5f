"""A stand-in for the counting endpoint that answers from a data folder's labels.

Until the model issue lands there is no model to serve. To show the event path end to end,
this answers ``InvokeEndpoint`` calls made by a botocore client (before they leave the
process) with a distribution centred on each photo's *labelled* count: 60% on the label,
15% on each neighbour. It is not a model and measures nothing about counting.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Mapping
from typing import Any

from botocore.awsrequest import AWSResponse

MAX_COUNT = 5
VERSION = "labels-stand-in"


def answer(label: int, max_count: int = MAX_COUNT) -> dict:
    center = min(label, max_count)
    probabilities = [0.0] * (max_count + 1)
    probabilities[center] = 0.6
    neighbours = [n for n in (center - 1, center + 1) if 0 <= n <= max_count]
    for n in neighbours:
        probabilities[n] = 0.15
    spare = (1.0 - sum(probabilities)) / (max_count + 1)
    probabilities = [round(p + spare, 6) for p in probabilities]
    return {
        "count": center,
        "probabilities": probabilities,
        "max_count": max_count,
        "model_version": VERSION,
    }


def attach(client: Any, labels: Mapping[str, int]) -> None:
    """Answer ``client``'s InvokeEndpoint calls for ``s3://...`` URIs found in ``labels``."""

    def before_send(request: Any, **kwargs: Any) -> AWSResponse:
        uri = json.loads(request.body)["s3_uri"]
        if uri in labels:
            status, headers, body = 200, {"Content-Type": "application/json"}, answer(labels[uri])
        else:  # as SageMaker reports a 4xx from the model container
            status, headers = 424, {"x-amzn-ErrorType": "ModelError"}
            body = {"OriginalStatusCode": 400, "OriginalMessage": f"no label for {uri}"}
        return http_response(request.url, status, headers, body)

    client.meta.events.register_first("before-send.sagemaker-runtime.InvokeEndpoint", before_send)


def http_response(url: str, status: int, headers: dict, body: dict | bytes) -> AWSResponse:
    """An HTTP response that botocore parses, retries and streams like a real one."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return AWSResponse(url, status, headers, _RawBody(data))


class _RawBody(io.BytesIO):
    """What botocore reads a response from: ``read`` for streams, ``stream`` for content."""

    def stream(self, **kwargs: Any) -> Iterator[bytes]:
        yield self.getvalue()

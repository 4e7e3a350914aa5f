"""HTTP responses that botocore parses, retries and streams like real ones: for answering
or failing AWS calls in-process (the demo's endpoint, the tests' fault injection)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

from botocore.awsrequest import AWSResponse


def http_response(url: str, status: int, headers: dict, body: dict | bytes) -> AWSResponse:
    """An HTTP response that botocore parses, retries and streams like a real one."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return AWSResponse(url, status, headers, _RawBody(data))


class _RawBody(io.BytesIO):
    """What botocore reads a response from: ``read`` for streams, ``stream`` for content."""

    def stream(self, **kwargs: Any) -> Iterator[bytes]:
        yield self.getvalue()

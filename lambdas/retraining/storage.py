"""S3, the one service the pipeline's functions call: are the data folders there, and what
did a training job report on its test channel.

A SageMaker training job leaves ``<output>/<job>/output/model.tar.gz`` (the model folder)
and, beside it, ``output.tar.gz`` (train.py's ``SM_OUTPUT_DATA_DIR``: ``metrics.json`` and
the plots). ``metrics.json`` holds the held-out figures under ``"test"`` and, when the
job scored the production model on the same photos, those and the paired differences
under ``"against"``.
"""

from __future__ import annotations

import io
import json
import tarfile
from typing import Any

from botocore.exceptions import ClientError

from .decision import RecordError

MODEL_FILE = "model.tar.gz"
OUTPUT_FILE = "output.tar.gz"
METRICS_FILE = "metrics.json"
MAX_OUTPUT_BYTES = 64 * 1024 * 1024  # figures and plots: anything bigger is not ours


def split_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise ValueError(f"not an S3 object URI: {uri!r}")
    bucket, key = uri[5:].split("/", 1)
    return bucket, key


class TrainingStorage:
    def __init__(self, client: Any) -> None:
        self.client = client

    def missing(self, uris: list[str]) -> list[str]:
        """The URIs with no object behind them (any other error is raised, not hidden)."""
        absent = []
        for uri in uris:
            bucket, key = split_uri(uri)
            try:
                self.client.head_object(Bucket=bucket, Key=key)
            except ClientError as error:
                if error.response["Error"]["Code"] not in {"404", "NoSuchKey", "NotFound"}:
                    raise
                absent.append(uri)
        return absent

    def job_figures(self, model_data: str) -> tuple[dict[str, float], dict[str, Any] | None]:
        """The ``test`` figures of the job whose model is at ``model_data``, and its
        ``against`` figures (None if it scored no other model)."""
        if not model_data.endswith(f"/output/{MODEL_FILE}"):
            raise RecordError(f"not a training job's model artifact: {model_data}")
        output = model_data[: -len(MODEL_FILE)] + OUTPUT_FILE
        bucket, key = split_uri(output)
        try:
            body = self.client.get_object(Bucket=bucket, Key=key)
        except ClientError as error:
            raise RecordError(f"cannot read the job's figures at {output}: {error}") from error
        if body["ContentLength"] > MAX_OUTPUT_BYTES:
            raise RecordError(f"{output} is {body['ContentLength']} bytes: not train.py's output")
        with tarfile.open(fileobj=io.BytesIO(body["Body"].read()), mode="r:gz") as tar:
            member = next(
                (
                    m
                    for m in tar.getmembers()
                    if m.isfile() and m.name.split("/")[-1] == METRICS_FILE
                ),
                None,
            )
            if member is None:
                raise RecordError(f"{output} has no {METRICS_FILE}: did train.py finish?")
            metrics = json.load(tar.extractfile(member))  # type: ignore[arg-type]
        figures = metrics.get("test")
        if not isinstance(figures, dict) or not figures:
            raise RecordError(
                f"{output}: {METRICS_FILE} has no test figures (was the job given a test channel?)"
            )
        against = metrics.get("against")
        return (
            {k: float(v) for k, v in figures.items() if isinstance(v, int | float)},
            against if isinstance(against, dict) else None,
        )

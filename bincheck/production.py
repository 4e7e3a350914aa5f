"""``bincheck model pull``: the model in production, as the training pipeline's record
names it, downloaded to deploy it again.

The endpoint's configuration belongs to CloudFormation: a ``cdk deploy`` that changes it
serves the CDK app's model again, whatever the pipeline promoted since. Deploying with
``model_artifact`` set to the pulled file keeps the promoted weights (with this checkout's
handler code, as for any model), and the record, seeded from that file's card, keeps
naming them.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lambdas.retraining.decision import production_model, read_record
from lambdas.retraining.storage import split_uri
from model.layout import read_card


def pull(ssm: Any, s3: Any, record_name: str, out: Path) -> dict[str, Any]:
    """Download the record's ``model_data`` (at its ``model_version_id``, where it names
    one) to ``out`` (atomically, checked to be the model the record names): the record."""
    try:
        text = ssm.get_parameter(Name=record_name)["Parameter"]["Value"]
    except (BotoCoreError, ClientError) as error:
        raise ValueError(f"cannot read the production record {record_name}: {error}") from error
    record = read_record(text, source=record_name)
    uri = production_model(record, source=record_name)
    bucket, key = split_uri(uri)
    # The promoted copy's object version, where the record names it (the bucket is
    # versioned): the very bytes that were promoted, whatever was written there since.
    version_id = record.get("model_version_id")
    extra = {"VersionId": version_id} if version_id else None
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=out.parent, suffix=".tmp", delete=False) as tmp:
        partial = Path(tmp.name)
    try:
        try:
            s3.download_file(bucket, key, str(partial), ExtraArgs=extra)
        except (BotoCoreError, ClientError) as error:
            raise ValueError(f"cannot download {uri} (the record's model_data): {error}") from error
        version = read_card(partial, source=uri).get("version")
        if version != record.get("version"):
            raise ValueError(
                f"{uri} holds model {version!r}, but {record_name} names "
                f"{record.get('version')!r}: not the model in production"
            )
        partial.replace(out)
    finally:
        partial.unlink(missing_ok=True)
    return record

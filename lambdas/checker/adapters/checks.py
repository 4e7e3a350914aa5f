"""The checks table: one record per photo, queried by bin or by status.

A record whose review is pending carries the sparse key of the review queue's index.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from contract.check import CheckRecord
from contract.decision import Status
from contract.names import BY_STATUS_INDEX
from contract.review import PENDING_REVIEW_KEY, ReviewState

_to_python = TypeDeserializer().deserialize
_to_dynamo = TypeSerializer().serialize


def to_item(record: CheckRecord) -> dict[str, Any]:
    """The stored item: floats as numbers DynamoDB takes, absent fields left out, and the
    review queue's key while the review is pending."""
    fields = {name: value for name, value in record.to_dict().items() if value is not None}
    if record.review_state is ReviewState.PENDING:
        fields[PENDING_REVIEW_KEY] = str(ReviewState.PENDING)
    return {name: _to_dynamo(_numbers(value)) for name, value in fields.items()}


def from_item(item: dict[str, Any]) -> CheckRecord:
    return CheckRecord.from_dict({name: _to_python(value) for name, value in item.items()})


def _numbers(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, list):
        return [_numbers(v) for v in value]
    return value


class ChecksTable:
    def __init__(self, table_name: str, client: Any) -> None:
        self.table_name = table_name
        self.client = client

    def put(self, record: CheckRecord) -> bool:
        """Write the record; ``False`` when a reviewed record of the photo is there already.

        Keyed by (bin_id, check_id): a retried record overwrites itself rather than adding
        a second one, but never a review a person has settled meanwhile.
        """
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=to_item(record),
                ConditionExpression="attribute_not_exists(#state) OR #state <> :reviewed",
                ExpressionAttributeNames={"#state": "review_state"},
                ExpressionAttributeValues={":reviewed": {"S": str(ReviewState.REVIEWED)}},
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def query(
        self, *, bin_id: str | None = None, status: Status | None = None, since: str | None = None
    ) -> Iterator[CheckRecord]:
        """Checks of a bin, or of a status (capture order); of everything (a scan) otherwise.

        ``since`` is a formatted capture timestamp: check ids start with the capture time.
        """
        keys: list[str] = []
        filters: list[str] = []
        names: dict[str, str] = {}
        values: dict[str, Any] = {}

        def term(terms: list[str], attribute: str, operator: str, value: str) -> None:
            names[f"#{attribute}"] = attribute
            values[f":{attribute}"] = {"S": value}
            terms.append(f"#{attribute} {operator} :{attribute}")

        request: dict[str, Any] = {"TableName": self.table_name}
        if bin_id is not None:
            term(keys, "bin_id", "=", bin_id)
            if status is not None:
                term(filters, "status", "=", str(status))
        elif status is not None:
            request["IndexName"] = BY_STATUS_INDEX
            term(keys, "status", "=", str(status))
        if since:
            term(keys if keys else filters, "check_id", ">=", since)
        if keys:
            request["KeyConditionExpression"] = " AND ".join(keys)
        if filters:
            request["FilterExpression"] = " AND ".join(filters)
        if names:
            request |= {"ExpressionAttributeNames": names, "ExpressionAttributeValues": values}
        paginator = self.client.get_paginator("query" if keys else "scan")
        for page in paginator.paginate(**request):
            for item in page["Items"]:
                yield from_item(item)

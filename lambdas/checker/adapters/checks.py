"""The checks table: one record per photo, queried by bin or by status."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from contract.check import CheckRecord
from contract.decision import Status
from contract.names import BY_STATUS_INDEX

_to_python = TypeDeserializer().deserialize
_to_dynamo = TypeSerializer().serialize
_FIELDS = tuple(CheckRecord.__dataclass_fields__)


class ChecksTable:
    def __init__(self, table_name: str, client: Any) -> None:
        self.table_name = table_name
        self.client = client

    def put(self, record: CheckRecord) -> None:
        # A plain put keyed by (bin_id, check_id): a retried record overwrites itself
        # rather than adding a second one.
        item = {
            name: _to_dynamo(Decimal(str(value)) if isinstance(value, float) else value)
            for name, value in record.to_dict().items()
            if value is not None
        }
        self.client.put_item(TableName=self.table_name, Item=item)

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
                yield self._record(item)

    @staticmethod
    def _record(item: dict) -> CheckRecord:
        fields = {name: _to_python(value) for name, value in item.items()}
        fields = {name: value for name, value in fields.items() if name in _FIELDS}
        for name in ("expected_quantity", "predicted_count"):
            if name in fields:
                fields[name] = int(fields[name])
        for name in ("probability", "latency_ms"):
            if name in fields:
                fields[name] = float(fields[name])
        fields["status"] = Status(fields["status"])
        return CheckRecord(**fields)

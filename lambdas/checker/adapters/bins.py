"""The bins table (written by the warehouse system): expected quantity per bin."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from contract.bins import Bin
from contract.times import format_timestamp, parse_timestamp

_to_python = TypeDeserializer().deserialize
_to_dynamo = TypeSerializer().serialize


class BinsTable:
    def __init__(self, table_name: str, client: Any) -> None:
        self.table_name = table_name
        self.client = client

    def get(self, bin_id: str) -> Bin | None:
        response = self.client.get_item(
            TableName=self.table_name, Key={"bin_id": {"S": bin_id}}, ConsistentRead=True
        )
        item = response.get("Item")
        if item is None:
            return None
        fields = {name: _to_python(value) for name, value in item.items()}
        updated_at = fields.get("updated_at")
        return Bin(
            bin_id=fields["bin_id"],
            expected_quantity=int(fields["expected_quantity"]),
            updated_at=parse_timestamp(updated_at) if updated_at else None,
        )

    def put_many(self, bins: Iterable[Bin]) -> int:
        """Write bins in batches of 25, resending unprocessed items; returns the count."""
        written = 0
        batch: list[dict] = []
        for item in bins:
            batch.append({"PutRequest": {"Item": self._item(item)}})
            if len(batch) == 25:
                written += self._write(batch)
                batch = []
        if batch:
            written += self._write(batch)
        return written

    def _write(self, batch: list[dict], rounds: int = 8) -> int:
        pending = {self.table_name: batch}
        for attempt in range(rounds):
            response = self.client.batch_write_item(RequestItems=pending)
            pending = response.get("UnprocessedItems") or {}
            if not pending:
                return len(batch)
            time.sleep(0.05 * 2**attempt)  # DynamoDB asks us to slow down
        left = len(pending[self.table_name])
        raise RuntimeError(f"{left} bins still unprocessed after {rounds} rounds of retries")

    @staticmethod
    def _item(item: Bin) -> dict:
        fields: dict[str, Any] = {
            "bin_id": item.bin_id,
            "expected_quantity": item.expected_quantity,
        }
        if item.updated_at is not None:
            fields["updated_at"] = format_timestamp(item.updated_at)
        return {name: _to_dynamo(value) for name, value in fields.items()}

"""The checks table as the review sees it: the pending queue, one check, settling a check
once; and the bins table, which a settled review may update in the same transaction.

A review writes only the review attributes (``contract.review.REVIEW_FIELDS``) and removes
the pending key; the bin only ``expected_quantity`` and ``updated_at``.
"""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from contract.check import CheckRecord
from contract.names import PENDING_REVIEW_INDEX
from contract.review import PENDING_REVIEW_KEY, BinUpdate, Review, ReviewState
from contract.times import parse_timestamp

from ..inputs import Position

_to_python = TypeDeserializer().deserialize
_to_dynamo = TypeSerializer().serialize
PENDING = {"S": str(ReviewState.PENDING)}
# A bin query reads the bin's settled checks too (filtered out): read them in large pages.
BIN_QUERY_PAGE = 200
TRANSACTION_ATTEMPTS = 3


class NotPending(Exception):
    """The conditional write found the check settled (or gone): another reviewer won."""


class ReviewStore:
    def __init__(self, *, checks_table: str, bins_table: str, client: Any) -> None:
        self.checks_table = checks_table
        self.bins_table = bins_table
        self.client = client

    def get(self, bin_id: str, check_id: str) -> CheckRecord | None:
        item = self.client.get_item(
            TableName=self.checks_table,
            Key={"bin_id": {"S": bin_id}, "check_id": {"S": check_id}},
            ConsistentRead=True,
        ).get("Item")
        return None if item is None else _record(item)

    def pending(
        self, *, bin_id: str | None, after: Position | None, limit: int
    ) -> tuple[list[CheckRecord], Position | None]:
        """Up to ``limit`` pending checks, oldest capture first, and where the next page
        starts (``None``: no more). All bins through the sparse index, or one bin's."""
        request: dict[str, Any] = {
            "TableName": self.checks_table,
            "ExpressionAttributeNames": {"#pending": PENDING_REVIEW_KEY},
            "ExpressionAttributeValues": {":pending": PENDING},
        }
        if bin_id is None:
            request |= {
                "IndexName": PENDING_REVIEW_INDEX,
                "KeyConditionExpression": "#pending = :pending",
                "Limit": limit,
            }
        else:
            request["ExpressionAttributeNames"]["#bin"] = "bin_id"
            request["ExpressionAttributeValues"][":bin"] = {"S": bin_id}
            request |= {
                "KeyConditionExpression": "#bin = :bin",
                "FilterExpression": "#pending = :pending",
                "Limit": max(limit, BIN_QUERY_PAGE),
            }
        start = None if after is None else self._start_key(after, indexed=bin_id is None)
        records: list[CheckRecord] = []
        while True:
            page = self.client.query(**request, **({"ExclusiveStartKey": start} if start else {}))
            records += [_record(item) for item in page["Items"]]
            start = page.get("LastEvaluatedKey")
            if start is None or len(records) >= limit:
                break
        more = start is not None or len(records) > limit
        records = records[:limit]
        if not more or not records:
            return records, None
        return records, Position(records[-1].bin_id, records[-1].check_id)

    @staticmethod
    def _start_key(after: Position, *, indexed: bool) -> dict[str, Any]:
        key = {"bin_id": {"S": after.bin_id}, "check_id": {"S": after.check_id}}
        return {**key, PENDING_REVIEW_KEY: PENDING} if indexed else key

    def settle(self, record: CheckRecord, review: Review, bin_update: BinUpdate) -> BinUpdate:
        """Record the review if the check is still pending (``NotPending`` otherwise).

        With ``APPLIED`` asked for, the bin's quantity changes in the same transaction, only
        if the bin is as the check saw it (its expected quantity, and its ``updated_at`` the
        same moment, or still none); if it is not, the review is recorded alone and the
        answer is ``REFUSED``.
        """
        if bin_update is not BinUpdate.APPLIED:
            self._settle_alone(record, review, bin_update)
            return bin_update
        for attempt in range(1, TRANSACTION_ATTEMPTS + 1):
            now = self.current_bin(record.bin_id)
            if now is None or not _as_checked(record, *now):
                self._settle_alone(record, review, BinUpdate.REFUSED)
                return BinUpdate.REFUSED
            try:
                self.client.transact_write_items(
                    TransactItems=[
                        {"Update": self._settle_update(record, review, BinUpdate.APPLIED)},
                        {"Update": self._bin_update(record.bin_id, review, *now)},
                    ]
                )
                return BinUpdate.APPLIED
            except ClientError as error:
                if error.response["Error"]["Code"] != "TransactionCanceledException":
                    raise
                reasons = [r.get("Code") for r in error.response.get("CancellationReasons", [])]
                if reasons[:1] == ["ConditionalCheckFailed"]:
                    raise NotPending from error
                # The bin changed between the read and the write (the next read tells how),
                # or another transaction held an item at that moment: try again.
                retry = {"ConditionalCheckFailed", "TransactionConflict"}
                if not retry.intersection(reasons) or attempt == TRANSACTION_ATTEMPTS:
                    raise
        raise AssertionError("unreachable: the last attempt returns or raises")

    def current_bin(self, bin_id: str) -> tuple[int, str | None] | None:
        """The bin's expected quantity and ``updated_at`` as stored; ``None`` if it is gone."""
        item = self.client.get_item(
            TableName=self.bins_table, Key={"bin_id": {"S": bin_id}}, ConsistentRead=True
        ).get("Item")
        if item is None:
            return None
        fields = {name: _to_python(value) for name, value in item.items()}
        return int(fields["expected_quantity"]), fields.get("updated_at")

    def _settle_alone(self, record: CheckRecord, review: Review, bin_update: BinUpdate) -> None:
        try:
            self.client.update_item(**self._settle_update(record, review, bin_update))
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise NotPending from error
            raise

    def _settle_update(
        self, record: CheckRecord, review: Review, bin_update: BinUpdate
    ) -> dict[str, Any]:
        values = {
            "review_state": str(ReviewState.REVIEWED),
            "reviewed_count": review.reviewed_count,
            "reviewer": review.reviewer,
            "reviewed_at": review.reviewed_at,
            "resolution": str(review.resolution),
            "bin_update": str(bin_update),
        }
        if review.note is not None:
            values["note"] = review.note
        names = {f"#{name}": name for name in values} | {"#pending": PENDING_REVIEW_KEY}
        return {
            "TableName": self.checks_table,
            "Key": {"bin_id": {"S": record.bin_id}, "check_id": {"S": record.check_id}},
            "UpdateExpression": "SET "
            + ", ".join(f"#{name} = :{name}" for name in values)
            + " REMOVE #pending",
            "ConditionExpression": "#review_state = :was_pending",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": {
                f":{name}": _to_dynamo(value) for name, value in values.items()
            }
            | {":was_pending": PENDING},
        }

    def _bin_update(
        self, bin_id: str, review: Review, quantity: int, updated_at: str | None
    ) -> dict[str, Any]:
        """The counted quantity, if the bin still holds what was just read."""
        values: dict[str, Any] = {
            ":count": {"N": str(review.reviewed_count)},
            ":at": {"S": review.reviewed_at},
            ":was": {"N": str(quantity)},
        }
        unchanged = "attribute_exists(bin_id) AND expected_quantity = :was AND "
        if updated_at is None:
            unchanged += "attribute_not_exists(updated_at)"
        else:
            unchanged += "updated_at = :was_at"
            values[":was_at"] = {"S": updated_at}
        return {
            "TableName": self.bins_table,
            "Key": {"bin_id": {"S": bin_id}},
            "UpdateExpression": "SET expected_quantity = :count, updated_at = :at",
            "ConditionExpression": unchanged,
            "ExpressionAttributeValues": values,
        }


def _as_checked(record: CheckRecord, quantity: int, updated_at: str | None) -> bool:
    """Whether the bin is as the check saw it. ``updated_at`` is compared as a moment: the
    warehouse system may write it in any ISO 8601 form."""
    if quantity != record.expected_quantity:
        return False
    if updated_at is None or record.bin_updated_at is None:
        return updated_at is None and record.bin_updated_at is None
    try:
        return parse_timestamp(updated_at) == parse_timestamp(record.bin_updated_at)
    except ValueError:  # not a timestamp: it cannot be shown unchanged
        return False


def _record(item: dict[str, Any]) -> CheckRecord:
    return CheckRecord.from_dict({name: _to_python(value) for name, value in item.items()})

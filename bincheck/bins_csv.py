"""Read the expected quantities of bins from CSV: ``bin_id,expected_quantity[,updated_at]``."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass, field

from contract.bins import Bin

HEADER = ("bin_id", "expected_quantity", "updated_at")


@dataclass(frozen=True)
class RejectedRow:
    line: int
    text: str
    reason: str


@dataclass
class ParsedBins:
    bins: list[Bin] = field(default_factory=list)
    rejected: list[RejectedRow] = field(default_factory=list)


def parse_bins_csv(lines: Iterable[str]) -> ParsedBins:
    """Every row is either a bin or a rejected row with its line number and reason."""
    result = ParsedBins()
    rows = csv.reader(lines)
    header = [name.strip() for name in next(rows, [])]
    if tuple(header) not in (HEADER[:2], HEADER):
        raise ValueError(f"first line must be the header {','.join(HEADER[:2])}[,updated_at]")
    first_seen: dict[str, int] = {}
    for row in rows:
        line = rows.line_num
        if not any(cell.strip() for cell in row):
            continue
        text = ",".join(row)
        if len(row) != len(header):
            reason = f"expected {len(header)} fields, got {len(row)}"
            result.rejected.append(RejectedRow(line, text, reason))
            continue
        try:
            item = Bin.parse(*row)
        except ValueError as error:
            result.rejected.append(RejectedRow(line, text, str(error)))
            continue
        if item.bin_id in first_seen:
            reason = f"duplicate of bin {item.bin_id} on line {first_seen[item.bin_id]}"
            result.rejected.append(RejectedRow(line, text, reason))
            continue
        first_seen[item.bin_id] = line
        result.bins.append(item)
    return result

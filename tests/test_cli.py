"""Operator commands: ``bincheck bins load`` and ``bincheck checks list`` against moto."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import boto3
import pytest

from bincheck.cli import main
from contract.check import CheckRecord
from contract.decision import Status
from lambdas.checker.adapters.checks import ChecksTable


def _bins(resources) -> dict[str, dict]:
    items = boto3.resource("dynamodb").Table(resources.names.bins_table).scan()["Items"]
    return {item["bin_id"]: item for item in items}


def test_bins_load_writes_good_rows_and_reports_bad_ones(resources, tmp_path, capsys):
    good = [f"B-{i:03d},{i % 7}" for i in range(60)]  # more than one batch of 25
    csv_file = tmp_path / "bins.csv"
    csv_file.write_text(
        "bin_id,expected_quantity,updated_at\n"
        + "\n".join(f"{row}," for row in good)
        + "\nC-1,4,2026-11-21T08:00:00Z\n"
        + "bad bin,3,\n"
        + "C-2,-1,\n"
        + "C-3,three,\n"
        + "C-4,2,yesterday\n"
        + "C-5,2\n"
        + "\n"
        + "C-1,5,\n"
    )

    exit_code = main(["bins", "load", str(csv_file), "--table", resources.names.bins_table])

    out, err = capsys.readouterr()
    assert exit_code == 1
    assert out.strip() == "loaded 61 bins into bincheck-bins; rejected 6 rows"
    assert err.splitlines() == [
        "rejected line 63: bin id 'bad bin' is not 1-64 characters of [A-Za-z0-9._-]: bad bin,3,",
        "rejected line 64: expected quantity must be a whole number >= 0, got '-1': C-2,-1,",
        "rejected line 65: expected quantity must be a whole number >= 0, got 'three': C-3,three,",
        "rejected line 66: not an ISO 8601 timestamp: 'yesterday': C-4,2,yesterday",
        "rejected line 67: expected 3 fields, got 2: C-5,2",
        "rejected line 69: duplicate of bin C-1 on line 62: C-1,5,",
    ]
    stored = _bins(resources)
    assert len(stored) == 61
    assert stored["B-013"]["expected_quantity"] == 6
    assert "updated_at" not in stored["B-013"]
    assert stored["C-1"]["expected_quantity"] == 4
    assert stored["C-1"]["updated_at"] == "2026-11-21T08:00:00.000Z"


def test_bins_load_dry_run_writes_nothing(resources, tmp_path, capsys):
    csv_file = tmp_path / "bins.csv"
    csv_file.write_text("bin_id,expected_quantity\nA,1\nB,2\n")

    assert main(["bins", "load", str(csv_file), "--dry-run"]) == 0
    assert "2 valid bins, 0 rejected rows (dry run)" in capsys.readouterr().out
    assert _bins(resources) == {}


def test_bins_load_without_header_is_refused(resources, tmp_path, capsys):
    csv_file = tmp_path / "bins.csv"
    csv_file.write_text("A,1\n")

    assert main(["bins", "load", str(csv_file)]) == 2
    assert "first line must be the header bin_id,expected_quantity" in capsys.readouterr().err
    assert _bins(resources) == {}


@pytest.fixture
def recorded(resources):
    table = ChecksTable(resources.names.checks_table, boto3.client("dynamodb"))
    for bin_id, capture, captured_at, status in [
        ("A-1", "c1", "2026-11-20T10:00:00.000Z", Status.MATCH),
        ("A-1", "c2", "2026-11-21T10:00:00.000Z", Status.MISMATCH),
        ("B-2", "c3", "2026-11-21T11:00:00.000Z", Status.MISMATCH),
        ("B-2", "c4", "2026-11-21T12:00:00.000Z", Status.UNKNOWN_BIN),
    ]:
        table.put(
            CheckRecord(
                bin_id=bin_id,
                capture_id=capture,
                image_uri=f"s3://bincheck-photos/bins/{bin_id}/{capture}.jpg",
                etag="e",
                captured_at=captured_at,
                checked_at=captured_at,
                status=status,
                expected_quantity=None if status is Status.UNKNOWN_BIN else 3,
                predicted_count=None if status is Status.UNKNOWN_BIN else 4,
                probability=None if status is Status.UNKNOWN_BIN else 0.05,
                model_version="m1",
            )
        )


def _listed(capsys, *args: str) -> list[str]:
    assert main(["checks", "list", "--json", *args]) == 0
    return [json.loads(line)["capture_id"] for line in capsys.readouterr().out.splitlines()]


@pytest.mark.usefixtures("recorded")
def test_checks_list_filters_by_bin_status_and_time(capsys):
    assert _listed(capsys) == ["c1", "c2", "c3", "c4"]
    assert _listed(capsys, "--bin", "A-1") == ["c1", "c2"]
    assert _listed(capsys, "--status", "MISMATCH") == ["c2", "c3"]
    assert _listed(capsys, "--bin", "B-2", "--status", "MISMATCH") == ["c3"]
    assert _listed(capsys, "--since", "2026-11-21T10:30:00Z") == ["c3", "c4"]
    assert _listed(capsys, "--status", "MISMATCH", "--since", "2026-11-21T10:30:00Z") == ["c3"]
    assert _listed(capsys, "--limit", "1") == ["c4"]


@pytest.mark.usefixtures("recorded")
def test_checks_list_prints_a_table(capsys):
    assert main(["checks", "list", "--bin", "A-1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "captured_at", "bin_id", "capture_id", "status", "expected", "counted", "p"
    ]  # fmt: skip
    assert lines[2].split() == [
        "2026-11-21T10:00:00.000Z",
        "A-1",
        "c2",
        "MISMATCH",
        "3",
        "4",
        "0.05",
    ]
    assert lines[-1] == "2 checks"


def test_checks_list_rejects_an_unknown_status(capsys):
    with pytest.raises(SystemExit):
        main(["checks", "list", "--status", "BROKEN"])
    assert "invalid Status value: 'BROKEN'" in capsys.readouterr().err


def test_commands_without_aws_access_say_why(monkeypatch, capsys):
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # made again, with that profile
    assert main(["checks", "list"]) == 2
    assert "bincheck: error: The config profile (no-such-profile) could not be found" in (
        capsys.readouterr().err
    )


def test_help_lists_every_command_in_order(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    # A name longer than the help column ("calibrate") has its help on the next line.
    listed = re.findall(r"^    (\w+)(?: |$)", capsys.readouterr().out, re.MULTILINE)
    assert listed == [
        "bins", "checks", "review", "dlq", "serve", "endpoint", "train", "evaluate", "calibrate",
        "ensemble", "model", "data", "demo", "cost",
    ]  # fmt: skip


def test_help_needs_no_torch():
    # Heavy modules are imported when the command that needs them runs, not before.
    probe = (
        "import sys; from bincheck.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'training', 'model'}))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[-1] == "[]"

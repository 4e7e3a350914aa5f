"""``bincheck review`` against moto: the queue, one check, settling it, and the reviewed
photos exported as a data folder that trains (one tiny step, with a main data folder)."""

from __future__ import annotations

import csv
import json
import shutil

import boto3
import pytest

from bincheck.cli import main
from contract.review import encode_check_ref

from .conftest import SAMPLE_COUNTS, SAMPLES, distribution, sample_photo

MOTO_CALLER = "arn:aws:sts::123456789012:user/moto"  # what moto's STS says we are


def photograph(warehouse, endpoint, event_source, bin_id, expected, answer, image_id, minute):
    warehouse.set_bin(bin_id, expected)
    endpoint.answer(answer)
    warehouse.upload(
        f"bins/{bin_id}/c{minute}.jpg", image_id, captured_at=f"2026-11-21T09:0{minute}:00Z"
    )
    assert event_source.drain().failed == 0
    return encode_check_ref(bin_id, f"2026-11-21T09:0{minute}:00.000Z#c{minute}")


@pytest.fixture
def queue(resources, warehouse, endpoint, event_source, inbox):
    """Three pending checks (a MISMATCH of A-1, an UNCERTAIN of A-2, a MISMATCH of A-3) and
    a MATCH; the checker's alerts already read."""
    refs = {
        "A-1": photograph(
            warehouse, endpoint, event_source, "A-1", 5, distribution(3, 0.95), "00579", 1
        ),
        "A-2": photograph(
            warehouse, endpoint, event_source, "A-2", 2, distribution(2, 0.3), "00172", 2
        ),
        "A-3": photograph(
            warehouse, endpoint, event_source, "A-3", 9, distribution(1, 0.95), "00047", 3
        ),
    }
    photograph(warehouse, endpoint, event_source, "M-1", 1, distribution(1, 0.95), "08128", 4)
    inbox.alerts()
    return refs


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["review", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_list_shows_the_pending_checks_oldest_first(queue, capsys):
    code, out, _ = run(capsys, "list")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["id", "captured_at", "bin_id", "status", "expected", "counted", "p"]
    rows = [line.split() for line in lines[1:-1]]
    assert [row[0] for row in rows] == [queue["A-1"], queue["A-2"], queue["A-3"]]
    assert rows[0][2:] == ["A-1", "MISMATCH", "5", "3", "0.01"]
    assert lines[-1] == "3 pending checks"

    code, out, _ = run(capsys, "list", "--bin", "A-2", "--json")
    [check] = [json.loads(line) for line in out.splitlines()]
    assert (check["id"], check["status"], check["max_count"]) == (queue["A-2"], "UNCERTAIN", 5)
    assert run(capsys, "list", "--limit", "2")[1].splitlines()[-1] == (
        "2 pending checks (more: raise --limit)"
    )


def test_show_draws_the_distribution_and_links_the_photo(queue, capsys):
    code, out, _ = run(capsys, "show", queue["A-1"])
    assert code == 0
    assert "status             MISMATCH" in out
    bars = out.split("the model's count distribution\n")[1].split("\n\n")[0].splitlines()
    assert bars == [
        f"  {label:>4}  {'#' * width:<30} {p}{mark}"
        for label, width, p, mark in [
            ("0", 0, "0.01", ""),
            ("1", 0, "0.01", ""),
            ("2", 0, "0.01", ""),
            ("3", 28, "0.95", ""),
            ("4", 0, "0.01", ""),
            ("5+", 0, "0.01", " <- expected"),  # the last is "5 or more"
        ]
    ]
    url = out.splitlines()[-1].split(": ", 1)[1]
    assert out.splitlines()[-1].startswith("photo (valid 300 s): ")
    import requests

    assert requests.get(url, timeout=5).content == sample_photo("00579")


def test_settle_records_the_caller_and_publishes_the_answer(queue, capsys, inbox, resources):
    code, out, _ = run(capsys, "settle", queue["A-1"], "3", "--resolution", "CONFIRMED")
    assert code == 0
    assert out.startswith(f"settled: bin A-1 holds 3 (expected 5), CONFIRMED, by {MOTO_CALLER}")
    assert "bin A-1: left alone, reviews do not update the bins table here" in out
    [notice] = inbox.alerts()
    assert notice["attributes"] == {
        "status": "REVIEWED",
        "resolution": "CONFIRMED",
        "bin_id": "A-1",
    }
    assert notice["body"]["reviewer"] == MOTO_CALLER

    code, _, err = run(capsys, "settle", queue["A-1"], "5", "--resolution", "FALSE_ALARM")
    assert code == 1
    assert f"is already reviewed: CONFIRMED, 3 counted by {MOTO_CALLER}" in err
    assert "A-1" not in run(capsys, "list")[1]


def test_settle_can_update_the_bin(queue, capsys):
    code, out, _ = run(
        capsys, "settle", queue["A-3"], "1", "--resolution", "CONFIRMED", "--update-bins"
    )
    assert code == 0
    assert "bin A-3: expected_quantity set to 1 (was 9)" in out
    item = boto3.client("dynamodb").get_item(
        TableName="bincheck-bins", Key={"bin_id": {"S": "A-3"}}
    )["Item"]
    assert item["expected_quantity"] == {"N": "1"}


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["-1", "--resolution", "CONFIRMED"], "reviewed_count must be a whole number from 0"),
        (["2", "--resolution", "CONFIRMED"], "CONFIRMED means the bin does not hold"),
        (["2", "--resolution", "FALSE_ALARM", "--note", "x" * 501], "note is 501 characters"),
    ],
)
def test_settle_refuses_what_the_api_refuses(queue, capsys, argv, error):
    code, _, err = run(capsys, "settle", queue["A-2"], *argv)
    assert code == 1
    assert error in err
    assert queue["A-2"] in run(capsys, "list")[1]  # still pending


def test_show_of_an_unknown_or_malformed_id_is_an_error(queue, capsys):
    unknown = encode_check_ref("A-1", "2026-11-21T09:09:00.000Z#nope")
    code, _, err = run(capsys, "show", unknown)
    assert (code, err) == (
        1,
        "bincheck: error: no check 2026-11-21T09:09:00.000Z#nope of bin A-1\n",
    )
    code, _, err = run(capsys, "show", "garbage")
    assert code == 1
    assert "'garbage' is not a check id" in err


def settle_all(queue, capsys) -> None:
    for bin_id, count, resolution in (("A-1", 3, "CONFIRMED"), ("A-2", 2, "FALSE_ALARM")):
        assert run(capsys, "settle", queue[bin_id], str(count), "--resolution", resolution)[0] == 0


def test_export_writes_the_settled_checks_as_a_data_folder(queue, capsys, tmp_path):
    settle_all(queue, capsys)
    out = tmp_path / "reviewed"

    code, printed, _ = run(capsys, "export", "--out", str(out))

    assert code == 0
    assert printed.startswith(f"exported 2 reviewed photos to {out} (1 confirmed, 1 false alarms)")
    with (out / "labels.csv").open(newline="") as rows:
        labels = {row["bin_id"]: row for row in csv.DictReader(rows)}
    assert set(labels) == {"A-1", "A-2"}  # A-3 is still pending, M-1 never was
    assert {b: (r["count"], r["split"], r["resolution"]) for b, r in labels.items()} == {
        "A-1": ("3", "train", "CONFIRMED"),
        "A-2": ("2", "train", "FALSE_ALARM"),
    }
    assert labels["A-1"]["predicted_count"] == "3"
    assert (out / "images" / f"{labels['A-1']['image_id']}.jpg").read_bytes() == sample_photo(
        "00579"
    )
    assert (out / "images" / f"{labels['A-2']['image_id']}.jpg").read_bytes() == sample_photo(
        "00172"
    )
    # Again: the same files, not a second copy.
    run(capsys, "export", "--out", str(out))
    assert len(list((out / "images").iterdir())) == 2
    # --since: reviewed from then on.
    code, printed, _ = run(
        capsys, "export", "--out", str(tmp_path / "none"), "--since", "2099-01-01"
    )
    assert printed.startswith("exported 0 reviewed photos")


def test_export_to_s3_copies_within_s3(queue, capsys):
    settle_all(queue, capsys)
    boto3.client("s3").create_bucket(Bucket="training")

    assert run(capsys, "export", "--out", "s3://training/data/reviewed")[0] == 0

    s3 = boto3.client("s3")
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="training")["Contents"])
    assert len(keys) == 3
    assert keys[-1] == "data/reviewed/labels.csv"
    assert all(k.startswith("data/reviewed/images/") and k.endswith(".jpg") for k in keys[:-1])
    labels = s3.get_object(Bucket="training", Key=keys[-1])["Body"].read().decode()
    assert labels.splitlines()[0].startswith("image_id,count,split,")


def test_exported_photos_train_next_to_a_main_data_folder(queue, capsys, tmp_path):
    from model.artifact import read_artifact
    from training.train import get_args_parser
    from training.train import main as train

    settle_all(queue, capsys)
    reviewed = tmp_path / "reviewed"
    assert run(capsys, "export", "--out", str(reviewed))[0] == 0
    main_folder = tmp_path / "main"
    (main_folder / "images").mkdir(parents=True)
    rows = []
    for copy, split in enumerate(("train", "val", "test")):
        for image_id, count in SAMPLE_COUNTS.items():
            shutil.copy(
                SAMPLES / "images" / f"{image_id}.jpg",
                main_folder / "images" / f"{copy}{image_id}.jpg",
            )
            rows.append(f"{copy}{image_id},{count},{split}")
    (main_folder / "labels.csv").write_text("image_id,count,split\n" + "\n".join(rows) + "\n")

    run_dir = tmp_path / "run"
    argv = [
        "--data", str(main_folder), "--extra-train", str(reviewed),
        "--weights", "none", "--height", "32", "--width", "48", "--batch-size", "4",
        "--epochs", "1", "--max-steps", "1", "--output-dir", str(run_dir), "--version", "tiny",
    ]  # fmt: skip
    train(get_args_parser().parse_args(argv))

    card = read_artifact(run_dir / "model.tar.gz")[1]
    assert card.training["extra_train"] == [str(reviewed)]
    assert card.training["training_photos"] == {str(main_folder): 7, str(reviewed): 2}

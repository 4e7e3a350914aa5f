"""``bincheck cost``: the arithmetic against a case computed by hand, the command, and the
requests per check against the calls the checker and the endpoint really make."""

from __future__ import annotations

import json
from collections import Counter

import boto3
import pytest

from bincheck import cost
from bincheck.cli import main
from bincheck.commands.cost import PRICES
from contract.review import PENDING_REVIEW_KEY
from infra.config import BinCheckConfig
from lambdas.retraining.request import RunRequest

from .conftest import distribution

# Round list prices, written here so that a change to bincheck/prices.json cannot move
# the hand-computed figures below.
PRICES_BY_HAND = cost.Prices(
    as_of="2026-12-01",
    region="us-east-1",
    sagemaker_hosting_per_hour={"ml.g4dn.xlarge": 0.736},
    sagemaker_training_per_hour={"ml.g4dn.xlarge": 0.736, "ml.g5.xlarge": 1.408},
    lambda_per_million_requests=0.20,
    lambda_per_gb_second=0.0000166667,
    dynamodb_per_million_wru=0.625,
    dynamodb_per_million_rru=0.125,
    sqs_per_million_requests=0.40,
    sns_per_million_publishes=0.50,
    s3_per_thousand_put=0.005,
    s3_per_thousand_get=0.0004,
)
# 6,000 invocations a minute per instance, 120 ms and 512 MB per check, batches of 10,
# half the checks alerting and reviewed, one instance always on, auto scaling at 3,000 a minute.
WORKLOAD = cost.Workload(
    invocations_per_minute=6000,
    instance_type="ml.g4dn.xlarge",
    min_instances=1,
    scaling_target_per_minute=3000,
    lambda_ms=120,
    memory_mb=512,
    batch_size=10,
    alert_share=0.5,
    review_share=0.5,
)
# Per million checks:
#   endpoint         1e6 / 6,000 per min = 166.67 min = 2.7778 h x $0.736/h        = $2.0444
#   Lambda requests  1e6 / 10 per batch = 100,000 invocations x $0.20 / 1e6        = $0.0200
#   Lambda compute   1e6 x 0.120 s x 0.5 GB = 60,000 GB-s x $0.0000166667          = $1.0000
#   DynamoDB writes  1e6 x (4 + 0.5 x 4) WRU = 6e6 x $0.625 / 1e6                  = $3.7500
#   DynamoDB reads   1e6 x 1 RRU = 1e6 x $0.125 / 1e6                              = $0.1250
#   SQS              1e6 x (1 + 2 / 10) = 1.2e6 requests x $0.40 / 1e6             = $0.4800
#   SNS              1e6 x 0.5 = 500,000 publishes x $0.50 / 1e6                   = $0.2500
#   S3 PUT           1e6 x $0.005 / 1,000                                          = $5.0000
#   S3 GET/HEAD      3e6 x $0.0004 / 1,000                                         = $1.2000
#   total                                                                          = $13.8694
BY_HAND = {
    "endpoint": (2.7778, 2.0444),
    "Lambda requests": (100_000, 0.02),
    "Lambda compute": (60_000, 1.0),
    "DynamoDB writes": (6_000_000, 3.75),
    "DynamoDB reads": (1_000_000, 0.125),
    "SQS": (1_200_000, 0.48),
    "SNS": (500_000, 0.25),
    "S3 PUT": (1_000_000, 5.0),
    "S3 GET/HEAD": (3_000_000, 1.2),
}


def test_a_million_checks_computed_by_hand():
    result = cost.million_checks(WORKLOAD, PRICES_BY_HAND)

    assert [line.item for line in result.lines] == list(BY_HAND)
    for line in result.lines:
        quantity, usd = BY_HAND[line.item]
        assert line.quantity == pytest.approx(quantity, rel=1e-4), line.item
        assert line.usd == pytest.approx(usd, rel=1e-4), line.item
    assert result.total_usd == pytest.approx(13.8694, rel=1e-4)
    # Always on: 1 instance x 730 h x $0.736 = $537.28 a month, whatever the volume;
    # one instance at capacity: 6,000 x 60 x 730 = 262.8 million checks a month.
    assert result.floor_usd_per_month == pytest.approx(537.28)
    assert result.checks_per_instance_month == pytest.approx(262.8e6)
    # At auto scaling's target: 1e6 / 3,000 per min / 60 = 5.5556 h x $0.736 = $4.0889.
    assert result.endpoint_at_target_usd == pytest.approx(4.0889, rel=1e-4)


def test_no_scaling_figure_when_the_target_is_above_capacity():
    slow = cost.Workload(invocations_per_minute=2000, scaling_target_per_minute=3000)
    assert cost.million_checks(slow, PRICES_BY_HAND).endpoint_at_target_usd is None


def test_retraining_from_job_descriptions_by_hand():
    jobs = [
        _described("tuning-001", "ml.g4dn.xlarge", 1, trained=3600, billed=1200),
        _described("final", "ml.g5.xlarge", 2, trained=1800, billed=900),
    ]
    run = cost.retraining_from_jobs(map(cost.TrainingJob.from_description, jobs), PRICES_BY_HAND)

    # Without spot: 1 h x 1 x $0.736 + 0.5 h x 2 x $1.408 = 0.736 + 1.408 = $2.144.
    # Billed:     1/3 h x 1 x $0.736 + 0.25 h x 2 x $1.408 = 0.2453 + 0.704 = $0.9493.
    assert run.jobs == 2
    assert run.instance_hours_trained == pytest.approx(2.0)
    assert run.instance_hours_billed == pytest.approx(1 / 3 + 0.5)
    assert run.on_demand_usd == pytest.approx(2.144)
    assert run.billed_usd == pytest.approx(0.94933, rel=1e-4)
    assert run.spot_saved_usd == pytest.approx(1.19467, rel=1e-4)
    assert not run.upper_bound


def test_retraining_from_billable_seconds_and_the_upper_bound():
    # 36,000 s = 10 h x $0.736 = $7.36; spot's saving needs the training time.
    given = cost.retraining_from_seconds(36_000, "ml.g4dn.xlarge", PRICES_BY_HAND)
    assert given.billed_usd == pytest.approx(7.36)
    assert given.spot_saved_usd is None

    # 12 trials + 1 final job, each at most 14,400 s = 13 x 4 h = 52 h x $0.736 = $38.272.
    bound = cost.retraining_upper_bound(
        jobs=13, max_runtime_s=14_400, instance_type="ml.g4dn.xlarge", prices=PRICES_BY_HAND
    )
    assert (bound.instance_hours_billed, bound.upper_bound) == (52.0, True)
    assert bound.billed_usd == pytest.approx(38.272)


def test_unknown_instance_type_and_region_name_the_known_ones():
    with pytest.raises(ValueError, match=r"'ml.p3.2xlarge'; known: ml.g4dn.xlarge$"):
        cost.million_checks(
            cost.Workload(invocations_per_minute=1, instance_type="ml.p3.2xlarge"), PRICES_BY_HAND
        )
    with pytest.raises(ValueError, match=r"no training price .*known: ml.g4dn.xlarge, ml.g5"):
        cost.retraining_from_seconds(1, "ml.p3.2xlarge", PRICES_BY_HAND)
    table = json.loads(PRICES.read_text())
    with pytest.raises(ValueError, match=r"no prices for region 'eu-west-9'; known: us-east-1"):
        cost.Prices.from_table(table, "eu-west-9")


def test_bad_workloads_and_job_descriptions_are_refused():
    with pytest.raises(ValueError, match=r"invocations per minute must be > 0.*alert share"):
        cost.Workload(invocations_per_minute=0, alert_share=2)
    unfinished = _described("stopped-early", "ml.g4dn.xlarge", 1, trained=10, billed=10)
    del unfinished["BillableTimeInSeconds"]
    with pytest.raises(ValueError, match="stopped-early: not a finished DescribeTrainingJob"):
        cost.TrainingJob.from_description(unfinished)


def test_the_price_table_is_dated_and_prices_the_defaults():
    table = json.loads(PRICES.read_text())
    prices = cost.Prices.from_table(table, "us-east-1")
    assert prices.as_of.startswith("2026-")
    assert prices.hosting(BinCheckConfig().instance_type) == 0.736
    assert prices.training(RunRequest(data="").instance_type) == 0.736


# The command.

LOAD = {
    "endpoint": "bincheck-counter",
    "url": "http://localhost:8085",
    "input": "s3_uri",
    "photos": 200,
    "max_p99_ms": 500.0,
    "started_at": "2026-12-01T09:00:00.000Z",
    "steps": [
        {"concurrency": 4, "invocations_per_minute": 5400.0, "p99_ms": 90.0},
        {"concurrency": 8, "invocations_per_minute": 6000.0, "p99_ms": 180.0},
    ],
    "capacity": {"concurrency": 8, "invocations_per_minute": 6000.0, "p99_ms": 180.0},
}


def test_cost_reads_a_load_file_prints_the_table_and_writes_json(tmp_path, capsys):
    load = tmp_path / "load.json"
    load.write_text(json.dumps(LOAD))
    out = tmp_path / "cost.json"

    assert main(["cost", "--load", str(load), "--json", str(out)]) == 0

    printed = capsys.readouterr().out
    assert "us-east-1 list prices as of 2026-" in printed
    endpoint_row = next(line for line in printed.splitlines() if line.startswith("endpoint "))
    assert "2.778 instance-h ml.g4dn.xlarge" in endpoint_row
    assert "2.044" in endpoint_row
    assert "estimate: measured on a local server (http://localhost:8085)" in endpoint_row
    lambda_row = next(line for line in printed.splitlines() if line.startswith("Lambda compute"))
    assert "60,000 GB-s" in lambda_row and "estimate, not measured" in lambda_row
    assert "total" in printed and "15.069" in printed  # the default alert and review share, 0.9
    assert "x 730 h = $537.28 a month" in printed
    assert "at most (upper bound)  52.000      38.27" in printed

    report = json.loads(out.read_text())
    assert report["total_usd"] == pytest.approx(15.0694, rel=1e-4)
    assert [line["item"] for line in report["lines"]] == list(BY_HAND)
    assert report["inputs"]["invocations_per_minute"] == 6000.0
    assert report["inputs"]["lambda_ms"] == 120.0
    assert report["endpoint_floor_usd_per_month"] == pytest.approx(537.28)
    assert report["retraining"]["upper_bound"] is True
    assert report["retraining"]["billed_usd"] == pytest.approx(38.272)


def test_cost_of_a_retraining_run_from_job_descriptions(tmp_path, capsys):
    jobs = tmp_path / "jobs.json"
    jobs.write_text(
        json.dumps(
            [
                _described("tuning-001", "ml.g4dn.xlarge", 1, trained=7200, billed=2400),
                _described("final", "ml.g4dn.xlarge", 1, trained=3600, billed=1200),
            ]
        )
    )
    out = tmp_path / "cost.json"

    argv = ["cost", "--invocations-per-minute", "6000", "--jobs-json", str(jobs)]
    assert main([*argv, "--json", str(out)]) == 0

    # 3 h x $0.736 = $2.208 without spot; 1 h billed = $0.736; saved $1.472 (66.7%).
    printed = capsys.readouterr().out
    assert "without spot (training time)  3.000       2.21" in printed
    assert "billed (billable time)        1.000       0.74" in printed
    assert "spot saved                                1.47  66.7% of on demand" in printed
    retraining = json.loads(out.read_text())["retraining"]
    assert retraining["spot_saved_usd"] == pytest.approx(1.472)


@pytest.mark.parametrize(
    ("arguments", "load", "message"),
    [
        ([], None, "no throughput: pass --load FILE"),
        (["--load", "{load}"], {**LOAD, "capacity": None}, "found no capacity"),
        (["--load", "{load}"], {"endpoint": "x"}, "not bincheck endpoint load's JSON"),
        (
            ["--invocations-per-minute", "6000", "--instance-type", "ml.p3.2xlarge"],
            None,
            "no hosting (real-time inference) price for 'ml.p3.2xlarge'; known: ",
        ),
        (["--invocations-per-minute", "6000", "--region", "mars-1"], None, "known: us-east-1"),
    ],
)
def test_cost_refuses_bad_input_with_exit_2(tmp_path, capsys, arguments, load, message):
    path = tmp_path / "load.json"
    if load is not None:
        path.write_text(json.dumps(load))
    argv = ["cost", *(str(path) if a == "{load}" else a for a in arguments)]

    assert main(argv) == 2

    assert message in capsys.readouterr().err


# The requests per check, against the calls the code makes.


def test_the_checker_makes_the_calls_priced_for_a_check(
    warehouse, endpoint, event_source, monkeypatch
):
    calls = _count_calls(monkeypatch)
    warehouse.set_bin("A-003", 2)
    endpoint.answer(distribution(2, 0.3))  # UNCERTAIN: published
    warehouse.upload("bins/A-003/cap-1.jpg")

    assert event_source.drain().failed == 0

    names = Counter(name for name, _ in calls)
    assert names == {
        "HeadObject": 1,
        "GetItem": 1,
        "InvokeEndpoint": 1,
        "PutItem": 2,
        "UpdateItem": 1,
        "Publish": 1,
    }
    priced = cost.CheckRequests()
    [get_item] = [params for name, params in calls if name == "GetItem"]
    assert get_item["ConsistentRead"] is True  # 1 RRU, not 0.5
    assert names["GetItem"] == priced.read_units
    put_tables = sorted(params["TableName"] for name, params in calls if name == "PutItem")
    names_ = warehouse.resources.names
    assert put_tables == sorted([names_.checks_table, names_.idempotency_table])
    by_status_copy = 1  # the checks table's by-status index gets the record too
    assert names["PutItem"] + names["UpdateItem"] + by_status_copy == priced.write_units
    # An UNCERTAIN check waits for review: its record lands in the pending index too, the
    # first of the review's write units (the settlement's UpdateItem, its by-status copy
    # and the pending copy's delete are the other three).
    [record] = [
        params["Item"]
        for name, params in calls
        if name == "PutItem" and params["TableName"] == names_.checks_table
    ]
    assert PENDING_REVIEW_KEY in record
    assert priced.review_write_units == 1 + 3
    # The endpoint's own HeadObject and GetObject (s3_uri mode) are the other two.
    assert names["HeadObject"] + 2 == priced.s3_gets


def test_the_endpoint_reads_a_photo_with_a_head_and_a_get(warehouse, monkeypatch):
    from model import inference

    warehouse.upload("bins/A-003/cap-1.jpg")
    s3 = boto3.client("s3")
    seen: list[str] = []
    s3.meta.events.register(
        "provide-client-params.s3.*", lambda model, **_: seen.append(model.name)
    )
    monkeypatch.setattr(inference, "_s3", lambda: s3)

    inference._read_s3(f"s3://{warehouse.resources.names.bucket}/bins/A-003/cap-1.jpg")

    assert seen == ["HeadObject", "GetObject"]


def _count_calls(monkeypatch) -> list[tuple[str, dict]]:
    """Every AWS call of the checker's own clients, by operation, with its parameters."""
    from lambdas.checker import app

    calls: list[tuple[str, dict]] = []
    real_client = app.client

    def counting_client(service, config, **kwargs):
        made = real_client(service, config, **kwargs)
        made.meta.events.register(
            "provide-client-params.*.*",
            lambda model, params, **_: calls.append((model.name, dict(params))),
        )
        return made

    monkeypatch.setattr(app, "client", counting_client)
    return calls


def _described(name: str, kind: str, count: int, *, trained: int, billed: int) -> dict:
    return {
        "TrainingJobName": name,
        "ResourceConfig": {"InstanceType": kind, "InstanceCount": count, "VolumeSizeInGB": 50},
        "TrainingTimeInSeconds": trained,
        "BillableTimeInSeconds": billed,
        "EnableManagedSpotTraining": True,
    }

"""The training pipeline's pure code: the run request, the plan for SageMaker, the
promotion decision, one run at a time. No mocks."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import botocore.session
import pytest

from lambdas.retraining.decision import RecordError, check_record, decide
from lambdas.retraining.fields import (
    API_HYPERPARAMETERS,
    MAX_HYPERPARAMETER_BYTES,
    MAX_HYPERPARAMETER_VALUE,
    MAX_HYPERPARAMETERS,
    MAX_S3_URI,
    NOT_FOR_TUNING,
    PLANNED,
    SWITCHES,
)
from lambdas.retraining.instance_types import TRAINING_INSTANCE_TYPES
from lambdas.retraining.plan import plan, run_id
from lambdas.retraining.request import InvalidRequest, RunRequest, parse_request
from lambdas.retraining.runs import RunInProgress, check_first, started

DATA = "s3://training-bucket/data/abid-2026-11"


def test_a_request_with_only_data_takes_the_defaults_and_the_deployments_over_them():
    request = parse_request(
        {"data": DATA, "max_jobs": 20},
        defaults={
            "max_jobs": 8,
            "instance_type": "ml.g5.xlarge",
            "hyperparameters": {"epochs": 20},
        },
        bucket="training-bucket",
    )
    assert request.data == DATA + "/"  # a folder
    assert request.max_jobs == 20  # the request over the deployment's default
    assert request.instance_type == "ml.g5.xlarge"
    assert request.hyperparameters == {"epochs": "20"}
    assert request.lr == RunRequest(data="").lr
    assert request.label_uris == [f"{DATA}/labels.csv"]


def test_every_problem_is_reported_at_once():
    with pytest.raises(InvalidRequest) as refused:
        parse_request(
            {
                "data": "s3://elsewhere/photos/",
                "instance_type": "g5.xlarge",
                "max_jobs": 0,
                "max_parallel_jobs": True,
                "lr": [0.01, 0.001],
                "batch_size": [16.5, 64],
                "losses": ["ce", "hinge"],
                "objective": "f1",
                "promotion_margin": -0.1,
                "reuse_best_tuning_job": "yes",
                "hyperparameters": {
                    "lr": 0.1,
                    "split_seed": 3,
                    "against": "s3://elsewhere/model.tar.gz",
                    "sigma": True,
                    "refit": "true",
                    "Bad Name": 1,
                },
                "epochs": 10,
            },
            bucket="training-bucket",
        )
    problems = refused.value.problems
    assert any(p.startswith("unknown fields ['epochs']") for p in problems)
    expected = [
        "data must be in the pipeline's bucket s3://training-bucket/data/",
        "data must be a folder under data/ of the bucket",
        "instance_type must be a type SageMaker trains on, such as ml.g5.xlarge, got "
        "'g5.xlarge' (nearest: ml.g5.xlarge,",
        "max_jobs must be a whole number in 1..500, got 0",
        "max_parallel_jobs must be a whole number in 1..100, got True",
        "objective must be one of accuracy, off_by_one, rmse, mae, got 'f1'",
        "lr must be [min, max], numbers with min < max within (0, 1], got [0.01, 0.001]",
        "batch_size must be [min, max], whole numbers",
        "losses must be a non-empty list of distinct ('ce', 'ordinal'), got ['ce', 'hinge']",
        "hyperparameter 'lr' is set by the pipeline, not by the request",
        "hyperparameter 'split-seed' is set by the pipeline, not by the request",
        "hyperparameter 'against' is set by the pipeline, not by the request",
        "hyperparameter 'sigma' must be a string or a number (true or false only for the",
        "hyperparameter 'refit' would leave the tuning jobs without validation figures",
        "hyperparameter 'Bad Name' is not a train.py option name",
        "promotion_margin must be a number in 0..10, got -0.1",
        "reuse_best_tuning_job must be true or false, got 'yes'",
    ]
    for start in expected:
        assert any(p.startswith(start) for p in problems), (start, problems)
    assert str(refused.value).startswith("invalid training run request:\n  - ")


def test_data_is_required_and_the_input_must_be_an_object():
    with pytest.raises(InvalidRequest, match="data is required"):
        parse_request({})
    with pytest.raises(InvalidRequest, match="must be a JSON object, got list"):
        parse_request([DATA])
    with pytest.raises(InvalidRequest, match="data must be a folder under data/"):
        parse_request({"data": "s3://training-bucket/data/"})


def test_budget_limits_are_checked_against_each_other_and_the_pipelines_time_limit():
    with pytest.raises(InvalidRequest) as refused:
        parse_request({"data": DATA, "max_jobs": 2, "max_parallel_jobs": 3})
    assert refused.value.problems == ["max_parallel_jobs (3) must not exceed max_jobs (2)"]

    with pytest.raises(InvalidRequest, match=r"max_wait_s \(3600\) must be at least max_runtime"):
        parse_request({"data": DATA, "max_runtime_s": 7200, "max_wait_s": 3600})

    # 12 jobs 3 at a time: 4 rounds of 8 h, the final job's 8 h, 2 h to deploy = 42 h.
    assert parse_request({"data": DATA}).worst_case_s == 42 * 3600
    parse_request({"data": DATA}, timeout_s=42 * 3600)
    with pytest.raises(InvalidRequest, match=r"may take 42.0 h, more than the pipeline's limit"):
        parse_request({"data": DATA}, timeout_s=24 * 3600)
    reuse = parse_request({"data": DATA, "reuse_best_tuning_job": True}, timeout_s=34 * 3600)
    assert reuse.worst_case_s == 34 * 3600  # no final job


def test_hyperparameter_names_are_read_as_train_py_spells_its_options():
    request = parse_request({"data": DATA, "hyperparameters": {"max_count": 8, "sigma": 0.5}})
    assert request.hyperparameters == {"max-count": "8", "sigma": "0.5"}


def test_switches_take_a_json_boolean_as_train_py_reads_one():
    from training.train import _flag, get_args_parser

    switches = {
        option.removeprefix("--")
        for action in get_args_parser()._actions
        if action.type is _flag
        for option in action.option_strings
    }
    assert switches == SWITCHES | NOT_FOR_TUNING  # the pipeline knows every one

    request = parse_request(
        {"data": DATA, "hyperparameters": {"tta": True, "freeze_backbone": False}}
    )
    assert request.hyperparameters == {"tta": "true", "freeze-backbone": "false"}
    assert get_args_parser().parse_args(["--tta", "true", "--freeze-backbone", "false"]).tta


def test_plan_names_fit_sagemakers_limits_and_ranges_are_plain_decimal_strings():
    run = run_id("train-20261121-090000", "2026-11-21T09:00:00.123Z")
    assert run.startswith("20261121-090000-") and len(run) == 20
    assert run != run_id("another-execution", "2026-11-21T09:00:00.123Z")
    request = parse_request(
        {"data": DATA, "lr": [1e-5, 2e-3], "objective": "rmse", "losses": ["ordinal"]}
    )
    shipped = "s3://cdk-assets/fbb3cd56.gz"
    planned = plan(request, bucket="training-bucket", run=run, production_model=shipped)
    assert planned["production_model"] == shipped  # every job's production channel
    assert len(planned["tuning_job"]) <= 32  # SageMaker's limit for a tuning job's name
    assert len(planned["tuning_job"]) + len("-002-7f3a9c1e") <= 63  # its trials' names
    assert planned["ranges"]["lr"] == {"min": "0.00001", "max": "0.002"}
    assert planned["ranges"]["batch_size"] == {"min": "16", "max": "64"}
    assert planned["ranges"]["losses"] == ["ordinal"]
    assert planned["objective"] == {"metric": "val_rmse", "type": "Minimize"}
    assert planned["hyperparameters"]["select"] == "rmse"  # best epoch by the same figure
    assert planned["data"] == f"{DATA}/"
    assert planned["checkpoints"]["tuning"] == f"s3://training-bucket/checkpoints/{run}/tuning/"
    assert planned["output_path"] == f"s3://training-bucket/jobs/{run}/"


PRODUCTION = {"version": "v1", "test_data": "t", "figures": {"accuracy": 0.356, "rmse": 1.19}}


def test_a_candidate_is_promoted_only_when_better_by_the_margin():
    better = {"test_data": "t", "figures": {"accuracy": 0.412, "rmse": 1.05}}
    decision = decide(better, PRODUCTION, metric="accuracy", margin=0.01)
    assert decision.promote
    assert decision.summary == (
        "test accuracy (higher is better): candidate 0.4120, production 0.3560; "
        "better by 0.0560, margin 0.0100: promote"
    )
    slightly = {"test_data": "t", "figures": {"accuracy": 0.36}}
    assert not decide(slightly, PRODUCTION, metric="accuracy", margin=0.01).promote
    exactly = {"test_data": "t", "figures": {"accuracy": 0.366}}
    assert decide(exactly, PRODUCTION, metric="accuracy", margin=0.01).promote
    equal = {"test_data": "t", "figures": {"accuracy": 0.356}}
    assert not decide(equal, PRODUCTION, metric="accuracy", margin=0.0).promote


def test_for_rmse_lower_is_better_and_different_test_data_is_said():
    candidate = {"test_data": "s3://b/data/new/test/", "figures": {"rmse": 1.10}}
    decision = decide(candidate, PRODUCTION, metric="rmse", margin=0.05)
    assert decision.promote
    assert "(lower is better)" in decision.summary
    assert decision.summary.endswith("Measured on different test data: s3://b/data/new/test/ and t")
    worse = {"test_data": "t", "figures": {"rmse": 1.30}}
    assert "not better by 0.1100" in decide(worse, PRODUCTION, metric="rmse", margin=0).summary


def test_missing_figures_are_an_error_not_a_promotion():
    with pytest.raises(RecordError, match="the production model 'v1' has no test mae"):
        decide({"figures": {"mae": 0.7}}, PRODUCTION, metric="mae", margin=0)
    with pytest.raises(RecordError, match="the candidate has no test accuracy to compare: nan"):
        decide({"figures": {"accuracy": float("nan")}}, PRODUCTION, metric="accuracy", margin=0)
    with pytest.raises(RecordError, match="param is not a production model record"):
        check_record(["v1"], source="param")
    assert check_record(PRODUCTION, source="param") == PRODUCTION


def scored_against(version: str, metric: str, production: float, gain: float, interval):
    """What train.py's --against writes: production's figures on the job's test photos
    and the candidate's minus production's, with the paired 95% interval."""
    return {
        "model_version": version,
        "photos": "test",
        "metrics": {metric: production, "n": 281.0},
        "difference": {metric: {"value": gain, "interval": list(interval)}},
    }


def test_paired_figures_decide_on_the_same_photos_and_a_gain_within_their_noise_is_kept_out():
    candidate = {"test_data": "t", "figures": {"accuracy": 0.43}}
    clear = scored_against("v1", "accuracy", 0.38, 0.05, (0.02, 0.08))
    decision = decide(candidate, PRODUCTION, metric="accuracy", margin=0.01, paired=clear)
    assert decision.promote
    assert decision.summary == (
        "test accuracy (higher is better) on the same 281 photos: candidate 0.4300, "
        "production 0.3800; better by 0.0500 (95% interval of the gain +0.0200 to +0.0800), "
        "margin 0.0100: promote"
    )
    # The record's figure (0.356, other photos) would promote this one; on the same photos
    # the gain is as likely luck as not.
    noisy = scored_against("v1", "accuracy", 0.40, 0.03, (-0.03, 0.09))
    decision = decide(candidate, PRODUCTION, metric="accuracy", margin=0.01, paired=noisy)
    assert not decision.promote
    assert decision.summary.endswith(
        "keep the production model: the gain is within the photos' noise"
    )
    # Beyond the noise but short of the margin: kept, as without pairing.
    small = scored_against("v1", "accuracy", 0.425, 0.005, (0.001, 0.009))
    assert not decide(candidate, PRODUCTION, metric="accuracy", margin=0.01, paired=small).promote


def test_paired_rmse_gains_are_reductions_and_a_stale_pairing_falls_back_to_the_record():
    candidate = {"test_data": "t", "figures": {"rmse": 1.02}}
    lower = scored_against("v1", "rmse", 1.14, -0.12, (-0.2, -0.04))
    decision = decide(candidate, PRODUCTION, metric="rmse", margin=0.05, paired=lower)
    assert decision.promote
    assert "better by 0.1200 (95% interval of the gain +0.0400 to +0.2000)" in decision.summary
    higher = scored_against("v1", "rmse", 0.98, 0.04, (0.01, 0.07))
    decision = decide(candidate, PRODUCTION, metric="rmse", margin=0.0, paired=higher)
    assert not decision.promote and "not better by 0.0400" in decision.summary
    # Production changed while the job ran: its figures are the record's, and it is said.
    stale = scored_against("v0", "rmse", 1.5, -0.48, (-0.6, -0.3))
    decision = decide(candidate, PRODUCTION, metric="rmse", margin=0.05, paired=stale)
    assert decision.promote  # 1.02 against the record's 1.19
    assert decision.summary.endswith(
        "The job scored 'v0', production is now 'v1': not on the same photos"
    )


def test_incomplete_paired_figures_are_an_error_not_a_promotion():
    broken = scored_against("v1", "accuracy", 0.38, 0.05, (0.02,))
    with pytest.raises(RecordError, match="the job's paired accuracy figures are incomplete"):
        decide(
            {"figures": {"accuracy": 0.43}}, PRODUCTION, metric="accuracy", margin=0, paired=broken
        )


def _execution(name: str, start: datetime) -> dict:
    arn = f"arn:aws:states:eu-west-1:123456789012:execution:training:{name}"
    return {"executionArn": arn, "name": name, "startDate": start}


def test_the_earliest_running_execution_goes_on_and_every_later_one_stops():
    nine = started("2026-11-21T09:00:00.000Z")
    # Started first, though its name (and ARN) sorts last.
    first = _execution("zeta", nine)
    later = _execution("alpha", nine + timedelta(seconds=5))
    running = [later, first]

    check_first(first["executionArn"], nine, running)
    with pytest.raises(RunInProgress) as stopped:
        check_first(later["executionArn"], later["startDate"], running)
    message = str(stopped.value)
    assert "execution zeta (started 2026-11-21 09:00:00 UTC) is still running" in message
    assert "alpha" not in message
    # Not listed yet (ListExecutions is eventually consistent): it goes by its own start.
    check_first(first["executionArn"], nine, [later])


def test_executions_started_in_the_same_millisecond_never_both_stop():
    nine = datetime(2026, 11, 21, 9, tzinfo=UTC)
    a, b = _execution("a", nine), _execution("b", nine)

    check_first(a["executionArn"], nine, [a, b])
    with pytest.raises(RunInProgress, match="execution a "):
        check_first(b["executionArn"], nine, [a, b])


EXTRA = ["s3://training-bucket/data/abid-224", "s3://training-bucket/data/more/"]


def _channels(planned: dict) -> dict[str, str]:
    return {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in planned["channels"]}


def test_extra_data_folders_become_extra_channels_of_every_job():
    request = parse_request(
        {"data": DATA, "extra_data": EXTRA}, bucket="training-bucket", timeout_s=72 * 3600
    )
    assert request.extra_data == (f"{EXTRA[0]}/", EXTRA[1])  # folders, as data is
    assert request.label_uris == [
        f"{DATA}/labels.csv",
        *(f"{e.rstrip('/')}/labels.csv" for e in EXTRA),
    ]
    assert parse_request({"data": DATA}).extra_data == ()  # none by default

    shipped = "s3://cdk-assets/fbb3cd56.gz"
    planned = plan(request, bucket="training-bucket", run="r", production_model=shipped)
    assert _channels(planned) == {
        "data": f"{DATA}/",
        "extra": f"{EXTRA[0]}/",
        "extra1": EXTRA[1],
        "production": shipped,
    }
    for channel in planned["channels"]:
        assert channel["InputMode"] == "File"
        assert channel["DataSource"]["S3DataSource"]["S3DataType"] == "S3Prefix"
        assert channel["DataSource"]["S3DataSource"]["S3DataDistributionType"] == "FullyReplicated"
    without = plan(parse_request({"data": DATA}), bucket="b", run="r", production_model=shipped)
    assert _channels(without) == {"data": f"{DATA}/", "production": shipped}


def test_the_most_extra_folders_fit_sagemakers_channels_and_train_py_reads_them_in_order(
    monkeypatch,
):
    import botocore.session

    from lambdas.retraining.fields import MAX_EXTRA_DATA
    from training.train import get_args_parser

    folders = [f"s3://training-bucket/data/extra-{i}/" for i in range(MAX_EXTRA_DATA)]
    request = parse_request({"data": DATA, "extra_data": folders}, bucket="training-bucket")
    planned = plan(request, bucket="training-bucket", run="r", production_model="s3://m/a.gz")
    names = [c["ChannelName"] for c in planned["channels"]]

    # What botocore does not check itself: the channels' number and their names' pattern.
    model = botocore.session.get_session().get_service_model("sagemaker")
    limit = model.shape_for("InputDataConfig").metadata["max"]
    pattern = model.shape_for("ChannelName").metadata["pattern"]
    assert len(names) == len(set(names)) == MAX_EXTRA_DATA + 2 <= limit
    assert all(re.fullmatch(pattern, name) for name in names)
    # SageMaker gives each channel's folder to train.py as SM_CHANNEL_<NAME>.
    for channel in planned["channels"]:
        uri = channel["DataSource"]["S3DataSource"]["S3Uri"]
        monkeypatch.setenv(f"SM_CHANNEL_{channel['ChannelName'].upper()}", uri.split("/")[-2])
    assert [str(f) for f in get_args_parser().parse_args([]).extra_train] == [
        f"extra-{i}" for i in range(MAX_EXTRA_DATA)
    ]


def test_extra_data_is_checked_as_data_is_and_every_problem_reported():
    from lambdas.retraining.fields import MAX_EXTRA_DATA

    with pytest.raises(InvalidRequest) as refused:
        parse_request(
            {
                "data": DATA,
                "extra_data": [
                    "https://training-bucket/data/x/",
                    "s3://elsewhere/data/x/",
                    "s3://training-bucket/photos/x/",
                    f"{DATA}/",
                ],
            },
            bucket="training-bucket",
        )
    assert refused.value.problems == [
        "extra_data[0] must be an S3 folder URI s3://BUCKET/data/NAME/, got "
        "'https://training-bucket/data/x/'",
        "extra_data[1] must be in the pipeline's bucket s3://training-bucket/data/, got "
        "s3://elsewhere/data/x/",
        "extra_data[2] must be a folder under data/ of the bucket, got "
        "s3://training-bucket/photos/x/",
        f"extra_data[3] is the data folder {DATA}/: its validation and test photos would be "
        "trained on",
    ]
    with pytest.raises(InvalidRequest, match=re.escape(f"extra_data[1] repeats {EXTRA[1]}")):
        parse_request({"data": DATA, "extra_data": [EXTRA[1], EXTRA[1].rstrip("/")]})
    too_many = [f"s3://training-bucket/data/x{i}/" for i in range(MAX_EXTRA_DATA + 1)]
    for value in (too_many, EXTRA[0]):
        with pytest.raises(InvalidRequest, match=r"extra_data must be a list of at most 4 S3"):
            parse_request({"data": DATA, "extra_data": value})
    with pytest.raises(InvalidRequest, match=r"extra_data\[0\] must be an S3 folder URI"):
        parse_request({"data": DATA, "extra_data": [3]})
    with pytest.raises(InvalidRequest, match="hyperparameter 'extra-train' is set by the pipeline"):
        parse_request({"data": DATA, "hyperparameters": {"extra_train": "/opt/ml/x"}})


def _sagemaker_input(operation: str):
    model = botocore.session.get_session().get_service_model("sagemaker")
    return model.operation_model(operation).input_shape


def test_an_instance_type_is_one_sagemaker_trains_on_as_its_api_model_says():
    training = _sagemaker_input("CreateTrainingJob").members["ResourceConfig"]
    tuning = _sagemaker_input("CreateHyperParameterTuningJob").members["TrainingJobDefinition"]
    for resources in (training, tuning.members["ResourceConfig"]):
        api_types = set(resources.members["InstanceType"].enum)
        assert sorted(TRAINING_INSTANCE_TYPES - api_types) == []  # all are the API's
    assert RunRequest(data="").instance_type in TRAINING_INSTANCE_TYPES
    request = parse_request({"data": DATA, "instance_type": "ml.g6e.12xlarge"})
    assert request.instance_type == "ml.g6e.12xlarge"

    # Notebook and endpoint types look like training types; the API refuses them.
    for refused, nearest in (
        ("ml.t2.medium", "ml.t3.medium"),
        ("ml.inf2.xlarge", "ml.p2.xlarge, ml.r8i.xlarge, ml.r7i.xlarge"),
    ):
        assert refused not in api_types
        with pytest.raises(InvalidRequest) as rejected:
            parse_request({"data": DATA, "instance_type": refused})
        assert rejected.value.problems == [
            "instance_type must be a type SageMaker trains on, such as ml.g5.xlarge, got "
            f"{refused!r} (nearest: {nearest})"
        ]
    with pytest.raises(InvalidRequest, match=r"got \['ml.g5.xlarge'\]$"):
        parse_request({"data": DATA, "instance_type": ["ml.g5.xlarge"]})


def test_hyperparameters_stay_within_sagemakers_limits_less_what_the_pipeline_sets():
    static = _sagemaker_input("CreateHyperParameterTuningJob").members["TrainingJobDefinition"]
    for shape in (
        _sagemaker_input("CreateTrainingJob").members["HyperParameters"],
        static.members["StaticHyperParameters"],
    ):
        assert shape.metadata["max"] == API_HYPERPARAMETERS
        assert shape.value.metadata["max"] == MAX_HYPERPARAMETER_VALUE
        assert shape.key.metadata["max"] >= 63  # a train.py option's longest name
    most = {f"option_{i}": i for i in range(MAX_HYPERPARAMETERS)}
    most["option_0"] = "v" * MAX_HYPERPARAMETER_VALUE

    request = parse_request({"data": DATA, "hyperparameters": most})

    # 90: with the tuned four, select and version, the toolkit's three and the one a tuning
    # job adds to its trials, 100.
    assert MAX_HYPERPARAMETERS == 90
    assert len(request.hyperparameters) == MAX_HYPERPARAMETERS
    planned = plan(request, bucket="b", run="r", production_model="s3://b/m.tar.gz")
    assert len(planned["hyperparameters"]) == MAX_HYPERPARAMETERS + len(PLANNED)

    too_many = {**most, "one_more": 1}
    too_long = {"note": "v" * (MAX_HYPERPARAMETER_VALUE + 1)}
    with pytest.raises(InvalidRequest) as rejected:
        parse_request({"data": DATA, "hyperparameters": too_many})
    assert rejected.value.problems == [
        "hyperparameters may name at most 90 options, got 91: SageMaker takes 100 a job, "
        "and the pipeline sets 10"
    ]
    with pytest.raises(InvalidRequest) as rejected:
        parse_request({"data": DATA, "hyperparameters": too_long})
    assert rejected.value.problems == [
        "hyperparameter 'note' is 2,501 characters long; SageMaker takes values of at most 2,500"
    ]


def test_hyperparameters_fit_twice_in_a_step_functions_state():
    """Within SageMaker's limits, 91 values of 2,500 characters would make a state of more
    than Step Functions' 256 KiB: the request's share is 64 KiB of JSON (as UTF-8)."""
    values = MAX_HYPERPARAMETER_BYTES // MAX_HYPERPARAMETER_VALUE  # 26 full values fit...
    fits = {f"option-{i:02d}": "v" * MAX_HYPERPARAMETER_VALUE for i in range(values)}
    parse_request({"data": DATA, "hyperparameters": fits})
    # ... a 27th does not; nor do accented values of half the characters (2 bytes each).
    for over in (
        {**fits, "option-99": "v" * MAX_HYPERPARAMETER_VALUE},
        {name: "é" * (MAX_HYPERPARAMETER_VALUE // 2 + 100) for name in fits},
    ):
        size = len(json.dumps(over, ensure_ascii=False).encode())
        with pytest.raises(InvalidRequest) as rejected:
            parse_request({"data": DATA, "hyperparameters": over})
        assert rejected.value.problems == [
            f"hyperparameters take {size:,} bytes as JSON, more than 65,536: a run's state, "
            "which Step Functions limits to 256 KiB, holds them twice"
        ]


def test_a_data_folder_uri_is_at_most_as_long_as_sagemaker_takes():
    channel = _sagemaker_input("CreateTrainingJob").members["InputDataConfig"].member
    s3_uri = channel.members["DataSource"].members["S3DataSource"].members["S3Uri"]
    assert s3_uri.metadata["max"] == MAX_S3_URI
    start = "s3://training-bucket/data/"
    longest = start + "x" * (MAX_S3_URI - len(start) - 1) + "/"

    assert parse_request({"data": longest}).data == longest
    with pytest.raises(InvalidRequest) as rejected:
        parse_request({"data": DATA, "extra_data": [longest[:-1] + "x/"]})
    assert rejected.value.problems == [
        "extra_data[0] is 1,025 characters long as a folder URI; SageMaker takes S3 URIs of "
        "at most 1,024"
    ]

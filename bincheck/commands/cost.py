"""``bincheck cost``: what a million checks cost, and a retraining run, at list prices.

The arithmetic is :mod:`bincheck.cost`; this reads the inputs (a load test's JSON, training
job descriptions, the price table), says which figures are estimates, and prints.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from infra.config import BinCheckConfig
from lambdas.retraining.request import RunRequest

from .. import cost
from ..console import format_table

PRICES = Path(__file__).resolve().parents[1] / "prices.json"
CONFIG = BinCheckConfig()  # the deployment's defaults (cdk.json overrides are not read)
RUN = RunRequest(data="")  # the retraining request's defaults
NOT_COUNTED = (
    "free tiers; storage (S3 photos, DynamoDB items); CloudWatch Logs and metrics; X-Ray; "
    "KMS (the alerts topic's key); data transfer; retries and duplicate deliveries; "
    "the queue's idle polling"
)
_DEFAULT = "(default: %(default)s)"


def add_to(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "cost",
        help="what a million checks cost, and a retraining run, at list prices",
        description="Dollars per million checks by service, the endpoint's always-on floor, "
        "and a retraining run's cost with spot's saving. Prices: bincheck/prices.json, "
        "dated list prices, not fetched (docs/cost.md).",
    )
    throughput = parser.add_mutually_exclusive_group()
    throughput.add_argument(
        "--load", type=Path, metavar="FILE", help="bincheck endpoint load's JSON: its capacity"
    )
    throughput.add_argument(
        "--invocations-per-minute", type=float, metavar="N", help="one instance's capacity"
    )
    option = parser.add_argument
    option(
        "--instance-type",
        metavar="TYPE",
        default=CONFIG.instance_type,
        help="the endpoint's (default: %(default)s)",
    )
    option(
        "--min-instances",
        metavar="N",
        type=int,
        default=CONFIG.min_instances,
        help=f"always on {_DEFAULT}",
    )
    option("--region", default="us-east-1", help=f"of the list prices {_DEFAULT}")
    option(
        "--lambda-ms",
        type=float,
        metavar="MS",
        help="the checker's time per photo, measured "
        f"(default: {cost.ESTIMATED_LAMBDA_MS:g}, an estimate)",
    )
    option(
        "--memory-mb",
        metavar="MB",
        type=int,
        default=CONFIG.function_memory_mb,
        help=f"the checker's {_DEFAULT}",
    )
    option(
        "--batch-size",
        metavar="N",
        type=int,
        default=CONFIG.batch_size,
        help=f"photos per invocation {_DEFAULT}",
    )
    option(
        "--alert-share",
        type=float,
        metavar="SHARE",
        default=cost.ASSUMED_ALERT_SHARE,
        help="share of checks published as alerts (default: %(default)s, assumed)",
    )
    option(
        "--review-share",
        type=float,
        metavar="SHARE",
        default=cost.ASSUMED_ALERT_SHARE,
        help="share of checks pending review and settled (default: %(default)s, assumed)",
    )
    training = parser.add_mutually_exclusive_group()
    training.add_argument(
        "--training-seconds", type=float, metavar="S", help="billable seconds of all jobs"
    )
    training.add_argument(
        "--jobs-json", type=Path, metavar="FILE", help="a list of DescribeTrainingJob responses"
    )
    option(
        "--training-instance-type",
        metavar="TYPE",
        default=RUN.instance_type,
        help=f"the jobs' {_DEFAULT}",
    )
    option("--json", type=Path, metavar="FILE", help="also write it all as JSON")
    parser.set_defaults(run=show_cost)


def show_cost(args: argparse.Namespace) -> int:
    table = json.loads(PRICES.read_text())
    prices = cost.Prices.from_table(table, args.region)
    ipm, throughput_note = _throughput(args)
    work = cost.Workload(
        invocations_per_minute=ipm,
        instance_type=args.instance_type,
        min_instances=args.min_instances,
        scaling_target_per_minute=CONFIG.invocations_per_instance,
        lambda_ms=cost.ESTIMATED_LAMBDA_MS if args.lambda_ms is None else args.lambda_ms,
        memory_mb=args.memory_mb,
        batch_size=args.batch_size,
        alert_share=args.alert_share,
        review_share=args.review_share,
    )
    result = cost.million_checks(work, prices)
    lambda_note = (
        "as given"
        if args.lambda_ms is not None
        else "estimate, not measured: pass --lambda-ms (CloudWatch Duration / batch size)"
    )
    notes = {"endpoint": throughput_note, "Lambda compute": lambda_note}
    lines = [
        replace(line, notes=f"{line.notes}; {notes[line.item]}") if line.item in notes else line
        for line in result.lines
    ]
    training, training_notes = _retraining(args, prices)

    print(f"A million checks: {prices.region} list prices as of {prices.as_of} (not fetched)")
    print()
    rows = [
        [ln.item, f"{_amount(ln.quantity)} {ln.unit}", f"{ln.usd:.3f}", ln.notes] for ln in lines
    ]
    rows.append(["total", "", f"{result.total_usd:.3f}", ""])
    print(format_table(["item", "per million checks", "$", "notes"], rows))
    print()
    print("\n".join(_endpoint_lines(work, result)))
    print(f"not counted: {NOT_COUNTED}")
    print()
    print("retraining run:")
    print("\n".join(f"  {note}" for note in training_notes))
    print(_format_retraining(training))

    if args.json:
        report = {
            "prices": {"as_of": prices.as_of, "region": prices.region, "source": table["source"]},
            "inputs": {
                **asdict(work),
                "throughput_source": throughput_note,
                "lambda_ms_source": lambda_note,
            },
            "lines": [asdict(line) for line in lines],
            "total_usd": result.total_usd,
            "endpoint_floor_usd_per_month": result.floor_usd_per_month,
            "checks_per_instance_month": result.checks_per_instance_month,
            "endpoint_at_scaling_target_usd": result.endpoint_at_target_usd,
            "not_counted": NOT_COUNTED,
            "retraining": {
                **asdict(training),
                "spot_saved_usd": training.spot_saved_usd,
                "notes": training_notes,
            },
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 0


def _endpoint_lines(work: cost.Workload, result: cost.MillionChecks) -> list[str]:
    """The always-on floor, and what auto scaling's target does to the endpoint line."""
    ipm, target = work.invocations_per_minute, work.scaling_target_per_minute
    said = [
        f"endpoint floor: {work.min_instances} x {work.instance_type} always on (min_instances)"
        f" x {cost.HOURS_PER_MONTH} h = ${result.floor_usd_per_month:,.2f} a month, whatever the"
        f" volume; one instance serves up to {result.checks_per_instance_month / 1e6:,.1f}"
        f" million checks a month at {ipm:,.0f}/min"
    ]
    if result.endpoint_at_target_usd is not None:
        said.append(
            f"auto scaling adds instances at {target:,.0f} invocations/min each"
            " (invocations_per_instance): above the floor the endpoint line is"
            f" ${result.endpoint_at_target_usd:.3f}, not ${result.lines[0].usd:.3f}"
        )
    elif target is not None and ipm < target:
        said.append(
            f"warning: capacity {ipm:,.0f}/min is below auto scaling's target of {target:,.0f}"
            " invocations/min per instance: instances saturate before another is added"
        )
    return said


def _throughput(args: argparse.Namespace) -> tuple[float, str]:
    """One instance's invocations per minute, and where that figure comes from."""
    priced = args.instance_type
    if args.invocations_per_minute is not None:
        given = args.invocations_per_minute
        return given, f"{given:,g}/min as given: an estimate unless measured on {priced}"
    if args.load is None:
        raise ValueError(
            "no throughput: pass --load FILE (bincheck endpoint load's JSON) "
            "or --invocations-per-minute N"
        )
    load = _read_json(args.load)
    capacity = load.get("capacity") if isinstance(load, dict) else None
    if not isinstance(load, dict) or "capacity" not in load:
        raise ValueError(f"{args.load}: not bincheck endpoint load's JSON (no capacity)")
    if capacity is None:
        raise ValueError(
            f"{args.load}: the load test found no capacity (capacity is null); "
            "pass --invocations-per-minute N instead"
        )
    ipm = capacity.get("invocations_per_minute") if isinstance(capacity, dict) else None
    if isinstance(ipm, bool) or not isinstance(ipm, int | float) or not ipm > 0:
        raise ValueError(f"{args.load}: capacity.invocations_per_minute is not a number > 0")
    # The load file names the endpoint, not its instance type; a url is a local server.
    if load.get("url"):
        where = f"estimate: measured on a local server ({load['url']}), not on {priced}"
    else:
        where = f"measured on {load.get('endpoint')}: an estimate unless it runs {priced}"
    measured = f"{ipm:,.0f}/min at concurrency {capacity.get('concurrency')}"
    if load.get("input"):
        measured += f", input {load['input']}"
    return float(ipm), f"{measured}, {where}"


def _retraining(
    args: argparse.Namespace, prices: cost.Prices
) -> tuple[cost.RetrainingCost, list[str]]:
    if args.jobs_json is not None:
        described = _read_json(args.jobs_json)
        if not isinstance(described, list):
            raise ValueError(f"{args.jobs_json}: expected a list of DescribeTrainingJob responses")
        jobs = [cost.TrainingJob.from_description(job) for job in described]
        rates = [
            f"{kind} ${prices.training(kind)}/h on demand{prices.caveat(kind)}"
            for kind in sorted({job.instance_type for job in jobs})
        ]
        return cost.retraining_from_jobs(jobs, prices), [
            f"{len(jobs)} jobs from {args.jobs_json}: {', '.join(rates)}",
            "spot bills BillableTimeInSeconds at the on-demand rate",
        ]
    kind = args.training_instance_type
    rate = f"{kind} ${prices.training(kind)}/h on demand{prices.caveat(kind)}"
    if args.training_seconds is not None:
        return cost.retraining_from_seconds(args.training_seconds, kind, prices), [
            f"{args.training_seconds:,g} billable s given, {rate}",
            "spot's saving unknown without TrainingTimeInSeconds (--jobs-json)",
        ]
    final = 0 if RUN.reuse_best_tuning_job else 1
    jobs = RUN.max_jobs + final
    return cost.retraining_upper_bound(
        jobs=jobs, max_runtime_s=RUN.max_runtime_s, instance_type=kind, prices=prices
    ), [
        f"no jobs given: an upper bound from the request defaults, {RUN.max_jobs} tuning"
        f" trials + {final} final job, each its whole max_runtime_s {RUN.max_runtime_s:,} s",
        rate,
        "early stopping and spot only lower it",
    ]


def _format_retraining(run: cost.RetrainingCost) -> str:
    rows = []
    if run.instance_hours_trained is not None and run.on_demand_usd is not None:
        rows.append(
            [
                "without spot (training time)",
                _amount(run.instance_hours_trained),
                f"{run.on_demand_usd:.2f}",
            ]
        )
    billed = "at most (upper bound)" if run.upper_bound else "billed (billable time)"
    rows.append([billed, _amount(run.instance_hours_billed), f"{run.billed_usd:.2f}"])
    saved = run.spot_saved_usd
    if saved is not None and run.on_demand_usd:
        share = f"{saved / run.on_demand_usd:.1%} of on demand"
        rows.append(["spot saved", "", f"{saved:.2f}", share])
    width = max(len(row) for row in rows)
    rows = [row + [""] * (width - len(row)) for row in rows]
    return format_table(["", "instance-h", "$", ""][:width], rows)


def _amount(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.3f}"


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not JSON ({error})") from error

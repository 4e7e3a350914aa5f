"""Load test of the local stack: 2,000 photo uploads, duplicates and endpoint faults; none lost.

1. Starts the local stack (moto server, the model server with the shipped model, checker
   workers), registers one bin per distinct photo (every 4th and 5th expected quantity wrong,
   as in the demo) and uploads ``--uploads`` real photos (``--distinct`` of them, reused) from
   ``--threads`` threads, like many robots at once.
2. Injects ``--duplicates`` copies of S3 notifications straight onto the queue (S3 delivers
   at least once), while the endpoint fails ``--fault-rate`` of its calls (throttling, 503,
   model 500), and a message goes to the DLQ after ``--max-receive-count`` receives.
3. Waits for the queue to drain, runs ``bincheck dlq redrive`` while the DLQ holds messages,
   and waits again, up to ``--rounds`` times.
4. Proves nothing was lost or doubled: every upload has exactly one check record, nothing
   else has one, and every MISMATCH/UNCERTAIN record had exactly one alert. Exits 1 if not.

Prints photos per second end to end (first upload to the last check), for the first pass
and including redrives, with what the endpoint and the workers saw.

    make bench-local                                   # the defaults below
    .venv/bin/python benchmarks/local_stack_load.py --uploads 500 --fault-rate 0
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tqdm import tqdm

from bincheck import cli
from bincheck.demo import AlertInbox, expected_quantity, read_checks, read_labels
from bincheck.local import s3_events
from bincheck.local.aws import client_environment
from bincheck.local.stack import LocalStack, StackOptions
from contract.bins import Bin
from lambdas.checker.adapters.bins import BinsTable

ALERTING = {"MISMATCH", "UNCERTAIN"}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=cli.SHARED / "data" / "abid")
    parser.add_argument("--distinct", type=int, default=200, help="distinct photos (and bins)")
    parser.add_argument("--uploads", type=int, default=2000)
    parser.add_argument("--duplicates", type=int, default=200, help="notifications sent twice")
    parser.add_argument("--fault-rate", type=float, default=0.2)
    parser.add_argument("--max-receive-count", type=int, default=2, help="deployed: 5")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=8, help="concurrent uploaders")
    parser.add_argument("--rounds", type=int, default=10, help="redrive rounds at most")
    parser.add_argument("--aws-port", type=int, default=5055)
    parser.add_argument("--model-port", type=int, default=8085)
    parser.add_argument("--log-dir", type=Path, default=Path("reports/load"))
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    labels = read_labels(args.photos, args.distinct)
    photos = {i: (args.photos / "images" / f"{i}.jpg").read_bytes() for i in labels}
    ids = list(labels)
    uploads = {
        f"bins/LOAD-{ids[n % len(ids)]}/u{n:05d}.jpg": ids[n % len(ids)]
        for n in range(args.uploads)
    }
    options = StackOptions(
        model=cli.DEFAULT_MODEL,
        aws_port=args.aws_port,
        model_port=args.model_port,
        workers=args.workers,
        fault_rate=args.fault_rate,
        max_receive_count=args.max_receive_count,
        log_dir=args.log_dir,
    )
    with LocalStack(options) as stack:
        os.environ.update(client_environment(stack.aws.url))  # for `bincheck dlq redrive`
        inbox = AlertInbox(stack)
        BinsTable(stack.names.bins_table, stack.client("dynamodb")).put_many(
            [Bin(f"LOAD-{i}", expected_quantity(n, labels[i])) for n, i in enumerate(ids)]
        )
        s3, bucket = stack.client("s3"), stack.names.bucket

        def put(key: str) -> tuple[str, str]:
            response = s3.put_object(Bucket=bucket, Key=key, Body=photos[uploads[key]])
            return key, response["ETag"]

        started = time.perf_counter()
        with ThreadPoolExecutor(args.threads) as pool:
            etags = dict(tqdm(pool.map(put, uploads), total=len(uploads), desc="upload"))
        uploaded_s = time.perf_counter() - started

        sqs = stack.client("sqs")
        chosen = random.Random(args.seed).sample(sorted(uploads), args.duplicates)
        for start in range(0, len(chosen), 10):
            sqs.send_message_batch(
                QueueUrl=stack.resources.queue_url,
                Entries=[
                    {
                        "Id": str(i),
                        "MessageBody": s3_events.object_created(
                            bucket, key, etag=etags[key], size=len(photos[uploads[key]]),
                            region="us-east-1",
                        ),
                    }
                    for i, key in enumerate(chosen[start : start + 10])
                ],
            )  # fmt: skip

        def settle(label: str) -> None:
            with tqdm(desc=label, unit="message") as bar:

                def update() -> None:
                    bar.update(stack.workers.received - stack.workers.failed - bar.n)

                stack.wait_until_settled(on_poll=update)  # fmt: skip

        settle("check")
        first_pass_s = time.perf_counter() - started
        dead_after_first_pass = stack.queue_depth(stack.resources.dead_letter_queue_url)
        rounds = redriven = 0
        while rounds < args.rounds and (
            dead := stack.queue_depth(stack.resources.dead_letter_queue_url)
        ):
            rounds += 1
            redriven += dead
            if cli.main(["dlq", "redrive", "--dlq", stack.resources.dead_letter_queue_url]):
                return 1
            settle(f"redrive {rounds}")
        total_s = time.perf_counter() - started

        checks = [c for c in read_checks(stack) if c["bin_id"].startswith("LOAD-")]
        alerts = inbox.drain()
        endpoint = stack.model.get("/stats")
        left_in_dlq = stack.queue_depth(stack.resources.dead_letter_queue_url)
        workers = (stack.workers.received, stack.workers.failed)

    per_upload = Counter(c["image_uri"].removeprefix(f"s3://{bucket}/") for c in checks)
    missing = [key for key in uploads if per_upload[key] == 0]
    doubled = [key for key, n in per_upload.items() if n > 1]
    strangers = [key for key in per_upload if key not in uploads]
    alerting = {c["image_uri"] for c in checks if c["status"] in ALERTING}
    alerted = Counter(a["image_uri"] for a in alerts if a["bin_id"].startswith("LOAD-"))
    alerts_ok = set(alerted) == alerting and all(n == 1 for n in alerted.values())

    faults = {k.removeprefix("fault_"): v for k, v in endpoint.items() if k.startswith("fault_")}
    statuses = dict(sorted(Counter(c["status"] for c in checks).items()))
    report = {
        "uploads": f"{len(uploads)} ({len(ids)} distinct photos from {args.photos}), "
        f"{len(uploads) / uploaded_s:.0f}/s from {args.threads} threads",
        "duplicates": f"{len(chosen)} notifications injected at the queue",
        "endpoint": f"{endpoint.get('invocations', 0)} calls, {sum(faults.values())} failed "
        f"on purpose {faults}; batch sizes {endpoint['batch_sizes']}",
        "checker": f"{workers[0]} messages received by {args.workers} workers, "
        f"{workers[1]} reported failed",
        "DLQ": f"{dead_after_first_pass} after the first pass (max receive count "
        f"{args.max_receive_count}); {redriven} redriven in {rounds} rounds; {left_in_dlq} left",
        "records": f"{len(checks)} for {len(uploads)} uploads: {len(missing)} missing, "
        f"{len(doubled)} doubled, {len(strangers)} unexpected",
        "statuses": str(statuses),
        "alerts": f"{sum(alerted.values())} for {len(alerting)} MISMATCH/UNCERTAIN records: "
        + ("one each" if alerts_ok else "NOT one each"),
        "end to end": f"{len(uploads) / first_pass_s:.1f} photos/s first pass "
        f"({first_pass_s:.1f} s), {len(uploads) / total_s:.1f} photos/s with redrives "
        f"({total_s:.1f} s)",
        "machine": f"{os.cpu_count()} CPUs",
    }
    print()
    for name, line in report.items():
        print(f"{name:<12} {line}")
    ok = not (missing or doubled or strangers or left_in_dlq) and alerts_ok
    print("PASS: every upload has exactly one check record" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

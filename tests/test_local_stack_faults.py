"""The local stack with an endpoint that fails on purpose: retries and redrive lose nothing.

A module of its own: one AWS emulation per process, and test_local_stack's is module-wide.
"""

from __future__ import annotations

from bincheck import dlq

from .conftest import sample_photo
from .test_local_stack import checks_of, set_bins, start, upload


def test_an_endpoint_failing_a_third_of_calls_loses_nothing(tmp_path):
    stack = start(tmp_path, fault_rate=0.33)
    try:
        set_bins(stack, {f"FLT-{i}": 2 for i in range(4)})
        keys = [f"bins/FLT-{i % 4}/c{i}.jpg" for i in range(24)]
        for key in keys:
            upload(stack, key, sample_photo())
        for _ in range(10):  # check, redrive what the DLQ holds, until all is checked
            stack.wait_until_settled(timeout_s=300)
            dead, queue = stack.resources.dead_letter_queue_url, stack.resources.queue_url
            if not dlq.redrive(stack.client("sqs"), dead, queue):
                break
        checks = checks_of(stack, "FLT-")
        assert sorted(c["image_uri"] for c in checks) == sorted(
            f"s3://bincheck-photos/{key}" for key in keys
        )
        faults = stack.model.get("/stats")
        assert sum(n for name, n in faults.items() if name.startswith("fault_")) > 0
    finally:
        stack.stop()

"""The local stack: the whole event path on one machine, AWS replaced by an emulation.

    moto server (S3, SQS + DLQ, DynamoDB, SNS)  <-- photos, bins, checks, alerts
    bincheck serve (the model, as the SageMaker container and endpoint)
    checker workers (the unchanged Lambda handler, fed from the queue as Lambda feeds it)

Names come from ``ResourceNames`` and tunables (receives before the DLQ, batch size,
function timeout, thresholds) from ``cdk.json``, as ``cdk deploy`` would use them.
"""

from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from contract.names import ResourceNames
from infra.config import BinCheckConfig

from .aws import REGION, AwsEmulation, client_environment, session
from .checker_workers import CheckerWorkers, WorkerOptions
from .model_server import ModelServer
from .ports import ensure_free
from .resources import Resources, provision

DEFAULT_NAMES = ResourceNames()


@dataclass(frozen=True)
class StackOptions:
    model: Path
    host: str = "127.0.0.1"
    aws_port: int = 5055
    model_port: int = 8085
    workers: int = 4
    fault_rate: float = 0.0  # share of endpoint calls that fail on purpose
    retry_delay_s: int = 2
    max_receive_count: int | None = None  # None: the deployed configuration's
    log_dir: Path = Path("reports/local-stack")


class LocalStack:
    def __init__(
        self,
        options: StackOptions,
        *,
        config: BinCheckConfig | None = None,
        names: ResourceNames = DEFAULT_NAMES,
    ) -> None:
        self.options = options
        self.config = config or BinCheckConfig.from_cdk_json()
        self.names = replace(names, endpoint=self.config.endpoint_name)
        self.aws = AwsEmulation(options.host, options.aws_port)
        self.session = session(REGION)
        self.resources: Resources | None = None
        self.model: ModelServer | None = None
        self.workers: CheckerWorkers | None = None

    def __enter__(self) -> LocalStack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def max_receive_count(self) -> int:
        return self.options.max_receive_count or self.config.max_receive_count

    def start(self) -> None:
        options = self.options
        # Both ports before anything starts; fresh logs for this run.
        ensure_free(options.host, options.aws_port, "--aws-port")
        ensure_free(options.host, options.model_port, "--model-port")
        options.log_dir.mkdir(parents=True, exist_ok=True)
        for log in ("checker.log", "model-server.log"):
            (options.log_dir / log).write_text("")
        self.aws.start()
        self.resources = provision(
            self.names,
            region=REGION,
            endpoint_url=self.aws.url,
            session=self.session,
            # AWS: six function timeouts, room for Lambda's own retries of a throttled
            # invocation. Here a batch never outlives one function timeout, and a lost receive
            # (moto can fail one under concurrent receivers) costs one timeout, not six.
            visibility_timeout_s=self.config.function_timeout_s,
            max_receive_count=self.max_receive_count,
        )
        aws_environment = {**os.environ, **client_environment(self.aws.url)}
        model_url = f"http://{options.host}:{options.model_port}"
        self.workers = CheckerWorkers(
            self.resources.queue_url,
            environment={
                **aws_environment,
                **self.resources.checker_environment(),
                **self.config.checker_environment(),
                "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": model_url,
                "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon here
            },
            log_path=options.log_dir / "checker.log",
            count=options.workers,
            options=WorkerOptions(
                batch_size=self.config.batch_size,
                function_timeout_s=self.config.function_timeout_s,
                retry_delay_s=options.retry_delay_s,
            ),
        )
        self.model = ModelServer(
            options.model,
            endpoint_name=self.names.endpoint,
            environment=aws_environment,
            log_path=options.log_dir / "model-server.log",
            host=options.host,
            port=options.model_port,
            fault_rate=options.fault_rate,
        )
        # Workers first: they start in parallel while the model server loads.
        self.workers.start()
        self.model.start()

    def stop(self) -> None:
        """Workers, then the model server, then the emulation; safe to call twice."""
        if self.workers is not None:
            self.workers.stop()
            self.workers = None
        if self.model is not None:
            self.model.stop()
            self.model = None
        self.aws.stop()

    def client(self, service: str) -> Any:
        return self.session.client(service, endpoint_url=self.aws.url)

    @functools.cached_property
    def _sqs(self) -> Any:
        """One client for the polling below: building one per poll costs more than the call."""
        return self.client("sqs")

    def queue_depth(self, queue_url: str) -> int:
        """Messages waiting, in flight or delayed."""
        attributes = self._sqs.get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        return sum(int(value) for value in attributes.values())

    def wait_until_settled(self, timeout_s: float = 3600, on_poll: Any = None) -> None:
        """Until every message on the queue was checked or went to the DLQ."""
        assert self.resources is not None and self.workers is not None
        deadline = time.monotonic() + timeout_s
        while self.queue_depth(self.resources.queue_url):
            if on_poll is not None:
                on_poll()
            if not self.workers.alive():
                raise RuntimeError(
                    f"the checker workers died; see {self.options.log_dir / 'checker.log'}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(f"the queue did not drain in {timeout_s:.0f} s")
            # Not faster: moto counts a queue's messages by scanning them all, and at
            # 4 polls a second that scan was half of its work under a 2,000-photo backlog.
            time.sleep(1)
        if on_poll is not None:
            on_poll()

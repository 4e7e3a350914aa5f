"""The local stack: the whole event path on one machine, AWS replaced by an emulation.

    moto server (S3, SQS + DLQ, DynamoDB, SNS, Cognito)  <-- photos, bins, checks, alerts
    bincheck serve (the model, as the SageMaker container and endpoint)
    checker workers (the unchanged Lambda handler, fed from the queue as Lambda feeds it)
    the review API (the unchanged review handler behind a local HTTP API and JWT
        authorizer, verifying the user pool's tokens), with a demo reviewer

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
from contract.review import REVIEW_API_ROUTES
from infra.config import BinCheckConfig

from .authorizer import JwtAuthorizer
from .aws import REGION, AwsEmulation, client_environment, session
from .checker_workers import CheckerWorkers, WorkerOptions
from .http_api import HttpApi
from .lambda_pool import LambdaPool
from .model_server import ModelServer
from .ports import ensure_free
from .resources import Resources, provision
from .user_pool import Reviewer, UserPool, add_reviewer, create_user_pool

REVIEW_HANDLER = "lambdas.review.handler:lambda_handler"
REVIEW_PAGE_ROUTE = "GET /"  # the review page: served without the authorizer
DEMO_REVIEWER = "reviewer"

DEFAULT_NAMES = ResourceNames()


@dataclass(frozen=True)
class StackOptions:
    model: Path
    host: str = "127.0.0.1"
    aws_port: int = 5055
    model_port: int = 8085
    review_port: int = 8087
    workers: int = 4
    review_workers: int = 2  # concurrent instances of the review function
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
        self.user_pool: UserPool | None = None
        self.reviewer: Reviewer | None = None
        self.review_api: HttpApi | None = None

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
        ensure_free(options.host, options.review_port, "--review-port")
        options.log_dir.mkdir(parents=True, exist_ok=True)
        for log in ("checker.log", "model-server.log", "review-api.log"):
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
        self._start_review_api(aws_environment)  # its function warms up while the model loads
        self.model.start()
        self.review_api.function.wait_warm()

    def _start_review_api(self, aws_environment: dict[str, str]) -> None:
        assert self.resources is not None
        cognito = self.client("cognito-idp")
        self.user_pool = create_user_pool(cognito, REGION)
        self.reviewer = add_reviewer(cognito, self.user_pool, DEMO_REVIEWER)
        function = LambdaPool(
            REVIEW_HANDLER,
            function_name="bincheck-review",
            environment={
                **aws_environment,
                **self.resources.review_environment(),
                **self._review_page_environment(),
                "POWERTOOLS_SERVICE_NAME": "bin-review",
                "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon here
            },
            log_path=self.options.log_dir / "review-api.log",
            workers=self.options.review_workers,
        )
        self.review_api = HttpApi(
            routes=REVIEW_API_ROUTES,
            public=(REVIEW_PAGE_ROUTE,),
            authorizer=JwtAuthorizer.for_user_pool(
                aws_url=self.aws.url,
                pool_id=self.user_pool.pool_id,
                client_id=self.user_pool.client_id,
                region=REGION,
            ),
            function=function,
            host=self.options.host,
            port=self.options.review_port,
        )
        self.review_api.start()

    def _review_page_environment(self) -> dict[str, str]:
        """The page signs in at the emulation's Cognito; photo links point at it too."""
        assert self.user_pool is not None
        return {
            "USER_POOL_ID": self.user_pool.pool_id,
            "USER_POOL_CLIENT_ID": self.user_pool.client_id,
            "COGNITO_ENDPOINT_URL": self.aws.url,
            "PHOTOS_ORIGIN": self.aws.url,
        }

    @property
    def review_page_url(self) -> str:
        assert self.review_api is not None
        return f"{self.review_api.url}/"

    def review_sign_in(self) -> str:
        """How a person reaches the review API: its URL, the demo reviewer, a token."""
        assert self.review_api is not None and self.user_pool and self.reviewer
        return (
            f"  review page at {self.review_page_url} (sign in there)\n"
            f"  review API at {self.review_api.url} (GET /checks, GET /checks/{{id}}, "
            "POST /checks/{id}/review)\n"
            f"  sign in as {self.reviewer.username!r}, password {self.reviewer.password!r}: "
            f"Cognito user pool {self.user_pool.pool_id}, app client "
            f"{self.user_pool.client_id}, USER_PASSWORD_AUTH or SRP"
        )

    def stop(self) -> None:
        """The review API, workers, the model server, then the emulation; safe to call
        twice."""
        if self.review_api is not None:
            self.review_api.stop()
            self.review_api = None
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

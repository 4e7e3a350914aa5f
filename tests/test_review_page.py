"""The review page: what ``GET /`` answers (no token, a strict Content-Security-Policy), and
the page in a real headless browser (Debian's chromium, driven by Selenium) on the local
stack: a first sign-in with a temporary password chooses a new one; sign in through the
emulated Cognito, settle checks with the keyboard, meet a check someone else settled first,
reach the empty queue, and sign in again when the token is refused. Each check is then read
back from the checks table."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest
import requests

from bincheck.commands.common import DEFAULT_MODEL
from bincheck.demo import read_checks
from bincheck.local.event_source import LocalLambdaContext
from bincheck.local.http_api import gateway_event
from bincheck.local.ports import free_port
from bincheck.local.stack import LocalStack, StackOptions
from bincheck.local.user_pool import UserPool, add_reviewer, sign_in
from contract.review import encode_check_ref
from lambdas.review import handler as review_handler
from lambdas.review.settings import ConfigurationError, PageSettings

from .conftest import sample_photo

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
needs_browser = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium "
    "chromium-driver) for a real headless browser",
)
PAGE_ENV = {
    "USER_POOL_ID": "eu-west-1_AbC123",
    "USER_POOL_CLIENT_ID": "1example23456789",
}
SCREENSHOT = Path("/tmp/review-page.png")
EXPECTED = 40  # never what the photo holds: every check waits for review
BINS = ("PAGE-1", "PAGE-2", "PAGE-3")


@pytest.fixture
def page_env(monkeypatch):
    for name, value in PAGE_ENV.items():
        monkeypatch.setenv(name, value)
    review_handler.get_page_settings.cache_clear()
    yield
    review_handler.get_page_settings.cache_clear()


def get(path: str, route_key: str) -> dict:
    """A request without a token, as the HTTP API hands it on (no authorizer claims)."""
    event = gateway_event(method="GET", target=path, headers={}, body=b"", route_key=route_key)
    return review_handler.lambda_handler(event, LocalLambdaContext(function_name="review"))


def sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def test_the_page_is_served_without_a_token_under_a_strict_policy(page_env):
    answer = get("/", "GET /")
    assert answer["statusCode"] == 200
    headers, html = answer["headers"], answer["body"]
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    policy = dict(d.split(" ", 1) for d in headers["Content-Security-Policy"].split("; "))
    [script] = re.findall(r"<script>(.*?)</script>", html, re.S)
    [style] = re.findall(r"<style>(.*?)</style>", html, re.S)
    assert policy == {
        "default-src": "'none'",
        "script-src": sha256(script),  # only the page's own script runs
        "style-src": sha256(style),
        "img-src": "https://*.s3.amazonaws.com https://*.s3.eu-west-1.amazonaws.com",
        "connect-src": "'self' https://cognito-idp.eu-west-1.amazonaws.com/",
        "base-uri": "'none'",
        "form-action": "'none'",
        "frame-ancestors": "'none'",
    }
    [config] = re.findall(r'<script type="application/json" id="config">(.*?)</script>', html)
    assert json.loads(config) == {
        "cognito_endpoint": "https://cognito-idp.eu-west-1.amazonaws.com/",
        "client_id": "1example23456789",
        "region": "eu-west-1",
        "api_base": "",
    }
    assert "http" not in html.replace(json.loads(config)["cognito_endpoint"], "").replace(
        "http://www.w3.org/2000/svg", ""
    ), "the page loads nothing from elsewhere"


def test_only_the_page_route_goes_without_a_token(page_env):
    # Behind any other route key (a catch-all with the authorizer), "/" needs a caller.
    answer = get("/", "$default")
    assert answer["statusCode"] == 401
    assert "no signed-in user" in json.loads(answer["body"])["error"]


def test_page_settings_name_every_problem():
    with pytest.raises(ConfigurationError) as refused:
        PageSettings.from_env({"USER_POOL_CLIENT_ID": "x y", "PHOTOS_ORIGIN": "javascript:1"})
    message = str(refused.value)
    for name in ("USER_POOL_ID", "USER_POOL_CLIENT_ID", "PHOTOS_ORIGIN"):
        assert name in message
    local = PageSettings.from_env(
        PAGE_ENV
        | {
            "COGNITO_ENDPOINT_URL": "http://127.0.0.1:5055",
            "PHOTOS_ORIGIN": "http://127.0.0.1:5055",
        }
    )
    assert (local.region, local.cognito_endpoint) == ("eu-west-1", "http://127.0.0.1:5055")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    running = LocalStack(
        StackOptions(
            model=DEFAULT_MODEL,
            aws_port=free_port(),
            model_port=free_port(),
            review_port=free_port(),
            workers=1,
            review_workers=2,
            log_dir=tmp_path_factory.mktemp("stack"),
        )
    ).__enter__()
    try:
        dynamodb, s3 = running.client("dynamodb"), running.client("s3")
        for bin_id in BINS:
            dynamodb.put_item(
                TableName=running.names.bins_table,
                Item={"bin_id": {"S": bin_id}, "expected_quantity": {"N": str(EXPECTED)}},
            )
            s3.put_object(
                Bucket=running.names.bucket, Key=f"bins/{bin_id}/c1.jpg", Body=sample_photo()
            )
        running.wait_until_settled(timeout_s=120)
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (dev extra)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.add_argument("--window-size=1400,900")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=webdriver.ChromeService(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def checks_by_bin(stack: LocalStack) -> dict[str, dict]:
    return {c["bin_id"]: c for c in read_checks(stack) if c["bin_id"] in BINS}


def text(browser, element_id: str) -> str:
    return browser.find_element("id", element_id).text


def visible(browser, element_id: str) -> bool:
    return browser.find_element("id", element_id).is_displayed()


def wait_for(browser, condition, what: str, timeout_s: float = 20):
    """Until ``condition()``; else fail with what the page says and shows."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(browser, timeout_s).until(lambda _: condition())
    except TimeoutException:
        browser.save_screenshot("/tmp/review-page-failure.png")
        logs = [entry["message"] for entry in browser.get_log("browser")]
        pytest.fail(
            f"no {what} after {timeout_s}s: the page says {text(browser, 'message')!r}; "
            f"console {logs}; screenshot /tmp/review-page-failure.png"
        )


def photo_loaded(browser) -> bool:
    return browser.execute_script(
        "const p = document.getElementById('photo'); return p.complete && p.naturalWidth > 0;"
    )


def keys(browser, *pressed: str) -> None:
    from selenium.webdriver import ActionChains

    ActionChains(browser).send_keys(*pressed).perform()


def user_status(cognito, pool: UserPool, username: str) -> str:
    return cognito.admin_get_user(UserPoolId=pool.pool_id, Username=username)["UserStatus"]


def type_into(browser, element_id: str, *typed: str) -> None:
    browser.find_element("id", element_id).send_keys(*typed)


@needs_browser
def test_a_new_reviewer_chooses_a_password_at_first_sign_in(stack, browser):
    """Runs before the queue is worked through: it settles nothing and signs out."""
    from selenium.webdriver.common.keys import Keys

    # As an administrator creates a reviewer: a temporary password, to be changed.
    username, temporary, chosen = "reviewer-new", "Temporary-pass-1", "Chosen-pass-2!"
    cognito = stack.client("cognito-idp")
    cognito.admin_create_user(
        UserPoolId=stack.user_pool.pool_id,
        Username=username,
        TemporaryPassword=temporary,
        MessageAction="SUPPRESS",
    )
    assert user_status(cognito, stack.user_pool, username) == "FORCE_CHANGE_PASSWORD"

    browser.get(stack.review_page_url)
    wait_for(browser, lambda: visible(browser, "sign-in"), "the sign-in form")
    type_into(browser, "username", username)
    type_into(browser, "password", temporary, Keys.ENTER)
    wait_for(browser, lambda: visible(browser, "new-password"), "the new-password form")
    assert not visible(browser, "sign-in") and not visible(browser, "sign-out")
    assert f"Choose a new password\nSigning in as {username}" in text(browser, "new-password")
    assert "temporary" in text(browser, "message")
    fresh = '#new-password input[type="password"][autocomplete="new-password"]'
    assert len(browser.find_elements("css selector", fresh)) == 2  # for password managers

    # The repeat differs: refused on the page, nothing sent.
    type_into(browser, "new-password-1", chosen)
    type_into(browser, "new-password-2", chosen + "x", Keys.ENTER)
    wait_for(browser, lambda: "passwords differ" in text(browser, "message"), "the mismatch")
    assert visible(browser, "new-password")
    assert user_status(cognito, stack.user_pool, username) == "FORCE_CHANGE_PASSWORD"

    # The pool's policy (12+ characters, four classes) refuses a short one: Cognito's reason.
    browser.find_element("id", "new-password-1").clear()
    type_into(browser, "new-password-1", "Short-1!")
    type_into(browser, "new-password-2", "Short-1!", Keys.ENTER)
    wait_for(browser, lambda: "password policy" in text(browser, "message"), "the policy")
    assert text(browser, "message").startswith("Choose another password: ")
    assert visible(browser, "new-password")
    assert user_status(cognito, stack.user_pool, username) == "FORCE_CHANGE_PASSWORD"

    # A good one, in the same sign-in (the refused one was cleared): signed in, the oldest
    # pending check on screen.
    type_into(browser, "new-password-1", chosen)
    type_into(browser, "new-password-2", chosen, Keys.ENTER)
    # (the review API's first answers: slow on a busy machine)
    wait_for(browser, lambda: visible(browser, "review"), "the first pending check", timeout_s=60)
    assert text(browser, "bin") in BINS and text(browser, "who") == username
    assert user_status(cognito, stack.user_pool, username) == "CONFIRMED"

    # Next time the new password signs in with no challenge.
    browser.find_element("id", "sign-out").click()
    wait_for(browser, lambda: visible(browser, "sign-in"), "the sign-in form again")
    type_into(browser, "password", chosen, Keys.ENTER)  # the user name is still filled in
    wait_for(browser, lambda: visible(browser, "review"), "the review view")
    assert not visible(browser, "new-password") and text(browser, "who") == username
    browser.find_element("id", "sign-out").click()
    wait_for(browser, lambda: visible(browser, "sign-in"), "signed out")


@needs_browser
def test_a_reviewer_works_through_the_queue_with_the_keyboard(stack, browser):
    from selenium.webdriver.common.keys import Keys

    assert {c["review_state"] for c in checks_by_bin(stack).values()} == {"PENDING"}
    page = requests.get(stack.review_page_url, timeout=30)  # no token needed
    assert page.status_code == 200
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]

    browser.get(stack.review_page_url)
    wait_for(browser, lambda: visible(browser, "sign-in"), "the sign-in form")
    browser.find_element("id", "username").send_keys(stack.reviewer.username)
    browser.find_element("id", "password").send_keys("Not-the-password-1", Keys.ENTER)
    wait_for(browser, lambda: "Wrong user name" in text(browser, "message"), "a refusal")

    browser.find_element("id", "password").send_keys(stack.reviewer.password, Keys.ENTER)
    wait_for(browser, lambda: visible(browser, "review"), "the first pending check")
    wait_for(browser, lambda: photo_loaded(browser), "the photo")
    first = text(browser, "bin")
    assert first in BINS and text(browser, "expected") == str(EXPECTED)
    bars = browser.find_elements("css selector", "#chart rect")
    assert len(bars) == len(checks_by_bin(stack)[first]["probabilities"])
    SCREENSHOT.write_bytes(browser.get_screenshot_as_png())

    # 3 counted, 40 expected: CONFIRMED.
    keys(browser, "3")
    assert "CONFIRMED" in text(browser, "answer")
    keys(browser, Keys.ENTER)
    wait_for(browser, lambda: f"Settled {first}" in text(browser, "message"), "the settlement")
    wait_for(browser, lambda: text(browser, "bin") not in ("", first), "the next check")
    wait_for(browser, lambda: photo_loaded(browser), "the next photo")
    second = text(browser, "bin")
    SCREENSHOT.write_bytes(browser.get_screenshot_as_png())

    # Two digits in a row make one count: 40 counted, 40 expected: a false alarm.
    keys(browser, "4", "0")
    assert "FALSE ALARM" in text(browser, "answer")
    keys(browser, Keys.ENTER)
    wait_for(browser, lambda: f"Settled {second}" in text(browser, "message"), "the settlement")
    wait_for(browser, lambda: text(browser, "bin") not in ("", second), "the third check")
    third = text(browser, "bin")

    # Another reviewer settles the third while it is on screen: the page says so, moves on.
    other = add_reviewer(stack.client("cognito-idp"), stack.user_pool, "reviewer-page-2")
    token = sign_in(stack.client("cognito-idp"), stack.user_pool, other)
    third_check = checks_by_bin(stack)[third]
    taken = requests.post(
        f"{stack.review_api.url}/checks/{encode_check_ref(third, third_check['check_id'])}/review",
        json={"reviewed_count": 7, "resolution": "CONFIRMED"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert taken.status_code == 200, taken.text
    keys(browser, "5", Keys.ENTER)
    wait_for(browser, lambda: visible(browser, "empty"), "the empty queue")
    assert f"Someone else settled {third} first" in text(browser, "message")
    assert "reviewer-page-2" in text(browser, "message")

    checks = checks_by_bin(stack)
    assert (checks[first]["reviewed_count"], checks[first]["resolution"]) == (3, "CONFIRMED")
    assert (checks[second]["reviewed_count"], checks[second]["resolution"]) == (40, "FALSE_ALARM")
    assert checks[third]["reviewer"] == other.username and checks[third]["reviewed_count"] == 7
    for bin_id in (first, second):
        assert checks[bin_id]["review_state"] == "REVIEWED"
        assert checks[bin_id]["reviewer"] == stack.reviewer.username

    # The network fails: the page says so; back online, Enter tries again.
    browser.set_network_conditions(offline=True, latency=0, throughput=0)
    keys(browser, "r")
    wait_for(
        browser, lambda: "Cannot reach the review API" in text(browser, "message"), "the outage"
    )
    browser.delete_network_conditions()
    keys(browser, Keys.ENTER)
    wait_for(browser, lambda: not visible(browser, "message"), "the retry")
    assert visible(browser, "empty")

    # A token the API refuses: back to the sign-in form, with the reason.
    browser.execute_script("sessionStorage.setItem('bincheck-review-token', 'not-a-token');")
    keys(browser, "r")
    wait_for(browser, lambda: visible(browser, "sign-in"), "the sign-in form again")
    assert "sign in again" in text(browser, "message")

"""The reviewers' Cognito user pool on the emulation: users created by an administrator only,
an app client without a secret (a browser page, the command line), a demo reviewer."""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from typing import Any

POOL_NAME = "bincheck-reviewers"
CLIENT_NAME = "bincheck-review"
PASSWORD_POLICY = {
    "MinimumLength": 12,
    "RequireUppercase": True,
    "RequireLowercase": True,
    "RequireNumbers": True,
    "RequireSymbols": True,
}


@dataclass(frozen=True)
class UserPool:
    pool_id: str
    client_id: str
    region: str

    @property
    def issuer(self) -> str:
        return f"https://cognito-idp.{self.region}.amazonaws.com/{self.pool_id}"


@dataclass(frozen=True)
class Reviewer:
    username: str
    password: str


def create_user_pool(cognito: Any, region: str) -> UserPool:
    pool = cognito.create_user_pool(
        PoolName=POOL_NAME,
        AdminCreateUserConfig={"AllowAdminCreateUserOnly": True},  # no self sign-up
        Policies={"PasswordPolicy": PASSWORD_POLICY},
    )["UserPool"]
    client = cognito.create_user_pool_client(
        UserPoolId=pool["Id"],
        ClientName=CLIENT_NAME,
        GenerateSecret=False,
        ExplicitAuthFlows=[
            "ALLOW_USER_SRP_AUTH",
            "ALLOW_USER_PASSWORD_AUTH",
            "ALLOW_REFRESH_TOKEN_AUTH",
        ],
    )["UserPoolClient"]
    return UserPool(pool["Id"], client["ClientId"], region)


def add_reviewer(cognito: Any, pool: UserPool, username: str) -> Reviewer:
    """A confirmed user with a fresh random password (the demo prints it)."""
    password = _password()
    cognito.admin_create_user(
        UserPoolId=pool.pool_id,
        Username=username,
        TemporaryPassword=password,
        MessageAction="SUPPRESS",
    )
    cognito.admin_set_user_password(
        UserPoolId=pool.pool_id, Username=username, Password=password, Permanent=True
    )
    return Reviewer(username, password)


def sign_in(cognito: Any, pool: UserPool, reviewer: Reviewer) -> str:
    """The reviewer's id token (what the review API's authorizer takes)."""
    result = cognito.initiate_auth(
        ClientId=pool.client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": reviewer.username, "PASSWORD": reviewer.password},
    )
    return result["AuthenticationResult"]["IdToken"]


def _password() -> str:
    """16 characters meeting the pool's policy: every class at least once."""
    classes = (string.ascii_uppercase, string.ascii_lowercase, string.digits, "!#%+-=?@^_")
    chosen = [secrets.choice(chars) for chars in classes]
    chosen += [secrets.choice("".join(classes)) for _ in range(16 - len(chosen))]
    secrets.SystemRandom().shuffle(chosen)
    return "".join(chosen)

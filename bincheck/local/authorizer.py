"""API Gateway's JWT authorizer, locally, for a Cognito user pool's tokens (moto's, which
are real RS256-signed JWTs with a JWKS at ``<endpoint>/<pool id>/.well-known/jwks.json``).

Checked as API Gateway does: the token from ``Authorization`` (``Bearer`` optional), its
signature against the pool's JWKS (by ``kid``, RS256 only), ``iss`` the pool, ``exp`` (and
``nbf``, ``iat`` when present), the audience: ``aud`` (id token) or ``client_id`` (access
token) the app client. Also ``token_use`` (``id`` or ``access``), which Cognito's own
guidance asks for. A refusal carries its reason as API Gateway's ``www-authenticate`` does.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

TOKEN_USES = ("id", "access")


class Unauthorized(Exception):
    """The request may not reach the function: API Gateway answers 401 itself."""


class JwtAuthorizer:
    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        jwks: Mapping[str, Any],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.keys = KeySet.import_key_set(dict(jwks))
        self.clock = clock

    @classmethod
    def for_user_pool(
        cls, *, aws_url: str, pool_id: str, client_id: str, region: str
    ) -> JwtAuthorizer:
        """The pool's keys from the emulation; the issuer as Cognito names it."""
        url = f"{aws_url}/{pool_id}/.well-known/jwks.json"
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (our emulation)
            jwks = json.loads(response.read())
        issuer = f"https://cognito-idp.{region}.amazonaws.com/{pool_id}"
        return cls(issuer=issuer, audience=client_id, jwks=jwks)

    def verify(self, authorization: str | None) -> dict[str, Any]:
        """The token's claims; ``Unauthorized`` (with the reason) if it is not acceptable."""
        if not authorization or not authorization.strip():
            raise Unauthorized("no token in the Authorization header")
        token = authorization.strip().removeprefix("Bearer ").strip()
        try:
            claims = jwt.decode(token, self.keys, algorithms=["RS256"]).claims
        except (JoseError, ValueError) as error:
            raise Unauthorized(f"the token is not a valid signed JWT: {error}") from error
        registry = jwt.JWTClaimsRegistry(
            now=int(self.clock()),
            iss={"essential": True, "value": self.issuer},
            exp={"essential": True},
            token_use={"essential": True, "values": list(TOKEN_USES)},
        )
        try:
            registry.validate(claims)
        except JoseError as error:
            raise Unauthorized(f"the token is refused: {error}") from error
        # An id token names the app client in aud, an access token in client_id.
        access = claims["token_use"] == "access"  # noqa: S105 (a claim, not a password)
        audience = claims.get("client_id" if access else "aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if self.audience not in audiences:
            raise Unauthorized("the token was issued for another app client")
        return claims


def gateway_claims(claims: Mapping[str, Any]) -> dict[str, str]:
    """Claims as API Gateway hands them to the function: every value a string, lists as
    ``[a b]``."""
    plain = {}
    for name, value in claims.items():
        if isinstance(value, list):
            plain[name] = "[" + " ".join(str(v) for v in value) + "]"
        elif isinstance(value, bool):
            plain[name] = str(value).lower()
        else:
            plain[name] = str(value)
    return plain

"""The review page (``GET /``): one HTML answer with its style, script and configuration
inline, under a Content-Security-Policy that allows exactly those (by hash), the review API
(this origin), Cognito's endpoint and the photos' origin; nothing else, no network beyond.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
from importlib import resources
from typing import Any

from ..settings import PageSettings

FILES = resources.files(__name__)


def _asset(name: str) -> str:
    return FILES.joinpath(name).read_text(encoding="utf-8")


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


@functools.cache
def _parts() -> tuple[str, str, str]:
    return _asset("index.html"), _asset("review.css"), _asset("review.js")


def page_config(settings: PageSettings) -> dict[str, Any]:
    """What the script reads: where to sign in, and the API (relative: this page's origin)."""
    return {
        "cognito_endpoint": settings.cognito_endpoint,
        "client_id": settings.client_id,
        "region": settings.region,
        "api_base": "",
    }


def render(settings: PageSettings) -> tuple[str, dict[str, str]]:
    """The page's HTML and the headers to send with it."""
    template, style, script = _parts()
    # JSON inside <script>: "<" escaped so no value can close the element.
    config = json.dumps(page_config(settings)).replace("<", "\\u003c")
    html = (
        template.replace("{{STYLE}}", style)
        .replace("{{SCRIPT}}", script)
        .replace("{{CONFIG}}", config)
    )
    policy = "; ".join(
        (
            "default-src 'none'",
            f"script-src {_sha256(script)}",
            f"style-src {_sha256(style)}",
            f"img-src {settings.photos_origin}",
            f"connect-src 'self' {settings.cognito_endpoint}",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        )
    )
    headers = {
        "Content-Type": "text/html; charset=utf-8",
        "Content-Security-Policy": policy,
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
    }
    return html, headers

"""A function's configuration from its environment: every problem collected, so a
misconfigured function says all that is wrong at once (``Environment.check``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

N = TypeVar("N", int, float)
TRUE, FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


class ConfigurationError(RuntimeError):
    pass


class Environment:
    """Reads settings from ``env``, noting each bad one and going on with its default."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []

    def text(self, name: str, default: str = "") -> str:
        return self.env.get(name, "").strip() or default

    def required(self, name: str) -> str:
        value = self.text(name)
        if not value:
            self.problems.append(f"{name} is required")
        return value

    def number(self, name: str, default: N, *, positive: bool = True, most: N | None = None) -> N:
        """Parsed as the default's type: an int setting takes whole numbers only."""
        text = self.text(name)
        if not text:
            return default
        try:
            value = type(default)(text)
        except ValueError:
            noun = "an integer" if isinstance(default, int) else "a number"
            self.problems.append(f"{name} must be {noun}, got {text!r}")
            return default
        if (positive and value <= 0) or (most is not None and value > most):
            bounds = [*(["> 0"] if positive else []), *([f"<= {most}"] if most is not None else [])]
            self.problems.append(f"{name} must be {' and '.join(bounds)}, got {text!r}")
        return value

    def flag(self, name: str, default: bool) -> bool:
        text = self.text(name).lower()
        if not text:
            return default
        if text not in TRUE + FALSE:
            self.problems.append(f"{name} must be true or false, got {text!r}")
        return text in TRUE

    def check(self, what: str) -> None:
        """Raise ``ConfigurationError`` naming every problem, if there is any."""
        if self.problems:
            raise ConfigurationError(f"{what} configuration: " + "; ".join(self.problems))

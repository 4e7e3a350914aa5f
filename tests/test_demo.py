"""The README's demo: the checker and the shipped model on the sample photos."""

from __future__ import annotations

import re

from bincheck.cli import main


def test_demo_checks_every_sample_photo_and_reports_alerts(capsys):
    assert main(["demo"]) == 0

    out = capsys.readouterr().out
    statuses = dict(
        re.findall(
            r"^(MATCH|MISMATCH|UNCERTAIN|STALE|UNKNOWN_BIN|INVALID_IMAGE)\s+(\d+)$", out, re.M
        )
    )
    # 7 photos reach the model; an unregistered bin and an empty upload do not.
    assert statuses["UNKNOWN_BIN"] == "1"
    assert statuses["INVALID_IMAGE"] == "1"
    assert sum(int(n) for n in statuses.values()) == 9
    assert "9 photos checked by model counter-lite0-ordinal-median" in out
    alerts = int(re.search(r"Alerts received on bincheck-alerts \((\d+)\)", out).group(1))
    assert alerts == int(statuses.get("MISMATCH", 0)) + int(statuses.get("UNCERTAIN", 0))

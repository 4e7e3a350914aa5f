"""The README's demo: the local stack, the shipped model and the sample photos."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from bincheck.cli import main
from bincheck.local.ports import free_port

from .conftest import default_model_card


class Rows(HTMLParser):
    """The report's table rows: (cells' text, has an inline thumbnail)."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[list[str], bool]] = []
        self._in_body = False

    def handle_starttag(self, tag, attrs):
        if tag == "tbody":
            self._in_body = True
        elif self._in_body and tag == "tr":
            self.rows.append(([], False))
        elif self._in_body and tag == "td":
            self.rows[-1][0].append("")
        elif self._in_body and tag == "img" and dict(attrs)["src"].startswith("data:image/jpeg"):
            self.rows[-1] = (self.rows[-1][0], True)

    def handle_endtag(self, tag):
        if tag == "tbody":
            self._in_body = False

    def handle_data(self, data):
        if self._in_body and self.rows and self.rows[-1][0]:
            self.rows[-1][0][-1] += data


def test_demo_checks_every_sample_photo_reports_alerts_and_writes_the_report(tmp_path, capsys):
    report = tmp_path / "report.html"
    code = main(
        [
            "demo",
            "--aws-port", str(free_port()),
            "--model-port", str(free_port()),
            "--review-port", str(free_port()),
            "--workers", "2",
            "--report", str(report),
            "--log-dir", str(tmp_path / "logs"),
        ]
    )  # fmt: skip

    assert code == 0
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
    assert f"9 photos checked by model {default_model_card()['version']}" in out
    alerts = int(re.search(r"Alerts received on bincheck-alerts \((\d+)\)", out).group(1))
    assert alerts == int(statuses.get("MISMATCH", 0)) + int(statuses.get("UNCERTAIN", 0))
    assert out.rstrip().endswith("local stack stopped")
    # The review page and the demo reviewer's sign-in, printed while the stack was up.
    page = re.search(r"review page at (http://127\.0\.0\.1:\d+/) \(sign in there\)", out)
    assert page, out
    assert re.search(r"sign in as 'reviewer', password '[^']{16}'", out)

    parser = Rows()
    parser.feed(report.read_text())
    assert len(parser.rows) == 9
    # Every photo but the empty one has its thumbnail.
    assert sum(thumbnail for _, thumbnail in parser.rows) == 8
    verdicts = [re.match(r"[A-Z_]+", cells[2]).group() for cells, _ in parser.rows]
    assert sorted(verdicts) == sorted(s for s, n in statuses.items() for _ in range(int(n)))
    assert sum(cells[6] == "sent" for cells, _ in parser.rows) == alerts

"""An HTML report of check records: one self-contained file (thumbnails inlined, no script).

For each photo: a thumbnail, the bin, the verdict, the expected quantity against the
model's count, and the probability the model gave the expected quantity, which is what the
verdict rests on (MATCH at or above the match threshold, MISMATCH at or below the mismatch
threshold, UNCERTAIN between).
"""

from __future__ import annotations

import base64
import io
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from html import escape
from typing import Any

THUMBNAIL_PX = 160
STATUS_ORDER = ("MISMATCH", "UNCERTAIN", "MATCH", "STALE", "UNKNOWN_BIN", "INVALID_IMAGE")
COLOURS = {
    "MATCH": "#1b7f3b",
    "MISMATCH": "#b3261e",
    "UNCERTAIN": "#a15c00",
    "STALE": "#5f6368",
    "UNKNOWN_BIN": "#5f6368",
    "INVALID_IMAGE": "#5f6368",
}

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #202124; }
h1 { font-size: 20px; margin: 0 0 4px; }
.meta { color: #5f6368; margin-bottom: 16px; }
.chips span { display: inline-block; padding: 4px 10px; margin: 0 6px 6px 0;
  border-radius: 12px; color: #fff; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid #e0e0e0;
  vertical-align: middle; }
th { background: #f1f3f4; position: sticky; top: 0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 140px; max-height: 110px; border-radius: 4px; display: block; }
.status { color: #fff; padding: 2px 8px; border-radius: 10px; font-size: 12px; }
.bar { width: 120px; height: 10px; background: #e8eaed; border-radius: 5px; }
.bar div { height: 10px; border-radius: 5px; }
.small { color: #5f6368; font-size: 12px; }
"""


def thumbnail(photo: bytes) -> str | None:
    """A small JPEG as a data URI, or None if the bytes are no image."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(photo)) as image:
            image.draft("RGB", (THUMBNAIL_PX, THUMBNAIL_PX))  # JPEG: decode reduced
            image = image.convert("RGB")
            image.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
            out = io.BytesIO()
            image.save(out, "JPEG", quality=75)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode()


def render(
    checks: Iterable[Mapping[str, Any]],
    *,
    alerted: set[str],
    read_photo: Callable[[str], bytes | None],
    title: str,
    subtitle: str,
    thresholds: tuple[float, float],
) -> str:
    """``alerted`` holds the image URIs that reached the alerts topic."""
    rows = sorted(
        checks,
        key=lambda c: (_rank(c["status"]), c["bin_id"], c.get("check_id", "")),
    )
    statuses = Counter(c["status"] for c in rows)
    chips = "".join(
        f'<span style="background:{COLOURS.get(s, "#5f6368")}">{escape(s)} {statuses[s]}</span>'
        for s in sorted(statuses, key=_rank)
    )
    match, mismatch = thresholds
    body = "\n".join(_row(c, c.get("image_uri", "") in alerted, read_photo) for c in rows)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<style>{STYLE}</style></head><body>
<h1>{escape(title)}</h1>
<div class="meta">{escape(subtitle)}<br>{len(rows)} checks, {len(alerted)} alerts.
MATCH when P(expected) &ge; {match:g}, MISMATCH when P(expected) &le; {mismatch:g},
UNCERTAIN between.</div>
<div class="chips">{chips}</div>
<table>
<thead><tr><th>Photo</th><th>Bin</th><th>Verdict</th><th>Expected</th><th>Counted</th>
<th>P(expected)</th><th>Alert</th><th>Model, latency</th></tr></thead>
<tbody>
{body}
</tbody></table></body></html>
"""


def _rank(status: str) -> int:
    return STATUS_ORDER.index(status) if status in STATUS_ORDER else len(STATUS_ORDER)


def _row(check: Mapping[str, Any], alerted: bool, read_photo: Callable[[str], bytes | None]):
    uri = check.get("image_uri", "")
    photo = read_photo(uri)
    preview = thumbnail(photo) if photo else None
    image = (
        f'<img src="{preview}" alt="{escape(uri)}">'
        if preview
        else '<span class="small">no preview</span>'
    )
    status = check["status"]
    probability = check.get("probability")
    if probability is None:
        chance = '<span class="small">&ndash;</span>'
    else:
        p = float(probability)
        chance = (
            f'<div class="bar"><div style="width:{p * 100:.0f}%;background:'
            f'{COLOURS.get(status, "#5f6368")}"></div></div>{p:.2f}'
        )
    detail = check.get("detail")
    model = check.get("model_version") or ""
    latency = check.get("latency_ms")
    capture = escape(check.get("capture_id", ""))
    return (
        f"<tr><td>{image}</td>"
        f'<td>{escape(check["bin_id"])}<div class="small">{capture}</div></td>'
        f'<td><span class="status" style="background:{COLOURS.get(status, "#5f6368")}">'
        f"{escape(status)}</span>"
        + (f'<div class="small">{escape(str(detail))}</div>' if detail else "")
        + "</td>"
        f'<td class="num">{_text(check.get("expected_quantity"))}</td>'
        f'<td class="num">{_text(check.get("predicted_count"))}</td>'
        f"<td>{chance}</td>"
        f"<td>{'sent' if alerted else ''}</td>"
        f'<td class="small">{escape(model)}'
        + (f"<br>{float(latency):.0f} ms" if latency is not None else "")
        + "</td></tr>"
    )


def _text(value: object) -> str:
    return "&ndash;" if value is None else escape(str(value))

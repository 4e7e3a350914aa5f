"""``bincheck evaluate``: how good a model is on labelled photos, and what it would alert.

Figures: accuracy, off-by-one accuracy, RMSE and MAE on counts 0-5 and on all counts, and a
confusion matrix. The alert table replays the checker's own decision rule (``judge``) for
two kinds of expected quantity: the true count (the warehouse system is right) and the
true count plus or minus one (it is wrong by one item, the hardest error to catch).
Suggested thresholds reach a target precision at the rate of wrong expectations given.
Each counts 0-5 figure comes with a 95% bootstrap interval; ``against`` scores a second
model on the same photos and gives the intervals of the differences.

The probabilities are judged as served (the card's temperature applied): their expected
calibration error, and the figures an operator sets the thresholds by
(``metrics.decision_figures``: auto-clear, catch-at-1%, AUROC, recommended thresholds) on
right quantities and one-item discrepancies, formed as ``score_expectations`` forms them.
"""

from __future__ import annotations

import bisect
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from contract.decision import CountPrediction, Status, Thresholds, judge
from model.artifact import read_artifact
from model.card import ModelCard
from model.predictor import Prediction, Predictor

from .calibration import ECE_BINS, expected_calibration_error
from .data import Example, read_labels, split
from .metrics import (
    DECISION_LABELS,
    bootstrap_intervals,
    confusion_matrix,
    count_metrics,
    decision_figures,
    paired_decision_differences,
)
from .paired import LABELS, compare, describe_differences, predict_photos
from .plots import save_confusion


@dataclass(frozen=True)
class Scored:
    """One photo and an expected quantity, with the model's probability for it."""

    p_expected: float
    expectation_right: bool


def evaluate_folder(
    model_path: Path,
    folder: Path,
    *,
    subset: str = "test",
    thresholds: Thresholds | None = None,
    target_precision: float = 0.9,
    wrong_rate: float = 0.05,
    fast: bool = False,
    decoding: str | None = None,
    batch_size: int = 32,
    workers: int = 0,
    against: Path | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``decoding`` overrides the card's, to compare decodings on the same weights;
    ``against`` is a second model, judged on the same photos as it comes; ``workers``
    processes decode the photos while the network runs."""
    thresholds = thresholds or Thresholds()
    model, card = read_artifact(model_path)
    if decoding:
        card = dataclasses.replace(card, decoding=decoding)
    split_seed = _split_seed(card)
    versus = read_artifact(against) if against is not None else None
    if versus is not None:
        other_seed = _split_seed(versus[1])
        if subset != "all" and other_seed != split_seed:
            raise ValueError(
                f"{against} was trained on another split (seed {other_seed}, not {split_seed}):"
                f" the {subset} photos are not held out for both models"
            )
    examples = read_labels(folder)
    if subset != "all":
        examples = split(examples, seed=split_seed)[subset]
    if not examples:
        raise ValueError(f"{folder} has no {subset} photos in the split of {card.version}")
    predictions = predict_photos(
        Predictor(model, card, fast=fast), folder, examples, batch_size, workers=workers
    )

    counts = torch.tensor([e.count for e in examples])
    predicted = torch.tensor([p.count for p in predictions])
    scored = score_expectations(examples, predictions)
    report: dict[str, Any] = {
        "model_version": card.version,
        "data": str(folder),
        "subset": subset,
        "photos": len(examples),
        "decoding": card.decoding,
        "metrics": count_metrics(predicted, counts, card.max_count),
        "intervals": bootstrap_intervals(predicted, counts, card.max_count),
        "confusion_matrix": confusion_matrix(predicted, counts, card.max_count).tolist(),
        "alerts": alert_table(examples, predictions, thresholds),
        "suggested_thresholds": suggest_thresholds(scored, target_precision, wrong_rate),
        "calibration": calibration_figures(predictions, counts, card),
        "decision_figures": decision_figures(
            [s.p_expected for s in scored if s.expectation_right],
            [s.p_expected for s in scored if not s.expectation_right],
        ),
    }
    if versus is not None:
        theirs = predict_photos(
            Predictor(*versus, fast=fast), folder, examples, batch_size, workers=workers
        )
        report["against"] = compare(
            predicted, torch.tensor([p.count for p in theirs]), counts, card, versus[1]
        )
        report["against"]["decision_difference"] = paired_decision_differences(
            expectations_by_photo(examples, predictions), expectations_by_photo(examples, theirs)
        )
    rows = [
        {"image_id": e.image_id, "true_count": e.count, **p.to_dict()}
        for e, p in zip(examples, predictions, strict=True)
    ]
    return report, rows


def _split_seed(card: ModelCard) -> int:
    """The seed that split the model's data folder: its test photos are held out."""
    return int(card.training.get("split_seed", 0))


def calibration_figures(
    predictions: list[Prediction], counts: torch.Tensor, card: ModelCard
) -> dict[str, Any]:
    """The served probabilities' top-label ECE, at the card's temperature."""
    probabilities = torch.tensor([p.probabilities for p in predictions])
    ece = expected_calibration_error(probabilities, counts.clamp(max=card.max_count))
    return {"temperature": card.temperature, "ece": round(ece, 4), "ece_bins": ECE_BINS}


def _decision_input(prediction: Prediction) -> CountPrediction:
    return CountPrediction.from_response(prediction.to_dict())


def alert_table(
    examples: list[Example], predictions: list[Prediction], thresholds: Thresholds
) -> dict[str, dict[str, float]]:
    """Share of MATCH / MISMATCH / UNCERTAIN verdicts for right and off-by-one expectations."""
    table: dict[str, list[Status]] = {"expected_is_true_count": [], "expected_off_by_one": []}
    for example, prediction in zip(examples, predictions, strict=True):
        decision_input = _decision_input(prediction)
        table["expected_is_true_count"].append(
            judge(example.count, decision_input, thresholds).status
        )
        for wrong in (example.count - 1, example.count + 1):
            if wrong >= 0:
                table["expected_off_by_one"].append(judge(wrong, decision_input, thresholds).status)
    return {
        case: {
            str(status): round(statuses.count(status) / max(1, len(statuses)), 4)
            for status in (Status.MATCH, Status.MISMATCH, Status.UNCERTAIN)
        }
        | {
            "n": len(statuses),
            "match_threshold": thresholds.match,
            "mismatch_threshold": thresholds.mismatch,
        }
        for case, statuses in table.items()
    }


def score_expectations(examples: list[Example], predictions: list[Prediction]) -> list[Scored]:
    scored = []
    for example, prediction in zip(examples, predictions, strict=True):
        decision_input = _decision_input(prediction)
        scored.append(Scored(decision_input.probability_of(example.count), True))
        for wrong in (example.count - 1, example.count + 1):
            if wrong >= 0 and min(wrong, decision_input.max_count) != min(
                example.count, decision_input.max_count
            ):
                scored.append(Scored(decision_input.probability_of(wrong), False))
    return scored


def expectations_by_photo(
    examples: list[Example], predictions: list[Prediction]
) -> list[list[tuple[float, bool]]]:
    """Each photo's ``(p(expected), expectation_right)`` pairs: its right quantity and its
    one-item discrepancies."""
    return [
        [(s.p_expected, s.expectation_right) for s in score_expectations([e], [p])]
        for e, p in zip(examples, predictions, strict=True)
    ]


def suggest_thresholds(scored: list[Scored], target: float, wrong_rate: float) -> dict[str, Any]:
    """Thresholds for a target: MISMATCH alerts right ``target`` of the time when a fraction
    ``wrong_rate`` of expected quantities is off by one (the loosest such threshold), and
    MATCH letting at most ``1 - target`` of off-by-one expectations through."""
    right = sorted(s.p_expected for s in scored if s.expectation_right)
    wrong = sorted(s.p_expected for s in scored if not s.expectation_right)
    result: dict[str, Any] = {"target_precision": target, "wrong_rate": wrong_rate}
    result["match"] = result["mismatch"] = None
    if not right or not wrong:
        return result

    def at_most(values: list[float], t: float) -> float:
        return bisect.bisect_right(values, t) / len(values)

    def at_least(values: list[float], t: float) -> float:
        return 1 - bisect.bisect_left(values, t) / len(values)

    candidates = sorted({round(v, 3) for v in right + wrong} | {0.0, 1.0})
    for t in candidates:  # MISMATCH when p <= t: the flagged wrong expectations are the catch
        caught = wrong_rate * at_most(wrong, t)
        false = (1 - wrong_rate) * at_most(right, t)
        if caught and caught / (caught + false) >= target:
            result["mismatch"] = {
                "threshold": t,
                "precision": round(caught / (caught + false), 4),
                "wrong_expectations_caught": round(at_most(wrong, t), 4),
            }
    # MATCH when p >= t: the lowest threshold that lets at most 1 - target of the
    # off-by-one expectations through unflagged (a high base rate of right expectations
    # makes MATCH "precise" at any threshold, so precision is the wrong yardstick here).
    for t in candidates:
        missed = at_least(wrong, t)
        if missed <= 1 - target:
            result["match"] = {
                "threshold": t,
                "wrong_expectations_accepted": round(missed, 4),
                "right_expectations_confirmed": round(at_least(right, t), 4),
            }
            break
    return result


def write_outputs(
    report: dict[str, Any],
    rows: list[dict[str, Any]],
    *,
    out: Path | None,
    predictions: Path | None,
    plot: Path | None,
) -> None:
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2))
    if predictions:
        predictions.parent.mkdir(parents=True, exist_ok=True)
        predictions.write_text("".join(json.dumps(row) + "\n" for row in rows))
    if plot:
        title = f"{report['model_version']}: {report['subset']} photos"
        save_confusion(plot, torch.tensor(report["confusion_matrix"]), title)


def summary(report: dict[str, Any]) -> str:
    m = report["metrics"]
    lines = [f"{report['model_version']}: {report['photos']} {report['subset']} photos"]
    for label, suffix in (("counts 0-5", ""), ("all counts", "_all")):
        if f"n{suffix}" in m:
            lines.append(
                f"  {label} ({int(m[f'n{suffix}'])} photos): "
                f"accuracy {m[f'accuracy{suffix}']:.3f}  off-by-one {m[f'off_by_one{suffix}']:.3f}"
                f"  RMSE {m[f'rmse{suffix}']:.3f}  MAE {m[f'mae{suffix}']:.3f}"
            )
    if report["intervals"]:
        lines.append(
            "  95% intervals, counts 0-5 (bootstrap over photos): "
            + "  ".join(
                f"{LABELS[name]} {low:.3f}-{high:.3f}"
                for name, (low, high) in report["intervals"].items()
            )
        )
    if "against" in report:
        versus = report["against"]
        lines.append(
            f"  minus {versus['model_version']} on the same photos, counts 0-5 (95% interval):"
        )
        lines.append(f"    {describe_differences(versus)}")
        if "decision_difference" in versus:
            lines.append(
                "    decision figures: "
                + "  ".join(
                    f"{DECISION_LABELS[name]} {d['value']:+.3f} "
                    f"({d['interval'][0]:+.3f} to {d['interval'][1]:+.3f})"
                    for name, d in versus["decision_difference"].items()
                )
            )
    lines.append("  verdicts at the configured thresholds:")
    for case, row in report["alerts"].items():
        lines.append(
            f"    {case:<24} MATCH {row['MATCH']:.3f}  MISMATCH {row['MISMATCH']:.3f}  "
            f"UNCERTAIN {row['UNCERTAIN']:.3f}  (n={row['n']})"
        )
    s = report["suggested_thresholds"]
    lines.append(
        f"  thresholds for {s['target_precision']:.0%} precision "
        f"when {s['wrong_rate']:.0%} of expected quantities are off by one:"
    )
    for name in ("match", "mismatch"):
        lines.append(f"    {name}: {s[name] or 'none reaches it'}")
    return "\n".join(lines + decision_summary(report))


def decision_summary(report: dict[str, Any]) -> list[str]:
    """The calibration and the figures an operator decides by, as summary lines."""
    c, d = report["calibration"], report["decision_figures"]
    lines = [
        f"  calibration: temperature {c['temperature']:.3f}, "
        f"ECE {c['ece']:.3f} ({c['ece_bins']} bins)",
        f"  right quantities (n={d['right_quantities']}) against one-item discrepancies "
        f"(n={d['one_item_discrepancies']}):",
    ]
    if d["auroc"] is None:
        return [*lines, "    none to compare"]
    cleared, caught = d["auto_clear"], d["catch_at_1pct"]
    lines += [
        f"    AUROC of 1 - p(expected): {d['auroc']:.3f}",
        f"    auto-clear {cleared['value']:.3f}: right quantities MATCH at match threshold "
        f"{_threshold(cleared['match_threshold'])} "
        f"(lets {cleared['discrepancies_matched']:.1%} of discrepancies through)",
        f"    catch-at-1% {caught['value']:.3f}: discrepancies MISMATCH at mismatch threshold "
        f"{_threshold(caught['mismatch_threshold'])} "
        f"(flags {caught['right_flagged']:.1%} of right quantities)",
    ]
    r = d["recommended_thresholds"]
    lines.append(
        f"    recommended: match {_threshold(r['match'])}, mismatch {_threshold(r['mismatch'])}"
    )
    if "right" in r:
        for name in ("right", "discrepancies"):
            shares = "  ".join(f"{status} {share:.3f}" for status, share in r[name].items())
            lines.append(f"      {name:<14} {shares}")
    if r["note"]:
        lines.append(f"      ({r['note']})")
    return lines


def _threshold(value: float | None) -> str:
    return "none" if value is None else f"{value:.4f}"

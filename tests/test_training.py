"""Training: data builder (moto S3), metrics line, resume after a kill, two-process DDP,
evaluation on real photos, the ordinal loss and the decodings."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import boto3
import pytest
import torch
from moto import mock_aws

from model.artifact import build_model, read_artifact, write_artifact
from model.counts import decode_counts
from training import abid
from training.data import Example, PhotoDataset, fits_in_memory, read_labels, split
from training.distributed import World
from training.engine import train_one_epoch, warmup_cosine
from training.evaluate import evaluate_folder
from training.losses import CountLoss, prior_matching_weights
from training.metrics import bootstrap_intervals
from training.train import card_from_args, ema_decay, get_args_parser, main

from .conftest import SAMPLE_COUNTS, SAMPLES

REPO = Path(__file__).resolve().parents[1]
THROUGHPUT = ("train_s", "samples_per_s", "data_wait_s", "data_wait_share")
# What a SageMaker tuning job's metric definitions match, one regex per figure.
HPO_REGEXES = {
    name: rf"\b{name}=([0-9.]+)"
    for name in (
        "train_loss",
        "val_loss",
        "val_accuracy",
        "val_off_by_one",
        "val_rmse",
        "val_mae",
        *THROUGHPUT,
    )
}
LINE = re.compile(
    r"^epoch=(\d+) train_loss=[0-9.]+ val_loss=[0-9.]+ val_accuracy=[0-9.]+ "
    r"val_off_by_one=[0-9.]+ val_rmse=[0-9.]+ val_mae=[0-9.]+ "
    r"train_s=[0-9.]+ samples_per_s=[0-9.]+ data_wait_s=[0-9.]+ data_wait_share=[0-9.]+$"
)


@pytest.fixture(scope="module")
def photos(split_photos) -> Path:
    """A small data folder of real photos: each sample photo four times, the split named
    in labels.csv as ``bincheck data abid`` writes it."""
    return split_photos


def tiny_run(photos: Path, out: Path, *extra: str) -> list[str]:
    return [
        "--data", str(photos), "--weights", "none", "--height", "32", "--width", "48",
        "--batch-size", "4", "--output-dir", str(out), "--version", "tiny", *extra,
    ]  # fmt: skip


def test_each_epoch_prints_the_metrics_line_and_writes_the_same_figures(photos, tmp_path, capsys):
    result = main(get_args_parser().parse_args(tiny_run(photos, tmp_path, "--epochs", "2")))

    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch=")]
    assert len(lines) == 2
    assert all(LINE.match(line) for line in lines), lines
    recorded = json.loads((tmp_path / "metrics.json").read_text())["epochs"]
    for line, figures in zip(lines, recorded, strict=True):
        for name, regex in HPO_REGEXES.items():
            assert float(re.search(regex, line).group(1)) == pytest.approx(figures[name], abs=1e-4)
    assert {"training_curves.png", "confusion_matrix.png", "model.tar.gz"} <= {
        p.name for p in tmp_path.iterdir()
    }
    assert result["best_epoch"] in (1, 2)
    assert set(result["test"]) >= {"accuracy", "off_by_one", "rmse", "mae", "accuracy_all"}
    low, high = result["test_intervals"]["accuracy"]  # how sure the figure is, on the card
    assert low <= result["test"]["accuracy"] <= high


def test_each_epoch_reports_photos_per_second_and_the_wait_for_data(photos, tmp_path, capsys):
    main(get_args_parser().parse_args(tiny_run(photos, tmp_path, "--epochs", "2")))

    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch=")]
    recorded = json.loads((tmp_path / "metrics.json").read_text())["epochs"]
    assert len(lines) == len(recorded) == 2
    for line, epoch in zip(lines, recorded, strict=True):
        # 14 training photos in batches of 4, the last incomplete one dropped: 12 an epoch.
        assert epoch["samples_per_s"] > 0
        assert epoch["samples_per_s"] * epoch["train_s"] == pytest.approx(12)
        assert 0 < epoch["data_wait_s"] < epoch["train_s"]
        assert 0 <= epoch["data_wait_share"] <= 1
        assert epoch["data_wait_share"] * epoch["train_s"] == pytest.approx(epoch["data_wait_s"])
        assert line.endswith(
            " ".join(f"{name}={epoch[name]:.4f}" for name in THROUGHPUT)
        )  # the same figures in the line, last


class _SlowPhotos(torch.utils.data.Dataset):
    """Photos that take ``delay_s`` each to load; counts the loads."""

    def __init__(self, size: int, delay_s: float) -> None:
        self.size, self.delay_s, self.loads = size, delay_s, 0

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        time.sleep(self.delay_s)
        self.loads += 1
        return torch.zeros(3, 4, 4), torch.tensor(index % 2)


class _SlowStep(torch.nn.Linear):
    """A step (forward) that takes ``delay_s``."""

    def __init__(self, delay_s: float) -> None:
        super().__init__(3 * 4 * 4, 2)
        self.delay_s = delay_s

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        time.sleep(self.delay_s)
        return super().forward(images.flatten(1))


@pytest.mark.parametrize("max_steps", [0, 2])
def test_the_wait_for_data_is_the_loaders_time_and_not_the_steps(max_steps):
    photos, model = _SlowPhotos(12, delay_s=0.02), _SlowStep(delay_s=0.1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

    epoch = train_one_epoch(
        model,
        torch.utils.data.DataLoader(photos, batch_size=4),
        optimizer,
        torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0),
        torch.amp.GradScaler("cuda", enabled=False),
        torch.nn.CrossEntropyLoss(),
        torch.device("cpu"),
        max_steps,
        World(),
    )

    batches = max_steps or 3
    assert epoch.photos == photos.loads == 4 * batches  # no batch loaded beyond the last
    assert epoch.data_wait_s >= 4 * batches * 0.02  # every load waited for
    assert epoch.seconds - epoch.data_wait_s >= batches * 0.1  # no step counted as waiting


def test_sagemaker_model_dir_gets_the_unpacked_artifact(photos, tmp_path):
    model_dir = tmp_path / "opt-ml-model"
    main(
        get_args_parser().parse_args(
            [*tiny_run(photos, tmp_path, "--epochs", "1"), "--model-dir", str(model_dir)]
        )
    )
    assert (model_dir / "model.pt").is_file()
    assert (model_dir / "code" / "inference.py").is_file()
    card = json.loads((model_dir / "model_card.json").read_text())
    assert card["version"] == "tiny"
    assert card["training"]["examples"] == {"train": 14, "val": 7, "test": 7}


def test_against_scores_the_production_model_on_the_same_test_photos(
    photos, model_artifact, tmp_path, capsys
):
    channel = tmp_path / "production"  # a SageMaker channel: a folder holding the artifact
    channel.mkdir()
    shutil.copy(model_artifact, channel / "fbb3cd56.gz")  # as the CDK app names its asset
    args = tiny_run(photos, tmp_path / "out", "--epochs", "1", "--against", str(channel))
    result = main(get_args_parser().parse_args(args))

    against = json.loads((tmp_path / "out" / "metrics.json").read_text())["against"]
    # The other model as `bincheck evaluate` scores it on the same 7 test photos, at its
    # own input size (96x128, not the run's 32x48).
    alone, _ = evaluate_folder(model_artifact, photos, subset="test")
    assert (against["model_version"], against["photos"]) == ("test-1", "test")
    assert against["metrics"] == alone["metrics"]
    for name, difference in against["difference"].items():
        gap = result["test"][name] - alone["metrics"][name]
        assert difference["value"] == pytest.approx(gap, abs=1e-4)
        assert difference["interval"][0] <= difference["value"] <= difference["interval"][1]
    assert "test, minus test-1: accuracy " in capsys.readouterr().out


def test_an_unreadable_model_to_compare_with_stops_the_run_before_training(
    photos, tmp_path, capsys
):
    broken = tmp_path / "model.tar.gz"
    broken.write_bytes(b"not a tarball")
    args = tiny_run(photos, tmp_path / "out", "--epochs", "1", "--against", str(broken))

    with pytest.raises(SystemExit, match=r"--against .*model.tar.gz: not a model artifact"):
        main(get_args_parser().parse_args(args))
    assert "epoch=" not in capsys.readouterr().out


def test_with_ema_the_averaged_weights_are_judged_and_shipped(photos, tmp_path):
    main(
        get_args_parser().parse_args(
            tiny_run(photos, tmp_path, "--epochs", "1", "--ema-decay", "0.5")
        )
    )

    saved = torch.load(tmp_path / "checkpoints" / "checkpoint.pt", weights_only=False)
    averaged = {
        k.removeprefix("module."): v for k, v in saved["ema"].items() if k.startswith("module.")
    }
    shipped, _ = read_artifact(tmp_path / "model.tar.gz")
    weight = "head.1.weight"
    assert torch.equal(shipped.state_dict()[weight], averaged[weight])
    # The average trails the trained weights: shipping the raw ones would differ.
    assert not torch.equal(averaged[weight], saved["model"][weight])
    assert saved["ema"]["n_averaged"].item() > 1


def test_the_weight_average_spans_epochs_whatever_the_data_sets_size():
    parse = get_args_parser().parse_args
    shared = 1425 // 32  # steps an epoch of the default model's training photos
    assert ema_decay(parse([]), shared) == pytest.approx(0.99, abs=2e-4)
    moderate = 324_735 // 32  # ABID's moderate split: the same 2.3 epochs, not 100 steps
    assert 1 / (1 - ema_decay(parse([]), moderate)) == pytest.approx(2.3 * moderate)
    assert ema_decay(parse(["--ema-decay", "0.5"]), moderate) == 0.5
    assert ema_decay(parse(["--ema-epochs", "0"]), shared) == 0


def test_a_frozen_backbone_keeps_its_weights_and_statistics_and_only_the_head_learns(
    photos, tmp_path
):
    args = get_args_parser().parse_args(
        tiny_run(photos, tmp_path, "--epochs", "2", "--freeze-backbone", "--ema-decay", "0")
    )
    torch.manual_seed(args.seed)  # as main() seeds before building the network
    untrained = build_model(card_from_args(args))

    main(args)

    shipped, _ = read_artifact(tmp_path / "model.tar.gz")
    before, after = untrained.state_dict(), shipped.state_dict()
    backbone = [k for k in before if k.startswith("backbone.")]
    assert any(k.endswith("running_mean") for k in backbone)  # statistics are checked too
    changed = [k for k in backbone if not torch.equal(before[k], after[k])]
    assert changed == []
    assert not torch.equal(before["head.1.weight"], after["head.1.weight"])


def test_probe_epochs_train_the_head_alone_first_then_the_backbone(photos, tmp_path):
    def backbone_after(epochs: int, out: Path) -> dict[str, torch.Tensor]:
        run = ["--epochs", str(epochs), "--probe-epochs", "1", "--ema-decay", "0"]
        main(get_args_parser().parse_args([*tiny_run(photos, out, *run), "--patience", "9"]))
        # The last epoch's weights: the shipped ones are the best epoch's.
        saved = torch.load(out / "checkpoints" / "checkpoint.pt", weights_only=False)
        return {k: v for k, v in saved["model"].items() if k.startswith("backbone.")}

    torch.manual_seed(0)
    untrained = build_model(card_from_args(get_args_parser().parse_args([])))
    initial = {k: v for k, v in untrained.state_dict().items() if k.startswith("backbone.")}
    after_probe = backbone_after(1, tmp_path / "one")
    after_both = backbone_after(2, tmp_path / "two")

    assert all(torch.equal(initial[k], after_probe[k]) for k in initial)
    assert not all(torch.equal(initial[k], after_both[k]) for k in initial)


def test_a_refit_trains_on_train_and_val_for_every_epoch_and_ships_the_last(
    photos, tmp_path, capsys
):
    # Patience 1 would stop a validated run early; a refit validates nothing and goes on.
    run = ["--epochs", "3", "--refit", "--patience", "1", "--ema-decay", "0"]
    result = main(get_args_parser().parse_args(tiny_run(photos, tmp_path, *run)))

    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch=")]
    assert [line.split()[0] for line in lines] == ["epoch=1", "epoch=2", "epoch=3"]
    refit_line = r"epoch=\d+ train_loss=[0-9.]+ " + " ".join(f"{n}=[0-9.]+" for n in THROUGHPUT)
    assert all(re.fullmatch(refit_line, line) for line in lines), lines
    card = read_artifact(tmp_path / "model.tar.gz")[1]
    assert card.training["examples"] == {"train": 14 + 7, "test": 7}
    assert card.metrics["best_epoch"] == 3 and "validation" not in card.metrics
    assert set(result["test"]) >= {"accuracy", "off_by_one", "rmse", "mae"}
    shipped = read_artifact(tmp_path / "model.tar.gz")[0].state_dict()
    last = torch.load(tmp_path / "checkpoints" / "checkpoint.pt", weights_only=False)["model"]
    assert all(torch.equal(shipped[k], last[k]) for k in shipped)


def test_a_refit_needs_test_photos_and_does_not_count_the_training_folder_twice(photos, tmp_path):
    train = ["--train", str(photos), "--refit", "--epochs", "1"]
    refused = (
        "no test photos: the folder is too small to split, or name the split of each photo in "
        "a 'split' column of labels.csv (a refit reports on test photos: pass --test)"
    )
    with pytest.raises(SystemExit, match=f"^{re.escape(refused)}$"):
        main(get_args_parser().parse_args(tiny_run(photos, tmp_path, *train)))

    main(get_args_parser().parse_args(tiny_run(photos, tmp_path, *train, "--test", str(photos))))
    card = read_artifact(tmp_path / "model.tar.gz")[1]
    assert card.training["examples"]["train"] == 28  # every photo of the folder, once


def test_photos_over_the_cache_budget_are_decoded_as_read_by_worker_processes(
    photos, tmp_path, capsys
):
    examples = read_labels(photos)
    cached = PhotoDataset(photos, examples, (32, 48), 6)
    streamed = PhotoDataset(photos, examples, (32, 48), 6, cache=False)
    assert streamed.images is None
    assert all(torch.equal(cached[i][0], streamed[i][0]) for i in range(len(examples)))
    assert fits_in_memory(1000, (240, 320), 0.25) and not fits_in_memory(1000, (240, 320), 0.2)

    run = ["--epochs", "1", "--cache-gb", "0", "--workers", "2"]
    result = main(get_args_parser().parse_args(tiny_run(photos, tmp_path, *run)))

    out = capsys.readouterr().out
    assert "28 photos over --cache-gb 0: decoded as they are read" in out
    assert LINE.match(next(line for line in out.splitlines() if line.startswith("epoch=")))
    assert set(result["test"]) >= {"accuracy", "rmse"}


def test_switches_take_a_value_as_sagemaker_passes_hyperparameters():
    parse = get_args_parser().parse_args
    assert parse(["--tta", "--freeze-backbone"]).freeze_backbone is True
    assert parse(["--tta", "True", "--freeze-backbone", "false"]).tta is True
    assert parse(["--freeze-backbone", "false"]).freeze_backbone is False
    assert parse([]).tta is False
    with pytest.raises(SystemExit):
        parse(["--tta", "maybe"])


def test_a_delayed_group_waits_then_warms_up_and_decays_with_the_rest():
    groups = [{"params": [torch.zeros(1, requires_grad=True)]} for _ in range(2)]
    optimizer = torch.optim.AdamW(groups, lr=1.0)
    scheduler = warmup_cosine(optimizer, warmup=2, total=10, starts=[0, 4])
    rates = []
    for _ in range(10):
        rates.append([group["lr"] for group in optimizer.param_groups])
        optimizer.step()
        scheduler.step()

    head, backbone = zip(*rates, strict=True)
    assert head[:3] == (0.5, 1.0, 1.0) and head[3] < 1.0
    assert backbone[:4] == (0.0, 0.0, 0.0, 0.0)
    assert backbone[4:6] == (0.5, 1.0)
    assert backbone[6] == 1.0 > backbone[7] > backbone[8] > backbone[9] > 0


def _train_process(args: list[str], **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "training.train", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        **kwargs,
    )


def test_a_killed_run_resumes_from_its_last_checkpoint(photos, tmp_path):
    args = tiny_run(photos, tmp_path, "--epochs", "4", "--patience", "100", "--ema-decay", "0.9")
    first = _train_process(args)
    seen = []
    for line in first.stdout:
        seen.append(line)
        if line.startswith("epoch=2 "):
            first.send_signal(signal.SIGKILL)  # a spot interruption: no clean shutdown
            break
    first.wait(timeout=60)
    assert first.returncode == -signal.SIGKILL
    assert not (tmp_path / "model.tar.gz").exists()

    second = _train_process(args)
    output = second.communicate(timeout=300)[0]

    assert second.returncode == 0, output
    assert "epoch 2 was the last completed" in output
    epochs = [int(m) for m in re.findall(r"^epoch=(\d+) ", output, re.M)]
    assert epochs == [3, 4]
    history = json.loads((tmp_path / "metrics.json").read_text())["epochs"]
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]
    assert (tmp_path / "model.tar.gz").is_file()


def test_two_processes_train_with_distributed_data_parallel(photos, tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
         "--master_addr", "127.0.0.1", "--master_port", str(port),
         "-m", "training.train",
         # The backbone is frozen in epoch 1 and trains in epoch 2: DDP is built twice.
         *tiny_run(photos, tmp_path, "--epochs", "2", "--probe-epochs", "1")],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "training on 2 process(es)" in result.stdout
    assert len(re.findall(r"^epoch=\d+ ", result.stdout, re.M)) == 2  # rank 0 reports
    assert (tmp_path / "model.tar.gz").is_file()


def test_evaluation_on_real_photos(model_artifact, tmp_path):
    import math

    from contract.decision import CountPrediction, Thresholds, judge
    from model.predictor import Predictor

    report, rows = evaluate_folder(model_artifact, SAMPLES, subset="all")

    assert report["photos"] == 7
    # Each row is what the model answers for its photo alone (the plain path).
    assert [(row["image_id"], row["true_count"]) for row in rows] == list(SAMPLE_COUNTS.items())
    predictor = Predictor(*read_artifact(model_artifact), fast=False)
    for row in rows:
        photo = (SAMPLES / "images" / f"{row['image_id']}.jpg").read_bytes()
        [answer] = predictor.predict([predictor.decode(photo)])
        assert row["count"] == answer.count
        assert row["probabilities"] == pytest.approx(answer.probabilities, abs=1e-5)

    # The figures, worked out here from those rows: counts 0-5 (one photo shows 12 items,
    # scored as "5 or more" in the _all figures).
    predicted = [row["count"] for row in rows]
    truth = [min(row["true_count"], 5) for row in rows]
    errors = [p - t for p, t in zip(predicted, truth, strict=True)]

    def figures(errors: list[int], suffix: str) -> dict[str, float]:
        n = len(errors)
        return {
            f"accuracy{suffix}": sum(e == 0 for e in errors) / n,
            f"off_by_one{suffix}": sum(abs(e) <= 1 for e in errors) / n,
            f"rmse{suffix}": math.sqrt(sum(e * e for e in errors) / n),
            f"mae{suffix}": sum(abs(e) for e in errors) / n,
            f"n{suffix}": n,
        }

    moderate = [e for e, row in zip(errors, rows, strict=True) if row["true_count"] <= 5]
    metrics = report["metrics"]
    assert metrics == pytest.approx(figures(moderate, "") | figures(errors, "_all"), abs=1e-6)
    assert metrics["n"] == 6
    confusion = [[0] * 6 for _ in range(6)]  # [true][predicted]
    for p, t in zip(predicted, truth, strict=True):
        confusion[t][p] += 1
    assert report["confusion_matrix"] == confusion

    # The alert shares: the checker's own rule on each row, right and off-by-one quantities.
    statuses: dict[str, list[str]] = {"expected_is_true_count": [], "expected_off_by_one": []}
    for row in rows:
        prediction, true_count = CountPrediction.from_response(row), row["true_count"]
        verdict = judge(true_count, prediction, Thresholds())
        statuses["expected_is_true_count"].append(verdict.status)
        for wrong in (true_count - 1, true_count + 1):
            if wrong >= 0:  # the empty bin has no -1
                verdict = judge(wrong, prediction, Thresholds())
                statuses["expected_off_by_one"].append(verdict.status)
    assert {case: len(s) for case, s in statuses.items()} == {
        "expected_is_true_count": 7,
        "expected_off_by_one": 13,
    }
    for case, verdicts in statuses.items():
        shares = report["alerts"][case]
        assert shares["n"] == len(verdicts)
        for status in ("MATCH", "MISMATCH", "UNCERTAIN"):
            assert shares[status] == pytest.approx(verdicts.count(status) / len(verdicts), abs=1e-4)
    low, high = report["intervals"]["accuracy"]
    assert low <= metrics["accuracy"] <= high


def test_evaluate_command_writes_report_predictions_and_plot(model_artifact, tmp_path, capsys):
    from bincheck.cli import main as bincheck

    code = bincheck([
        "evaluate", "--data", str(SAMPLES), "--model", str(model_artifact), "--subset", "all",
        "--out", str(tmp_path / "r.json"), "--predictions", str(tmp_path / "p.jsonl"),
        "--plot", str(tmp_path / "c.png"),
    ])  # fmt: skip
    assert code == 0
    assert "test-1: 7 all photos" in capsys.readouterr().out
    assert json.loads((tmp_path / "r.json").read_text())["photos"] == 7
    assert len((tmp_path / "p.jsonl").read_text().splitlines()) == 7
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


def test_evaluate_against_a_second_model_scores_both_on_the_same_photos(
    model_artifact, tmp_path, capsys
):
    from bincheck.cli import main as bincheck

    argmax = ["--decoding", "argmax"]  # the same weights decoded otherwise: a second model
    out = tmp_path / "r.json"
    code = bincheck([
        "evaluate", "--data", str(SAMPLES), "--model", str(model_artifact), "--subset", "all",
        *argmax, "--against", str(model_artifact), "--out", str(out),
    ])  # fmt: skip
    assert code == 0

    report = json.loads(out.read_text())
    alone, _ = evaluate_folder(model_artifact, SAMPLES, subset="all")
    assert report["against"]["metrics"] == alone["metrics"]
    for name, difference in report["against"]["difference"].items():
        gap = report["metrics"][name] - alone["metrics"][name]
        assert difference["value"] == pytest.approx(gap, abs=1e-4)
        assert difference["interval"][0] <= difference["value"] <= difference["interval"][1]
    decided = report["against"]["decision_difference"]
    assert set(decided) == {"auroc", "auto_clear", "catch_at_1pct"}
    # The same probabilities decoded otherwise: the decision figures cannot differ.
    assert {d["value"] for d in decided.values()} == {0.0}
    out = capsys.readouterr().out
    assert "minus test-1 on the same photos" in out
    assert "decision figures: AUROC +0.000 (+0.000 to +0.000)" in out


def test_evaluation_decodes_in_worker_processes_and_names_a_corrupt_photo(model_artifact, tmp_path):
    _, alone = evaluate_folder(model_artifact, SAMPLES, subset="all")
    _, rows = evaluate_folder(model_artifact, SAMPLES, subset="all", workers=2, batch_size=3)
    # The same photos in the same order, in batches of 3 across two workers.
    assert [(r["image_id"], r["count"]) for r in rows] == [
        (r["image_id"], r["count"]) for r in alone
    ]
    for row, single in zip(rows, alone, strict=True):
        assert row["probabilities"] == pytest.approx(single["probabilities"], abs=1e-5)

    photos = tmp_path / "photos"
    shutil.copytree(SAMPLES, photos)
    broken = sorted((photos / "images").glob("*.jpg"))[3]
    broken.write_bytes(broken.read_bytes()[:2000])  # cut short in upload
    with pytest.raises(ValueError, match=rf"{broken.name}: corrupt or truncated JPEG"):
        evaluate_folder(model_artifact, photos, subset="all", workers=2)


def test_evaluate_against_a_model_of_another_split_is_refused(model_artifact, tmp_path):
    model, card = read_artifact(model_artifact)
    other = tmp_path / "other.tar.gz"
    write_artifact(other, model, replace(card, training={**card.training, "split_seed": 1}))

    with pytest.raises(ValueError, match="another split"):
        evaluate_folder(model_artifact, SAMPLES, against=other)


def test_an_accuracy_interval_is_as_wide_as_the_photos_leave_it():
    truth = torch.arange(400) % 6
    half_right = torch.where(torch.arange(400) % 2 == 0, truth, (truth + 2) % 6)

    intervals = bootstrap_intervals(half_right, truth, max_count=6)

    low, high = intervals["accuracy"]
    assert low < 0.5 < high
    assert high - low == pytest.approx(2 * 1.96 * (0.25 / 400) ** 0.5, rel=0.15)  # binomial
    assert set(intervals) == {"accuracy", "off_by_one", "rmse", "mae"}
    assert intervals == bootstrap_intervals(half_right, truth, max_count=6)  # seeded


def test_a_paired_interval_tells_a_small_consistent_gain_from_the_luck_of_the_photos():
    truth = torch.arange(400) % 6
    baseline = torch.where(torch.arange(400) % 2 == 0, truth, (truth + 2) % 6)
    better = baseline.clone()
    better[1:40:2] = truth[1:40:2]  # 20 more photos right, none fewer: +0.05

    difference = bootstrap_intervals(better, truth, 6, baseline=baseline)["accuracy"]
    alone = [bootstrap_intervals(p, truth, 6)["accuracy"] for p in (better, baseline)]

    assert 0 < difference[0] < 0.05 < difference[1]
    assert alone[0][0] < alone[1][1]  # separate intervals overlap: they cannot tell
    assert bootstrap_intervals(baseline, truth, 6, baseline=baseline)["accuracy"] == (0, 0)


def test_ordinal_loss_costs_near_misses_less_than_far_ones():
    loss = CountLoss("ordinal", 6)
    target = torch.tensor([3])
    near = torch.full((1, 6), -5.0).index_fill(1, torch.tensor([4]), 5.0)
    far = torch.full((1, 6), -5.0).index_fill(1, torch.tensor([0]), 5.0)
    right = torch.full((1, 6), -5.0).index_fill(1, torch.tensor([3]), 5.0)
    assert loss(right, target) < loss(near, target) < loss(far, target)
    plain = CountLoss("ce", 6)
    assert plain(near, target) == pytest.approx(plain(far, target).item())


def test_with_sigma_0_the_ordinal_loss_is_lowest_for_the_true_distribution():
    # A photo that is a 3 half the time and a 4 the other half: a proper scoring rule is
    # lowest at (0.5, 0.5); the Gaussian targets' loss prefers a spread the photos never show.
    targets = torch.tensor([3, 4])

    def loss_at(kind: CountLoss, probabilities: list[float]) -> float:
        logits = torch.tensor(probabilities).clamp(min=1e-9).log().expand(2, -1)
        return kind(logits, targets).item()

    true = [0.0, 0.0, 0.0, 0.5, 0.5, 0.0]
    spread = [0.0, 0.0, 0.1, 0.4, 0.4, 0.1]
    hard, soft = CountLoss("ordinal", 6, sigma=0), CountLoss("ordinal", 6)
    assert loss_at(hard, true) < loss_at(hard, spread)
    assert loss_at(soft, spread) < loss_at(soft, true)
    # Still ordinal: a near miss costs less than a far one.
    near = torch.full((1, 6), -5.0).index_fill(1, torch.tensor([4]), 5.0)
    far = torch.full((1, 6), -5.0).index_fill(1, torch.tensor([0]), 5.0)
    assert hard(near, torch.tensor([3])) < hard(far, torch.tensor([3]))
    with pytest.raises(ValueError, match="sigma"):
        CountLoss("ordinal", 6, sigma=-1)


def test_prior_matching_weights_give_the_trained_photos_the_main_photos_mix():
    main = torch.tensor([1, 1, 1, 2])  # 3/4 ones, 1/4 twos, no three
    extra = torch.tensor([2, 2, 2, 3, 3, 3])
    trained = torch.cat([main, extra])
    weights = prior_matching_weights(trained, main, 4)
    weighed = torch.bincount(trained, weights[trained], minlength=4)
    assert (weighed / weighed.sum()).tolist() == pytest.approx([0, 0.75, 0.25, 0])
    assert weights[3] == 0  # a count the main photos never show
    assert (weights[trained]).mean() == pytest.approx(1)


def test_the_best_epoch_is_the_highest_accuracy_or_the_lowest_loss():
    from training.train import _better

    lower_loss = {"val_accuracy": 0.40, "val_rmse": 1.1, "val_loss": 1.9}
    higher_accuracy = {"val_accuracy": 0.42, "val_rmse": 1.1, "val_loss": 2.0}
    assert _better(higher_accuracy, lower_loss, "accuracy")
    assert _better(lower_loss, higher_accuracy, "loss")
    assert get_args_parser().parse_args(["--select", "loss"]).select == "loss"


def test_median_decoding_and_argmax_differ_where_mass_is_spread():
    probabilities = torch.tensor(
        [[0.3, 0.0, 0.0, 0.25, 0.25, 0.2], [0.1, 0.6, 0.1, 0.1, 0.05, 0.05]]
    )
    assert decode_counts(probabilities, "argmax").tolist() == [0, 1]
    assert decode_counts(probabilities, "median").tolist() == [3, 1]


def test_split_is_stratified_and_stable():
    examples = [Example(f"{i:05d}", i % 4) for i in range(200)]
    parts = split(examples)
    sizes = [len(parts[name]) for name in ("train", "val", "test")]
    assert sizes == [140, 32, 28]  # 35 / 8 / 7 of each count's 50
    assert {e.count for e in parts["test"]} == {0, 1, 2, 3}
    shuffled = split(list(reversed(examples)))  # the order of labels.csv does not matter
    assert all({e.image_id for e in shuffled[n]} == {e.image_id for e in parts[n]} for n in parts)


@pytest.fixture
def abid_bucket():
    """moto S3 holding real ABID photos and metadata, one photo missing, one corrupt."""
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=abid.BUCKET)
        # Like the real dataset: anyone may list and read, which unsigned requests rely on.
        public_read = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": ["s3:GetObject", "s3:ListBucket"],
                    "Resource": [f"arn:aws:s3:::{abid.BUCKET}", f"arn:aws:s3:::{abid.BUCKET}/*"],
                }
            ],
        }
        s3.put_bucket_policy(Bucket=abid.BUCKET, Policy=json.dumps(public_read))
        for image_id, count in SAMPLE_COUNTS.items():
            data = (SAMPLES / "images" / f"{image_id}.jpg").read_bytes()
            if image_id == "00487":
                data = data[: len(data) // 3]  # truncated upload
            if image_id != "08155":  # never uploaded
                s3.put_object(Bucket=abid.BUCKET, Key=f"bin-images/{image_id}.jpg", Body=data)
            metadata = json.dumps({"EXPECTED_QUANTITY": count, "BIN_FCSKU_DATA": {}})
            s3.put_object(Bucket=abid.BUCKET, Key=f"metadata/{image_id}.json", Body=metadata)
        yield s3


def test_abid_builder_downloads_splits_and_reports_bad_objects(abid_bucket, tmp_path):
    moderate = tmp_path / "moderate"
    moderate.mkdir()
    ids = sorted(SAMPLE_COUNTS)
    (moderate / "train.csv").write_text(
        "image_id,count\n" + "".join(f"{i},{SAMPLE_COUNTS[i]}\n" for i in ids if i != "00579")
    )
    (moderate / "val.csv").write_text("image_id,count\n00579,3\n")
    out = tmp_path / "abid"
    client = abid.s3_client()

    report = abid.build(client, out, abid.moderate_split(moderate), progress=False)

    assert (report.selected, report.downloaded, report.kept) == (7, 5, 0)
    assert report.missing == ["08155"]
    assert report.corrupt == ["00487"]
    labels = list(csv.DictReader((out / "labels.csv").read_text().splitlines()))
    assert {row["image_id"] for row in labels} == set(ids) - {"08155", "00487"}
    assert {row["image_id"]: row["split"] for row in labels}["00579"] == "test"  # official val
    assert (out / "metadata" / "00047.json").is_file()
    assert [e.split for e in read_labels(out)].count("test") == 1

    again = abid.build(client, out, abid.moderate_split(moderate), progress=False)
    assert (again.downloaded, again.kept) == (0, 5)  # resumed: nothing fetched twice


def test_abid_count_range_fills_quotas_from_metadata(abid_bucket, tmp_path):
    client = abid.s3_client()
    chosen = abid.scan_counts(
        client, abid.BUCKET, abid.listed_ids(client, abid.BUCKET), range(1, 4), 1, 4
    )
    assert sorted((e.count, e.image_id) for e in chosen) == [
        (1, "08128"),
        (2, "08155"),
        (3, "00579"),
    ]


def test_bincheck_train_hands_its_arguments_to_the_training_script(capsys, monkeypatch, tmp_path):
    from bincheck.cli import main as bincheck
    from training.train import get_args_parser as script_parser

    with pytest.raises(SystemExit) as done:
        bincheck(["train", "--help"])
    assert done.value.code == 0
    usage = capsys.readouterr().out
    assert usage.startswith("usage: bincheck train")
    assert "--loss {ce,ordinal}" in usage

    received = []
    monkeypatch.setattr("training.train.main", received.append)
    arguments = [
        *("--data", str(tmp_path / "photos"), "--output-dir", str(tmp_path / "out")),
        *("--epochs", "3", "--lr", "0.02", "--loss", "ce", "--max-count", "5"),
        *("--freeze-backbone", "--version", "v-args", "--split-seed", "7"),
    ]
    assert bincheck(["train", *arguments]) == 0
    [args] = received
    assert args.data == tmp_path / "photos"
    assert args.output_dir == tmp_path / "out"
    assert (args.epochs, args.lr, args.loss, args.max_count) == (3, 0.02, "ce", 5)
    assert (args.freeze_backbone, args.version, args.split_seed) == (True, "v-args", 7)
    # Every option, given or defaulted, as the training script itself parses them.
    assert vars(args) == vars(script_parser().parse_args(arguments))


def test_a_job_resumes_only_its_own_checkpoint(tmp_path):
    from training.checkpoint import load_checkpoint, save_checkpoint

    save_checkpoint(tmp_path, {"state": {"epoch": 3}, "job": "trial-001"})
    # A spot restart of the same job resumes; another tuning trial sharing the folder
    # starts fresh; a run outside SageMaker (no job name) takes what is there.
    assert load_checkpoint(tmp_path, job="trial-001")["state"] == {"epoch": 3}
    assert load_checkpoint(tmp_path, job="trial-002") is None
    assert load_checkpoint(tmp_path)["state"] == {"epoch": 3}


def test_on_sagemaker_each_job_keeps_its_checkpoints_in_a_folder_of_its_own(tmp_path, monkeypatch):
    from training.checkpoint import load_checkpoint, save_checkpoint
    from training.train import checkpoint_folder

    shared = tmp_path / "opt" / "ml" / "checkpoints"  # one S3 folder for every trial
    shared.parent.mkdir(parents=True)
    for trial, epoch in (("trial-001", 3), ("trial-002", 5)):
        monkeypatch.setenv("TRAINING_JOB_NAME", trial)
        save_checkpoint(checkpoint_folder(tmp_path / "out", shared), {"state": epoch, "job": trial})
    monkeypatch.setenv("TRAINING_JOB_NAME", "trial-001")  # a spot restart of the first
    assert load_checkpoint(checkpoint_folder(tmp_path / "out", shared))["state"] == 3

    monkeypatch.delenv("TRAINING_JOB_NAME")
    assert checkpoint_folder(tmp_path / "out", shared) == shared
    assert checkpoint_folder(tmp_path / "out", tmp_path / "none" / "x") == (
        tmp_path / "out" / "checkpoints"
    )  # not on SageMaker


@pytest.fixture(scope="module")
def extra_photos(tmp_path_factory) -> Path:
    """An extra training folder whose ids are those of the ``photos`` folder's validation and
    test photos (``2<id>``, ``3<id>``) and some of its own (``x<id>``), each another sample
    photo with another count, and a split column that claims validation and test."""
    folder = tmp_path_factory.mktemp("extra")
    (folder / "images").mkdir()
    ids = list(SAMPLE_COUNTS)
    rows = []
    for prefix, role in (("2", "val"), ("3", "test"), ("x", "train")):
        for index, image_id in enumerate(ids):
            other = ids[(index + 1) % len(ids)]  # not the photo the main folder has
            shutil.copy(
                SAMPLES / "images" / f"{other}.jpg", folder / "images" / f"{prefix}{image_id}.jpg"
            )
            rows.append(f"{prefix}{image_id},{SAMPLE_COUNTS[image_id] + 10},{role}")
    (folder / "labels.csv").write_text("image_id,count,split\n" + "\n".join(rows) + "\n")
    return folder


def _examples(dataset) -> list[tuple[str, str, int]]:
    """(folder, id, count) of every photo of a PhotoDataset or of PhotoDatasets concatenated."""
    if isinstance(dataset, torch.utils.data.ConcatDataset):
        return [e for part in dataset.datasets for e in _examples(part)]
    return [(str(dataset.folder), e.image_id, e.count) for e in dataset.examples]


@pytest.mark.parametrize("refit", [False, True])
def test_extra_training_folders_are_trained_on_and_never_validated_or_tested_on(
    photos, extra_photos, tmp_path, refit
):
    from training.data import photos_by_folder, targets_of
    from training.train import load_data

    args = get_args_parser().parse_args(
        tiny_run(photos, tmp_path, "--extra-train", str(extra_photos), *(["--refit"] * refit))
    )
    sets = load_data(args, card_from_args(args))

    main_parts = split(read_labels(photos))
    extra = [(str(extra_photos), e.image_id, e.count) for e in read_labels(extra_photos)]
    assert len(extra) == 21
    held_out = ("test",) if refit else ("val", "test")
    trained = ("train", "val") if refit else ("train",)
    for name in held_out:  # the main folder's split, exactly: no photo of the extra folder
        assert _examples(sets[name]) == [
            (str(photos), e.image_id, e.count) for e in main_parts[name]
        ]
    assert set(sets) == {"train", *held_out}
    main_trained = [(str(photos), e.image_id, e.count) for n in trained for e in main_parts[n]]
    assert _examples(sets["train"]) == main_trained + extra
    assert photos_by_folder(sets["train"]) == {
        str(photos): len(main_trained),
        str(extra_photos): 21,
    }
    # The classes (class weights) cover every training photo; the extra counts are 10 more.
    assert targets_of(sets["train"]).tolist() == [min(c, 6) for _, _, c in main_trained + extra]
    # A clashing id is the extra folder's own photo in training, the main one's in validation.
    clash = next(i for i, (_, image_id, _) in enumerate(extra) if image_id.startswith("3"))
    extra_image = sets["train"].datasets[-1].images[clash]
    test_set = sets["test"]
    main_image = test_set.images[[e.image_id for e in test_set.examples].index(extra[clash][1])]
    assert not torch.equal(extra_image, main_image)


@pytest.mark.parametrize("extra_prior", ["main", "own"])
def test_extra_photos_weigh_as_the_main_folders_mix_of_counts_unless_told_otherwise(
    photos, extra_photos, tmp_path, extra_prior
):
    from training.data import targets_of
    from training.train import class_weights_for, load_data

    run = tiny_run(photos, tmp_path, "--extra-train", str(extra_photos), "--class-balance", "0")
    args = get_args_parser().parse_args([*run, "--extra-prior", extra_prior])
    trained = load_data(args, card_from_args(args))["train"]
    weights = class_weights_for(trained, args)
    targets = targets_of(trained)
    weighed = torch.bincount(targets, weights[targets], minlength=7)
    main = torch.bincount(targets_of(trained, leaving_out=[extra_photos]), minlength=7)
    mix = main if extra_prior == "main" else torch.bincount(targets, minlength=7)
    # The extra folder's counts are 10 more than the main folder's: all "6 or more".
    assert (weighed / weighed.sum()).tolist() == pytest.approx((mix / mix.sum()).tolist())
    assert (weights[6] < 1) == (extra_prior == "main")  # the extra photos' count, weighed down


def test_the_photo_cache_budget_counts_the_extra_training_photos(photos, extra_photos, tmp_path):
    from training.data import is_cached
    from training.train import load_data

    per_photo = 3 * 32 * 48
    budget = f"{(28 + 10) * per_photo / 1e9:.9f}"  # the main folder's 28 photos fit; 49 do not
    args = get_args_parser().parse_args(tiny_run(photos, tmp_path, "--cache-gb", budget))
    assert is_cached(load_data(args, card_from_args(args))["train"])
    args.extra_train = [extra_photos]
    sets = load_data(args, card_from_args(args))
    assert not any(is_cached(s) for s in sets.values())


def test_the_card_and_metrics_name_each_training_folder_and_its_photos(
    photos, extra_photos, tmp_path, monkeypatch
):
    run = tiny_run(photos, tmp_path, "--epochs", "1", "--max-steps", "2")
    run += ["--extra-train", str(extra_photos)]
    monkeypatch.setattr(sys, "argv", ["training/train.py", *run])  # as typed
    main(get_args_parser().parse_args(run))

    card = read_artifact(tmp_path / "model.tar.gz")[1]
    per_folder = {str(photos): 14, str(extra_photos): 21}
    assert card.training["data"] == str(photos)
    assert card.training["extra_train"] == [str(extra_photos)]
    assert card.training["training_photos"] == per_folder
    assert card.training["examples"] == {"train": 35, "val": 7, "test": 7}
    assert card.training["command"].endswith(f" --extra-train {extra_photos}")
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["training_photos"] == per_folder
    assert metrics["test"]["n_all"] == 7  # the main folder's test photos alone


def test_an_extra_training_folder_that_is_not_a_data_folder_is_refused_before_training(
    photos, extra_photos, tmp_path, capsys
):
    no_photos = tmp_path / "no-photos"
    (no_photos / "images").mkdir(parents=True)
    (no_photos / "labels.csv").write_text("image_id,count\n00001,3\n")  # no such image
    no_labels = tmp_path / "no-labels"
    (no_labels / "images").mkdir(parents=True)
    refusals = {
        tmp_path / "missing": "does not exist",
        no_labels: "has no labels.csv (a data folder: images/<id>.jpg + labels.csv)",
        no_photos: "has no labelled photos (images/<id>.jpg + labels.csv)",
        photos: "is the main data folder: its validation and test photos would be trained on",
    }
    for folder, reason in refusals.items():
        args = tiny_run(photos, tmp_path / "out", "--extra-train", str(folder))
        with pytest.raises(SystemExit, match=f"^{re.escape(f'--extra-train: {folder} {reason}')}$"):
            main(get_args_parser().parse_args(args))
    twice = tiny_run(photos, tmp_path / "out", "--extra-train", *[str(extra_photos)] * 2)
    with pytest.raises(SystemExit, match=f"^--extra-train: {extra_photos} is given twice$"):
        main(get_args_parser().parse_args(twice))
    assert "epoch=" not in capsys.readouterr().out
    assert not (tmp_path / "out" / "metrics.json").exists()


def test_sagemaker_extra_channels_are_extra_training_folders_in_order(monkeypatch, tmp_path):
    from bincheck.cli import main as bincheck

    assert get_args_parser().parse_args([]).extra_train == []
    for name in (
        "SM_CHANNEL_EXTRA2",
        "SM_CHANNEL_EXTRA",
        "SM_CHANNEL_EXTRA10",
        "SM_CHANNEL_EXTRA1",
    ):
        monkeypatch.setenv(name, f"/opt/ml/input/data/{name.removeprefix('SM_CHANNEL_').lower()}")
    monkeypatch.setenv("SM_CHANNEL_EXTRAS", "/not/a/numbered/extra/channel")
    folders = get_args_parser().parse_args([]).extra_train
    assert [f.name for f in folders] == ["extra", "extra1", "extra2", "extra10"]

    received = []
    monkeypatch.setattr("training.train.main", received.append)
    extra = [str(tmp_path / "a"), str(tmp_path / "b")]
    assert bincheck(["train", "--data", str(tmp_path), "--extra-train", *extra]) == 0
    assert received[0].extra_train == [tmp_path / "a", tmp_path / "b"]  # given, over the channels

"""Each Lambda function ships its own folder (plus the contract where it imports it), and
imports from its asset's root alone, as Lambda runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra.functions import stage

REPO = Path(__file__).resolve().parents[1]
ELSEWHERE = {"bincheck", "lambdas", "model", "training", "infra", "torch", "moto"}
# Prints the handler's module, the modules it loaded from the asset, and any from elsewhere.
PROBE = """
import json, sys
from pathlib import Path
root = Path(sys.argv[1]).resolve()
sys.path[:0] = [str(root)]
module = __import__(sys.argv[2], fromlist=["x"])
loaded = sorted(
    Path(m.__file__).resolve().relative_to(root).as_posix()
    for m in list(sys.modules.values())
    if getattr(m, "__file__", None) and Path(m.__file__).resolve().is_relative_to(root)
)
others = sorted({m.split(".")[0] for m in sys.modules} & set(json.loads(sys.argv[3])))
print(json.dumps([getattr(module, sys.argv[4]).__module__, loaded, others]))
"""


def python_files(folder: Path, prefix: str) -> list[str]:
    return [
        f"{prefix}/{path.relative_to(folder).as_posix()}"
        for path in folder.rglob("*.py")
        if "__pycache__" not in path.parts
    ]


def probe(root: Path, module: str, function: str) -> tuple[str, list[str], list[str]]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(root), module, json.dumps(sorted(ELSEWHERE)), function],
        capture_output=True,
        text=True,
        check=True,
        cwd=root,  # no repository folder on the path: only the asset
    )
    handler, loaded, others = json.loads(result.stdout)
    return handler, loaded, others


def asset_files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_the_checker_asset_holds_the_checker_and_the_contract_and_imports_all_of_it(tmp_path):
    root = stage("checker", tmp_path)
    files = asset_files(root)
    assert files == sorted(
        python_files(REPO / "lambdas" / "checker", "checker")
        + python_files(REPO / "contract", "contract")
    )
    handler, loaded, others = probe(root, "checker.handler", "lambda_handler")
    assert handler == "checker.handler"
    assert others == []  # nothing from the rest of the repository, no torch, no moto
    # Every file shipped is one the handler imports: the asset carries nothing else.
    assert loaded == files


@pytest.mark.parametrize("function", ["validate", "compare"])
def test_the_retraining_asset_holds_its_own_folder_only(tmp_path, function):
    root = stage("retraining", tmp_path)
    files = asset_files(root)
    assert files == sorted(python_files(REPO / "lambdas" / "retraining", "retraining"))
    handler, loaded, others = probe(root, "retraining.handlers", function)
    assert handler == "retraining.handlers"
    assert others == []
    assert loaded == files


def test_the_review_asset_holds_the_review_and_the_contract_and_both_handlers_import(tmp_path):
    """One asset, two functions: the review API (review.handler) and the backlog metrics
    (review.backlog)."""
    root = stage("review", tmp_path)
    files = asset_files(root)
    page = ["review/page/index.html", "review/page/review.css", "review/page/review.js"]
    assert files == sorted(
        python_files(REPO / "lambdas" / "review", "review")
        + python_files(REPO / "contract", "contract")
        + page  # the review page the function serves at GET /
    )
    loaded: set[str] = set()
    for module in ("review.handler", "review.backlog"):
        handler, imported, others = probe(root, module, "lambda_handler")
        assert handler == module
        assert others == []  # nothing from the rest of the repository, no torch, no moto
        loaded.update(imported)
    # All but contract/bins.py, the bin record the checker reads (the review reads a bin's
    # quantity and time itself).
    assert sorted(set(files) - loaded - set(page)) == ["contract/bins.py"]


def test_staging_is_named_by_content_and_repeatable(tmp_path):
    first = stage("checker", tmp_path)
    assert stage("checker", tmp_path) == first
    assert first.name.startswith("checker-")
    assert [p.name for p in tmp_path.iterdir()] == [first.name]  # no temporary left behind


def test_the_cdk_app_synthesizes_without_torch(tmp_path):
    # make synth and make deploy install the infra extra only: nothing the CDK app runs may
    # need the model's or the local stack's dependencies.
    blocked = ["torch", "torchvision", "timm", "PIL", "aiohttp", "moto", "matplotlib"]
    script = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.split('.')[0] in {blocked!r}:\n"
        "            raise ImportError(f'{name} is not installed')\n"
        "sys.meta_path.insert(0, Block())\n"
        "from infra.app import main\n"
        "main()\n"
    )
    context = json.dumps(json.loads((REPO / "cdk.json").read_text())["context"])
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=REPO,
        # What the cdk CLI hands the app: cdk.json's context, an output folder.
        env={**os.environ, "CDK_OUTDIR": str(tmp_path), "CDK_CONTEXT_JSON": context},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    template = json.loads((tmp_path / "BinCheck.template.json").read_text())
    assert "AWS::SageMaker::Endpoint" in {r["Type"] for r in template["Resources"].values()}

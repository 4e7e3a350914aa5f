"""The Lambda asset is the lambdas/ folder: the checker must import as ``checker`` there."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

LAMBDAS = Path(__file__).resolve().parents[1] / "lambdas"


def test_checker_imports_from_the_lambda_asset_root():
    # Run from an empty folder with only the asset on the path, as Lambda does; the
    # checker must not reach into bincheck/, model/ or training/.
    probe = (
        "import sys; sys.path[:0] = [sys.argv[1]];"
        "import checker.handler as h; print(h.lambda_handler.__module__);"
        "print(sorted(m.split('.')[0] for m in sys.modules if m.split('.')[0] in "
        "{'bincheck', 'lambdas', 'model', 'training', 'torch', 'moto'}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, str(LAMBDAS)],
        capture_output=True,
        text=True,
        check=True,
        cwd=LAMBDAS.parent / "tests",
    )
    assert result.stdout.splitlines() == ["checker.handler", "[]"]

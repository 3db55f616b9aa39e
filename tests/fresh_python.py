"""Python code run in a fresh interpreter: what a module or a command imports shows only in a
process that has imported nothing else (a test session has long imported everything)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def run_fresh(
    code: str, *argv: str, cwd: Path = REPO_ROOT, env: dict[str, str] | None = None
) -> str:
    """The stdout of ``python -c code argv...``, which must exit 0 (else its stderr fails the
    test)."""
    result = subprocess.run(
        [sys.executable, "-c", code, *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout

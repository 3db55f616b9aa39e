"""Entry point of ``scripts/chaos`` (the wrapper runs this with the repository's .venv)."""

from __future__ import annotations

import sys

from chaoslib.cli import main

if __name__ == "__main__":
    sys.exit(main())

"""``python -m qworker``: the same command line as the ``qworker`` script."""

from qworker.cli import main

if __name__ == "__main__":
    main()

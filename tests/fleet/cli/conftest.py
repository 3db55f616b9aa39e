"""The CLI tests' fixtures (a ``cli`` runner on the session's redis-server, an empty working
directory, no stray QWORKER_*/TWITTER_* variables), for the ``work --job-types`` tests."""

from tests.cli.conftest import _isolated, cli, settings  # noqa: F401

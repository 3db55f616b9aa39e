"""The speed tests share the redis tests' fixtures (a probe log, settings)."""

from tests.redis.conftest import probe_log

__all__ = ["probe_log"]

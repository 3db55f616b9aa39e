"""The global connection options (Sentinel, Cluster, TLS) and ``enqueue --durable``."""

from __future__ import annotations

from tests.cli.conftest import Cli, one_error_line


def test_cluster_without_a_hash_tag_is_refused(cli: Cli, redis_url: str) -> None:
    result = cli.raw("--redis-url", redis_url, "--namespace", "app", "--cluster", "stats")
    one_error_line(result, 2, "hash tag", "{qw}")


def test_tls_file_that_does_not_exist_is_named(cli: Cli) -> None:
    result = cli.raw(
        "--redis-url", "rediss://127.0.0.1:1/0", "--tls-ca", "/nowhere/ca.pem", "stats"
    )
    one_error_line(result, 2, "/nowhere/ca.pem")


def test_sentinels_without_a_master_name_is_refused(cli: Cli) -> None:
    result = cli.raw("--sentinels", "127.0.0.1:26379", "stats")
    one_error_line(result, 2, "QWORKER_REDIS_SENTINEL_MASTER")


def test_durable_enqueue_without_replicas_prints_the_id_and_fails(cli: Cli) -> None:
    """The session's server has no replica: WAIT confirms nothing. The job is queued on the
    master all the same, so its id is printed for the caller to keep, and the exit code is 1."""
    result = cli("enqueue", "tweet", "kept on the master", "--durable")
    assert result.exit_code == 1, result.stderr
    job_id = result.stdout.strip()
    assert len(job_id) == 32
    assert "queued on the master, but only 0 of 1 replica(s) confirmed" in result.stderr
    stats = cli.json("stats")
    assert stats["total_jobs"] == 1

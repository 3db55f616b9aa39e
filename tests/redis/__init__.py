"""Tests against a real redis-server: scripts, the worker, crashes and restarts."""

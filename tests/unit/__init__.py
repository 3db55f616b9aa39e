"""Pure unit tests: no Redis, no clock, no network."""

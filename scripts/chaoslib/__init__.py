"""The parts of ``scripts/chaos``: a fault-injecting run of real workers on a real Redis, and the
checks that audit its history. ``chaoslib.cli`` is the entry point."""

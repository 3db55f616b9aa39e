"""Job types: the base classes and the factory live in ``base``; each job type has its module."""

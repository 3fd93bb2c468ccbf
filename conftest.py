"""Root pytest configuration: the fixtures of tests/ serve eventstore_cql/tests/ too."""

# Session fixtures (real servers) and the backend fixtures of the contract suites.
pytest_plugins = ["tests.fixtures", "tests.backends"]

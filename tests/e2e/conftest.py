"""Whole-product tests: the daemon's fixture, for every test under e2e/."""

from tests.daemon.conftest import start_daemon  # noqa: F401 - a fixture, found by pytest by name

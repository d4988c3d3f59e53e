"""The daemon fixture, for the repository tests that need a daemon to run into a state."""

from tests.daemon.conftest import start_daemon  # noqa: F401 - a fixture re-exported

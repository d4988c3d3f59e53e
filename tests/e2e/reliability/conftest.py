"""The reliability suite reuses the daemon tests' fixtures."""

from tests.daemon.conftest import start_daemon  # noqa: F401 - a fixture, found by pytest by name
from tests.e2e.orchestration.conftest import fake_claude  # noqa: F401, E402 - a fixture too

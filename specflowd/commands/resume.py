"""`specflowd resume ID`: ask the daemon to resume a paused orchestration."""

from specflowd.views.client import orchestration_command

command = orchestration_command("resume", "Resume the paused orchestration ID.")

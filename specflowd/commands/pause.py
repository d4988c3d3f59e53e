"""`specflowd pause ID`: ask the daemon to pause an orchestration."""

from specflowd.views.client import orchestration_command

command = orchestration_command("pause", "Pause orchestration ID after the agent run in hand.")

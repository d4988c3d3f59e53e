"""`specflowd cancel ID`: ask the daemon to cancel an orchestration."""

from specflowd.views.client import orchestration_command

command = orchestration_command("cancel", "Cancel orchestration ID (its branch and worktree are kept).")

"""`specflowd merge ID`: ask the daemon to merge an orchestration waiting for it."""

from specflowd.views.client import orchestration_command

command = orchestration_command("merge", "Merge the work of orchestration ID, which waits for it.")

"""specflowd: runs coding agents through a spec's task list and keeps every step in git."""

__version__ = "0.1.0"

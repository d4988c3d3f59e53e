"""The agent layer: run a coding-agent CLI on a request and report one result shape."""

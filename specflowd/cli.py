"""The ``specflowd`` command group; each command lives in its own module, loaded on use."""

from __future__ import annotations

import importlib
import sys

import click

from specflowd import __version__
from specflowd.errors import UserError

# Command name -> module under specflowd.commands. Modules are imported only when their
# command runs (or --help lists them), so `specflowd log` does not pay for pydantic/GitPython.
COMMANDS: dict[str, str] = {
    "init": "init",
    "new": "new",
    "plan": "plan",
    "mark": "mark",
    "log": "log",
    "systemd": "systemd",
    "hooks": "hooks",
    "hook": "hook",
    "doctor": "doctor",
    "run": "run",
    "start": "start",
    "pause": "pause",
    "resume": "resume",
    "cancel": "cancel",
    "merge": "merge",
    "recover": "recover",
    "schema": "schema",
}

SHORT_HELP: dict[str, str] = {
    "init": "Create the design-docs branch, its worktree and .specflow/.",
    "new": "Add a spec folder from templates, as a commit.",
    "plan": "Show the batches that would run, without running anything.",
    "mark": "Mark tasks done, pending, in progress, skipped or blocked.",
    "log": "Show the progress feed read from the design-docs branch.",
    "systemd": "Install the systemd user units.",
    "hooks": "Install or remove specflowd's git hooks.",
    "doctor": "Check the set-up and say how to fix what is wrong.",
    "run": "Run the daemon in the foreground (what systemd runs).",
    "start": "Ask the daemon to start an orchestration of a spec.",
    "pause": "Ask the daemon to pause an orchestration.",
    "resume": "Ask the daemon to resume a paused orchestration.",
    "cancel": "Ask the daemon to cancel an orchestration.",
    "merge": "Ask the daemon to merge an orchestration waiting for it.",
    "recover": "Decide how an orchestration that needs attention goes on.",
    "schema": "Print the JSON Schemas of requests, responses and state.",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name in COMMANDS if name in SHORT_HELP)  # `hook` is for git hooks only

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = COMMANDS.get(cmd_name)
        if module is None:
            return None
        return importlib.import_module(f"specflowd.commands.{module}").command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Listing help would otherwise import every command module.
        rows = [(name, SHORT_HELP.get(name, "")) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(version=__version__, prog_name="specflowd")
def cli() -> None:
    """specflowd runs coding agents through a spec's task list and records every step
    as a commit on the design-docs branch, so `git log` is the progress feed."""


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except UserError as e:
        click.echo(f"specflowd: {e.message}", err=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)

"""The ``specflowd`` command group; each command lives in its own module, loaded on use."""

from __future__ import annotations

import importlib
import os
import sys

import click

from specflowd import __version__
from specflowd.core.text import visible
from specflowd.errors import UserError

# Every command, with its line in `specflowd --help`; each lives in specflowd.commands.<name>, and
# is imported only when it runs, so that `specflowd log` does not pay for what `run` needs.
COMMANDS: dict[str, str] = {
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
    "demo": "Run the whole loop in a throw-away project with a built-in agent.",
    "status": "Show an orchestration's phase, batches, tasks, cost and decisions.",
    "list": "List the project's orchestrations, one line each.",
    "fleet": "Every agent run across the projects the daemon serves.",
    "wait": "Print an orchestration's feed as it lands, until it ends.",
    "inbox": "List the requests waiting for a daemon, or drop one.",
    "web": "Serve a read-only live page of the fleet in the browser.",
}
HIDDEN = frozenset({"hook"})  # run by the git hooks, not listed


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS and cmd_name not in HIDDEN:
            return None
        command: click.Command = importlib.import_module(f"specflowd.commands.{cmd_name}").command
        with_directory_option(command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Listing help would otherwise import every command module.
        rows = [(name, COMMANDS[name]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def change_directory(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is not None:
        try:
            os.chdir(value)
        except OSError as e:
            raise click.BadParameter(f"cannot change to {value!r}: {e.strerror}", ctx, param) from None


def directory_option() -> click.Option:
    return click.Option(["-C", "directory"], metavar="PATH", expose_value=False, is_eager=True,
                        callback=change_directory, help="Run as if started in PATH (as `git -C` does).")


def with_directory_option(command: click.Command) -> None:
    """`-C PATH` on a command (and its subcommands), once: `specflowd status -C ~/app`, as well as
    `specflowd -C ~/app status`."""
    if not any(p.name == "directory" for p in command.params):
        command.params.append(directory_option())
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            with_directory_option(sub)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(version=__version__, prog_name="specflowd")
@click.option("-C", "directory", metavar="PATH", expose_value=False, is_eager=True, callback=change_directory,
              help="Run as if specflowd was started in PATH (as `git -C` does).")
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
        # A message may quote a file name, a task or an agent's words: shown as text, never as escapes.
        click.echo(f"specflowd: {visible(e.message)}", err=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)

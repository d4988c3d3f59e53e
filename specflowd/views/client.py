"""The client side of the inbox: drop a request (write in requests/tmp/, rename into requests/), and
wait for its answer by watching responses/ (inotify, no spinning). Shared by the client commands."""

from __future__ import annotations

import json
import os
import secrets
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from specflowd import fsio
from specflowd.core import ids
from specflowd.core.text import visible, visible_lines
from specflowd.daemon import pidlock
from specflowd.errors import UserError
from specflowd.repo.inotify import NameWatch
from specflowd.repo.project import Project, locate

DEFAULT_WAIT_S = 30.0
EXIT_NO_ANSWER = 3


def new_request_id(action: str) -> str:
    return f"{action}-{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(3)}"


def drop(project: Project, payload: dict[str, Any]) -> str:
    """Put a request into the inbox atomically; returns its id (the answer's file name)."""
    rid: str = payload.setdefault("id", new_request_id(payload["action"]))
    tmp = project.requests / "tmp"
    fsio.make_private_dirs(tmp)
    # Made in tmp/ and renamed in: the daemon never sees a request half-written.
    fsio.atomic_write(project.requests / f"{rid}.json", json.dumps(payload).encode() + b"\n", tmp_dir=tmp)
    return rid


class AnswerWatch:
    """Watches responses/ for one answer. Start it before dropping the request, so that a fast daemon's
    answer cannot slip in between looking and starting to watch."""

    def __init__(self, responses: Path, rid: str) -> None:
        self.path = responses / f"{rid}.json"
        fsio.make_private_dirs(responses)
        self.watch = NameWatch(responses, self.path.name)

    def wait(self, timeout: float) -> dict[str, Any] | None:
        """The answer, or None when none came within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self.watch:
            while True:
                answer = self._read()
                if answer is not None:
                    return answer
                left = deadline - time.monotonic()
                if left <= 0 or not self.watch.wait(left):
                    return self._read()

    def _read(self) -> dict[str, Any] | None:
        try:
            answer = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            return None
        return answer if isinstance(answer, dict) else None


def submit(project: Project, payload: dict[str, Any], *, wait: float | None, as_json: bool,
           describe: Callable[[dict[str, Any]], str]) -> dict[str, Any] | None:
    """Drop the request; with `wait`, wait for the answer, print it and return it. Exits 1 when it
    was refused, 3 when no answer came in time."""
    running = pidlock.holder(project)
    watch = None
    if wait is not None:
        payload.setdefault("id", new_request_id(payload["action"]))
        watch = AnswerWatch(project.responses, payload["id"])
    rid = drop(project, payload)
    if running is None:
        click.echo(f"note: no specflowd daemon is running for {project.root}; request {rid} will be answered "
                   "when one starts (`specflowd run`)", err=True)
    if watch is None:
        if as_json:
            click.echo(json.dumps({"id": rid, "queued": True}))
        else:
            click.echo(f"queued request {rid}")
        return None
    answer = watch.wait(wait or DEFAULT_WAIT_S)
    if answer is None:
        click.echo(f"no answer to request {rid} within {wait:g}s; it stays queued and will be answered "
                   "when a daemon runs", err=True)
        sys.exit(EXIT_NO_ANSWER)
    if as_json:
        click.echo(json.dumps(answer, indent=2))
    elif answer.get("ok"):
        click.echo(visible_lines(describe(answer["result"])))
    if not answer.get("ok"):
        error = answer.get("error", {})
        if not as_json:
            click.echo(visible(f"specflowd: {error.get('message', 'refused')} ({error.get('code')})"), err=True)
        sys.exit(1)
    return answer


def one_of(what: str, **flags: object) -> str | None:
    """The one flag given of a set of mutually exclusive ones (None: none); two or more is a usage
    error (exit 2), never a silent choice of the last."""
    given = [name for name, value in flags.items() if value not in (None, False)]
    if len(given) > 1:
        names = " and ".join(f"--{name.replace('_', '-')}" for name in given)
        raise click.UsageError(f"{names} cannot go together: {what}")
    return given[0] if given else None


def wait_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """`--wait [SECONDS]` and `--json`, the options every client command has."""
    f = click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")(f)
    return click.option("--wait", type=float, is_flag=False, flag_value=DEFAULT_WAIT_S, default=None,
                        metavar="[SECONDS]",
                        help=f"Wait for the daemon's answer (default {DEFAULT_WAIT_S:g}s) and print it.")(f)


def orchestration_command(action: str, summary: str) -> click.Command:
    """A client command `specflowd ACTION ID` for the requests that name only an orchestration."""

    @click.command(action, help=f"{summary}\n\nDrops a `{action}` request for the daemon.")
    @click.argument("orchestration")
    @wait_option
    def command(orchestration: str, wait: float | None, as_json: bool) -> None:
        submit(current_project(), {"action": action, "orchestration": checked_orchestration(orchestration)},
               wait=wait, as_json=as_json, describe=describe_orchestration)

    return command


def spec_hint(project: Project) -> str | None:
    """The spec the caller works on: $SPECFLOW_SPEC (set for agents), or the code worktree it runs in."""
    return os.environ.get("SPECFLOW_SPEC") or project.spec_of_worktree(Path.cwd())


def current_project() -> Project:
    return locate().require_initialized()


# One check of each kind of id for every command, with one wording and one exit code (1).

def checked_orchestration(value: str) -> str:
    try:
        return ids.check_orchestration_id(value)
    except ValueError as e:
        raise UserError(str(e), field="orchestration") from None


def checked_spec(value: str) -> str:
    try:
        return ids.check_spec_id(value)
    except ValueError as e:
        raise UserError(str(e), field="spec") from None


def describe_orchestration(result: dict[str, Any]) -> str:
    return f"orchestration {result['orchestration']} ({result['spec']}): {result['status']}, {result['phase']}"

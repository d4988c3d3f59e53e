"""`specflowd mark`: set tasks' status, through the daemon's inbox or (`--now`) as a direct commit."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import click

from specflowd.daemon import pidlock
from specflowd.errors import UserError
from specflowd.repo.project import Project
from specflowd.views.client import DEFAULT_WAIT_S, one_of, spec_hint, submit, wait_option

# The flag -> the status it marks.
STATUSES = {"done": "done", "todo": "pending", "in_progress": "in_progress", "skipped": "skipped",
            "blocked": "blocked"}


@click.command("mark")
@click.argument("tasks", nargs=-1, required=True)
@click.option("--done", is_flag=True, help="Mark done.")
@click.option("--todo", is_flag=True, help="Mark pending again.")
@click.option("--in-progress", is_flag=True, help="Mark in progress.")
@click.option("--skipped", is_flag=True, help="Mark skipped.")
@click.option("--blocked", "reason", metavar="REASON", default=None, help="Mark blocked, with the reason.")
@click.option("--spec", default=None, help="The spec (default: $SPECFLOW_SPEC, the code worktree's spec, "
              "or the only spec there is).")
@click.option("--evidence", default=None, metavar="SHA", help="The code commit that did it.")
@click.option("--now", is_flag=True, help="Commit the mark directly instead of asking the daemon.")
@click.option("--no-wait", is_flag=True, help="Only queue the request: do not wait for the daemon's answer.")
@wait_option
def command(tasks: tuple[str, ...], done: bool, todo: bool, in_progress: bool, skipped: bool, reason: str | None,
            spec: str | None, evidence: str | None, now: bool, no_wait: bool, wait: float | None,
            as_json: bool) -> None:
    """Mark TASK... (ids such as T012, 2.1, or #N for the N-th task).

    Asks the project's daemon and waits for its answer (exit 1 when it refuses; --no-wait only
    queues); with no daemon running, refuses and suggests --now, which commits the mark directly
    (a mark nobody answers would surprise the caller)."""
    if reason is not None and reason.startswith("--"):
        # `--blocked --spec S` would take "--spec" for the reason.
        raise click.UsageError(f"--blocked needs a reason, not the option {reason!r}: "
                               "--blocked 'waiting for the API'")
    chosen = one_of("give one status", done=done, todo=todo, in_progress=in_progress, skipped=skipped,
                    blocked=reason)
    status = STATUSES.get(chosen) if chosen else None
    if status is None:
        raise click.UsageError("say which status: --done, --todo, --in-progress, --skipped or --blocked REASON")
    from specflowd.repo import project as projects

    project = projects.locate().require_initialized()
    evidence = _resolve_evidence(evidence)
    if now:
        _mark_now(project, list(tasks), status, reason, spec, evidence, as_json)
        return
    if pidlock.holder(project) is None:
        raise UserError("no specflowd daemon is running for this project: pass --now to commit the mark "
                        "directly, or start one with `specflowd run`")
    payload = {"action": "mark", "tasks": list(tasks), "status": status, "reason": reason,
               "spec": spec or spec_hint(project), "evidence": evidence}
    if no_wait and wait is not None:
        raise click.UsageError("--wait and --no-wait cannot go together")
    wait = None if no_wait else (wait or DEFAULT_WAIT_S)
    submit(project, {k: v for k, v in payload.items() if v is not None}, wait=wait, as_json=as_json,
           describe=lambda result: describe_outcome(result, project.branch, list(tasks), status))


def _resolve_evidence(evidence: str | None) -> str | None:
    if evidence is None:
        return None
    if not re.fullmatch(r"[0-9a-fA-F]{4,64}", evidence):
        raise UserError(f"--evidence {evidence!r} is not a commit id (hex)", exit_code=2)
    from specflowd.repo import git

    # Expand an abbreviation when we stand in the repository that has it.
    return git.resolve_commit(Path.cwd(), evidence) or evidence.lower()


def _mark_now(project: Project, tasks: list[str], status: str, reason: str | None, spec: str | None,
              evidence: str | None, as_json: bool) -> None:
    from specflowd.core.tasklist import Mark
    from specflowd.core.vocab import MarkSource, TaskStatus
    from specflowd.repo.designdocs import DesignDocs
    from specflowd.repo.marks import mark, resolve_spec

    with DesignDocs(project) as docs:
        spec = resolve_spec(docs, spec, spec_hint(project))
        outcome = mark(docs, spec, [Mark(t, TaskStatus(status), reason) for t in tasks], evidence=evidence,
                       source=MarkSource.CLI)
    result = outcome.as_dict()
    click.echo(json.dumps(result, indent=2) if as_json else describe_outcome(result, project.branch, tasks, status))


def describe_outcome(result: dict[str, Any], branch: str, tasks: list[str], status: str) -> str:
    """What a person reads about a mark's outcome (`MarkOutcome.as_dict`), from --now or the daemon."""
    spec = result["spec"]
    if result["commit"] is None:
        return f"{spec}: nothing to change ({', '.join(tasks)} already {status.replace('_', ' ')})."
    lines = [f"{spec}: {c['task']} {c['from']} -> {c['to']}{' (follows its children)' if c['derived'] else ''}"
             for c in result["changes"]]
    return "\n".join([*lines, f"committed {result['commit'][:10]} on {branch}"])

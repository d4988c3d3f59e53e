"""Agent prompts: one template per phase and for healing (shipped in the package, overridable per
project by `.specflow/prompts/<name>.md`, both read by `repo/project.template`); rendering is a
pure substitution.

Templates use `string.Template` placeholders (`$spec`, `${tasks}`). Unknown placeholders and
lone `$` signs are left as they are, so an override that names a value we do not have, or
contains shell snippets, still renders. The machine fills the values it knows
(`PromptRequest.values`); the shell adds the paths in the design-docs worktree.
"""

from __future__ import annotations

import shlex
from string import Template

from specflowd.core.records import record

NAMES = ("design", "analyze", "implement", "followup", "heal")


@record
class PromptRequest:
    """Which template to render, and the values the state machine knows."""

    template: str
    values: dict[str, str]


def paths(spec: str, docs_worktree: str, task_file: str | None) -> dict[str, str]:
    """The spec documents' paths inside the design-docs worktree."""
    root = docs_worktree.rstrip("/")
    folder = f"{root}/specs/{spec}"
    return {
        "docs_dir": root,
        "requirements": f"{folder}/requirements.md",
        "design": f"{folder}/design.md",
        "progress": f"{root}/{task_file}" if task_file else f"{folder}/progress.md",
    }


def render(request: PromptRequest, template: str, *, docs_worktree: str) -> str:
    """The prompt text: `template` filled in with the request's values and the documents' paths."""
    values = paths(request.values.get("spec", ""), docs_worktree, request.values.get("task_file") or None)
    values.update(request.values)
    return Template(template).safe_substitute(values)


def mark_word(task_id: str) -> str:
    """A task id as a shell word: `#20` is quoted, or a shell would drop it as a comment."""
    return shlex.quote(task_id)


def task_line(task_id: str, box: str, description: str) -> str:
    """A task as the prompts show it: its box and text as in the task list (a `#N` task's text has no
    id), and the exact command that marks it done."""
    return f"- [{box}] {description} (mark: specflowd mark {mark_word(task_id)} --done)"

"""Prompts: shipped templates per phase and for healing, project overrides, pure rendering."""

from __future__ import annotations

import re

import pytest

from specflowd.core.events import Start
from specflowd.core.prompts import NAMES, PromptRequest, render
from specflowd.repo.project import shipped_template

from .helpers import TASKS, Driver, new_state, plan_of


def implement_prompt() -> PromptRequest:
    d = Driver(new_state(skip_analyze=True))
    d.send(Start, plan=plan_of(TASKS))
    return d.actions("run_agent")[0].prompt


def test_the_implement_prompt_names_tasks_section_documents_and_how_to_report() -> None:
    text = render(implement_prompt(), shipped_template("prompts", "implement.md"), docs_worktree="/p/.specflow/design-docs")
    assert "- T001\n- T002" in text and '"Setup"' in text and "batch 1/2 Setup" in text
    for name in ("requirements.md", "design.md", "progress.md"):
        assert f"/p/.specflow/design-docs/specs/demo/{name}" in text
    assert "specflowd mark T001 --done --evidence <sha>" in text
    assert "Specflow-Task: T001" in text


@pytest.mark.parametrize("name", NAMES)
def test_every_shipped_template_renders_every_placeholder(name: str) -> None:
    template = shipped_template("prompts", f"{name}.md")
    values = dict.fromkeys(re.findall(r"\$\{?(\w+)", template), "X")
    text = render(PromptRequest(template=name, values=values | {"spec": "demo"}), template, docs_worktree="/d")
    assert "$" not in text.replace("$(", "")


def test_a_project_override_replaces_the_template_and_unknown_placeholders_stay() -> None:
    text = render(implement_prompt(), "Do $task_ids of $spec; cost $money; $(date)", docs_worktree="/d")
    assert text == "Do T001, T002 of demo; cost $money; $(date)"


def test_an_unknown_template_is_an_error() -> None:
    with pytest.raises(ValueError):
        shipped_template("prompts", "nope.md")

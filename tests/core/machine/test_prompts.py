"""Prompts: shipped templates per phase and for healing, project overrides, pure rendering."""

from __future__ import annotations

import re

import pytest

from specflowd.core.machine import Start
from specflowd.core.prompts import NAMES, PromptRequest, default_template, render

from .helpers import TASKS, Driver, new_state, plan_of


def implement_prompt() -> PromptRequest:
    d = Driver(new_state(skip_analyze=True))
    d.send(Start, plan=plan_of(TASKS))
    return d.actions("run_agent")[0].prompt


def test_the_implement_prompt_names_tasks_section_documents_and_how_to_report() -> None:
    text = render(implement_prompt(), docs_worktree="/p/.specflow/design-docs")
    assert "- T001\n- T002" in text and '"Setup"' in text and "batch 1/2 Setup" in text
    for name in ("requirements.md", "design.md", "progress.md"):
        assert f"/p/.specflow/design-docs/specs/demo/{name}" in text
    assert "specflowd mark T001 --done --evidence <sha>" in text
    assert "Specflow-Task: T001" in text


@pytest.mark.parametrize("name", NAMES)
def test_every_shipped_template_renders_every_placeholder(name: str) -> None:
    values = dict.fromkeys(re.findall(r"\$\{?(\w+)", default_template(name)), "X")
    text = render(PromptRequest(template=name, values=values | {"spec": "demo"}), docs_worktree="/d")
    assert "$" not in text.replace("$(", "")


def test_a_project_override_replaces_the_template_and_unknown_placeholders_stay() -> None:
    text = render(implement_prompt(), docs_worktree="/d", template="Do $task_ids of $spec; cost $money; $(date)")
    assert text == "Do T001, T002 of demo; cost $money; $(date)"


def test_an_unknown_template_is_an_error() -> None:
    with pytest.raises(ValueError):
        default_template("nope")

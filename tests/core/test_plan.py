"""The planner: batches per section, the fallback, dependency order, and the `plan` command."""

from __future__ import annotations

import json

import pytest

from specflowd.core.plan import PREAMBLE, make_plan
from specflowd.core.tasklist import parse
from tests.conftest import TASKLISTS, run_cli


def plan_of(text: str, size: int = 15):
    return make_plan(parse(text.encode()), spec="s", file="f", batch_size=size)


def test_one_batch_per_section_with_unfinished_work() -> None:
    plan = plan_of("- [ ] T001 top\n## Setup\n- [x] T002 a\n## Core\n- [x] T003 b\n- [ ] T004 c\n- [-] T005 d\n"
                   "### Sub\n- [b] T006 e (blocked: x)\n")
    assert [(b.index, b.name, b.task_ids, b.incomplete) for b in plan.batches] == [
        (1, PREAMBLE, ["T001"], ["T001"]),
        (2, "Core", ["T003", "T004", "T005", "T006"], ["T004", "T006"]),
    ]
    assert (plan.tasks_total, plan.tasks_done, plan.used_fallback) == (6, 2, False)


def test_fallback_cuts_fixed_size_batches_of_unfinished_tasks() -> None:
    text = "".join(f"- [{'x' if i % 4 == 0 else ' '}] T{i:03d} t\n" for i in range(1, 41))
    plan = plan_of(text, size=7)
    assert plan.used_fallback
    assert [len(b.task_ids) for b in plan.batches] == [7, 7, 7, 7, 2]
    assert plan.batches[0].task_ids == ["T001", "T002", "T003", "T005", "T006", "T007", "T009"]
    assert plan.batches[0].name == "Tasks T001–T009"


def test_nothing_left_is_said_not_implied() -> None:
    done = plan_of("## A\n- [x] T001 a\n- [-] T002 b\n")
    assert done.batches == [] and done.warnings == ["nothing left to do: all 2 tasks are finished"]
    empty = plan_of("# Tasks\n\nnothing yet\n")
    assert empty.batches == [] and "no tasks yet" in empty.warnings[0]


def test_dependencies_reorder_inside_a_batch() -> None:
    plan = plan_of("## A\n- [ ] T001 needs three (depends on T003)\n- [ ] T002 free\n- [ ] T003 base\n")
    assert plan.batches[0].task_ids == ["T002", "T003", "T001"]


def test_cycle_is_reported_and_file_order_kept() -> None:
    plan = plan_of("## A\n- [ ] T001 [depends: T002] a\n- [ ] T002 [depends: T001] b\n- [ ] T003 c\n")
    assert plan.batches[0].task_ids == ["T001", "T002", "T003"]
    assert any("cycle" in w and "T001, T002" in w for w in plan.warnings)


def test_dependency_on_a_later_batch_is_warned() -> None:
    plan = plan_of("## A\n- [ ] T001 After T002 go\n## B\n- [ ] T002 base\n- [ ] T003 Requires T999\n")
    assert any("runs later in batch 2" in w for w in plan.warnings)
    assert any("T999, which is not in the task list" in w for w in plan.warnings)


def test_bad_batch_size() -> None:
    with pytest.raises(ValueError):
        plan_of("- [ ] a\n", size=0)


def test_plan_command_on_a_file_text_and_json(tmp_path) -> None:
    src = TASKLISTS / "spec-kit.md"
    text = run_cli("plan", str(src), cwd=tmp_path)
    assert text.returncode == 0, text.stderr
    assert "Phase 2: Foundational" in text.stdout and "todo/all" in text.stdout
    js = run_cli("plan", str(src), "--json", cwd=tmp_path)
    data = json.loads(js.stdout)
    assert set(data) == {"spec", "file", "tasks_total", "tasks_done", "used_fallback", "batches", "warnings"}
    assert set(data["batches"][0]) == {"index", "name", "task_ids", "incomplete"}
    assert data["tasks_total"] == len(parse(src.read_bytes()).tasks)


def test_plan_command_errors(tmp_path) -> None:
    missing = run_cli("plan", "nope/progress.md", cwd=tmp_path)
    assert missing.returncode == 1 and "cannot read nope/progress.md" in missing.stderr
    assert "Traceback" not in missing.stderr
    bad = run_cli("plan", "x.md", "--batch-size", "0", cwd=tmp_path)
    assert bad.returncode == 2

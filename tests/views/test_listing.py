"""`list` and `status` read the active orchestrations' state files and the daemon's index of the
ended ones: the ended ones' files are not read, a file the index does not know is, and a lost
state file of one orchestration is rebuilt from that orchestration's commits alone."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from specflowd.core.state import BatchState, OrchestrationState
from specflowd.core.vocab import Phase, Status, TaskStatus
from specflowd.daemon import statefile
from specflowd.repo.project import locate
from tests.conftest import run_cli
from tests.daemon.conftest import make_project

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


def state(n: int, status: Status) -> OrchestrationState:
    at = T0 + timedelta(hours=n)
    s = OrchestrationState(id=f"{n:08x}", spec="demo", project="/p", status=status, phase=Phase.IMPLEMENT,
                           created_at=at, updated_at=at + timedelta(minutes=5), started_at=at, current_batch=1)
    s.batches = [BatchState(index=1, name="Setup", task_ids=["T001", "T002"])]
    s.task_status = {"T001": TaskStatus.DONE, "T002": TaskStatus.DONE if status != Status.RUNNING else TaskStatus.PENDING}
    return s


@pytest.fixture
def project(repo: Path) -> Path:
    """25 ended orchestrations in the daemon's index, and one running (the oldest of all)."""
    root = make_project(repo)
    p = locate(root)
    states = {s.id: s for s in [state(0, Status.RUNNING)] + [state(n, Status.COMPLETED) for n in range(1, 26)]}
    for s in states.values():
        s.project = str(root)
        statefile.save(p, s)
    statefile.save_index(p, statefile.ended_rows(states))
    return root


def listed(project: Path, *args: str) -> list[str]:
    r = run_cli("list", *args, cwd=project)
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()


def test_list_shows_the_active_then_the_most_recent_ended_and_says_how_many_it_left_out(project: Path) -> None:
    lines = listed(project)
    assert lines[0].startswith("00000000") and "running" in lines[0]
    assert [ln[:8] for ln in lines[1:21]] == [f"{n:08x}" for n in range(25, 5, -1)]  # newest first
    assert lines[21] == "… and 5 older: `specflowd list --all` shows them"
    assert len(listed(project, "--all")) == 26
    assert len(listed(project, "-n", "3")) == 4 + 1
    rows = json.loads(run_cli("list", "--json", cwd=project).stdout)
    assert [r["orchestration"] for r in rows][:2] == ["00000000", f"{25:08x}"] and len(rows) == 21
    assert rows[1]["status"] == "completed" and rows[1]["tasks_done"] == 2


def test_the_ended_orchestrations_files_are_not_read_and_a_file_the_index_lacks_is(project: Path) -> None:
    p = locate(project)
    # An ended orchestration's file broken: `list` does not notice, since it does not read it.
    p.state_file(f"{25:08x}").write_text("{not json")
    r = run_cli("list", cwd=project)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    # `status ID` reads that one file, and says it is unreadable.
    r = run_cli("status", f"{25:08x}", cwd=project)
    assert r.returncode == 1 and "unreadable" in r.stderr and "Traceback" not in r.stderr
    # A state the index does not know (a daemon stopped between its two writes) is read and listed.
    late = state(40, Status.COMPLETED)
    late.project = str(project)
    statefile.save(p, late)
    assert listed(project)[1].startswith(f"{40:08x}")


def test_status_shows_the_active_in_detail_and_counts_the_ended(project: Path) -> None:
    r = run_cli("status", cwd=project)
    assert r.returncode == 0, r.stderr
    assert "00000000" in r.stdout and f"{25:08x}" not in r.stdout
    assert r.stdout.rstrip().endswith("25 more orchestrations ended: `specflowd list` shows them")
    summaries = json.loads(run_cli("status", "--json", cwd=project).stdout)
    assert len(summaries) == 21 and summaries[0]["status"] == "running"


def test_with_none_active_status_shows_the_one_that_ended_last(project: Path) -> None:
    locate(project).state_file("00000000").unlink()
    r = run_cli("status", cwd=project)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"{25:08x}") or f"orchestration {25:08x}" in r.stdout.splitlines()[0]
    assert "24 more orchestrations ended" in r.stdout


def test_an_unknown_orchestration_is_refused_naming_those_there_are(project: Path) -> None:
    r = run_cli("status", "abcdef99", cwd=project)
    assert r.returncode == 1 and "no orchestration abcdef99" in r.stderr and "00000000" in r.stderr

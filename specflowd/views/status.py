"""Loading orchestrations for display (rebuilding lost state files from the feed), and the live
`--watch` view drawn with rich, redrawn when a state file changes."""

from __future__ import annotations

import threading
from typing import Any

import click

from specflowd.core.state import OrchestrationState
from specflowd.errors import UserError
from specflowd.repo.project import Project


def load(project: Project, wanted: str | None) -> dict[str, OrchestrationState]:
    """The project's orchestrations. Missing ones (the wanted id, or all when the folder is empty)
    are rebuilt from the branch history, written back, and the rebuild is said on stderr."""
    from specflowd.daemon.statefile import read_all

    states, broken = read_all(project.workflows)
    for path, why in broken.items():
        click.echo(f"warning: {path.name} is unreadable: {why}", err=True)
    if (wanted and wanted not in states) or (not wanted and not states):
        states.update(_rebuild(project, wanted, set(states)))
    if wanted and wanted not in states:
        raise UserError(f"no orchestration {wanted} in {project.root} (known: {', '.join(sorted(states)) or 'none'})",
                        code="unknown_orchestration")
    return states


def _rebuild(project: Project, wanted: str | None, have: set[str]) -> dict[str, OrchestrationState]:
    from specflowd.core.rebuild import rebuild
    from specflowd.daemon import statefile
    from specflowd.repo import feed
    from specflowd.repo.git import read_ref

    if read_ref(project.common_dir, project.branch_ref) is None:
        return {}
    by_id: dict[str, list[dict[str, Any]]] = {}
    for entry in feed.read(project, limit=None):
        oid = entry.get("orchestration")
        if oid and oid not in have and (wanted is None or oid == wanted):
            by_id.setdefault(oid, []).append(entry)
    out = {}
    for oid, entries in by_id.items():
        if not any(e.get("event") == "started" for e in entries):
            continue
        state = rebuild(entries, str(project.root))
        state.task_status = _task_status(project, state.spec)
        statefile.save(project.workflows, state)
        click.echo(f"note: the state of {oid} was missing; rebuilt it from the history of {project.branch}",
                   err=True)
        out[oid] = state
    return out


def _task_status(project: Project, spec: str) -> dict[str, str]:
    """The task list's statuses now: the feed has the marks, the branch has their sum."""
    from specflowd.repo.designdocs import DesignDocs

    docs = DesignDocs(project)
    try:
        snap = docs.snapshot()
        doc = docs.document(snap, snap.task_file(spec))
    except UserError:
        return {}
    return {t: st.value for t, st in zip(doc.ids(), doc.statuses(), strict=True)}


def watch_states(project: Project, wanted: str | None) -> None:
    """Redraw until Ctrl-C: at once when a state file changes (inotify), else every second for the clock."""
    from rich.console import Group
    from rich.live import Live
    from rich.progress_bar import ProgressBar
    from rich.table import Table
    from rich.text import Text
    from watchdog.events import FileSystemEventHandler
    from watchdog.observers import Observer

    from specflowd.core.overview import decision, duration, summary
    from specflowd.core.state import utcnow
    from specflowd.daemon.statefile import read_all
    from specflowd.daemon.watch import WRITES

    changed = threading.Event()

    class Wake(FileSystemEventHandler):
        def on_any_event(self, event: object) -> None:
            changed.set()

    def render() -> Group:
        states, _ = read_all(project.workflows)
        chosen = [states[wanted]] if wanted and wanted in states else sorted(states.values(), key=lambda s: s.created_at)
        now = utcnow()
        table = Table(expand=True)
        for col in ("orchestration", "spec", "status", "phase", "batch", "tasks", "", "cost", "time"):
            table.add_column(col)
        for state in chosen:
            s = summary(state, now)
            bar = ProgressBar(total=max(1, s["tasks_total"]), completed=s["tasks_done"], width=20)
            table.add_row(s["orchestration"], s["spec"], s["status"], s["phase"], s["batch"] or "-",
                          f"{s['tasks_done']}/{s['tasks_total']}", bar, f"${s['cost_usd']:.2f}",
                          duration(s["elapsed_s"]))
        lines = [table]
        for state in chosen[-1:]:
            for d in state.decisions[-5:]:
                lines.append(Text(f"{d.at.strftime('%H:%M:%S')}  {decision(d.decision, d.reason)}", style="dim"))
        return Group(*lines)

    project.workflows.mkdir(parents=True, exist_ok=True)
    observer = Observer()
    observer.schedule(Wake(), str(project.workflows), recursive=False, event_filter=WRITES)  # render reads it
    observer.start()
    try:
        with Live(render(), auto_refresh=False) as live:
            while True:
                changed.wait(timeout=1.0)
                changed.clear()
                live.update(render(), refresh=True)
    except KeyboardInterrupt:
        pass
    finally:
        observer.stop()
        observer.join(timeout=2)

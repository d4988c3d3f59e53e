"""`status --watch`: the orchestrations drawn live with rich, redrawn when a state file changes
(inotify) and every second for the clock; piped, a plain snapshot each time something changed."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.console import Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from specflowd.core.overview import decision, details, duration, summary
from specflowd.core.state import OrchestrationState
from specflowd.core.text import visible
from specflowd.daemon.statefile import read_current, read_one, state_ids
from specflowd.repo.follow import Waker
from specflowd.repo.project import Project
from specflowd.views.status import titles


def chosen(project: Project, wanted: str | None) -> list[OrchestrationState]:
    """The orchestration asked for, else the active ones (the ended ones are `list`'s)."""
    if wanted:
        state = read_one(project, wanted)
        return [state] if state is not None else []
    return sorted(read_current(project)[0].values(), key=lambda s: s.created_at)


def render(project: Project, wanted: str | None) -> Group:
    shown = chosen(project, wanted)
    now = datetime.now(UTC)
    table = Table(expand=True)
    for col in ("orchestration", "spec", "status"):  # ids and names are never cut
        table.add_column(col, no_wrap=True, min_width=len(col))
    for col in ("phase", "batch", "tasks", "", "cost", "time"):
        table.add_column(col)
    for state in shown:
        s = summary(state, now)
        bar = ProgressBar(total=max(1, s["tasks_total"]), completed=s["tasks_done"], width=20)
        # Text cells, not strings: rich would read `[/red]` in a heading as markup (and fail).
        cells = [s["orchestration"], s["spec"], s["status"], s["phase"], s["batch"] or "-",
                 f"{s['tasks_done']}/{s['tasks_total']}"]
        table.add_row(*(Text(visible(c)) for c in cells), bar, Text(f"${s['cost_usd']:.2f}"),
                      Text(duration(s["elapsed_s"])))
    lines: list[Table | Text] = [table]
    for state in shown[-1:]:
        for d in state.decisions[-5:]:
            lines.append(Text(f"{d.at.strftime('%H:%M:%S')}  {decision(d.decision, d.reason)}", style="dim"))
    return Group(*lines)


def snapshot(project: Project, wanted: str | None) -> str:
    """What `status` prints, for a pipe: the same text, once per change."""
    shown = chosen(project, wanted)
    names = titles(project, {s.spec for s in shown})
    now = datetime.now(UTC)
    if not shown:
        return "no orchestration is running" if state_ids(project) else "no orchestrations yet"
    return "\n\n".join(details(s, now, names[s.spec]) for s in shown)


def watch(project: Project, wanted: str | None, *, screen: bool) -> None:
    """Redraw until Ctrl-C; without a screen (piped), print a snapshot each time a state changed."""
    try:
        if not screen:
            with Waker(project.workflows) as waker:
                print(snapshot(project, wanted), flush=True)
                while True:
                    if waker.wait(3600):  # a state file was written: not the clock's tick
                        print("", snapshot(project, wanted), sep="\n", flush=True)
        with Waker(project.workflows) as waker, Live(render(project, wanted), auto_refresh=False) as live:
            while True:
                waker.wait(1.0)
                live.update(render(project, wanted), refresh=True)
    except KeyboardInterrupt:
        pass

"""`status --watch`: the orchestrations drawn live with rich, redrawn when a state file changes
(inotify) and every second for the clock."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.console import Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from specflowd.core.overview import decision, duration, summary
from specflowd.core.text import visible
from specflowd.daemon.statefile import read_all
from specflowd.repo.follow import Waker
from specflowd.repo.project import Project


def render(project: Project, wanted: str | None) -> Group:
    states, _ = read_all(project)
    chosen = [states[wanted]] if wanted and wanted in states else sorted(states.values(), key=lambda s: s.created_at)
    now = datetime.now(UTC)
    table = Table(expand=True)
    for col in ("orchestration", "spec", "status", "phase", "batch", "tasks", "", "cost", "time"):
        table.add_column(col)
    for state in chosen:
        s = summary(state, now)
        bar = ProgressBar(total=max(1, s["tasks_total"]), completed=s["tasks_done"], width=20)
        # Text cells, not strings: rich would read `[/red]` in a heading as markup (and fail).
        cells = [s["orchestration"], s["spec"], s["status"], s["phase"], s["batch"] or "-",
                 f"{s['tasks_done']}/{s['tasks_total']}"]
        table.add_row(*(Text(visible(c)) for c in cells), bar, Text(f"${s['cost_usd']:.2f}"),
                      Text(duration(s["elapsed_s"])))
    lines: list[Table | Text] = [table]
    for state in chosen[-1:]:
        for d in state.decisions[-5:]:
            lines.append(Text(f"{d.at.strftime('%H:%M:%S')}  {decision(d.decision, d.reason)}", style="dim"))
    return Group(*lines)


def watch(project: Project, wanted: str | None) -> None:
    """Redraw until Ctrl-C."""
    try:
        with Waker(project.workflows) as waker, Live(render(project, wanted), auto_refresh=False) as live:
            while True:
                waker.wait(1.0)
                live.update(render(project, wanted), refresh=True)
    except KeyboardInterrupt:
        pass

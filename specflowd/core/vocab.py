"""specflowd's words, each spelled once: every status, phase, kind, reason and feed event is a
member of one of these enums, and the rest of the code imports it from here.

They are StrEnums so that their values are what users read and what files hold: a state file,
an answer, a commit trailer and `status --json` all carry the plain string (`"needs_attention"`,
`"batch-completed"`), and a member compares equal to it.
"""

from __future__ import annotations

from enum import StrEnum

# The design-docs branch and where its worktree is checked out, unless the config says otherwise.
DESIGN_DOCS_BRANCH = "helix-design-docs"
DESIGN_DOCS_WORKTREE = ".specflow/design-docs"

# How much of an agent's or a command's output is kept in state (tails of stderr, of a
# transcript, of a failed verify): enough to see why, small enough for a state file.
TAIL_CHARS = 2000


# ---- tasks (SPEC §3) ----

class TaskStatus(StrEnum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    BLOCKED = "blocked"
    SKIPPED = "skipped"


# Finished tasks need no more work: they close a parent and they leave a batch.
FINISHED = frozenset({TaskStatus.DONE, TaskStatus.SKIPPED})


class MarkSource(StrEnum):
    """Who made a mark (`Specflow-Source`)."""

    CLI = "cli"  # `specflowd mark --now`
    REQUEST = "request"  # a mark request answered by the daemon
    HAND_EDIT = "hand-edit"  # a person's edit of the task list, committed for them
    TRAILER = "trailer"  # a code commit's `Specflow-Task:` trailer, read by the daemon after the agent's run


# ---- orchestrations (SPEC §6) ----

class Phase(StrEnum):
    DESIGN = "design"
    ANALYZE = "analyze"
    IMPLEMENT = "implement"
    VERIFY = "verify"
    MERGE = "merge"


class Status(StrEnum):
    """An orchestration's status."""

    RUNNING = "running"
    PAUSED = "paused"
    WAITING_MERGE = "waiting_merge"
    NEEDS_ATTENTION = "needs_attention"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    # In the shared feed of a fleet (SPEC §10), waiting for a host to claim it: never a state the
    # machine steps, only what `status` and `list` show of an orchestration no host runs yet.
    QUEUED = "queued"


ACTIVE = frozenset({Status.RUNNING, Status.PAUSED, Status.WAITING_MERGE, Status.NEEDS_ATTENTION, Status.QUEUED})
TERMINAL = frozenset({Status.COMPLETED, Status.FAILED, Status.CANCELLED})


class BatchStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    HEALING = "healing"
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"


class Awaiting(StrEnum):
    """A step the shell runs for the machine, other than an agent: it answers with an event."""

    PLAN = "plan"  # re-read the task list -> PlanReady
    VERIFY = "verify"  # run verify_command -> VerifyFinished
    MERGE = "merge"  # merge the work branch -> MergeFinished


class PauseReason(StrEnum):
    USER = "user"
    RATE_LIMIT = "rate_limit"  # waiting_until says when it goes on by itself
    BETWEEN_BATCHES = "between_batches"


class WorkKind(StrEnum):
    AGENT = "agent"
    VERIFY = "verify"
    MERGE = "merge"
    PLAN = "plan"


class Purpose(StrEnum):
    """Why an agent runs; for a merge Work, REQUESTED says someone asked for it (no waiting_merge)."""

    WORK = "work"  # a batch's tasks
    FOLLOWUP = "followup"  # the same session, for tasks a successful run left unmarked
    HEAL = "heal"  # a failed batch or verify, with the failure's context
    DESIGN = "design"
    ANALYZE = "analyze"
    REQUESTED = "requested"


class RecoverChoice(StrEnum):
    RETRY = "retry"
    SKIP = "skip"
    ABORT = "abort"


class MergeOutcome(StrEnum):
    MERGED = "merged"
    UP_TO_DATE = "up_to_date"  # the base branch has the work already: as good as merged
    CONFLICT = "conflict"
    DIRTY = "dirty"  # the base branch's checkout has uncommitted changes
    FAILED = "failed"


class FeedEvent(StrEnum):
    """`Specflow-Event` of the design-docs branch's commits: the progress feed's vocabulary."""

    INIT = "init"  # the branch's first commit
    SPEC_CREATED = "spec-created"
    MERGE_COMMIT = "merge"  # the merge commit on the base branch names its orchestration so
    STARTED = "started"
    PHASE = "phase"
    SKIPPED = "skipped"
    BATCH_STARTED = "batch-started"
    FOLLOWUP_STARTED = "followup-started"
    HEAL_STARTED = "heal-started"
    BATCH_COMPLETED = "batch-completed"
    BATCH_FAILED = "batch-failed"
    BATCH_SKIPPED = "batch-skipped"
    VERIFY_PASSED = "verify-passed"
    VERIFY_FAILED = "verify-failed"
    BUDGET_STOPPED = "budget-stopped"
    RATE_LIMITED = "rate-limited"
    NEEDS_ATTENTION = "needs-attention"
    PAUSED = "paused"
    RESUMED = "resumed"
    RECOVERED = "recovered"
    RESTARTED = "restarted"
    CANCELLED = "cancelled"
    WAITING_MERGE = "waiting-merge"
    MERGE_REQUESTED = "merge-requested"
    MERGED = "merged"
    COMPLETED = "completed"
    FAILED = "failed"
    # Many machines (SPEC §10): every one of these names its host (`Specflow-Host`).
    QUEUED = "queued"  # a start request dropped on some host; any host with a free slot may claim it
    CLAIMED = "claimed"  # pushed with the orchestration's new lease: the claim that lands first wins
    TAKEN_OVER = "taken-over"  # a lapsed lease taken by another host, which resumes the orchestration
    LEASE_LOST = "lease-lost"  # this host stopped its agent: it may write nothing more for it


# ---- many machines (SPEC §10) ----

class Reachability(StrEnum):
    """Whether this host reached the shared remote at its last try."""

    REACHABLE = "reachable"
    UNREACHABLE = "unreachable"


class PushRefusal(StrEnum):
    """Why the remote refused a push (all of an atomic push is refused when one ref is)."""

    MOVED = "moved"  # the branch moved on the remote: not a fast-forward; fetch, rebuild, push again
    STALE = "stale"  # a `--force-with-lease` ref is not what we expected: someone else's lease now
    OTHER = "other"  # anything else the remote said (a hook, a permission): retried later


# ---- agents (SPEC §9) ----

class AgentKind(StrEnum):
    CLAUDE = "claude"
    CODEX = "codex"
    GEMINI = "gemini"
    AIDER = "aider"
    COMMAND = "command"


class ErrorType(StrEnum):
    """Why an agent run failed, whatever CLI ran it."""

    TIMEOUT = "timeout"
    BUDGET_EXCEEDED = "budget_exceeded"
    MAX_TURNS = "max_turns"
    PROCESS_FAILED = "process_failed"
    INVALID_SESSION = "invalid_session"
    RATE_LIMITED = "rate_limited"
    CANCELLED = "cancelled"
    BAD_OUTPUT = "bad_output"
    LOST = "lost"  # gone while no daemon watched, and its log does not say how it ended
    PERMISSION_DENIED = "permission_denied"  # the CLI refused tool calls, and tasks were left undone


class StopReason(StrEnum):
    """Why the supervisor stopped a run that was still going."""

    TIMEOUT = "timeout"  # [agent] timeout_s passed
    CANCELLED = "cancelled"  # the orchestration asked (cancel, a stopping pause)
    UNREACHABLE = "unreachable"  # the CLI kept waiting for a model API it could not reach


# Which CLIs can continue a session (`--resume`, `exec resume`), and which can fork one into a new
# session that keeps its history. A healer forks where it can; elsewhere it starts a fresh session
# with the failure's context, as does a follow-up where nothing can be resumed.
RESUMES = frozenset({AgentKind.CLAUDE, AgentKind.CODEX, AgentKind.GEMINI})
FORKS = frozenset({AgentKind.CLAUDE, AgentKind.CODEX})

# `[agent] permission_mode`: "" is specflowd's own setting for each CLI (what the implement prompt
# needs: edit files, commit, `specflowd mark`, the verify command; README, "Agents"); anything else
# is the CLI's own word, passed to it: Claude Code's --permission-mode, Codex's sandbox mode,
# Gemini CLI's --approval-mode. Aider and plain commands have none.
PERMISSION_MODES: dict[AgentKind, frozenset[str]] = {
    AgentKind.CLAUDE: frozenset({"", "acceptEdits", "auto", "bypassPermissions", "manual", "dontAsk", "plan"}),
    AgentKind.CODEX: frozenset({"", "read-only", "workspace-write", "danger-full-access"}),
    AgentKind.GEMINI: frozenset({"", "default", "auto_edit", "yolo", "plan"}),
    AgentKind.AIDER: frozenset({""}),
    AgentKind.COMMAND: frozenset({""}),
}


# ---- requests (SPEC §5) ----

class RequestAction(StrEnum):
    START = "start"
    PAUSE = "pause"
    RESUME = "resume"
    CANCEL = "cancel"
    MERGE = "merge"
    RECOVER = "recover"
    MARK = "mark"


class ErrorCode(StrEnum):
    """`error.code` of a refused request; also the code a UserError carries."""

    INVALID_JSON = "invalid_json"
    INVALID_TOML = "invalid_toml"
    UNKNOWN_ACTION = "unknown_action"
    INVALID_FIELD = "invalid_field"
    TOO_LARGE = "too_large"
    NOT_REGULAR_FILE = "not_regular_file"
    WRONG_OWNER = "wrong_owner"
    UNKNOWN_SPEC = "unknown_spec"
    UNKNOWN_TASK = "unknown_task"
    UNKNOWN_ORCHESTRATION = "unknown_orchestration"
    CONFLICT = "conflict"
    INTERNAL = "internal"


class LogLevel(StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

"""What each CLI's permission settings let an agent do, as far as specflowd's prompts need it: edit
files, `git add` and `git commit`, run `specflowd mark` and the project's verify command.

Used to build Claude Code's list of allowed tools, to name the tools a CLI refused when a run left
tasks undone, and by `doctor` to warn about settings with which no batch can complete. The
settings themselves are README's ("Agents", "Permissions").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from specflowd.core.vocab import AgentKind

NAMES = {AgentKind.CLAUDE: "Claude Code", AgentKind.CODEX: "Codex", AgentKind.GEMINI: "Gemini CLI",
         AgentKind.AIDER: "Aider", AgentKind.COMMAND: "the agent command"}

# Claude Code in print mode asks nobody: a tool that is not allowed is refused. These are what the
# implement prompt needs; edits are allowed by the permission mode (acceptEdits) as well.
CLAUDE_NEEDED = (
    "Read", "Edit", "Write", "Glob", "Grep",
    "Bash(git add:*)", "Bash(git commit:*)", "Bash(git status:*)", "Bash(git diff:*)", "Bash(git log:*)",
    "Bash(git show:*)", "Bash(git rev-parse:*)", "Bash(specflowd mark:*)",
)
CLAUDE_DEFAULT_MODE = "acceptEdits"
GEMINI_DEFAULT_MODE = "yolo"
# Tools whose refusal makes the implement prompt impossible, whatever else is allowed.
_CLAUDE_VITAL = ("Bash", "Edit", "Write", "Bash(git add:*)", "Bash(git commit:*)", "Bash(specflowd mark:*)",
                 "Bash(git:*)", "Bash(specflowd:*)")


def claude_allowed_tools(verify_command: str, extra: Sequence[str]) -> list[str]:
    """What Claude Code may run without asking: what the prompts need, the verify command, and
    `[agent] allowed_tools` on top (it adds, it never takes away)."""
    tools = list(CLAUDE_NEEDED)
    if verify_command.strip():
        tools.append(f"Bash({verify_command.strip()}:*)")
    tools += extra
    return list(dict.fromkeys(tools))


def refused_tool(name: str, tool_input: object) -> str:
    """How a refused tool call is named to a person: `Bash(npm test)`, `Write(src/a.py)`, `WebFetch`."""
    if isinstance(tool_input, dict):
        for key in ("command", "file_path", "path", "url"):
            value = tool_input.get(key)
            if isinstance(value, str) and value.strip():
                return f"{name}({' '.join(value.split())[:120]})"
    return name


def refusal(kind: AgentKind, refused: Iterable[str]) -> str:
    """Why a run that was refused tools left its tasks undone, and what to change."""
    names = list(dict.fromkeys(refused))
    shown = ", ".join(f"`{n}`" for n in names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    fix = ("add them to [agent] allowed_tools" if kind == AgentKind.CLAUDE
           else "loosen [agent] permission_mode")
    return f"{NAMES[kind]} was refused {shown}: {fix}"


def cannot_commit(kind: AgentKind, permission_mode: str, disallowed_tools: Sequence[str],
                  cli_sandbox_mode: str | None = None) -> str | None:
    """Why, with these settings, an agent cannot carry out the implement prompt (edit, commit and
    mark); None when it can. `cli_sandbox_mode` is Codex's own `sandbox_mode`, when its config sets one."""
    name = NAMES[kind]
    if kind == AgentKind.CLAUDE:
        if permission_mode == "plan":
            return f"{name} in plan mode changes no file"
        blocked = [t for t in disallowed_tools if t in _CLAUDE_VITAL]
        if blocked:
            return f"[agent] disallowed_tools refuses {', '.join(blocked)}, which agents need to edit, commit and mark"
    elif kind == AgentKind.CODEX:
        mode = permission_mode or cli_sandbox_mode
        if mode == "read-only":
            return f"{name}'s read-only sandbox lets an agent write nothing"
        if mode == "workspace-write":
            why = "your Codex config's sandbox_mode" if not permission_mode else "permission_mode workspace-write"
            return (f"{why}: {name}'s workspace-write sandbox keeps the repository's git directory read-only, so "
                    "agents cannot commit; leave [agent] permission_mode empty (specflowd's permission profile "
                    "makes the git directory writable) and remove sandbox_mode from the Codex config")
    elif kind == AgentKind.GEMINI:
        if permission_mode == "plan":
            return f"{name} in plan mode changes no file"
        if permission_mode in ("default", "auto_edit"):
            return (f"{name} asks before running shell commands in approval mode {permission_mode}, and a "
                    "headless run cannot answer: `git commit` and `specflowd mark` are refused")
    elif kind == AgentKind.AIDER:
        return (f"{name} runs no shell command unattended: it cannot run `specflowd mark`, and specflowd "
                "runs it with --no-auto-commits, so no batch can be confirmed")
    return None

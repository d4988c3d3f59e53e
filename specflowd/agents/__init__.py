"""The agent layer. Pure adapters, one per CLI (`claude`, `codex`, `gemini`, `aider`, `command`):
`argv` builds its command line and `parse_line` reads its stream, folded into one result by
`stream`; `limits` reads usage-limit messages. Around them the supervision: `supervisor` spawns,
follows (`tail`), times out, cancels and adopts runs, in the `pool`'s slots, as `process` says.
`demo` is the built-in scripted agent (`python -m specflowd.agents.demo`)."""

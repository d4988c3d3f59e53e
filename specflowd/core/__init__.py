"""The functional core: pure functions over plain data, no I/O. Task lists (`tasklist`), the
planner (`plan`), lint, ids, commit messages (`trailers`), the orchestration machine (`machine`,
its `events` and `state`), budgets, prompts, the request protocol, settings models, the words
they all share (`vocab`), and the views of state (`overview`, `rebuild`). The shell around it
performs what it decides; tests/test_layering.py keeps it free of os, subprocess and the rest."""

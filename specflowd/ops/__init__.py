"""Set-up and one-off jobs around the daemon: `init` (a project set up for specflowd), `specs`
(a new spec from templates), `hooks` (git hooks, and the work they hand to Python), `systemd`
(the user units), `doctor` (checks with fixes), `demo` (the whole loop in a throw-away project)."""

"""`specflowd run`: the long-running process. `main` wires the event loop (`loop`, the one owner
of mutable state) to the inbox (`inbox`, `requests`), the watchers (`watch`, `handedits`), the
orchestrations (`runner`, `verify`), the state files (`statefile`), the single-instance lock
(`pidlock`) and systemd (`notify`). Watchers and worker threads only post events to the loop."""

"""One thin module per `specflowd` command (cli.COMMANDS lists them): each parses its options, calls
the core, repo, views or ops, and prints. Only here are imports made lazily, inside the command,
so that each command loads no more than it needs."""

"""One module per `specflowd` command; each parses its options and calls the core and the shell."""

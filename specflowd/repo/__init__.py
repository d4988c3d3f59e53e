"""The one door to git and to a project's files: `git` (every git command, named; the object
store), `project` (where everything is), `settings` (the config files), `designdocs` (committing
to the design-docs branch with compare-and-swap), `marks`, `merge`, `worktrees`, and the feed
(`feed`, `follow`). It knows nothing of the daemon."""

"""The runtime: the supervisor and the processes it runs, plan-file workers, team runs."""

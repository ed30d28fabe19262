"""What managers and site engineers read: the one read-only data-access layer over the lake,
the alert store and the simulator's status (`reporting.fleet`), and the reports built from it.
Shared by the dashboards and the Dagster report asset; it never writes and never takes a lock
that a writer waits on."""

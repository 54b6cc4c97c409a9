"""Running it all: the app wiring cameras to the analysis loop, worker supervision, camera leases, events."""

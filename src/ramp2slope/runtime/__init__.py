"""Run-time settings and process control: how a run is stopped from outside
(:mod:`.termination`)."""

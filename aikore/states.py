"""Instance states and their groups. Imports nothing: every module may depend on it."""

STOPPED = "stopped"
STARTING = "starting"
RUNNING = "running"
STOPPING = "stopping"
ERROR = "error"

ALL_STATES = (STOPPED, STARTING, RUNNING, STOPPING, ERROR)
# No process of the instance is alive (or it is only remembered in the DB).
STOPPED_STATES = frozenset({STOPPED, ERROR})
# A process exists and AiKore is responsible for it.
ACTIVE_STATES = frozenset({STARTING, RUNNING, STOPPING})

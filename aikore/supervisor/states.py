"""Instance states, their groups and the allowed transitions. Imports nothing: every module may use it."""

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

# Every transition the supervisor may make; anything else is a bug and is refused loudly.
# ERROR is only entered once no process of the instance is left, so STOPPED_STATES stay true.
TRANSITIONS = frozenset(
    {
        (STOPPED, STARTING),  # start requested, autostart, or restart policy
        (ERROR, STARTING),  # start after a failure
        (STARTING, RUNNING),  # the health path answered below 500
        (STARTING, STOPPING),  # stop requested, or never ready / died and its tree is cleaned up
        (RUNNING, STOPPING),  # stop requested, or died and its tree is cleaned up
        (STOPPING, STOPPED),  # stopped on request
        (STOPPING, ERROR),  # the cleanup after a failure finished
        (STARTING, ERROR),  # died or failed to spawn with nothing left to clean
        (RUNNING, ERROR),  # died with nothing left to clean
    }
)


def can_change(old: str, new: str) -> bool:
    """Whether ``old -> new`` is an allowed transition."""
    return (old, new) in TRANSITIONS

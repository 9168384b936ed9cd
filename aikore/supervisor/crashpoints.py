"""Named points between two steps of a change, where the crash tests kill AiKore (SIGKILL).

Each create, start and delete is ordered so that AiKore dying between any two of its steps
leaves a state the next start completes or rolls back. The tests prove it on a real AiKore by
setting ``AIKORE_TEST_CRASH_AT=<point>``: AiKore kills itself there, as the OOM killer or a power
cut would. Unset (always, outside those tests), ``reach`` is one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

ENV = "AIKORE_TEST_CRASH_AT"


def reach(point: str) -> None:
    """SIGKILL this process if the crash tests asked for a crash at ``point``."""
    if os.environ.get(ENV) == point:
        os.kill(os.getpid(), signal.SIGKILL)

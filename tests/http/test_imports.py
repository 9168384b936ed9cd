"""The auth decision and the gate stand alone: importing them loads none of AiKore's machinery."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("aikore.supervisor", "aikore.monitor", "aikore.store", "proxy")


def test_authorize_and_the_gate_import_without_supervisor_monitor_store_or_proxy() -> None:
    code = ("import aikore.http.authorize, aikore.http.gate, sys; "
            "print(sorted(m for m in sys.modules if m.startswith(('aikore', 'proxy'))))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                            check=True)
    loaded = ast.literal_eval(result.stdout.strip())
    assert "aikore.http.authorize" in loaded
    heavy = [m for m in loaded if m in HEAVY or m.startswith(tuple(h + "." for h in HEAVY))]
    assert heavy == []

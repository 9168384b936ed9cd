"""`make bench`: the proxy benchmark (AiKore and its proxy package side by side with NGINX).

Arguments pass through to bench/proxy_bench.py (see its --help). The monitor's own cost is
measured separately by bench/monitor_cpu.py.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

if __name__ == "__main__":
    sys.argv[0] = str(Path(__file__).with_name("proxy_bench.py"))
    runpy.run_path(sys.argv[0], run_name="__main__")

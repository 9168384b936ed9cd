"""The monitor: system, GPU and per-instance usage, its history, and /metrics."""

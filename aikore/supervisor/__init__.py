"""The supervisor: instance processes, their states, ports, logs and the OS seam."""

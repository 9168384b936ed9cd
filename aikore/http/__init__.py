"""AiKore's HTTP edge policies: credentials, sessions, the gate, origin, rate limit, headers."""

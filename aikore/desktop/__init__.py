"""Persistent mode: each persistent instance's desktop session, streamed with Selkies."""

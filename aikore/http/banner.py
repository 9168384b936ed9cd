"""What AiKore prints at startup about logging in: the login URL, or the --no-auth warning."""

from __future__ import annotations

from urllib.parse import quote

from aikore.http.auth import Auth
from aikore.http.rebinding import is_loopback


def startup_message(auth: Auth, dashboard_url: str) -> str | None:
    """The line (or block) printed after the dashboard URL."""
    settings = auth.settings
    if auth.mode == "token":
        return f"AiKore login URL: {dashboard_url}?token={quote(auth.credentials.token, safe='')}"
    if auth.mode == "password":
        where = "--token/AIKORE_TOKEN" if settings.token else str(settings.token_path)
        return (f"AiKore login: {dashboard_url}login with AIKORE_PASSWORD; "
                f"scripts use 'Authorization: Bearer <token>' (token in {where})")
    if not is_loopback(settings.host):
        bar = "!" * 78
        return (f"{bar}\n!! WARNING: authentication is OFF (--no-auth) and AiKore listens on "
                f"{settings.host}.\n!! Anyone who can reach this port can run any command on "
                f"this machine.\n!! Use --no-auth only behind a trusted network or proxy that "
                f"authenticates.\n{bar}")
    return "AiKore: authentication is off (--no-auth); listening on loopback only"

"""authorize() as a pure function: a request's facts in, one decision out, nothing changed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from aikore.config import Settings
from aikore.http import Auth
from aikore.http.authorize import Allow, Decision, Redirect, Refuse, RequestFacts, authorize
from aikore.http.forwarded import Peer
from aikore.http.ratelimit import FAILURES_PER_WINDOW

from .conftest import TOKEN

HOST = "127.0.0.1:9000"
HERE = f"http://{HOST}"
# Stands for a valid session cookie of the Auth under test (made once it is loaded).
SESSION = "<session>"

BASE = RequestFacts(
    method="GET", path="/api/instances", path_qs="/api/instances", host=HOST, origin=None, referer=None,
    session_cookie=None, bearer=None, query_token=None, upgrade=False, wants_html=False, open_route=False,
    public_port=False, peer=Peer("192.0.2.7", HOST, "http"),
)
PAGE = {"path": "/", "path_qs": "/", "wants_html": True}
APP = {"path": "/app/demo/", "path_qs": "/app/demo/"}
WS = {"upgrade": True, "path": "/app/demo/ws", "path_qs": "/app/demo/ws"}
UNAUTHORIZED = ("refuse", 401, "unauthorized", False)
FORBIDDEN = ("refuse", 403, "forbidden", False)


def _outcome(decision: Decision) -> tuple[Any, ...]:
    """The decision as a comparable tuple (an AikoreError compares by identity)."""
    match decision:
        case Allow(identity, strip):
            return ("allow", identity.via, identity.from_query, strip)
        case Refuse(error, failed):
            return ("refuse", error.status, error.code, failed)
        case Redirect(location, open_session, failed):
            return ("redirect", location, open_session, failed)
    raise AssertionError(decision)


def _auth(tmp_path: Path, **settings: Any) -> Auth:
    auth = Auth(Settings(**{"data_dir": tmp_path, "token": TOKEN, **settings}))
    auth.load()
    return auth


def _decide(auth: Auth, **facts: Any) -> Decision:
    if facts.get("session_cookie") == SESSION:
        facts["session_cookie"] = auth.sessions.open().cookie
    return authorize(BASE._replace(**facts), auth)


TOKEN_MODE_TABLE: list[tuple[str, dict[str, Any], tuple[Any, ...]]] = [
    ("session cookie", {"session_cookie": SESSION}, ("allow", "session", False, False)),
    ("bearer token", {"bearer": TOKEN}, ("allow", "token", False, False)),
    ("bearer to an instance: its credentials come off", {**APP, "bearer": TOKEN}, ("allow", "token", False, True)),
    ("session to an instance", {**APP, "session_cookie": SESSION}, ("allow", "session", False, True)),
    ("wrong bearer is counted", {"bearer": "wrong"}, ("refuse", 401, "unauthorized", True)),
    ("wrong bearer on a page: login, and counted", {**PAGE, "bearer": "wrong"},
     ("redirect", "/login?next=/&reason=token", False, True)),
    ("wrong query token on a page: login says so, and the token is not kept",
     {**PAGE, "path": "/x", "path_qs": "/x?a=1&token=wrong", "query_token": "wrong"},
     ("redirect", "/login?next=/x?a%3D1&reason=token", False, True)),
    ("bearer wins over the query token", {"bearer": "wrong", "query_token": TOKEN},
     ("refuse", 401, "unauthorized", True)),
    ("no credentials", {}, UNAUTHORIZED),
    ("no credentials on a page: login", {**PAGE, "path": "/x", "path_qs": "/x?a=1&b=2"},
     ("redirect", "/login?next=/x?a%3D1%26b%3D2", False, False)),
    ("a script asking for a page gets a 401", {"path": "/", "path_qs": "/"}, UNAUTHORIZED),
    ("query token on a page: cookie and the URL without it",
     {**PAGE, "path_qs": f"/?a=1&token={TOKEN}", "query_token": TOKEN}, ("redirect", "/?a=1", True, False)),
    ("query token on an instance page", {**APP, "wants_html": True, "path_qs": f"/app/demo/?token={TOKEN}",
                                         "query_token": TOKEN}, ("redirect", "/app/demo/", True, False)),
    ("API with a query token is answered", {"path_qs": f"/api/instances?token={TOKEN}", "query_token": TOKEN},
     ("allow", "token", True, False)),
    ("wrong query token is counted", {"query_token": "wrong"}, ("refuse", 401, "unauthorized", True)),
    ("POST from a foreign Origin, even with the token", {"method": "POST", "bearer": TOKEN,
                                                         "origin": "http://evil.example"}, FORBIDDEN),
    ("POST from a foreign Referer", {"method": "POST", "session_cookie": SESSION,
                                     "referer": "http://127.0.0.1:19001/page"}, FORBIDDEN),
    ("foreign POST to the login endpoint", {"method": "POST", "path": "/api/auth/login", "open_route": True,
                                            "origin": "http://evil.example"}, FORBIDDEN),
    ("cookie POST without Origin or Referer", {"method": "POST", "session_cookie": SESSION}, FORBIDDEN),
    ("cookie POST from the dashboard", {"method": "POST", "session_cookie": SESSION, "origin": HERE},
     ("allow", "session", False, False)),
    ("bearer POST needs no Origin", {"method": "POST", "bearer": TOKEN}, ("allow", "token", False, False)),
    ("GET from a foreign Origin", {"session_cookie": SESSION, "origin": "http://evil.example"},
     ("allow", "session", False, False)),
    ("cookie websocket from another origin", {**WS, "session_cookie": SESSION, "origin": "http://127.0.0.1:19001"},
     FORBIDDEN),
    ("cookie websocket to an app without Origin", {**WS, "session_cookie": SESSION}, ("allow", "session", False, True)),
    ("cookie websocket to the API without Origin", {"upgrade": True, "path": "/api/system/stream",
                                                    "session_cookie": SESSION}, FORBIDDEN),
    ("websocket without credentials", {**WS, "wants_html": True}, UNAUTHORIZED),
    ("open route", {"path": "/api/health", "open_route": True}, ("allow", "anonymous", False, False)),
    ("open route: a wrong token is not even looked at", {"path": "/login", "open_route": True, "bearer": "wrong"},
     ("allow", "anonymous", False, False)),
    ("open route with a session", {"path": "/login", "open_route": True, "session_cookie": SESSION},
     ("allow", "session", False, False)),
    ("public port: nothing is open", {"public_port": True, "open_route": True, "path": "/api/health"}, UNAUTHORIZED),
    ("public port: its /api/ is the instance's", {"public_port": True, "bearer": TOKEN},
     ("allow", "token", False, True)),
    ("public port page: login on the dashboard port, then back",
     {"public_port": True, "wants_html": True, "path": "/p", "path_qs": "/p?x=1",
      "peer": Peer("192.0.2.7", "127.0.0.1:19001", "http")},
     ("redirect", "http://127.0.0.1:9000/login?next=http://127.0.0.1:19001/p?x%3D1", False, False)),
    ("public port: a query token on a page", {"public_port": True, "wants_html": True, "path": "/api/x",
                                              "path_qs": f"/api/x?token={TOKEN}", "query_token": TOKEN},
     ("redirect", "/api/x", True, False)),
    ("token mode does not check Host", {"host": "evil.example", "bearer": TOKEN}, ("allow", "token", False, False)),
    # DNS rebinding: state changes and websockets only under allowed names, from allowed pages.
    ("a state change under a rebound name, even with the token",
     {"method": "POST", "bearer": TOKEN, "host": "rebind.attacker.example:9000"}, FORBIDDEN),
    ("a websocket under a rebound name", {**WS, "bearer": TOKEN, "host": "rebind.attacker.example"}, FORBIDDEN),
    ("an app POST from a page on a foreign name", {**APP, "method": "POST", "bearer": TOKEN,
                                                   "origin": "http://rebind.attacker.example"}, FORBIDDEN),
    ("an app websocket from an opaque origin", {**WS, "session_cookie": SESSION, "origin": "null"}, FORBIDDEN),
    ("a state change under this machine's address", {"method": "POST", "bearer": TOKEN, "host": "192.0.2.1:9000",
                                                     "peer": Peer("192.0.2.7", "192.0.2.1:9000", "http")},
     ("allow", "token", False, False)),
    # The cookie into apps: from AiKore's own origin or the instance's own public port only.
    ("cookie POST to an app from another port", {**APP, "method": "POST", "session_cookie": SESSION,
                                                 "origin": "http://127.0.0.1:19002", "instance_public_port": 19001},
     FORBIDDEN),
    ("cookie POST to an app from its own public port", {**APP, "method": "POST", "session_cookie": SESSION,
                                                        "origin": "http://127.0.0.1:19001",
                                                        "instance_public_port": 19001},
     ("allow", "session", False, True)),
    ("cookie PUT to a desktop from its instance's public port",
     {"method": "PUT", "path": "/desktop/demo/x", "path_qs": "/desktop/demo/x", "session_cookie": SESSION,
      "origin": "http://127.0.0.1:19001", "instance_public_port": 19001}, ("allow", "session", False, True)),
    ("cookie DELETE to an app from the dashboard", {**APP, "method": "DELETE", "session_cookie": SESSION,
                                                    "origin": HERE}, ("allow", "session", False, True)),
    ("cookie POST to an app without Origin", {**APP, "method": "POST", "session_cookie": SESSION},
     ("allow", "session", False, True)),
    ("bearer POST to an app from another port of this host", {**APP, "method": "POST", "bearer": TOKEN,
                                                              "origin": "http://127.0.0.1:19002"},
     ("allow", "token", False, True)),
    ("cookie POST on a public port from the dashboard",
     {"public_port": True, "method": "POST", "session_cookie": SESSION, "origin": HERE, "instance_public_port": 19001,
      "peer": Peer("192.0.2.7", "127.0.0.1:19001", "http")}, FORBIDDEN),
    ("cookie POST on a public port from itself",
     {"public_port": True, "method": "POST", "session_cookie": SESSION, "origin": "http://127.0.0.1:19001",
      "peer": Peer("192.0.2.7", "127.0.0.1:19001", "http")}, ("allow", "session", False, True)),
]


@pytest.mark.parametrize("changes,expected", [(c, e) for _, c, e in TOKEN_MODE_TABLE],
                         ids=[name for name, _, _ in TOKEN_MODE_TABLE])
def test_decision_with_auth_on(tmp_path: Path, changes: dict[str, Any], expected: tuple[Any, ...]) -> None:
    assert _outcome(_decide(_auth(tmp_path), **changes)) == expected


NO_AUTH_TABLE: list[tuple[str, str, dict[str, Any], tuple[Any, ...]]] = [
    ("rebinding host refused", "127.0.0.1", {"host": "evil.example"}, FORBIDDEN),
    ("rebinding host refused on an instance too", "127.0.0.1", {**APP, "host": "evil.example:9000"}, FORBIDDEN),
    ("loopback host", "127.0.0.1", {"host": "localhost:9000"}, ("allow", "none", False, False)),
    ("a .localhost name", "127.0.0.1", {"host": "app.localhost"}, ("allow", "none", False, False)),
    ("no credentials needed, none stripped", "127.0.0.1", {**APP}, ("allow", "none", False, False)),
    ("foreign pages still cannot POST", "127.0.0.1", {"method": "POST", "origin": "http://evil.example"}, FORBIDDEN),
    ("bound to all interfaces: an address", "0.0.0.0", {"host": "192.168.1.10:9000"},
     ("allow", "none", False, False)),
    ("bound to all interfaces: a rebound name is refused", "0.0.0.0", {"host": "rebind.attacker.example:9000"},
     FORBIDDEN),
    ("bound to all interfaces: a state change from a rebound page", "0.0.0.0",
     {**APP, "method": "POST", "host": "rebind.attacker.example", "origin": "http://rebind.attacker.example"},
     FORBIDDEN),
    ("bound to all interfaces: a foreign page cannot POST to an app", "0.0.0.0",
     {**APP, "method": "POST", "origin": "http://evil.example"}, FORBIDDEN),
    ("bound to all interfaces: nor open its websocket", "0.0.0.0", {**WS, "origin": "http://203.0.113.9"},
     FORBIDDEN),
    ("bound to all interfaces: the app's own page can", "0.0.0.0", {**APP, "method": "POST", "origin": HERE},
     ("allow", "none", False, False)),
]


@pytest.mark.parametrize("listen,changes,expected", [(h, c, e) for _, h, c, e in NO_AUTH_TABLE],
                         ids=[name for name, _, _, _ in NO_AUTH_TABLE])
def test_decision_with_auth_off(tmp_path: Path, listen: str, changes: dict[str, Any],
                                expected: tuple[Any, ...]) -> None:
    auth = _auth(tmp_path, auth="none", token=None, host=listen)
    assert _outcome(_decide(auth, **changes)) == expected


def test_a_wrong_token_is_reported_not_recorded(tmp_path: Path) -> None:
    auth = _auth(tmp_path)
    for _ in range(FAILURES_PER_WINDOW * 2):
        assert _outcome(_decide(auth, bearer="wrong")) == ("refuse", 401, "unauthorized", True)
    assert auth.limiter.retry_after(BASE.peer.address) is None


def test_an_address_over_the_limit_gets_429_even_with_the_right_token(tmp_path: Path) -> None:
    auth = _auth(tmp_path)
    for _ in range(FAILURES_PER_WINDOW):
        auth.limiter.fail(BASE.peer.address)
    decision = _decide(auth, bearer=TOKEN)
    assert _outcome(decision) == ("refuse", 429, "too_many_requests", False)
    assert isinstance(decision, Refuse)
    assert 1 <= int(decision.error.headers["Retry-After"]) <= 60
    assert _outcome(_decide(auth, query_token=TOKEN)) == ("refuse", 429, "too_many_requests", False)
    # A session does not go through the limiter; another address is not held back.
    assert _outcome(_decide(auth, session_cookie=SESSION)) == ("allow", "session", False, False)
    other = Peer("192.0.2.8", HOST, "http")
    assert _outcome(_decide(auth, bearer=TOKEN, peer=other)) == ("allow", "token", False, False)


def test_a_401_tells_scripts_how_to_authenticate(tmp_path: Path) -> None:
    decision = _decide(_auth(tmp_path))
    assert isinstance(decision, Refuse)
    assert decision.error.headers["WWW-Authenticate"] == 'Bearer realm="AiKore"'


def test_a_logged_out_or_forged_session_is_no_session(tmp_path: Path) -> None:
    auth = _auth(tmp_path)
    session = auth.sessions.open()
    auth.sessions.revoke(session)
    assert _outcome(_decide(auth, session_cookie=session.cookie)) == UNAUTHORIZED
    assert _outcome(_decide(auth, session_cookie="forged.123.abc")) == UNAUTHORIZED


def test_the_allowed_session_is_the_cookies(tmp_path: Path) -> None:
    auth = _auth(tmp_path)
    session = auth.sessions.open()
    decision = _decide(auth, session_cookie=session.cookie)
    assert isinstance(decision, Allow)
    assert decision.identity.session == session

"""A real ``aikore`` process with auth on: the token file, the printed login URL, session expiry."""

from __future__ import annotations

import http.client
import stat
from collections.abc import Callable
from pathlib import Path

from aikore.http.sessions import COOKIE_NAME
from tests.helpers import AikoreProcess, Response, wait_until

from .conftest import PASSWORD


def _raw(proc: AikoreProcess, method: str, path: str, headers: dict[str, str] | None = None,
         body: bytes | None = None) -> Response:
    """One request without following redirects (urllib would follow the ?token= one)."""
    conn = http.client.HTTPConnection("127.0.0.1", proc.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return Response(resp.status, resp.read(), resp.headers)  # type: ignore[arg-type]
    finally:
        conn.close()


def _cookie(resp: Response) -> str:
    for header in resp.headers.get_all("Set-Cookie") or []:  # type: ignore[attr-defined]
        if header.startswith(f"{COOKIE_NAME}="):
            return header.split(";", 1)[0]
    raise AssertionError(f"no session cookie in {resp.headers}")


def _login_url_token(proc: AikoreProcess) -> str:
    line = wait_until(lambda: next((ln for ln in proc.output().splitlines() if "?token=" in ln), None),
                      what="the login URL in the output")
    assert f"http://127.0.0.1:{proc.port}/?token=" in line
    return line.rsplit("?token=", 1)[1].strip()


def test_generated_token_is_kept_private_printed_and_reused(aikore_process: Callable[..., AikoreProcess],
                                                            tmp_path: Path) -> None:
    proc = aikore_process(extra_args=[])
    token_file = tmp_path / "data" / "token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    token = token_file.read_text().strip()
    assert len(token) >= 32
    assert _login_url_token(proc) == token
    assert proc.request("GET", "/api/instances").status == 401
    proc.token = token
    assert proc.request("GET", "/api/instances").status == 200

    # Opening the printed URL: a cookie, and the token gone from the address bar.
    resp = _raw(proc, "GET", f"/?token={token}", {"Accept": "text/html"})
    assert resp.status == 302
    assert resp.headers["Location"] == "/"
    page = _raw(proc, "GET", "/", {"Accept": "text/html", "Cookie": _cookie(resp)})
    assert page.status == 200

    proc.stop()
    again = aikore_process(extra_args=[], port=proc.port)
    assert _login_url_token(again) == token
    assert token_file.read_text().strip() == token


def test_a_token_file_readable_by_others_is_made_private(aikore_process: Callable[..., AikoreProcess],
                                                         tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "token").write_text("my-own-long-token-value-123\n")
    (data / "token").chmod(0o644)
    proc = aikore_process(extra_args=[])
    assert stat.S_IMODE((data / "token").stat().st_mode) == 0o600
    proc.token = "my-own-long-token-value-123"
    assert proc.request("GET", "/api/instances").status == 200


def test_token_from_the_environment_is_not_written(aikore_process: Callable[..., AikoreProcess],
                                                   tmp_path: Path) -> None:
    proc = aikore_process(extra_args=[], env={"AIKORE_TOKEN": "from-env-0123456789"})
    assert not (tmp_path / "data" / "token").exists()
    assert proc.request("GET", "/api/instances", headers={"Authorization": "Bearer from-env-0123456789"}).status == 200


def test_session_expires_after_aikore_session_ttl(aikore_process: Callable[..., AikoreProcess]) -> None:
    proc = aikore_process(extra_args=["--token", "ttl-token-0123456789"], env={"AIKORE_SESSION_TTL": "2"})
    cookie = _cookie(_raw(proc, "GET", "/?token=ttl-token-0123456789"))
    assert _raw(proc, "GET", "/api/instances", {"Cookie": cookie}).status == 200
    wait_until(lambda: _raw(proc, "GET", "/api/instances", {"Cookie": cookie}).status == 401, timeout=30,
               what="the session to expire")
    page = _raw(proc, "GET", "/", {"Cookie": cookie, "Accept": "text/html"})
    assert page.status == 302
    assert page.headers["Location"].startswith("/login")


def test_password_mode_prints_where_to_log_in(aikore_process: Callable[..., AikoreProcess]) -> None:
    proc = aikore_process(extra_args=[], env={"AIKORE_PASSWORD": PASSWORD})
    wait_until(lambda: "login with AIKORE_PASSWORD" in proc.output(), what="the password login line")
    assert PASSWORD not in proc.output()
    origin = {"Origin": proc.base, "Content-Type": "application/x-www-form-urlencoded"}
    resp = _raw(proc, "POST", "/login", origin, b"password=correct+horse+battery+staple&next=%2F")
    assert resp.status == 303
    assert _raw(proc, "GET", "/api/instances", {"Cookie": _cookie(resp)}).status == 200


def test_no_auth_on_a_public_address_warns_loudly(aikore_process: Callable[..., AikoreProcess]) -> None:
    proc = aikore_process(extra_args=["--no-auth", "--host", "0.0.0.0"])
    wait_until(lambda: "WARNING: authentication is OFF" in proc.output(), what="the no-auth warning")


def test_no_auth_on_loopback_does_not_shout(aikore_process: Callable[..., AikoreProcess]) -> None:
    proc = aikore_process()
    wait_until(lambda: "authentication is off" in proc.output(), what="the no-auth notice")
    assert "WARNING" not in proc.output()

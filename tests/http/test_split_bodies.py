"""A body that arrives in several TCP pieces is read whole: the API's JSON and the login form alike.

One ``content.read(n)`` returns what has arrived so far; a valid body sent in two pieces 50 ms
apart was cut and refused as invalid. Raw sockets send exactly those pieces to a real aikore.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable

from aikore.http.sessions import COOKIE_NAME
from tests.helpers import AikoreProcess

TOKEN = "split-body-token-0123456789abcdef"


def _send_in_two_pieces(proc: AikoreProcess, method: str, path: str, headers: dict[str, str],
                        body: bytes) -> tuple[int, dict[str, str], bytes]:
    """Head and half the body, 50 ms, the rest; then the whole answer (the server closes)."""
    head = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{proc.port}", f"Content-Length: {len(body)}",
            "Connection: close", *(f"{k}: {v}" for k, v in headers.items())]
    half = len(body) // 2
    with socket.create_connection(("127.0.0.1", proc.port), timeout=30) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall("\r\n".join(head).encode() + b"\r\n\r\n" + body[:half])
        time.sleep(0.05)
        sock.sendall(body[half:])
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    head_text, _, payload = rest.partition(b"\r\n\r\n")
    fields = dict(line.split(": ", 1) for line in head_text.decode("latin-1").split("\r\n") if ": " in line)
    return int(status_line.split()[1]), fields, payload


def test_a_200_kb_json_body_in_two_pieces_is_read_whole(aikore_process: Callable[..., AikoreProcess]) -> None:
    proc = aikore_process(extra_args=["--token", TOKEN])
    proc.token = TOKEN
    created = proc.request("POST", "/api/instances", {"name": "split", "blueprint": "demo"})
    assert created.status == 201, created.body
    iid = created.json()["id"]
    script = "#!/usr/bin/env bash\n" + "echo 'a line of a long script'\n" * 7000
    body = json.dumps({"content": script}).encode()
    assert len(body) > 200_000
    status, _, payload = _send_in_two_pieces(
        proc, "PUT", f"/api/instances/{iid}/script",
        {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}, body,
    )
    assert status == 200, payload[:300]
    assert proc.request("GET", f"/api/instances/{iid}/script").json()["content"] == script


def test_the_login_form_in_two_pieces_is_read_whole(aikore_process: Callable[..., AikoreProcess]) -> None:
    proc = aikore_process(extra_args=["--token", TOKEN])
    body = f"token={TOKEN}&next=%2Fapi%2Finstances".encode()
    headers = {"Origin": proc.base, "Content-Type": "application/x-www-form-urlencoded"}
    status, fields, payload = _send_in_two_pieces(proc, "POST", "/login", headers, body)
    assert status == 303, payload[:300]
    assert fields["Location"] == "/api/instances"
    assert fields["Set-Cookie"].startswith(f"{COOKIE_NAME}=")

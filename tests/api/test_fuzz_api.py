"""Property and hostile-input tests of the API, with authentication on, against a real aikore.

1. schemathesis generates requests from ``/api/openapi.json`` (valid and invalid ones) and
   checks that no answer is a 5xx, and every answer's status, content type and body are the
   ones documented for it.
2. A fixed list of hostile inputs — path traversal in names, blueprint ids and file params,
   shell metacharacters in gpu_ids, huge bodies, invalid UTF-8, oversized headers — each gets a
   4xx and leaves every file in the data dir and every row in the database as it was.
"""

from __future__ import annotations

import hashlib
import json
import socket
import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.helpers import AikoreProcess

TOKEN = "fuzz-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# Not fuzzed: endless streams (a generated request would never finish) and the login endpoint
# (its failures would rate-limit this very client; tests/http covers it).
_NOT_FUZZED = r"(/stream$|^/api/events$|^/api/auth/login$)"


def _start(tmp: Path) -> AikoreProcess:
    proc = AikoreProcess(data_dir=tmp / "data", extra_args=["--token", TOKEN], token=TOKEN)
    return proc.start()


@pytest.fixture(scope="module")
def fuzz_aikore(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AikoreProcess]:
    proc = _start(tmp_path_factory.mktemp("fuzz"))
    yield proc
    proc.stop()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
def test_generated_requests_get_no_5xx_and_match_the_schema(fuzz_aikore: AikoreProcess, mode: GenerationMode) -> None:
    # Driven by hand rather than with schemathesis' pytest plugin, which does not run on pytest 9.
    schema = schemathesis.openapi.from_url(f"{fuzz_aikore.base}/api/openapi.json", headers=AUTH)
    operations = [r.ok() for r in schema.exclude(path_regex=_NOT_FUZZED).get_all_operations()]
    target = fuzz_aikore.request("POST", "/api/instances", {"name": f"target-{mode.value}", "blueprint": "demo"})
    assert target.status == 201
    statuses: Counter[int] = Counter()
    # Random ids (mostly unknown), then every {id} operation on a real instance, delete last.
    # Never a generated script on a real instance: start would run it.
    plan = [(op, {}) for op in operations] + [
        (op, {"path_parameters": {"id": target.json()["id"]}})
        for op in sorted(operations, key=lambda op: op.method.upper() == "DELETE")
        if "{id}" in op.path and not op.path.endswith("/script")
    ]
    failures = [f for op, fixed in plan if (f := _fuzz(op, mode, statuses, fixed))]
    assert not failures, "\n\n".join(failures)
    # The requests really got past the gate, and valid ones really did something.
    assert 401 not in statuses, statuses
    assert mode == GenerationMode.NEGATIVE or sum(n for s, n in statuses.items() if s < 300) >= len(operations)


def _fuzz(operation: Any, mode: GenerationMode, statuses: Counter[int], fixed: dict[str, Any]) -> str | None:
    """Run one operation's generated cases; a description of the first failure, or None."""

    @given(case=operation.as_strategy(generation_mode=mode, **fixed))
    @settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def check(case: Any) -> None:
        checks = [not_a_server_error, response_schema_conformance, status_code_conformance, content_type_conformance]
        response = case.call_and_validate(headers=AUTH, checks=checks, timeout=30)
        statuses[response.status_code] += 1

    try:
        check()
    except Unsatisfiable:
        return None  # nothing invalid can be said to an operation without parameters or body
    except Exception as exc:
        return f"{operation.label} {fixed}: {exc}"
    return None


# -- hostile inputs ------------------------------------------------------------------------------


class Hostile:
    """A running aikore with one instance ("victim"), and the state nothing may change."""

    def __init__(self, proc: AikoreProcess, tmp: Path) -> None:
        self.proc = proc
        self.tmp = tmp
        created = proc.request("POST", "/api/instances", {"name": "victim", "blueprint": "demo"})
        assert created.status == 201, created.body
        self.victim = created.json()["id"]
        self.before = self.snapshot()

    def snapshot(self) -> tuple[dict[str, str], list[str]]:
        data = self.proc.data_dir
        files = {
            str(p.relative_to(data)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(data.rglob("*"))
            if p.is_file() and not p.name.startswith("aikore.db")
        }
        db = sqlite3.connect(f"file:{data / 'aikore.db'}?mode=ro", uri=True)
        try:
            rows = list(db.iterdump())
        finally:
            db.close()
        return files, rows

    def raw(self, payload: bytes) -> int:
        """Send bytes as they are (no client library would), return the status code."""
        with socket.create_connection(("127.0.0.1", self.proc.port), timeout=30) as sock:
            sock.sendall(payload)
            head = b""
            while b"\r\n" not in head:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                head += chunk
        return int(head.split(b" ", 2)[1])


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hostile]:
    tmp = tmp_path_factory.mktemp("hostile")
    proc = _start(tmp)
    yield Hostile(proc, tmp)
    proc.stop()


def _huge_json(size: int) -> bytes:
    return json.dumps({"name": "big", "blueprint": "demo", "pad": "x" * size}).encode()


SHELL = ["0;touch {canary}", "$(touch {canary})", "`touch {canary}`", "0 && touch {canary}", "0|touch {canary}",
         "0\ntouch {canary}", "0,1;reboot", "${{IFS}}", "0'\"", "-1", "0,,1", "\uff11", "\u0661"]
TRAVERSAL_NAMES = ["..", "../../etc", "a/../../b", "/abs", "x\x00y", "..%2F..%2Ftoken", "a\\..\\b", "A", "-x", "x" * 64,
                   "con ", "ni\u00f1o", ".hidden", "x\n", "x\r\n"]
TRAVERSAL_BLUEPRINTS = ["../../../../etc/passwd", "../token", "/etc/passwd", "demo/../../demo", "demo\x00", "..",
                        "../blueprints/demo", "%2e%2e%2fdemo", "demo.sh", "", "x" * 5000]
FILE_PATHS = ["/api/instances/..%2F..%2Ftoken/script", "/api/instances/1%2F..%2F..%2Ftoken",
              "/api/instances/-1", "/api/instances/0x1", "/api/instances/99999999999999999999999999",
              "/api/instances/1e3/script", "/api/instances/%ff", "/api/instances/{v}/logs?tail=../../../token",
              "/api/instances/{v}/logs?tail=-5", "/api/instances/{v}/logs?tail=1e9", "/static/..%2F..%2Faikore.db",
              "/static/%2e%2e/%2e%2e/data/token", "/static/../token", "/api/blueprints/..%2F..%2Fetc%2Fpasswd",
              "/api/instances/{v}/script/../../../token", "/api/instances/{v}/logs?source=../../token",
              "/api/instances/{v}/logs?source=..%2F..%2Ftoken", "/api/instances/{v}/logs?source=instance%0A",
              "/api/instances/{v}/logs/download?source=../../../aikore.db", "/api/instances/{v}/logs?tail=%C2%B2",
              "/api/instances/{v}/logs?tail=%D9%A1", "/api/system/history?limit=%C2%B2&since=nan",
              "/api/system/history?since=1e999", "/api/instances/%C2%B2", "/api/instances/%D9%A1/script"]


def _request(h: Hostile, method: str, path: str, body: Any = None, raw: bytes | None = None,
             headers: dict[str, str] | None = None) -> int:
    return h.proc.request(method, path.format(v=h.victim), body=body, raw=raw, headers=headers).status


def _assert_refused_and_unchanged(h: Hostile, status: int, what: str) -> None:
    assert 400 <= status < 500, f"{what}: answered {status}"
    assert h.snapshot() == h.before, f"{what}: changed the data dir or the database"


@pytest.mark.parametrize("name", TRAVERSAL_NAMES)
def test_traversal_in_names_is_refused(hostile: Hostile, name: str) -> None:
    status = _request(hostile, "POST", "/api/instances", {"name": name, "blueprint": "demo"})
    _assert_refused_and_unchanged(hostile, status, f"create {name!r}")
    status = _request(hostile, "PATCH", "/api/instances/{v}", {"name": name})
    _assert_refused_and_unchanged(hostile, status, f"rename to {name!r}")


@pytest.mark.parametrize("blueprint", TRAVERSAL_BLUEPRINTS)
def test_traversal_in_blueprint_ids_is_refused(hostile: Hostile, blueprint: str) -> None:
    status = _request(hostile, "POST", "/api/instances", {"name": "bp-probe", "blueprint": blueprint})
    _assert_refused_and_unchanged(hostile, status, f"blueprint {blueprint[:40]!r}")


@pytest.mark.parametrize("path", FILE_PATHS)
def test_traversal_in_file_params_is_refused(hostile: Hostile, path: str) -> None:
    for method in ("GET", "PUT", "DELETE"):
        status = _request(hostile, method, path, {"content": "#!/bin/sh\necho owned\n"} if method == "PUT" else None)
        _assert_refused_and_unchanged(hostile, status, f"{method} {path}")


@pytest.mark.parametrize("gpu_ids", SHELL)
def test_shell_metacharacters_in_gpu_ids_are_refused(hostile: Hostile, gpu_ids: str) -> None:
    canary = hostile.tmp / "pwned"
    value = gpu_ids.format(canary=canary)
    status = _request(hostile, "POST", "/api/instances", {"name": "gpu-probe", "blueprint": "demo", "gpu_ids": value})
    _assert_refused_and_unchanged(hostile, status, f"create gpu_ids={value!r}")
    status = _request(hostile, "PATCH", "/api/instances/{v}", {"gpu_ids": value})
    _assert_refused_and_unchanged(hostile, status, f"patch gpu_ids={value!r}")
    assert not canary.exists()


@pytest.mark.parametrize(
    "method,path,raw",
    [
        ("POST", "/api/instances", _huge_json(2 * 1024 * 1024)),
        ("PATCH", "/api/instances/{v}", _huge_json(2 * 1024 * 1024)),
        ("PUT", "/api/instances/{v}/script", json.dumps({"content": "#" * (600 * 1024)}).encode()),
        ("PUT", "/api/system/interval", _huge_json(2 * 1024 * 1024)),
        ("POST", "/api/instances", b"[" * 200_000 + b"]" * 200_000),
        ("POST", "/api/instances", b'{"name": "' + b"\\ud800" * 10 + b'", "blueprint": "demo"}'),
        ("PATCH", "/api/instances/{v}", b'{"public_port": ' + b"9" * 5000 + b"}"),
        ("PUT", "/api/system/interval", b'{"interval_seconds": NaN}'),
        ("PUT", "/api/system/interval", b'{"interval_seconds": 1e999}'),
    ],
    ids=["huge-create", "huge-patch", "huge-script", "huge-interval", "deep-nesting", "lone-surrogates",
         "huge-integer", "nan-interval", "infinite-interval"],
)
def test_huge_and_pathological_bodies_are_refused(hostile: Hostile, method: str, path: str, raw: bytes) -> None:
    _assert_refused_and_unchanged(hostile, _request(hostile, method, path, raw=raw), f"{method} {path}")


@pytest.mark.parametrize(
    "method,path,raw",
    [
        ("POST", "/api/instances", b'{"name": "\xff\xfe", "blueprint": "demo"}'),
        ("PATCH", "/api/instances/{v}", b'{"name": "ok\xc3("}'),
        ("PUT", "/api/instances/{v}/script", b'{"content": "#!/bin/sh\n\xed\xa0\x80"}'),
        ("POST", "/api/instances", b"\x00\x01\x02"),
        ("POST", "/api/instances", b"name=x&blueprint=demo"),
        ("POST", "/api/instances", b'{"name": "x", "blueprint": "demo", "autostart": NaN}'),
    ],
    ids=["create", "patch", "script", "binary", "form", "nan"],
)
def test_invalid_utf8_and_non_json_bodies_are_refused(hostile: Hostile, method: str, path: str, raw: bytes) -> None:
    _assert_refused_and_unchanged(hostile, _request(hostile, method, path, raw=raw), f"{method} {path} {raw[:20]!r}")


def test_invalid_utf8_in_the_request_line_is_refused(hostile: Hostile) -> None:
    auth = f"Authorization: Bearer {TOKEN}\r\n".encode()
    for target in (b"/api/instances/\xff\xfe", b"/api/\xc3(/script", b"/static/\xff..\xff/token"):
        status = hostile.raw(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n" + auth + b"Connection: close\r\n\r\n")
        _assert_refused_and_unchanged(hostile, status, repr(target))


def test_oversized_headers_and_urls_are_refused(hostile: Hostile) -> None:
    auth = f"Authorization: Bearer {TOKEN}\r\n".encode()
    cases = {
        "one huge header": b"X-Big: " + b"a" * 200_000 + b"\r\n",
        "huge cookie": b"Cookie: aikore_session=" + b"a" * 200_000 + b"\r\n",
        "huge authorization": b"Authorization: Bearer " + b"a" * 200_000 + b"\r\n",
    }
    for what, header in cases.items():
        request = b"POST /api/instances HTTP/1.1\r\nHost: x\r\n" + auth + header + b"Content-Length: 0\r\n\r\n"
        _assert_refused_and_unchanged(hostile, hostile.raw(request), what)
    smuggled = (b"POST /api/instances HTTP/1.1\r\nHost: x\r\n" + auth + b"Content-Length: 4\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    _assert_refused_and_unchanged(hostile, hostile.raw(smuggled), "Content-Length with Transfer-Encoding")
    negative = b"POST /api/instances HTTP/1.1\r\nHost: x\r\n" + auth + b"Content-Length: -5\r\n\r\n"
    _assert_refused_and_unchanged(hostile, hostile.raw(negative), "negative Content-Length")
    long_url = b"GET /api/instances?" + b"a=1&" * 50_000 + b" HTTP/1.1\r\nHost: x\r\n" + auth + b"\r\n"
    _assert_refused_and_unchanged(hostile, hostile.raw(long_url), "huge URL")


def test_hostile_input_without_credentials_is_refused_before_anything(hostile: Hostile) -> None:
    status = hostile.proc.request("POST", "/api/instances", {"name": "../x", "blueprint": "../../etc/passwd"},
                                  auth=False).status
    assert status == 401
    assert hostile.snapshot() == hostile.before

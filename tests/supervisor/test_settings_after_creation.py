"""Every per-instance setting changed after creation through the API, and seen by the next start:
launch arguments (a list: one may hold spaces), extra environment variables, blueprint variables
(a line of launch.sh rewritten), and the older launch_args.txt moved into the settings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from aikore.resources import builtin_blueprints_dir
from tests.helpers import until
from tests.supervisor.conftest import MakeClient, api, create, status_is

# Writes what it was started with to seen.json, then serves like the demo.
PROGRAM = """import json, os, runpy, sys
seen = {"args": sys.argv[1:], "env": {k: os.environ.get(k) for k in ("GREETING", "WEBUI_HOST")}}
json.dump(seen, open("seen.json.tmp", "w"))
os.replace("seen.json.tmp", "seen.json")
sys.argv = ["demo", "--host", os.environ["WEBUI_HOST"], "--port", os.environ["WEBUI_PORT"]]
runpy.run_module("aikore.demo", run_name="__main__")
"""
SETTINGS = """#!/usr/bin/env bash
### AIKORE-METADATA-START ###
# aikore.name: Settings
# aikore.health: /health
# aikore.var: APP_REF The app's version: a tag, branch or commit
# aikore.var: ORPHAN Declared, but the script has no line for it
### AIKORE-METADATA-END ###
APP_REF=${{APP_REF:-v1}}  # the pin
source "{lib}/aikore.sh"
echo "ref=$APP_REF"
aik_launch "$AIKORE_PYTHON" -c '{program}' --fixed
"""


@pytest.fixture
def settings_blueprint(blueprints_dir: Path) -> str:
    (blueprints_dir / "settings.sh").write_text(
        SETTINGS.format(lib=builtin_blueprints_dir() / "lib", program=PROGRAM.replace("'", "'\\''"))
    )
    return "settings"


def seen(tmp_path: Path, name: str) -> dict[str, Any] | None:
    path = tmp_path / "data" / "instances" / name / "seen.json"
    return json.loads(path.read_text()) if path.exists() else None


async def test_launch_args_with_spaces_and_env_reach_the_app_and_a_change_while_running_waits_for_a_restart(
    make_client: MakeClient, settings_blueprint: str, tmp_path: Path
) -> None:
    client = await make_client()
    args = ["--prompt", "a cat in a hat", '--quote="q" $HOME', "--empty=", ""]
    inst = await create(client, "one", settings_blueprint, launch_args=args, env={"GREETING": "hello  world"})
    assert inst["launch_args"] == args and inst["env"] == {"GREETING": "hello  world"}
    await api(client, "POST", f"/api/instances/{inst['id']}/start")
    await status_is(client, inst["id"], "running")
    assert seen(tmp_path, "one") == {"args": ["--fixed", *args], "env": {"GREETING": "hello  world",
                                                                          "WEBUI_HOST": "127.0.0.1"}}

    # While it runs: accepted, shown, and used from the next start on.
    changed = await api(client, "PATCH", f"/api/instances/{inst['id']}", {"launch_args": ["--other"], "env": {}})
    assert changed["status"] == "running" and changed["launch_args"] == ["--other"] and changed["env"] == {}
    assert seen(tmp_path, "one")["args"] == ["--fixed", *args]
    (tmp_path / "data" / "instances" / "one" / "seen.json").unlink()
    await api(client, "POST", f"/api/instances/{inst['id']}/restart")
    found = await until(lambda: seen(tmp_path, "one"), what="the restarted app's arguments")
    assert found == {"args": ["--fixed", "--other"], "env": {"GREETING": None, "WEBUI_HOST": "127.0.0.1"}}

    # A lone empty argument is one argument; none is none.
    for args, expected in (([""], ["--fixed", ""]), ([], ["--fixed"])):
        await api(client, "PATCH", f"/api/instances/{inst['id']}", {"launch_args": args})
        (tmp_path / "data" / "instances" / "one" / "seen.json").unlink()
        await api(client, "POST", f"/api/instances/{inst['id']}/restart")
        found = await until(lambda: seen(tmp_path, "one"), what="the restarted app's arguments")
        assert found["args"] == expected


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        ({"launch_args": "--a --b"}, "launch_args", "list of strings"),
        ({"launch_args": ["--a", 3]}, "launch_args", "launch_args[1]: must be a string"),
        ({"launch_args": ["--a", "two\nlines"]}, "launch_args", "launch_args[1]:"),
        ({"env": ["A=b"]}, "env", "must be an object"),
        ({"env": {"1X": "v"}}, "env", "'1X' is not a variable name"),
        ({"env": {"WEBUI_PORT": "80"}}, "env", "env.WEBUI_PORT: is set by AiKore"),
        ({"env": {"AIKORE_TOKEN": "x"}}, "env", "env.AIKORE_TOKEN"),
        ({"env": {"X": 1}}, "env", "env.X: the value must be a string"),
        ({"variables": {"NOPE": "v2"}}, "variables", "variables.NOPE: launch.sh declares no such variable"),
        ({"variables": {"APP_REF": "v 2"}}, "variables", "variables.APP_REF: must be"),
        ({"variables": {"APP_REF": "$(touch pwned)"}}, "variables", "variables.APP_REF"),
        ({"variables": {"APP_REF": "v}; touch pwned; #"}}, "variables", "variables.APP_REF"),
        ({"variables": {"ORPHAN": "x"}}, "variables", "variables.ORPHAN: launch.sh has no line ORPHAN="),
        ({"variables": ["APP_REF=v2"]}, "variables", "variables: must be an object"),
        # Checked before anything changes: a good variable does not land beside a bad setting.
        ({"variables": {"APP_REF": "v2"}, "env": {"PATH ": "x"}}, "env", "is not a variable name"),
    ],
)
async def test_a_bad_setting_is_a_400_naming_its_field_and_changes_nothing(
    make_client: MakeClient, settings_blueprint: str, tmp_path: Path, body: dict[str, Any], field: str, says: str
) -> None:
    client = await make_client()
    inst = await create(client, "two", settings_blueprint, launch_args=["--keep"], env={"KEEP": "1"})
    script = tmp_path / "data" / "instances" / "two" / "launch.sh"
    before = script.read_text()
    error = (await api(client, "PATCH", f"/api/instances/{inst['id']}", body, status=400))["error"]
    assert error["field"] == field and says in error["message"], error
    after = await api(client, "GET", f"/api/instances/{inst['id']}")
    assert (after["launch_args"], after["env"]) == (["--keep"], {"KEEP": "1"})
    assert script.read_text() == before and not (script.parent / "launch.sh.bak").exists()


async def test_a_blueprint_variable_is_a_field_that_rewrites_its_line_of_the_script(
    make_client: MakeClient, settings_blueprint: str, tmp_path: Path
) -> None:
    client = await make_client()
    inst = await create(client, "three", settings_blueprint)
    assert inst["variables"] == [
        {"name": "APP_REF", "description": "The app's version: a tag, branch or commit", "value": "v1"},
        {"name": "ORPHAN", "description": "Declared, but the script has no line for it", "value": None},
    ]
    changed = await api(client, "PATCH", f"/api/instances/{inst['id']}", {"variables": {"APP_REF": "release/2.0"}})
    assert changed["variables"][0]["value"] == "release/2.0"
    folder = tmp_path / "data" / "instances" / "three"
    assert "APP_REF=${APP_REF:-release/2.0}  # the pin\n" in (folder / "launch.sh").read_text()
    assert "APP_REF=${APP_REF:-v1}  # the pin\n" in (folder / "launch.sh.bak").read_text()
    await api(client, "POST", f"/api/instances/{inst['id']}/start")
    await status_is(client, inst["id"], "running")
    log = (await api(client, "GET", f"/api/instances/{inst['id']}/logs?tail=50"))["lines"]
    assert "ref=release/2.0" in log
    # A blueprint's variables and their defaults are listed for the Add dialog too.
    blueprints = await api(client, "GET", "/api/blueprints")
    listed = next(b for b in (blueprints if isinstance(blueprints, list) else blueprints["blueprints"])
                  if b["id"] == "settings")
    assert [(v["name"], v["value"]) for v in listed["variables"]] == [("APP_REF", "v1"), ("ORPHAN", None)]


async def test_launch_args_txt_of_an_older_aikore_moves_into_the_settings_once(
    make_client: MakeClient, settings_blueprint: str, tmp_path: Path
) -> None:
    client = await make_client()
    inst = await create(client, "four", settings_blueprint, launch_args=["--set"])
    await client.close()
    conf = tmp_path / "data" / "instances" / "four" / "config"
    conf.mkdir(exist_ok=True)
    (conf / "launch_args.txt").write_text("--listen  --port-extra 5\n# a comment\n\n--lowvram\n")

    client = await make_client()
    moved = await api(client, "GET", f"/api/instances/{inst['id']}")
    assert moved["launch_args"] == ["--set", "--listen", "--port-extra", "5", "--lowvram"]
    assert not (conf / "launch_args.txt").exists()
    assert (conf / "launch_args.txt.migrated").read_text().startswith("--listen")
    await api(client, "POST", f"/api/instances/{inst['id']}/start")
    await status_is(client, inst["id"], "running")
    # Once: the script no longer reads the old file, so nothing is passed twice.
    assert seen(tmp_path, "four")["args"] == ["--fixed", "--set", "--listen", "--port-extra", "5", "--lowvram"]

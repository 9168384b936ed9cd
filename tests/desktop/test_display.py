"""Display numbers: a number with a lock file or a socket is taken, and allocation skips it."""

from __future__ import annotations

from pathlib import Path

import pytest

from aikore.desktop import display


@pytest.fixture
def x_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    sockets, locks = tmp_path / ".X11-unix", tmp_path
    sockets.mkdir()
    monkeypatch.setattr(display, "SOCKET_DIR", sockets)
    monkeypatch.setattr(display, "LOCK_DIR", locks)
    return sockets, locks


def test_free_display_skips_numbers_with_a_lock_file_or_a_socket(x_dirs: tuple[Path, Path]):
    sockets, locks = x_dirs
    (locks / ".X100-lock").write_text("12345\n")
    (sockets / "X101").touch()
    assert display.display_taken(100) and display.display_taken(101)
    assert display.free_display(100) == 102


def test_free_display_starts_where_asked(x_dirs: tuple[Path, Path]):
    assert display.free_display(250) == 250


def test_no_free_display_left_is_an_error_not_a_loop(x_dirs: tuple[Path, Path]):
    sockets, _ = x_dirs
    (sockets / f"X{display.LAST_DISPLAY}").touch()
    with pytest.raises(display.DisplayError, match="no free X display"):
        display.free_display(display.LAST_DISPLAY)


def test_an_exact_display_that_is_taken_is_refused_without_starting_xvfb(x_dirs: tuple[Path, Path]):
    _, locks = x_dirs
    (locks / ".X120-lock").write_text("1\n")
    with pytest.raises(display.DisplayError, match=":120 is already taken"):
        display.start_xvfb("/nonexistent/Xvfb", 640, 480, start=120, exact=True)


def test_xvfb_command_is_local_only_with_the_requested_screen():
    command = display.xvfb_command("Xvfb", 105, 1280, 720)
    assert command[:2] == ["Xvfb", ":105"]
    assert "1280x720x24" in command and ["-nolisten", "tcp"] == command[command.index("-nolisten") :][:2]

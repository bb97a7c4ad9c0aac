"""Atomic writes: all or nothing, and files and folders get the umask's mode, not mkstemp's 0600."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from slm_bench import atomic


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(params=[0o022, 0o027, 0o002, 0o077])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


def test_files_get_0666_less_the_umask(tmp_path: Path, umask: int) -> None:
    source = tmp_path / "source.bin"
    source.write_bytes(b"\x00\x01")
    source.chmod(0o600)
    written = [
        atomic.write_text(tmp_path / "a" / "BENCHMARKS.md", "# table\n"),
        atomic.write_json(tmp_path / "row.json", {"ma": 1.5}),
        atomic.copy_file(source, tmp_path / "copy.bin"),
    ]
    for path in written:
        assert mode(path) == 0o666 & ~umask, path
    assert (tmp_path / "copy.bin").read_bytes() == b"\x00\x01"


def test_staged_dir_gets_0777_less_the_umask(tmp_path: Path, umask: int) -> None:
    final = tmp_path / "hf_data"
    with atomic.staged_dir(final) as staged:
        (staged / "run.txt").write_text("x")
    assert mode(final) == 0o777 & ~umask
    assert (final / "run.txt").read_text() == "x"


def test_rewrite_replaces_a_read_only_file_with_the_umask_mode(tmp_path: Path, umask: int) -> None:
    path = tmp_path / "row.json"
    path.write_text("old")
    path.chmod(0o400)
    atomic.write_text(path, "new")
    assert path.read_text() == "new"
    assert mode(path) == 0o666 & ~umask


def test_text_is_utf8_and_newlines_are_kept(tmp_path: Path) -> None:
    path = atomic.write_text(tmp_path / "t.md", "✅ a\r\nb\n")
    assert path.read_bytes() == "✅ a\r\nb\n".encode()


def test_json_is_indented_and_keeps_nan(tmp_path: Path) -> None:
    path = atomic.write_json(tmp_path / "m.json", {"score": float("nan")})
    assert path.read_text() == '{\n  "score": NaN\n}\n'
    assert json.loads(path.read_text())["score"] != 0


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    path = atomic.write_text(tmp_path / "BENCHMARKS.md", "good\n")
    with pytest.raises(RuntimeError), atomic.open_atomic(path, "w") as handle:
        handle.write("half")
        raise RuntimeError("killed")
    assert path.read_text() == "good\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["BENCHMARKS.md"]


def test_a_failed_stage_keeps_the_old_folder_and_leaves_no_temp(tmp_path: Path) -> None:
    final = tmp_path / "hf_data"
    with atomic.staged_dir(final) as staged:
        (staged / "good.txt").write_text("good")
    with pytest.raises(RuntimeError), atomic.staged_dir(final) as staged:
        (staged / "half.txt").write_text("half")
        raise RuntimeError("killed")
    assert [p.name for p in final.iterdir()] == ["good.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hf_data"]


def test_a_second_stage_replaces_the_folder_whole(tmp_path: Path) -> None:
    final = tmp_path / "hf_data"
    for name in ("first.txt", "second.txt"):
        with atomic.staged_dir(final) as staged:
            (staged / name).write_text(name)
    assert [p.name for p in final.iterdir()] == ["second.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hf_data"]


def test_temp_names_are_hidden_and_distinct(tmp_path: Path) -> None:
    final = tmp_path / "row.json"
    with atomic.open_atomic(final, "w") as first, atomic.open_atomic(final, "w") as second:
        first.write("1")
        second.write("2")
        temps = [p.name for p in tmp_path.iterdir()]
        assert len(temps) == 2 and all(name.startswith(".row.json.") for name in temps)
    # The handle closed last (the outer one) is the one renamed last.
    assert final.read_text() == "1"


def killed_mid_write(final: Path, kind: str) -> None:
    """A real process that SIGKILLs itself halfway through a staged folder or a file write."""
    write = {
        "dir": "with atomic.staged_dir(final) as tmp:\n    (tmp / 'half.txt').write_text('half')",
        "file": "with atomic.open_atomic(final, 'w') as handle:\n    handle.write('half')",
    }[kind]
    code = (
        textwrap.dedent(
            f"""
        import os, signal
        from pathlib import Path
        from slm_bench import atomic
        final = Path({str(final)!r})
        """
        )
        + f"{write}\n    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == -signal.SIGKILL, result.stderr


@pytest.mark.parametrize("kind", ["dir", "file"])
def test_the_next_write_removes_the_temp_a_killed_writer_left(tmp_path: Path, kind: str) -> None:
    final = tmp_path / ("hf_data" if kind == "dir" else "BENCHMARKS.md")
    killed_mid_write(final, kind)
    leftovers = [p.name for p in tmp_path.iterdir()]
    assert len(leftovers) == 1 and leftovers[0].startswith(f".{final.name}."), leftovers
    assert not final.exists()

    if kind == "dir":
        with atomic.staged_dir(final) as staged:
            (staged / "good.txt").write_text("good")
    else:
        atomic.write_text(final, "good")
    assert sorted(p.name for p in tmp_path.iterdir()) == [final.name]


def test_temps_of_a_live_writer_or_another_host_are_kept(tmp_path: Path) -> None:
    final = tmp_path / "hf_data"
    elsewhere = tmp_path / f".hf_data.1@not-{socket.gethostname()}.0123abcd.partial"
    elsewhere.mkdir()
    with atomic.staged_dir(final) as outer:
        (outer / "a.txt").write_text("a")
        # Another writer of the same name while this one (alive) is still staging.
        assert atomic.remove_dead_temps(final) == []
        assert outer.is_dir() and elsewhere.is_dir()
    assert elsewhere.is_dir() and [p.name for p in final.iterdir()] == ["a.txt"]


def test_a_swap_cut_between_its_renames_is_recovered(tmp_path: Path) -> None:
    """A kill between 'final -> .old' and 'temp -> final' leaves only ``.old``: the next
    stage puts the last good folder back before anything else, so a failure keeps it."""
    final = tmp_path / "hf_data"
    old = tmp_path / ".hf_data.old"
    old.mkdir()
    (old / "good.txt").write_text("good")
    with pytest.raises(RuntimeError), atomic.staged_dir(final) as staged:
        (staged / "half.txt").write_text("half")
        raise RuntimeError("killed")
    assert [p.name for p in final.iterdir()] == ["good.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hf_data"]


def test_open_atomic_rejects_other_modes(tmp_path: Path) -> None:
    with (
        pytest.raises(ValueError, match="expected 'w' or 'wb'"),
        atomic.open_atomic(tmp_path / "x", "a"),
    ):
        pass
    assert not list(tmp_path.iterdir())

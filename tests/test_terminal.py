"""Console lines of jobs running side by side never interleave mid-line."""

from __future__ import annotations

import subprocess
import sys

from slm_bench.terminal import write_line


class Recorder:
    def __init__(self) -> None:
        self.writes: list[str] = []
        self.flushes = 0

    def write(self, text: str) -> int:
        self.writes.append(text)
        return len(text)

    def flush(self) -> None:
        self.flushes += 1


def test_a_line_and_its_newline_go_out_in_one_write_then_a_flush():
    stream = Recorder()
    write_line("CartPole-v1/ppo: stopped waiting; dstack run ppo-cartpole keeps running", stream)
    assert stream.writes == [
        "CartPole-v1/ppo: stopped waiting; dstack run ppo-cartpole keeps running\n"
    ]
    assert stream.flushes == 1


def test_two_processes_writing_to_one_pipe_keep_every_line_whole():
    """On stderr with PYTHONUNBUFFERED (set in many CI and container images): stderr is then
    write-through, so print() sends each line's text and newline apart and two writers
    interleave them (measured: thousands of mixed lines in 40,000)."""
    writer = (
        "import sys\n"
        "from slm_bench.terminal import write_line\n"
        "for i in range(20000):\n"
        "    write_line(f'{sys.argv[1]}: line {i} ' + 'x' * 150)\n"
    )
    both = subprocess.run(
        f'({sys.executable} -c "$W" cellA & {sys.executable} -c "$W" cellB & wait) 2>&1',
        shell=True,
        env={
            "W": writer,
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": ":".join(sys.path),
            "PYTHONUNBUFFERED": "1",
        },
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    ).stdout.splitlines()
    expected = {
        f"{cell}: line {i} " + "x" * 150 for cell in ("cellA", "cellB") for i in range(20000)
    }
    assert len(both) == 40000 and set(both) == expected

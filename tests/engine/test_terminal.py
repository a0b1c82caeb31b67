"""The terminal shows rubricforge's lines; what other programs write goes to the run's log."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time

from pipeline.engine.terminal import step_line


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_running_step_shows_its_time_and_what_it_took_last_time():
    shown = Terminal()
    with step_line(shown, "exact_dedup", 20.0, every_s=0.05):
        time.sleep(0.2)
    text = shown.getvalue()
    assert "\rexact_dedup: running 0s, about 20s left (last build: 20s)" in text
    assert text.endswith("\r\x1b[K"), "the line is cleared for the step's done line"
    quiet = io.StringIO()  # not a terminal: a log gets the done lines only
    with step_line(quiet, "exact_dedup", 20.0, every_s=0.05):
        time.sleep(0.1)
    assert quiet.getvalue() == ""


def test_other_programs_output_goes_to_the_log_and_ours_to_the_terminal(tmp_path):
    """Python prints, C-level writes to the descriptors and a child process (as Ray's daemons
    are) all land in the log; rubricforge's logger reaches the terminal and the log."""
    script = f"""
import logging, os, subprocess, sys
sys.path.insert(0, {str(os.getcwd())!r})
logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
from pipeline.engine.terminal import others_to_log
with others_to_log(__import__("pathlib").Path({str(tmp_path / 'run.log')!r})):
    print("a library's print")
    os.write(2, b"core_worker.cc: a C++ line\\n")
    subprocess.run([sys.executable, "-c", "print('a worker line')"])
    logging.getLogger("rubricforge").warning("our line")
print("after")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    terminal = done.stdout + done.stderr
    assert "our line" in terminal and "after" in terminal
    for other in ("a library's print", "C++ line", "a worker line"):
        assert other not in terminal
    logged = (tmp_path / "run.log").read_text()
    for line in ("a library's print", "C++ line", "a worker line", "our line"):
        assert line in logged


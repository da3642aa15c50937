"""The real `lmplay` process in a pseudo-terminal: closing the terminal (SIGHUP) or `kill` (SIGTERM)
while a model trains stops the run, saves it and ends the process."""
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from lmcore import Store

pty = pytest.importorskip("pty")
ROOT = Path(__file__).resolve().parents[1]


def _spawn(home: Path):
    env = dict(os.environ, LMPLAY_HOME=str(home), LMPLAY_CORPUS_MIRROR=str(home / "no-mirror"), TERM="xterm-256color",
               COLUMNS="80", LINES="24")
    pid, fd = pty.fork()
    if pid == 0:  # the child: the app on the pseudo-terminal
        os.chdir(ROOT)
        os.execvpe(sys.executable, [sys.executable, "-m", "tui"], env)
    import fcntl
    import struct
    import termios

    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    screen = bytearray()

    def drain():  # the terminal's side: read everything the app draws
        while True:
            try:
                data = os.read(fd, 65536)
            except OSError:
                return
            if not data:
                return
            screen.extend(data)

    threading.Thread(target=drain, daemon=True).start()
    return pid, fd, screen


def _wait_exit(pid: int, timeout: float) -> int | None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return None


def _until(predicate, timeout: float) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("how", ["hangup", "sigterm"])
def test_closing_the_terminal_or_kill_while_training_saves_and_exits(tmp_path, how):
    home = tmp_path / "home"
    pid, fd, screen = _spawn(home)
    try:
        assert _until(lambda: b"Welcome" in screen, 60), bytes(screen[-500:])
        os.write(fd, b"\r")  # the proposed model: an LSTM on the built-in corpus
        time.sleep(1.5)
        os.write(fd, b"\r")  # create and train
        assert _until(lambda: b"tokens/s" in screen and b"training" in screen, 60)
        time.sleep(3)  # some steps, no checkpoint yet
        if how == "hangup":
            os.close(fd)  # the terminal goes away: the kernel sends SIGHUP
        else:
            os.kill(pid, signal.SIGTERM)
        status = _wait_exit(pid, 90)
    finally:
        if how != "hangup":
            os.close(fd)
    assert status is not None, "the app did not exit"
    entries = Store(home).list()
    assert len(entries) == 1 and entries[0].ok and entries[0].checkpoint.step > 0  # stopped and saved

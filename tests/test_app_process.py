"""The real `lmplay` process in a pseudo-terminal: closing the terminal (SIGHUP) or `kill` (SIGTERM)
while a model trains stops the run, saves it and ends the process."""
import os
import re
import signal
import sys
import threading
from pathlib import Path

import pytest

from lmcore import Store

from .waiting import until

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
    status = []

    def exited() -> bool:
        done, st = os.waitpid(pid, os.WNOHANG)
        status.append(st)
        return bool(done)

    if until(exited, timeout):
        return status[-1]
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return None


def _text(screen: bytearray, since: int = 0) -> str:
    """What the app drew after byte ``since``, its escape sequences cut out."""
    return re.sub(r"\x1b\[[0-9;?<>=]*[ -/]*[@-~]", "|", bytes(screen[since:]).decode("utf-8", "replace"))


@pytest.mark.parametrize("how", ["hangup", "sigterm"])
def test_closing_the_terminal_or_kill_while_training_saves_and_exits(tmp_path, how):
    home = tmp_path / "home"
    pid, fd, screen = _spawn(home)
    try:
        assert until(lambda: b"Welcome" in screen), bytes(screen[-500:])
        mark = len(screen)
        os.write(fd, b"\r")  # the proposed model: an LSTM on the built-in corpus
        assert until(lambda: "Create and train" in _text(screen, mark)), _text(screen, mark)[-500:]
        mark = len(screen)
        os.write(fd, b"\r")  # create and train
        # some steps trained: the metrics show a step past 0 (a step is what a stop saves)
        trained = re.compile(r"step[| ]*[1-9][\d,]* / ")
        assert until(lambda: trained.search(_text(screen, mark))), _text(screen, mark)[-500:]
        if how == "hangup":
            os.close(fd)  # the terminal goes away: the kernel sends SIGHUP
        else:
            os.kill(pid, signal.SIGTERM)
        status = _wait_exit(pid, 120)
    finally:
        if how != "hangup":
            os.close(fd)
    assert status is not None, "the app did not exit"
    entries = Store(home).list()
    assert len(entries) == 1 and entries[0].ok and entries[0].checkpoint.step > 0  # stopped and saved

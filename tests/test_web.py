"""``lmplay --web``: the real server, driven by a real headless Chromium (Debian's ``chromium`` through
Playwright, never a downloaded browser). The page's terminal (xterm.js) draws on a canvas, so its text is
read from the terminal's own buffer: the page's script stores its terminal as ``this.terminal``, and a
setter on ``Object.prototype`` installed before the page loads keeps a reference to it.

LMPLAY_SCREENSHOTS=1 also writes README's picture of the app in a browser (assets/screenshots/web.png)."""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest

from lmcore import Store

from .waiting import until

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOT = ROOT / "assets" / "screenshots" / "web.png"
CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)

KEEP_TERMINAL = """
Object.defineProperty(Object.prototype, 'terminal', {configurable: true, set(value) {
  Object.defineProperty(this, 'terminal', {value, writable: true, configurable: true, enumerable: true});
  window.lmplayTerminal = value;
}});
"""
READ_SCREEN = """() => {
  const t = window.lmplayTerminal;
  if (!t) return '';
  const b = t.buffer.active, rows = [];
  for (let y = 0; y < t.rows; y++) { const l = b.getLine(b.viewportY + y); rows.push(l ? l.translateToString(true) : ''); }
  return rows.join('\\n');
}"""
TRAINED = re.compile(r"step +[1-9][\d,]* / ")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int) -> set[int]:
    """The processes whose parent is ``pid`` (the server's sessions: one app process per tab)."""
    kids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.add(int(entry.name))
    return kids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class WebServer:
    """``lmplay --web`` as a user starts it, in its own process group (as a shell's foreground job: Ctrl+C
    is SIGINT to that group)."""

    def __init__(self, home: Path, *args: str):
        self.port = _free_port()
        env = dict(os.environ, LMPLAY_HOME=str(home), PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen([sys.executable, "-m", "tui", "--web", "--port", str(self.port), *args],
                                     cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self.lines: list[str] = []
        threading.Thread(target=self._drain, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.port}/"

    def _drain(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_listening(self) -> None:
        def listening() -> bool:
            assert self.proc.poll() is None, self.output
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return True
            except OSError:
                return False

        assert until(listening), self.output

    def ctrl_c(self) -> None:
        os.killpg(self.proc.pid, signal.SIGINT)

    def wait(self) -> int | None:
        if until(lambda: self.proc.poll() is not None):
            return self.proc.returncode
        return None

    def close(self) -> None:
        if self.proc.poll() is None:
            self.ctrl_c()
            if self.wait() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


class Tab:
    """One browser tab on the app: what it draws, keys, clicks on a cell found by its text."""

    def __init__(self, browser, url: str):
        self.page = browser.new_page(viewport={"width": 1100, "height": 680})
        self.page.add_init_script(KEEP_TERMINAL)
        self.page.goto(url)

    def text(self) -> str:
        return self.page.evaluate(READ_SCREEN)

    def wait_for(self, pattern: str) -> re.Match:
        found = []
        ok = until(lambda: found.append(re.search(pattern, self.text(), re.M)) or found[-1])
        assert ok, f"{pattern!r} never drawn; the screen:\n{self.text()}"
        return found[-1]

    def press(self, *keys: str) -> None:
        self.page.focus("textarea.xterm-helper-textarea")  # the terminal has the keyboard, as after a click
        for key in keys:
            self.page.keyboard.press(key)

    def type(self, text: str) -> None:
        self.page.focus("textarea.xterm-helper-textarea")
        self.page.keyboard.type(text)

    def click(self, pattern: str) -> None:
        """Click the cell where group 1 of ``pattern`` starts (a field's value beside its label)."""
        rows = self.text().split("\n")
        at = next(((y, m.start(1)) for y, row in enumerate(rows) if (m := re.search(pattern, row))), None)
        assert at, f"{pattern!r} is not on the screen:\n{self.text()}"
        box = self.page.locator(".xterm-screen").bounding_box()
        cols, lines = self.page.evaluate("() => [window.lmplayTerminal.cols, window.lmplayTerminal.rows]")
        w, h = box["width"] / cols, box["height"] / lines
        self.page.mouse.click(box["x"] + (at[1] + 1.5) * w, box["y"] + (at[0] + 0.5) * h)

    def close(self) -> None:
        self.page.close()


@pytest.fixture
def browser():
    if CHROMIUM is None:
        pytest.skip("no chromium on this machine (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM)  # the system browser, no download
        yield b
        b.close()


@pytest.fixture
def server(home):
    servers = []

    def start(*args: str) -> WebServer:
        s = WebServer(home, *args)
        servers.append(s)
        s.wait_listening()
        return s

    yield start
    for s in servers:
        s.close()


def _train_a_tiny_model(tab: Tab) -> None:
    """n, the smallest size, a long budget (it is still training when the test ends it), ctrl+s."""
    tab.wait_for("Welcome to lmplay")
    tab.press("n")
    tab.wait_for("Create and train")
    tab.click(r"Size +(auto)")  # opens the list of sizes
    tab.wait_for(r"base \(GPU\)")
    tab.press("Home", "ArrowDown", "Enter")  # auto, then tiny
    tab.wait_for(r"Size +tiny")
    tab.wait_for(r"Train for +(preset steps)")  # the field's hint follows the size a moment later
    tab.click(r"Train for +(preset steps)")
    tab.type("100000")
    tab.wait_for(r"Train for +100000")
    tab.press("Control+s")
    tab.wait_for(TRAINED.pattern)


def _generated(screen: str) -> str:
    """The continuation under the prompt's line in the Generate tab."""
    lines = screen.split("\n")
    start = next((i for i, line in enumerate(lines) if "› The" in line), None)
    end = next((i for i, line in enumerate(lines) if "temperature" in line), None)
    if start is None or end is None:
        return ""
    return " ".join(line.strip() for line in lines[start + 1:end]).strip()


def test_a_tab_creates_trains_and_generates_and_closing_it_saves_and_ends_its_app(home, browser, server):
    web = server()
    tab = Tab(browser, web.url)
    _train_a_tiny_model(tab)
    sessions = _children(web.proc.pid)
    assert len(sessions) == 1, sessions  # the tab's own app process
    if os.environ.get("LMPLAY_SCREENSHOTS") == "1":
        tab.wait_for(r"step +[2-9],\d{3} / ")  # a chart with some validations on it
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        tab.page.screenshot(path=str(SCREENSHOT))

    other = Tab(browser, web.url)  # a second tab: an app of its own, on the same models
    other.wait_for(r"training \(another process\)")
    assert len(_children(web.proc.pid)) == 2

    tab.close()  # mid-training: the app stops the run, saves it and ends; the other tab's app goes on
    (session,) = sessions
    assert until(lambda: not _alive(session)), web.output
    (entry,) = Store(home).list()
    assert entry.ok and entry.checkpoint.step > 0 and entry.name.startswith("lstm-")
    assert len(_children(web.proc.pid)) == 1

    tab = other  # which sees the run end, opens the saved model and generates
    assert until(lambda: "another process" not in tab.text()), tab.text()
    tab.wait_for(re.escape(entry.name))
    tab.press("Enter")
    tab.wait_for(r"Train +Generate +Inspect")
    tab.press("F3")
    tab.wait_for("Type a prompt")
    tab.click(r"(Type a prompt)")  # the prompt field
    tab.type("The ")
    assert until(lambda: "Type a prompt" not in tab.text()), tab.text()  # typed into it
    tab.press("Enter")
    assert until(lambda: len(_generated(tab.text())) >= 20), tab.text()
    (session,) = _children(web.proc.pid)
    tab.close()
    assert until(lambda: not _alive(session)), web.output
    assert web.proc.poll() is None  # closing a tab ends its app, not the server
    assert "Traceback" not in web.output, web.output


@pytest.mark.parametrize("how", ["ctrl+c", "sigterm", "sigkill"])
def test_stopping_the_server_saves_the_run_of_every_tab_and_ends_its_app(home, browser, server, how):
    web = server()
    tab = Tab(browser, web.url)
    _train_a_tiny_model(tab)
    (session,) = _children(web.proc.pid)
    if how == "ctrl+c":
        web.ctrl_c()  # what Ctrl+C in the server's terminal sends: SIGINT to its foreground group
    elif how == "sigterm":
        web.proc.terminate()
    else:  # the server dies at once (the OOM killer, kill -9): the app sees its input end, saves, exits
        web.proc.kill()
        assert web.wait() == -signal.SIGKILL
        assert until(lambda: not _alive(session))
        (entry,) = Store(home).list()
        assert entry.ok and entry.checkpoint.step > 0
        return
    assert web.wait() == 0, web.output
    assert not _alive(session)
    (entry,) = Store(home).list()
    assert entry.ok and entry.checkpoint.step > 0  # the run was stopped and saved, as ctrl+q does
    assert "stopping 1 session(s); each saves its runs first" in web.output
    assert "Traceback" not in web.output, web.output
    tab.close()


# ---------------------------------------------------------------- without a browser
def test_default_host_is_this_computer_only_and_says_how_to_stop(server):
    web = server()
    assert until(lambda: "Ctrl+C stops the server" in web.output), web.output
    assert f"open http://127.0.0.1:{web.port} in a browser" in web.output
    assert "warning" not in web.output
    web.ctrl_c()
    assert web.wait() == 0 and "stopping." in web.output


def test_another_host_warns_and_the_page_points_at_the_address_the_browser_used(server, home):
    web = server("--host", "0.0.0.0")
    assert until(lambda: "warning" in web.output), web.output
    warning = next(line for line in web.lines if line.startswith("warning"))
    assert "anyone who can reach" in warning and "train, rename and delete the models" in warning
    assert str(home) in warning
    page = urllib.request.urlopen(web.url, timeout=30).read().decode()
    assert f'data-session-websocket-url="ws://127.0.0.1:{web.port}/ws"' in page  # not ws://0.0.0.0
    web.ctrl_c()
    assert web.wait() == 0


def test_a_port_in_use_is_one_line_and_a_non_zero_exit(home):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "tui", "--web", "--port", str(port)], cwd=ROOT,
                           capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert r.returncode == 1
    err = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith(f"error: cannot serve on 127.0.0.1 port {port}"), r.stderr
    assert "another --port" in err[0] and "Traceback" not in r.stdout + r.stderr
    assert "open http" not in r.stdout  # it never listened


@pytest.mark.parametrize("args, says", [
    (["--port", "8000"], "--host and --port go with --web"),
    (["--host", "0.0.0.0"], "--host and --port go with --web"),
    (["--web", "--port", "70000"], "--port 70000 is not a port"),
])
def test_bad_flags_say_what_to_do(args, says):
    r = subprocess.run([sys.executable, "-m", "tui", *args], cwd=ROOT, capture_output=True, text=True,
                       timeout=120, stdin=subprocess.DEVNULL)
    assert r.returncode == 2 and says in r.stderr, r.stderr

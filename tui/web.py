"""``lmplay --web``: the app in a browser. textual-serve runs one app process per browser tab (a
*session*); this module is both sides of it:

- the server (``serve``): binds 127.0.0.1 unless told otherwise (warning that anyone who reaches
  another address can train and delete models); Ctrl+C or SIGTERM tells every session to stop its runs
  and save them, waits until each has ended, then stops;
- the session (``python -m tui.web``, started by the server): the usual app on textual's web driver,
  where the tab closing, the server going away and SIGINT all end the app as ``ctrl+q`` does — its runs
  stop and save first.
"""
from __future__ import annotations

import asyncio
import os
import shlex
import signal
import sys

LOOPBACK = ("127.0.0.1", "localhost", "::1")
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
SESSION_END_S = 120.0  # how long a session may take to save its runs once told to stop


def _session_driver():
    """Textual's web driver, with every way a session ends going through the app's own quit (runs stop
    and save): the browser tab closed (the server's "quit"), SIGINT, and the server gone (end of input:
    handled as the terminal hanging up, which saves and exits even when nothing reads the screen).
    Defined on first use, so that ``lmplay`` without --web imports nothing of the web."""
    from textual.drivers.web_driver import WebDriver

    class SessionDriver(WebDriver):
        def start_application_mode(self) -> None:
            """textual's web driver ends the app on SIGINT and SIGTERM without stopping its runs (and
            on SIGTERM alongside the app's own handler, which stops and saves them): SIGINT quits as
            ctrl+q does, SIGTERM is left to the app."""
            previous = signal.getsignal(signal.SIGTERM) if hasattr(signal, "SIGTERM") else None
            super().start_application_mode()
            loop = self._loop = asyncio.get_running_loop()
            try:
                loop.add_signal_handler(signal.SIGINT, self._app.action_quit)
                loop.remove_signal_handler(signal.SIGTERM)
                signal.signal(signal.SIGTERM, previous)
            except (AttributeError, NotImplementedError, RuntimeError, TypeError, ValueError):
                pass  # no such signals here (Windows)

        def on_meta(self, packet_type: str, payload: dict[str, object]) -> None:
            if packet_type == "quit":  # the tab was closed: as ctrl+q
                self._loop.call_soon_threadsafe(self._app.action_quit)
            else:
                super().on_meta(packet_type, payload)

        def run_input_thread(self) -> None:
            super().run_input_thread()
            if not self.exit_event.is_set() and hasattr(signal, "SIGHUP"):
                os.kill(os.getpid(), signal.SIGHUP)  # input ended: the server is gone

    return SessionDriver


def session_command(home: str | None) -> str:
    """The shell command textual-serve runs for each browser tab (``exec``: the process it starts is the
    app itself, so signalling it reaches the app)."""
    words = [sys.executable, "-m", "tui.web"] + (["--home", home] if home else [])
    command = " ".join(shlex.quote(w) for w in words)
    return f"exec {command}" if os.name == "posix" else command


def run_session(argv=None) -> int:
    """One browser tab's app (started by the server, never by a user)."""
    import argparse

    from lmcore import LmError

    from .app import create_app

    p = argparse.ArgumentParser(prog="python -m tui.web", description="One lmplay --web session.")
    p.add_argument("--home")
    args = p.parse_args(argv)
    if hasattr(os, "setpgrp"):
        os.setpgrp()  # Ctrl+C in the server's terminal goes to the server, which ends each session in turn
    try:
        app = create_app(args.home)
    except LmError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    app.driver_class = _session_driver()
    app.run()
    return 0


def browser_url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def serve(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, home: str | None = None) -> int:
    """Serve the app until Ctrl+C or SIGTERM; every session saves its runs before this returns."""
    try:
        from textual_serve.server import Server  # noqa: F401
    except ImportError:
        print("error: lmplay --web needs textual-serve: pip install 'textual-serve>=1.0'", file=sys.stderr)
        return 1
    from lmcore import LmError, Store

    try:
        home = str(Store(home).home)  # a home that cannot be used is said now, not in every tab
    except LmError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if host not in LOOPBACK:
        print(f"warning: serving on {host}, not only this computer: anyone who can reach {browser_url(host, port)} "
              f"can train, rename and delete the models in {home} (there is no password).", file=sys.stderr)
    from .web_server import WebServer

    server = WebServer(session_command(home), host=host, port=port, title="lmplay")
    try:
        server.serve()
    except OSError as exc:
        why = exc.strerror or str(exc)
        print(f"error: cannot serve on {host} port {port}: {why}. Choose another --port (or --host).",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(run_session())

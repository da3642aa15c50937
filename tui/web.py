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


def _url(host: str, port: int) -> str:
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
        print(f"warning: serving on {host}, not only this computer: anyone who can reach {_url(host, port)} "
              f"can train, rename and delete the models in {home} (there is no password).", file=sys.stderr)
    server = _server_class()(session_command(home), host=host, port=port, title="lmplay")
    try:
        server.serve()
    except OSError as exc:
        why = exc.strerror or str(exc)
        print(f"error: cannot serve on {host} port {port}: {why}. Choose another --port (or --host).",
              file=sys.stderr)
        return 1
    return 0


def _server_class():
    """textual-serve's Server and AppService, made to end sessions by saving (defined on first use, so
    the session processes and ``lmplay`` without --web never import the web server)."""
    import logging

    import aiohttp_jinja2
    from aiohttp import web
    from aiohttp.web_runner import GracefulExit
    from textual_serve.app_service import AppService
    from textual_serve.server import Server, to_int

    log = logging.getLogger("textual-serve")

    class Session(AppService):
        """One browser tab's app process. Its screen keeps being read after the tab has gone, so the
        app can draw while it saves and then exit."""

        async def on_data(self, payload: bytes) -> None:
            try:
                await super().on_data(payload)
            except (ConnectionError, RuntimeError):
                pass  # the tab is gone

        async def on_meta(self, data: bytes) -> None:
            try:
                await super().on_meta(data)
            except (ConnectionError, RuntimeError):
                pass

        @property
        def process(self):
            return self._process

        async def stop(self) -> None:
            """The tab closed: the app quits as ctrl+q does (textual-serve's "quit"), then this waits
            for the process to end."""
            await super().stop()
            await self.end(terminate=False)

        async def end(self, terminate: bool = True) -> None:
            """Wait until the app process has ended (after SIGTERM when ``terminate``: stop every run,
            save, exit); one that has not after SESSION_END_S is killed."""
            proc = self._process
            if proc is None or proc.returncode is not None:
                return
            if terminate:
                try:
                    proc.terminate()
                except ProcessLookupError:
                    return
            try:
                await asyncio.wait_for(proc.wait(), SESSION_END_S)
            except asyncio.TimeoutError:
                log.error("a session did not end %.0f s after being told to; killed", SESSION_END_S)
                proc.kill()
                await proc.wait()

    class WebServer(Server):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.sessions: set[Session] = set()
            self.stopping = False

        def initialize_logging(self) -> None:
            super().initialize_logging()
            logging.getLogger("aiohttp.access").setLevel(logging.WARNING)  # no line per request

        async def on_startup(self, app: web.Application) -> None:
            pass  # textual-serve's banner; the address is said once the port is bound (serve)

        def serve(self, debug: bool = False) -> None:
            """textual-serve's, saying where to go only once it listens (a port in use says nothing
            else), on a loop of its own."""
            self.debug = debug
            self.initialize_logging()
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            for sig in (signal.SIGINT, signal.SIGTERM):
                try:
                    loop.add_signal_handler(sig, self.request_exit)
                except (NotImplementedError, AttributeError):
                    pass

            def listening(*_args) -> None:
                print(f"lmplay: open {_url(self.host, self.port)} in a browser (each tab runs its own app).\n"
                      "Ctrl+C stops the server and every session; each saves its runs first.", flush=True)

            web.run_app(self._make_app(), host=self.host, port=self.port, handle_signals=False, loop=loop,
                        print=listening)

        def request_exit(self) -> None:
            """SIGINT/SIGTERM: every session stops its runs and saves, then the server stops. A second
            Ctrl+C stops the server at once (the sessions still save and end on their own)."""
            if self.stopping:
                raise GracefulExit()
            self.stopping = True
            n = sum(1 for s in self.sessions if s.process is not None and s.process.returncode is None)
            print(f"lmplay: stopping {n} session(s); each saves its runs first…" if n else "lmplay: stopping.",
                  flush=True)
            asyncio.get_running_loop().create_task(self._end_sessions())

        async def _end_sessions(self) -> None:
            await asyncio.gather(*(s.end() for s in list(self.sessions)), return_exceptions=True)
            asyncio.get_running_loop().call_soon(self._exit)

        @staticmethod
        def _exit() -> None:
            raise GracefulExit()  # from a plain callback, it ends aiohttp's loop (as textual-serve's own does)

        @aiohttp_jinja2.template("app_index.html")
        async def handle_index(self, request: web.Request):
            """The page, its URLs taken from the address the browser used (with --host 0.0.0.0 the page
            must not point the browser at 0.0.0.0)."""
            base = f"{request.scheme}://{request.host}"
            ws = ("wss:" if request.scheme == "https" else "ws:") + base.split(":", 1)[1]
            return {
                "font_size": to_int(request.query.get("fontsize", "16"), 16),
                "app_websocket_url": f"{ws}{request.app.router['websocket'].url_for()}",
                "config": {"static": {"url": f"{base}{request.app.router['static'].url_for(filename='/')}"
                                      .rstrip("/") + "/"}},
                "application": {"name": self.title},
            }

        async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
            """textual-serve's, with each session remembered until its process has ended."""
            if self.stopping:
                raise web.HTTPServiceUnavailable(text="lmplay is stopping")
            websocket = web.WebSocketResponse(heartbeat=15)
            width = to_int(request.query.get("width", "80"), 80)
            height = to_int(request.query.get("height", "24"), 24)
            session: Session | None = None
            try:
                await websocket.prepare(request)
                session = Session(self.command, write_bytes=websocket.send_bytes, write_str=websocket.send_str,
                                  close=websocket.close, download_manager=self.download_manager,
                                  debug=self.debug)
                self.sessions.add(session)
                await session.start(width, height)
                await self._process_messages(websocket, session)
            except asyncio.CancelledError:
                await websocket.close()
            except Exception as error:  # noqa: BLE001 - textual-serve's: log it, end the session
                log.exception(error)
            finally:
                if session is not None:
                    await session.stop()
                    self.sessions.discard(session)
            return websocket

    return WebServer


if __name__ == "__main__":
    sys.exit(run_session())

"""The ``lmplay --web`` server: textual-serve's Server and AppService, made to end sessions by saving.
Imported by ``tui.web.serve`` only: the session processes and ``lmplay`` without --web never import
the web server."""
from __future__ import annotations

import asyncio
import logging
import signal

import aiohttp_jinja2
from aiohttp import web
from aiohttp.web_runner import GracefulExit
from textual_serve.app_service import AppService
from textual_serve.server import Server, to_int

from .web import SESSION_END_S, browser_url

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
            print(f"lmplay: open {browser_url(self.host, self.port)} in a browser (each tab runs its own app).\n"
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

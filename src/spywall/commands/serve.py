"""``spywall serve``: the platform over HTTP (contract in ``reference/platform.md``):
events in, the inline gate, campaigns, violations, notifications, review and registry,
with the OpenAPI document at ``/openapi.json``. One process, one writer; run it behind a
TLS-terminating proxy.

Exit status: 0 after a clean shut-down, 2 usage or input error (no database schema, a
port that cannot be bound).
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from spywall.commands.platform import payload_options, payload_scanner
from spywall.errors import InputError

HELP = "the platform over HTTP: events, the inline gate, campaigns, violations (OpenAPI)"
OWN_OPTIONS = True     # no --format: the server speaks JSON
# Connections and requests in flight. Memory is bounded apart from this: the request
# bodies buffered at one time hold at most 512 MiB together (api_limits.BodyLimit).
MAX_CONNECTIONS = 1024


def _bounded(convert: Callable[[str], float], what: str, low: float, high: float
             ) -> Callable[[str], Any]:
    """An argparse type: ``convert`` the text, then check ``low <= value <= high``."""
    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not {what}: {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{what} out of range ({low:g} to {high:g}): "
                                             f"{text}")
        return value
    return parse


_port = _bounded(int, "a port number", 0, 65535)
_interval = _bounded(float, "a number of seconds", 0, 3600)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: "
                   "127.0.0.1)")
    p.add_argument("--port", type=_port, default=8080, help="port (default: 8080)")
    p.add_argument("--db", metavar="URL", default=None,
                   help="database URL (default: $SPYWALL_DB, else sqlite:///spywall.db)")
    p.add_argument("--media-root", metavar="DIR", default=None,
                   help="base of relative capture/attachment paths (default: the current "
                        "folder)")
    p.add_argument("--log-key", metavar="PATH", default=None,
                   help="the evidence log's signing key, for bundle exports from the console "
                        "(default: $SPYWALL_LOG_KEY)")
    p.add_argument("--analysis-interval", metavar="SECONDS", type=_interval, default=1.0,
                   help="start the background analysis at most once per SECONDS while "
                        "events arrive (default: 1; 0: after every request)")
    payload_options(p)
    p.add_argument("--log-level", default="info",
                   choices=["critical", "error", "warning", "info", "debug"])
    p.set_defaults(format=None, quiet=False)   # what the CLI's main reads of every command


@contextlib.contextmanager
def _stop_signals_end_cleanly(server: Any) -> Iterator[None]:
    """SIGTERM and SIGINT stop the server with exit status 0, as documented. uvicorn
    catches them to shut down gracefully, then puts back the handlers it found and
    raises the signal again: with Python's own handlers that killed the process by the
    signal (status -15) or raised KeyboardInterrupt after the clean stop. The handlers
    it finds here ask the server to stop (what uvicorn's own do: a signal just before
    uvicorn takes them over still stops it) and nothing more; they are restored when
    the server returns."""
    def noted(signum: int, _frame: object) -> None:
        server.should_exit = True

    taken = (signal.SIGTERM, signal.SIGINT)
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = {sig: signal.signal(sig, noted) for sig in taken}
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from spywall.platform import taxii_api, web
    from spywall.platform.api import create_app
    from spywall.platform.service import open_db

    root = Path(args.media_root) if args.media_root else Path.cwd()
    if not root.is_dir():
        raise InputError(f"--media-root {args.media_root}: not a folder")
    app = create_app(open_db(args.db), root.resolve(),
                     analysis_interval=args.analysis_interval, scanner=payload_scanner(args))
    taxii_api.mount(app)                       # TAXII 2.1 under /taxii2/ and /taxii/
    try:
        web.mount(app, log_key=args.log_key)   # the analyst's console under /ui/
    except ValueError as exc:                  # a session secret too short, and the like
        raise InputError(f"the console's settings: {exc}") from None
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level=args.log_level,
                            limit_concurrency=MAX_CONNECTIONS, server_header=False,
                            proxy_headers=False, timeout_graceful_shutdown=30)
    server = uvicorn.Server(config)
    try:
        with _stop_signals_end_cleanly(server):
            server.run()
    except SystemExit:   # uvicorn exits when it cannot bind
        raise InputError(f"could not listen on {args.host}:{args.port}") from None
    if not server.started:
        raise InputError(f"could not listen on {args.host}:{args.port}")
    return 0

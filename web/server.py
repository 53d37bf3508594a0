"""Serve the app with gunicorn (production WSGI; Flask's own server is for debugging).

Workers are processes, each answering one request at a time on one thread: on a
2-core machine that is what keeps tail latency flat (see docs/performance.md)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from gunicorn import util
from gunicorn.app.base import BaseApplication
from gunicorn.workers.sync import SyncWorker


def write_json_error(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's `util.write_error`, with the API's JSON error body instead of an HTML page."""
    body = json.dumps({"error": reason.lower().replace(" ", "_"), "message": mesg or reason}).encode()
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode("latin1")
    util.write_nonblock(sock, head + body)


class JsonErrorWorker(SyncWorker):
    """gunicorn answers some requests itself, before the app sees them: a request line over
    its limit (414), a malformed request (400). Its workers write those through
    `util.write_error`; this worker's process writes them as JSON, like every other error."""

    def init_process(self) -> None:
        util.write_error = write_json_error
        super().init_process()


class ShopRankServer(BaseApplication):  # type: ignore[misc]
    def __init__(self, data_dir: Path, options: dict[str, Any]):
        self.data_dir = data_dir
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):  # type: ignore[no-untyped-def]
        from web.app import create_app

        return create_app(self.data_dir)


def serve(data_dir: Path, host: str, port: int, workers: int) -> None:
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")
    ShopRankServer(data_dir, {
        "bind": f"{host}:{port}",
        "workers": workers,
        "worker_class": "web.server.JsonErrorWorker",
        "timeout": 60,
        "graceful_timeout": 10,
        "accesslog": None,
        "loglevel": "warning",
    }).run()

"""Serve the app with gunicorn (production WSGI; Flask's own server is for debugging).

Workers are processes, each answering one request at a time on one thread: on a
2-core machine that is what keeps tail latency flat (see docs/performance.md)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication


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
        "worker_class": "sync",
        "timeout": 60,
        "graceful_timeout": 10,
        "accesslog": None,
        "loglevel": "warning",
    }).run()

"""The worker's HTTP endpoints on the Faust web server (``streams/web.py``)."""

from __future__ import annotations

from streams.web import register_pages
from streams.worker import Worker


def register(worker: Worker) -> None:
    if worker.settings.worker.web_port:
        register_pages(worker)

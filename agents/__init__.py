"""The Faust side of ``rapport worker``: one module per agent, registered on the worker's app.

- ``plane``: starts the data plane (``streams/plane.py``) once the churn model is read,
  and stops it (committing its batch) when the app stops; a data plane that fails
  stops the worker.
- ``owners``: follows which worker owns which input partition (profile lookups are
  forwarded to the owner).
- ``delivery`` (when ``delivery.enabled``): hands each sent action on the actions topic
  to its channel's adapter, once (``streams/delivery.py``).
- ``churn`` (when ``churn.enabled``): the one learner, its model's publishing, and every
  worker following the models (``streams/churn_io.py``).
- ``rules``: swaps in a changed, valid rule set; an invalid change keeps the last good one.
- ``web`` (when ``worker.web_port``): health, readiness, metrics and lookups
  (``streams/web.py``).

This package depends on ``streams/worker.py``; the worker never imports it.
"""

from __future__ import annotations

from agents import churn, delivery, owners, plane, rules, web
from streams.worker import Worker


def register(worker: Worker) -> None:
    plane.register(worker)
    owners.register(worker)
    delivery.register(worker)
    churn.register(worker)
    rules.register(worker)
    web.register(worker)

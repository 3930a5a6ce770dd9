"""The ``rapport`` command: replay, generate, worker, rules, churn, schemas and config.

Exit codes: 0 success; 1 invalid rules or a failed check; 2 bad usage (an output that is
the input or another output included); 3 unreadable input; 4 an output that cannot be written.
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, NoReturn, cast

import click
import orjson

from rules.loader import load_rules
from rules.reloader import RulesWatcher
from rules.yaml_source import RuleFileError
from streams.settings import Settings
from streams.sources.files import InputError, OutputError

EXIT_INVALID = 1
EXIT_INPUT = 3
EXIT_OUTPUT = 4


def _settings() -> Settings:
    from pydantic import ValidationError

    from streams.settings import load_settings

    try:
        return load_settings()
    except ValidationError as error:
        raise click.ClickException(
            f"invalid settings (config/*.yaml or RAPPORT_* variables):\n{error}"
        ) from error


def _reject(error: RuleFileError, verdict: str | None = None) -> NoReturn:
    """Print every problem of invalid rules (and a verdict) to stderr; exit 1."""
    for problem in error.problems:
        click.echo(problem, err=True)
    if verdict is not None:
        click.echo(verdict, err=True)
    sys.exit(EXIT_INVALID)


#: The input layouts replay and churn evaluate read (``streams/replay.py: READERS``).
_input_format = click.option(
    "--format",
    "input_format",
    type=click.Choice(["contract", "segment", "online-retail"]),
    default="contract",
    show_default=True,
    help="Input layout.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="rapport")
def main() -> None:
    """Rapport: live customer profiles and journeys from e-commerce event streams."""


@main.command()
@click.argument("input_file", metavar="FILE|-")
@_input_format
@click.option(
    "--rules",
    "rules_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Rules directory (default: settings.rules_dir).",
)
@click.option(
    "--changes",
    "changes_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write profile changes (the engine's actions) as JSONL here.",
)
@click.option(
    "--dead-letters",
    "dead_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write rejected records with their reasons as JSONL here.",
)
@click.option(
    "--profiles",
    "profiles_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the final profiles as JSONL here.",
)
@click.option(
    "--actions",
    "actions_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write journey actions (sent, suppressed, deferred) and run milestones as JSONL here.",
)
@click.option(
    "--audit",
    "audit_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write erasure audit records (no personal data) as JSONL here.",
)
@click.option(
    "--watch-rules",
    is_flag=True,
    help="Re-read the rules directory as the replay runs; a valid change is swapped in, "
    "an invalid one is reported and the last good rules stay.",
)
@click.option(
    "--summary-json",
    "summary_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also write the summary as JSON here.",
)
@click.option(
    "--now",
    "now_text",
    metavar="ISO-TIME",
    help="The run's clock for rejecting future events (default: the current time).",
)
@click.option(
    "--progress/--no-progress", default=None, help="Progress bar (default: on a terminal)."
)
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Serve Prometheus /metrics on this port while the replay runs (0: any free port).",
)
@click.option(
    "--metrics-host",
    default="127.0.0.1",
    show_default=True,
    help="Address /metrics listens on (loopback; 0.0.0.0 for every interface).",
)
def replay(
    input_file: str,
    input_format: str,
    rules_dir: Path | None,
    changes_path: Path | None,
    dead_path: Path | None,
    profiles_path: Path | None,
    actions_path: Path | None,
    audit_path: Path | None,
    watch_rules: bool,
    summary_path: Path | None,
    now_text: str | None,
    progress: bool | None,
    metrics_port: int | None,
    metrics_host: str,
) -> None:
    """Replay FILE (or - for stdin) through the engine in event time and print a summary."""
    from streams.replay import InputFormat, ReplayOutputs, replay as run_replay

    _distinct_paths(
        input_file,
        {
            "--changes": changes_path,
            "--dead-letters": dead_path,
            "--profiles": profiles_path,
            "--actions": actions_path,
            "--audit": audit_path,
            "--summary-json": summary_path,
        },
    )
    settings = _settings()
    rules_dir = rules_dir or settings.rules_dir
    try:
        rules = load_rules(rules_dir)
    except RuleFileError as error:
        click.echo(f"rules rejected:\n{error}", err=True)
        sys.exit(EXIT_INVALID)
    now = datetime.now(UTC)
    if now_text:
        try:
            now = datetime.fromisoformat(now_text)
        except ValueError as error:
            raise click.BadParameter(
                f"{now_text!r} is not an ISO time: {error}", param_hint="--now"
            ) from error
        if now.tzinfo is None:
            raise click.BadParameter(
                "needs a time zone, e.g. 2026-01-01T00:00:00+00:00", param_hint="--now"
            )
    try:
        summary = run_replay(
            input_file,
            input_format=cast(InputFormat, input_format),
            settings=settings,
            rules=rules,
            outputs=ReplayOutputs(changes_path, dead_path, profiles_path, actions_path, audit_path),
            now=now,
            progress=sys.stderr.isatty() if progress is None else progress,
            reload_rules=RulesWatcher(rules_dir, rules).check if watch_rules else None,
            metrics_port=metrics_port,
            metrics_host=metrics_host,
        )
    except InputError as error:
        click.echo(str(error), err=True)
        sys.exit(EXIT_INPUT)
    except OutputError as error:
        click.echo(str(error), err=True)
        sys.exit(EXIT_OUTPUT)
    click.echo(summary.render())
    if summary_path is not None:
        try:
            summary_path.write_bytes(
                orjson.dumps(summary.deterministic(), option=orjson.OPT_INDENT_2)
            )
        except OSError as error:
            click.echo(f"{summary_path}: cannot write: {error.strerror or error}", err=True)
            sys.exit(EXIT_OUTPUT)


def _distinct_paths(input_name: str, outputs: dict[str, Path | None]) -> None:
    """Refuse an output that is the input or another output: writing it would truncate
    what is being read, or two outputs would write over each other."""
    seen: dict[str, str] = {}
    if input_name != "-":
        seen[os.path.realpath(input_name)] = "the input file"
    for option, path in outputs.items():
        if path is None:
            continue
        real = os.path.realpath(path)
        same = seen.get(real) or next(
            (what for other, what in seen.items() if _same_file(other, real)), None
        )
        if same is not None:
            raise click.BadParameter(
                f"{path} is {same} too; writing it would destroy it. Give each output its "
                "own file.",
                param_hint=option,
            )
        seen[real] = f"the {option} output"


def _same_file(first: str, second: str) -> bool:
    """Whether two existing paths are one file (a hard link, say)."""
    try:
        return os.path.samefile(first, second)
    except OSError:
        return False


@main.command()
@click.option("--customers", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option("--days", type=click.IntRange(min=1), default=90, show_default=True)
@click.option("--seed", type=int, default=42, show_default=True)
@click.option(
    "--malformed",
    type=click.FloatRange(0, 0.5),
    default=0.0,
    show_default=True,
    help="Share of extra records that are malformed.",
)
@click.option(
    "--duplicates",
    type=click.FloatRange(0, 0.5),
    default=0.002,
    show_default=True,
    help="Share of events redelivered a second time.",
)
@click.option(
    "--start",
    "start_text",
    default="2026-01-01T00:00:00+00:00",
    show_default=True,
    help="Event time of the stream's start.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write here instead of stdout.",
)
def generate(
    customers: int,
    days: int,
    seed: int,
    malformed: float,
    duplicates: float,
    start_text: str,
    output: Path | None,
) -> None:
    """Write a realistic, seeded event stream as contract JSONL."""
    from streams.generator import GeneratorConfig, generate_stream

    start = datetime.fromisoformat(start_text)
    if start.tzinfo is None:
        raise click.BadParameter("needs a time zone", param_hint="--start")
    cfg = GeneratorConfig(
        customers=customers,
        days=days,
        seed=seed,
        malformed=malformed,
        duplicates=duplicates,
        start=start,
    )
    try:
        out = output.open("wb") if output else sys.stdout.buffer
    except OSError as error:
        click.echo(f"{output}: cannot write: {error.strerror or error}", err=True)
        sys.exit(EXIT_OUTPUT)
    count = 0
    try:
        for line in generate_stream(cfg):
            out.write(line + b"\n")
            count += 1
    finally:
        if output:
            out.close()
    click.echo(f"generated {count:,} records", err=True)


@main.command()
@click.argument("source", type=click.File("r", encoding="utf-8"), default="-")
@click.option("--language", default=None, help="A language tag for every text (zh-CN, en).")
@click.option("--jsonl", is_flag=True, help='Read JSON lines: {"text": ..., "language": ...} each.')
def sentiment(source: IO[str], language: str | None, jsonl: bool) -> None:
    """Score text for sentiment as the engine does: one line (or JSON line) in, one JSON
    line out with `score` (-1..1, null for a language not scored), `language` and the
    e-commerce `terms` found. Reads SOURCE or standard input."""
    from sentiment import score_text

    for number, line in enumerate(source, start=1):
        text, named = line.rstrip("\n"), language
        if jsonl:
            if not line.strip():
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError as error:
                raise click.ClickException(f"line {number}: not JSON: {error}") from error
            if not isinstance(record, dict) or not isinstance(record.get("text"), str):
                raise click.ClickException(f'line {number}: expected {{"text": "..."}}')
            text = record["text"]
            found_language = record.get("language")
            named = found_language if isinstance(found_language, str) else language
        found = score_text(text, named)
        click.echo(
            orjson.dumps(
                {
                    "score": None if found is None else found.score,
                    "language": None if found is None else found.language,
                    "terms": [] if found is None else list(found.terms),
                }
            ).decode()
        )


@main.command()
@click.option(
    "--loglevel",
    type=click.Choice(["crit", "error", "warn", "info", "debug"]),
    default="info",
    show_default=True,
)
def worker(loglevel: str) -> None:
    """Run the engine on Kafka (Faust). Settings: the `worker:` section, RAPPORT_WORKER__*."""
    settings = _settings()
    try:
        loaded = load_rules(settings.rules_dir)
    except RuleFileError as error:
        _reject(error, "rules rejected; the worker does not start on invalid rules")
    from faust.worker import Worker as FaustWorker

    from agents import register
    from streams.worker import Worker

    try:
        running = Worker(settings, loaded)
    except ValueError as error:  # a setting that only shows as wrong when used
        raise click.ClickException(f"the worker cannot start: {error}") from error
    register(running)
    FaustWorker(running.app, loglevel=loglevel).execute_from_commandline()


@main.group()
def rules() -> None:
    """Check marketer rule files."""


@rules.command("validate")
@click.argument("directory", required=False, type=click.Path(path_type=Path))
def rules_validate(directory: Path | None) -> None:
    """Validate every rule file in DIRECTORY (default: settings.rules_dir)."""
    directory = directory or _settings().rules_dir
    try:
        loaded = load_rules(directory)
    except RuleFileError as error:
        _reject(error, f"{len(error.problems)} problem(s); rules rejected")
    journeys = ", ".join(j.id for j in loaded.journeys.journeys) or "none"
    templates = loaded.templates
    messages = (
        "no templates/ (sends carry the template name only)"
        if templates is None
        else f"{len({t for t, _ in templates.by_key})} message templates "
        f"({len(templates)} channel messages, each rendered for a sample send)"
    )
    program = loaded.loyalty
    points = (
        "no loyalty.yaml (no points)"
        if program is None
        else f"a points program ({program.per_unit} per currency unit, "
        f"{program.pending_days}-day return window, expiry after {program.expiry_days} days)"
    )
    routing = loaded.routing
    desk = (
        "no routing.yaml (tickets keep their queue and priority)"
        if routing is None
        else f"ticket routing ({len(routing.categories)} categories, {len(routing.queues)} "
        f"queues, {len(routing.rules)} rules, {len(routing.answers)} suggested answers)"
    )
    click.echo(
        f"{directory}: OK, {len(loaded.tags.ids)} tags, "
        f"{len(loaded.journeys.journeys)} journeys ({journeys}), {messages}, {points}, "
        f"{desk}, version {loaded.version}"
    )
    renderer = loaded.journeys.mover.renderer
    slow = [] if renderer is None else renderer.interpreted_parts()
    if slow:
        click.echo(
            f"note: {len(slow)} template part(s) use what Rapport leaves to Liquid's "
            "interpreter and render three to seven times slower: " + "; ".join(slow)
        )


@rules.command("schema")
@click.option(
    "--check", is_flag=True, help="Fail if the files differ from the models instead of writing."
)
def rules_schema(check: bool) -> None:
    """Write the JSON Schemas of the rule files (rules/schema/) for editors and CI."""
    from rules.rule_schemas import RULE_SCHEMA_DIR, render_rule_schemas

    _write_or_check(render_rule_schemas(), RULE_SCHEMA_DIR, check, "rapport rules schema")


@rules.command("test")
@click.argument("directory", required=False, type=click.Path(path_type=Path))
def rules_test(directory: Path | None) -> None:
    """Run the rule cases in DIRECTORY/cases (default: settings.rules_dir)."""
    from streams.rule_tests import run_cases

    directory = directory or _settings().rules_dir
    try:
        results = run_cases(directory)
    except RuleFileError as error:
        _reject(error)
    for result in results:
        click.echo(f"{'ok  ' if result.passed else 'FAIL'} {result.file}: {result.name}")
        for problem in result.problems:
            click.echo(f"     {problem}")
    failed = sum(not result.passed for result in results)
    click.echo(f"{len(results) - failed} passed, {failed} failed")
    if failed or not results:
        sys.exit(EXIT_INVALID)


@rules.command("preview")
@click.argument("history", type=click.Path(exists=True, dir_okay=False))
@click.option("--customer", required=True, help="The customer id (or anon:<visitor>).")
@click.option("--journey", default=None, help="Only this journey's sends.")
@click.option("--rules", "directory", type=click.Path(path_type=Path), default=None)
@click.option(
    "--until",
    type=click.DateTime(formats=["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S"]),
    default=None,
    help="Run the clock to this moment (default: 30 days after the last event).",
)
@click.option(
    "--html",
    "html_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Write each email's HTML to DIR/<action id>.html.",
)
def rules_preview(
    history: str,
    customer: str,
    journey: str | None,
    directory: Path | None,
    until: datetime | None,
    html_dir: Path | None,
) -> None:
    """Show what CUSTOMER would receive, rendered from HISTORY (contract JSON lines)."""
    from streams.preview import describe, preview_sends

    directory = directory or _settings().rules_dir
    try:
        rules_set = load_rules(directory)
    except RuleFileError as error:
        _reject(error)
    if until is not None and until.tzinfo is None:
        until = until.replace(tzinfo=UTC)
    try:
        result = preview_sends(history, rules_set, customer, journey, until)
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    for action in result.sends:
        for line in describe(action, html_dir):
            click.echo(line)
    click.echo(
        f"{len(result.sends)} send(s) to {customer}"
        + (f"; {result.skipped} record(s) that are not events skipped" if result.skipped else "")
    )


@main.group()
def schemas() -> None:
    """The event contract as JSON Schema."""


@schemas.command("export")
@click.argument("directory", required=False, type=click.Path(path_type=Path, file_okay=False))
@click.option(
    "--check", is_flag=True, help="Fail if the files differ from the models instead of writing."
)
def schemas_export(directory: Path | None, check: bool) -> None:
    """Write one JSON Schema per event type (default: schemas/jsonschema)."""
    from schemas.jsonschema_export import SCHEMA_DIR, render_schemas

    _write_or_check(render_schemas(), directory or SCHEMA_DIR, check, "rapport schemas export")


def _write_or_check(files: dict[str, bytes], directory: Path, check: bool, command: str) -> None:
    """Write generated files, or with ``check`` fail listing those that differ."""
    stale = []
    for name, content in files.items():
        path = directory / name
        if check:
            if not path.exists() or path.read_bytes() != content:
                stale.append(str(path))
        else:
            directory.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
    if stale:
        click.echo(
            f"out of date with the models (run `{command}`):\n  " + "\n  ".join(stale), err=True
        )
        sys.exit(EXIT_INVALID)


@main.group()
def churn() -> None:
    """The churn model."""


@churn.command("evaluate")
@click.argument("input_file", metavar="FILE|-")
@_input_format
@click.option("--horizon", help="Label horizon (default: settings churn.horizon, 90d).")
@click.option("--checkin", help="Check-in interval, 0s for none (default: churn.checkin).")
@click.option(
    "--split",
    type=click.FloatRange(0.05, 0.95),
    default=0.5,
    show_default=True,
    help="Share of the stream's time span the batch baseline trains on.",
)
@click.option("--baseline/--no-baseline", default=True, help="Also train the batch baseline.")
def churn_evaluate(
    input_file: str,
    input_format: str,
    horizon: str | None,
    checkin: str | None,
    split: float,
    baseline: bool,
) -> None:
    """Replay FILE with the online churn model: prequential ROC AUC and log loss, and a
    batch gradient-boosting baseline trained once on the first part of the stream."""
    from schemas.decode import events_of
    from streams.churn_backtest import batch_baseline, evaluate
    from streams.replay import READERS
    from streams.sources.files import open_input

    settings = _settings()
    overrides = {k: v for k, v in (("horizon", horizon), ("checkin", checkin)) if v is not None}
    try:
        churn_settings = settings.churn.model_validate({**settings.churn.model_dump(), **overrides})
    except ValueError as error:
        raise click.BadParameter(str(error)) from error
    try:
        stream, _, _ = open_input(input_file)
        with stream:
            records = READERS[input_format](
                stream, input_file, None, settings.engine.max_record_bytes
            )
            result = evaluate(
                events_of(records),
                churn_settings.config(),
                churn_settings.learner(),
                settings.profile,
                settings.engine.engine_config().allowed_lateness_seconds,
            )
    except InputError as error:
        click.echo(str(error), err=True)
        sys.exit(EXIT_INPUT)
    if baseline:
        try:
            result.baseline = batch_baseline(result, split)
        except ImportError:
            result.baseline_note = "scikit-learn is not installed (pip install scikit-learn)"
        except ValueError as error:
            result.baseline_note = str(error)
    click.echo(result.render())


@main.group()
def config() -> None:
    """Settings."""


@config.command("show")
@click.option(
    "--defaults", is_flag=True, help="The declared defaults (what config/defaults.yaml holds)."
)
def config_show(defaults: bool) -> None:
    """Print the effective settings as YAML."""
    from ruamel.yaml import YAML

    from streams.settings import defaults_document

    data = defaults_document() if defaults else _settings().model_dump(mode="json")
    yaml = YAML()
    yaml.default_flow_style = False
    yaml.dump(data, sys.stdout)


if __name__ == "__main__":
    main()

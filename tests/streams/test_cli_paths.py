"""The command line protects what it reads and says plainly what it cannot read or write."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from streams.cli import main
from streams.generator import GeneratorConfig, generate_stream

NOW = ["--no-progress", "--now", "2026-06-01T00:00:00+00:00"]


@pytest.fixture
def stream(tmp_path: Path) -> Path:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(generate_stream(GeneratorConfig(customers=5, days=5))) + b"\n")
    return path


@pytest.mark.parametrize("option", ["--dead-letters", "--changes", "--profiles", "--summary-json"])
def test_an_output_that_is_the_input_is_refused_and_the_input_kept(
    stream: Path, option: str
) -> None:
    before = stream.read_bytes()
    result = CliRunner().invoke(main, ["replay", str(stream), *NOW, option, str(stream)])
    assert result.exit_code == 2
    assert "is the input file too" in result.output
    assert stream.read_bytes() == before


def test_an_output_reached_by_another_name_of_the_input_is_refused(
    stream: Path, tmp_path: Path
) -> None:
    link = tmp_path / "also.jsonl"
    os.link(stream, link)
    result = CliRunner().invoke(main, ["replay", str(stream), *NOW, "--actions", str(link)])
    assert result.exit_code == 2
    assert "is the input file too" in result.output


def test_two_outputs_on_one_file_are_refused(stream: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    args = ["--changes", str(out), "--actions", str(tmp_path / "." / "out.jsonl")]
    result = CliRunner().invoke(main, ["replay", str(stream), *NOW, *args])
    assert result.exit_code == 2
    assert "is the --changes output too" in result.output


def test_a_file_named_gz_that_is_not_gzip_is_an_input_error(tmp_path: Path) -> None:
    fake = tmp_path / "events.jsonl.gz"
    fake.write_bytes(b'{"type": "order.placed"}\n')
    result = CliRunner().invoke(main, ["replay", str(fake), *NOW])
    assert result.exit_code == 3
    assert "not a gzip file" in result.output
    assert "Traceback" not in result.output


def test_a_gzip_file_cut_short_is_an_input_error(stream: Path, tmp_path: Path) -> None:
    packed = gzip.compress(stream.read_bytes())
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(packed[: len(packed) // 2])
    result = CliRunner().invoke(main, ["replay", str(cut), *NOW])
    assert result.exit_code == 3
    assert "cannot read further" in result.output


def test_an_output_that_cannot_be_written_exits_4_naming_it(stream: Path, tmp_path: Path) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a directory")
    result = CliRunner().invoke(
        main, ["replay", str(stream), *NOW, "--profiles", str(blocked / "profiles.jsonl")]
    )
    assert result.exit_code == 4
    assert "profiles.jsonl: cannot write" in result.output
    assert "Traceback" not in result.output


def test_generate_to_a_path_that_cannot_be_written_exits_4(tmp_path: Path) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("x")
    result = CliRunner().invoke(main, ["generate", "-o", str(blocked / "s.jsonl")])
    assert result.exit_code == 4
    assert "cannot write" in result.output

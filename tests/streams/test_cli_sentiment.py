"""``rapport sentiment``: text in, the engine's scores out, and a clear error for a bad line."""

from __future__ import annotations

import orjson
from click.testing import CliRunner

from streams.cli import main


def test_each_line_gets_the_score_the_engine_would_give() -> None:
    result = CliRunner().invoke(main, ["sentiment"], input="退款还没到，我要投诉\nBonjour\n")
    assert result.exit_code == 0, result.output
    first, second = (orjson.loads(line) for line in result.output.splitlines())
    assert first["language"] == "zh"
    assert first["score"] < -0.9
    assert first["terms"] == ["退款还没", "投诉"]
    assert second["language"] == "en"


def test_json_lines_name_their_language_and_a_bad_line_is_an_error_with_its_number() -> None:
    runner = CliRunner()
    good = runner.invoke(
        main, ["sentiment", "--jsonl"], input='{"text": "Très bien", "language": "fr"}\n'
    )
    assert orjson.loads(good.output) == {"score": None, "language": None, "terms": []}
    bad = runner.invoke(main, ["sentiment", "--jsonl"], input='{"text": "ok"}\n[1]\n')
    assert bad.exit_code != 0
    assert "line 2" in bad.output

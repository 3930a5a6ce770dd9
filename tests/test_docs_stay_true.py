"""The operator and marketer docs list what the code defines; these tests keep them in step."""

from pathlib import Path

from rules.profile_view import PROFILE_FIELDS
from state.profile import LIMITS
from tests.state.test_profile_size import MAX_PROFILE_BYTES

DOCS = Path(__file__).parents[1] / "docs"


def test_rules_guide_lists_every_name_a_condition_can_use() -> None:
    guide = (DOCS / "rules.md").read_text()
    missing = [name for name in PROFILE_FIELDS if f"| `{name}` |" not in guide]
    assert missing == []


def test_profile_doc_states_every_bound_with_its_value() -> None:
    doc = (DOCS / "profile.md").read_text()
    wrong = [name for name, value in LIMITS.items() if f"| `{name}` | {value} |" not in doc]
    assert wrong == []
    assert f"**{MAX_PROFILE_BYTES // 1024} KiB**" in doc


def test_data_doc_explains_every_dead_letter_reason() -> None:
    from schemas.decode import DEAD_LETTER_REASONS

    doc = (DOCS / "data.md").read_text()
    missing = [reason for reason in DEAD_LETTER_REASONS if f"| `{reason}` |" not in doc]
    assert missing == []


def test_rules_guide_states_the_condition_languages_bounds() -> None:
    from rules import expressions

    guide = (DOCS / "rules.md").read_text()
    assert f"at most {expressions.MAX_SOURCE_CHARS} characters" in guide
    assert f"{expressions.MAX_NODES} parts" in guide
    assert f"up to {expressions.MAX_TEXT_CHARS} characters" in guide
    assert f"at most {expressions.MAX_LIST_ITEMS} literals" in guide
    assert "10^12" in guide
    assert expressions.MAX_NUMBER == 1e12

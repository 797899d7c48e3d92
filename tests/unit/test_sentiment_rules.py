"""The ``sentiment`` condition: explained with the score, bad operands refused at load, and a
missing vaderSentiment package reported by ``rules check`` while the rule simply does not hold."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from maild.cli.main import main
from maild.routing.loader import RulesError, load_rules
from tests.mailgen import make_mail

RULES = """\
rules:
  - name: Angry
    when: {sentiment: {below: -0.5}}
    then: {priority: high}
"""


@pytest.fixture
def site(tmp_path: Path) -> Path:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "20-routing.yaml").write_text(RULES)
    (tmp_path / "templates").mkdir()
    (tmp_path / "config.yaml").write_text(
        "instance: {ticket_prefix: T, support_addresses: [support@example.com], data_dir: var}\n"
        "database: {url: 'sqlite:///var/t.db'}\n"
        "rules_dir: rules\ntemplates_dir: templates\n"
    )
    (tmp_path / "angry.eml").write_bytes(
        make_mail(body="This is awful, terrible service, I am furious and I hate it.")
    )
    return tmp_path


def test_explain_shows_the_score_that_decided(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["rules", "explain", "--config", str(site / "config.yaml"), str(site / "angry.eml")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "MATCH  Angry" in out
    assert "why: sentiment below -0.5 (score -0." in out


def test_a_sentiment_condition_with_a_word_for_a_number_is_refused(tmp_path: Path) -> None:
    (tmp_path / "20-routing.yaml").write_text(RULES.replace("-0.5", "low"))
    with pytest.raises(RulesError) as caught:
        load_rules(tmp_path)
    assert "20-routing.yaml:3" in str(caught.value)
    assert "sentiment.below: expected a number, not 'low'" in str(caught.value)


def test_without_vader_rules_check_names_the_rule_and_the_rule_does_not_match(
    site: Path,
) -> None:
    # The package made unimportable, as on an installation without the triage extra.
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["vaderSentiment"] = None
        from maild.cli.main import main
        code = main(["rules", "check", "--config", {str(site / "config.yaml")!r}])
        code += main(["rules", "explain", "--config", {str(site / "config.yaml")!r},
                      {str(site / "angry.eml")!r}])
        sys.exit(code)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stderr.startswith("warning: ")
    assert (
        "20-routing.yaml:2: rule 'Angry' tests sentiment, but vaderSentiment is not installed"
    ) in out.stderr
    assert "no     Angry" in out.stdout
    assert "no score: vaderSentiment is not installed" in out.stdout

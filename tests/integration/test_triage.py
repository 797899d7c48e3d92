"""Learned triage: ``ticketd triage train|evaluate`` on generated labelled tickets (a JSONL file
or resolved tickets in SQLite and PostgreSQL), the saved model and its refusal when corrupt or
from another version, bad training data, and rules on the prediction through the worker."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from maild.app import App
from maild.store.models import Contact, Message, Ticket
from maild.triage.model import TriageError, load
from tests.kbkit import ticketd, write_config
from tests.mailgen import make_mail
from tests.servers.deskmail import deliver
from tests.triagekit import generate, write_jsonl

PEOPLE = """\
agents:
  - {email: alice@example.com, name: Alice, teams: [billing]}
  - {email: bob@example.com, name: Bob, teams: [tech]}
  - {email: sam@example.com, name: Sam, teams: [sales]}
teams:
  billing: {assign: none}
  tech: {assign: none}
  sales: {assign: none}
"""
ROUTING = """\
rules:
  - name: Learned routing
    when: {prediction: {team: {confidence: CONFIDENCE}}}
    then: {team: predicted, tags: [auto-routed]}
"""


@pytest.fixture
def config(tmp_path: Path, any_db_url: str) -> Path:
    return write_config(tmp_path, any_db_url)


def test_train_from_a_file_beats_the_baseline_and_saves_the_model_with_date_and_figures(
    config: Path, tmp_path: Path
) -> None:
    data = write_jsonl(tmp_path / "history.jsonl", generate(400))
    out = ticketd(config, "triage", "train", "--data", str(data))
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("400 examples\nteam: accuracy ")
    meta = json.loads((tmp_path / "var" / "triage" / "model.json").read_text())
    assert meta["format"] == 1 and meta["examples"] == 400 and meta["trained_at"]
    team = meta["figures"]["team"]
    assert team["test"] == 100 and team["train"] == 300
    assert team["accuracy"] > team["baseline_accuracy"] + 0.3
    assert set(team["per_class"]) == {"billing", "sales", "tech"}
    assert meta["figures"]["priority"]["macro_f1"] > 0.5
    assert "printer" in meta["figures"]["tags"]["learned"]
    model = load(tmp_path / "var")
    team_value, confidence = model.predict("Hello, I was charged twice for the invoice")["team"]
    assert team_value == "billing" and 0.5 < confidence <= 1


def test_evaluate_prints_per_class_precision_and_recall_as_json(
    config: Path, tmp_path: Path
) -> None:
    data = write_jsonl(tmp_path / "history.jsonl", generate(200, seed=3))
    out = ticketd(config, "triage", "evaluate", "--data", str(data), "--json")
    assert out.returncode == 0, out.stderr
    figures = json.loads(out.stdout)["figures"]
    for target in ("team", "priority"):
        assert {"accuracy", "macro_f1", "baseline_accuracy", "per_class"} <= set(figures[target])
        for row in figures[target]["per_class"].values():
            assert 0 <= row["precision"] <= 1 and 0 <= row["recall"] <= 1
    assert not (tmp_path / "var" / "triage").exists()  # evaluate saves nothing


def test_train_learns_from_resolved_tickets_final_values(
    app: App, config: Path, tmp_path: Path
) -> None:
    carol = Contact.create(email="carol@customer.test", name="Carol")
    for n, row in enumerate(generate(60, seed=5)):
        ticket = Ticket.create(
            subject=row["text"][:40],
            requester=carol,
            status="resolved" if n % 10 else "open",  # open ones are not learned from
            team=row["team"],
            priority=row["priority"],
        )
        Message.create(
            ticket=ticket,
            direction="in",
            kind="customer",
            message_id=f"m{n}@customer.test",
            dedup_key=f"m{n}@customer.test",
            body=row["text"],
        )
    out = ticketd(config, "triage", "train")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("54 examples\n")


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([], "no training data"),
        (
            [{"text": f"printer {i}", "team": "tech", "priority": "normal"} for i in range(9)],
            "nothing to learn from 9 examples (team: one class only ('tech' in all 9 examples)",
        ),
        ([{"text": "x", "team": "tech"}, "not an object"], ":2: expected an object"),
        ([{"text": "", "team": "tech"}], ":1: text must be a non-empty string"),
        ([{"text": "x", "tags": "vip"}], ":1: tags must be a list of strings"),
    ],
)
def test_bad_training_data_is_refused_with_a_clear_message(
    config: Path, tmp_path: Path, lines: list, message: str
) -> None:
    data = tmp_path / "bad.jsonl"
    data.write_text("".join(json.dumps(line) + "\n" for line in lines))
    out = ticketd(config, "triage", "train", "--data", str(data))
    assert out.returncode == 65, out.stdout
    assert message in out.stderr
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "var" / "triage" / "model.json").exists()


def test_not_json_is_refused_with_its_line(config: Path, tmp_path: Path) -> None:
    data = tmp_path / "bad.jsonl"
    data.write_text('{"text": "ok", "team": "a"}\n{"text": \n')
    out = ticketd(config, "triage", "evaluate", "--data", str(data))
    assert out.returncode == 65
    assert f"{data}:2: not JSON" in out.stderr


@pytest.fixture
def trained(config: Path, tmp_path: Path) -> Path:
    data = write_jsonl(tmp_path / "history.jsonl", generate(300))
    assert ticketd(config, "triage", "train", "--data", str(data)).returncode == 0
    return tmp_path / "var"


def test_a_corrupt_model_or_one_from_another_version_is_refused_clearly(trained: Path) -> None:
    meta_path = trained / "triage" / "model.json"
    blob = trained / "triage" / "model.pkl"
    good_meta, good_blob = meta_path.read_text(), blob.read_bytes()
    load(trained)  # the good one loads
    blob.write_bytes(good_blob[: len(good_blob) // 2])
    with pytest.raises(TriageError, match="corrupt \\(checksum differs\\): retrain"):
        load(trained)
    blob.write_bytes(good_blob)
    meta_path.write_text(good_meta.replace('"format": 1', '"format": 99'))
    with pytest.raises(TriageError, match="format 99 from another version of ticketd"):
        load(trained)
    meta = json.loads(good_meta)
    meta["sklearn"] = "0.24.2"
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(TriageError, match=r"trained with scikit-learn 0\.24\.2, installed is"):
        load(trained)
    meta_path.write_text("{not json")
    with pytest.raises(TriageError, match="the model file is corrupt"):
        load(trained)


def rules_app(app_factory: Callable[..., App], url: str, tmp_path: Path, confidence: float) -> App:
    app = app_factory(url)
    (app.config.rules_dir / "10-people.yaml").write_text(PEOPLE)
    (app.config.rules_dir / "20-routing.yaml").write_text(
        ROUTING.replace("CONFIDENCE", str(confidence))
    )
    return app


def arrive(app: App, body: str) -> Ticket:
    subject = f"Question {uuid.uuid4().hex[:6]}"
    deliver(app, make_mail(subject=subject, body=body))
    return Ticket.get(Ticket.subject == subject)


def test_a_rule_routes_by_the_prediction_above_its_confidence(
    app_factory: Callable[..., App], any_db_url: str, tmp_path: Path, trained: Path
) -> None:
    app = rules_app(app_factory, any_db_url, tmp_path, 0.6)
    billing = arrive(app, "Hello, about the refund: I was charged twice on my credit card.")
    assert billing.team == "billing"
    tech = arrive(app, "Hi team, about the server is down: nothing loads since this morning.")
    assert tech.team == "tech"


def test_below_the_confidence_the_rule_does_not_match(
    app_factory: Callable[..., App], any_db_url: str, tmp_path: Path, trained: Path
) -> None:
    app = rules_app(app_factory, any_db_url, tmp_path, 1.0)
    assert arrive(app, "Hello, about the refund: I was charged twice.").team is None


def test_without_a_usable_model_the_rule_skips_and_rules_check_and_explain_say_why(
    app_factory: Callable[..., App], any_db_url: str, tmp_path: Path, trained: Path, config: Path
) -> None:
    app = rules_app(app_factory, any_db_url, tmp_path, 0.5)
    (trained / "triage" / "model.pkl").write_bytes(b"garbage")
    assert arrive(app, "Hello, about the refund: I was charged twice.").team is None
    check = ticketd(config, "rules", "check")
    assert check.returncode == 0, check.stderr
    assert "rule 'Learned routing' uses the triage model, but" in check.stderr
    assert "corrupt" in check.stderr
    eml = tmp_path / "refund.eml"
    eml.write_bytes(make_mail(body="I was charged twice, please refund."))
    explain = ticketd(config, "rules", "explain", str(eml))
    assert explain.returncode == 0, explain.stderr
    assert "triage:  no prediction: " in explain.stdout
    assert "prediction team with confidence 0.5 (no triage model)" in explain.stdout


def test_rules_explain_shows_the_prediction_and_its_confidence(
    tmp_path: Path, trained: Path, config: Path
) -> None:
    (tmp_path / "rules" / "10-people.yaml").write_text(PEOPLE)
    (tmp_path / "rules" / "20-routing.yaml").write_text(ROUTING.replace("CONFIDENCE", "0.5"))
    eml = tmp_path / "refund.eml"
    eml.write_bytes(make_mail(subject="Refund", body="I was charged twice on my credit card."))
    explain = ticketd(config, "rules", "explain", str(eml))
    assert explain.returncode == 0, explain.stderr
    assert "triage:  team 'billing' (0." in explain.stdout
    assert "MATCH  Learned routing" in explain.stdout
    assert "prediction team with confidence 0.5 (predicted 'billing' at 0." in explain.stdout
    assert "  team       billing   (rule 'Learned routing')" in explain.stdout


def test_the_retrain_job_trains_when_the_model_is_missing_or_old_and_not_before(
    app_factory: Callable[..., App], any_db_url: str
) -> None:
    import datetime as dt

    from maild.triage.job import retrain_if_due, trained_at

    app = app_factory(any_db_url, triage={"retrain_days": 7})
    carol = Contact.create(email="carol@customer.test", name="Carol")
    for n, row in enumerate(generate(40, seed=7)):
        ticket = Ticket.create(
            subject=row["text"][:60], requester=carol, status="closed", team=row["team"]
        )
        Message.create(
            ticket=ticket,
            direction="in",
            kind="customer",
            message_id=f"r{n}@customer.test",
            dedup_key=f"r{n}@customer.test",
            body=row["text"],
        )
    now = dt.datetime(2026, 12, 1, 8, 0)
    assert retrain_if_due(app, now) is True
    assert trained_at(app) == now
    assert retrain_if_due(app, now + dt.timedelta(days=6)) is False
    assert retrain_if_due(app, now + dt.timedelta(days=7, minutes=1)) is True
    assert load(app.data_dir).examples == 40

"""``maild.pipeline.classify`` over the shared corpus, compared with its expectations.

Messages: everything under ``auto/`` (expected kind = ``classification`` in ``index.csv``,
which agrees with ``auto/expected_classification.csv``), the full ``.eml``/``.msg``/``.box``
replies that ``index.csv`` marks human, and the full inbound first messages (expected human,
though some are spam or list mail).

Measured: (a) kind agreement, (b) robot-vs-human agreement - the one that matters for loop
protection, asserted strictly for ``auto/`` - and (c) for bounces, whether the failed recipient a
source test names is in ``bounced_recipients``; as only one such address is in the corpus, also
whether we find at least as many recipients as the source test (sisimai) expects, and how many
bounces yield any recipient.  Bounces that return the original must name its Message-ID.
``pytest -s`` prints the table; the floors asserted below are the measured shares rounded down
to the whole percent.
"""

from __future__ import annotations

import csv
import email
import email.policy
import math
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

from maild.pipeline.classify import Classification, classify
from tests.conftest import corpus_dir

MESSAGE_SUFFIXES = (".eml", ".msg", ".box")

# Robots in auto/ that we accept being classified human: {path: reason}.  Empty - every robot
# in the corpus is caught.  The kind disagreements we accept are listed in KIND_DISPUTED.
JUDGED_WRONG: dict[str, str] = {}

# Kind disagreements (all still is_robot), with why the corpus label or our kind differs.
KIND_DISPUTED: dict[str, str] = {
    "auto/bounceparser/warning-6.msg": (
        "labelled auto-generated (BounceParser calls it a 'delivery warning'), but it is an "
        "out-of-office reply ('AUTO: ... is out of the office'): autoreply"
    ),
    "auto/bounceparser/warning-8.msg": (
        "labelled auto-generated, but it is a delayed DSN (Action: delayed), which the corpus "
        "labels bounce elsewhere (flanker/bounce-no-mx.eml has the same subject): bounce"
    ),
    "auto/sisimai/lhost-fml-02.eml": (
        "fml list-manager rejection ('not member'); carries List-* / Mailing-List fields and no "
        "delivery-failure evidence: we say list"
    ),
    "auto/sisimai/lhost-fml-03.eml": (
        "fml list-manager 'Loop Alert' (X-MLServer), no delivery-failure evidence: we say list"
    ),
}

# Floors: measured shares in percent, rounded down.  (kind agreement, robot-vs-human agreement)
FLOORS: dict[str, tuple[int, int]] = {
    "auto/bounceparser": (93, 100),
    "auto/chatwoot": (100, 100),
    "auto/flanker": (100, 100),
    "auto/mikel-mail": (100, 100),
    "auto/mimekit": (100, 100),
    "auto/nodemailer-mailparser": (100, 100),
    "auto/php-mime-mail-parser": (100, 100),
    "auto/rt": (100, 100),
    "auto/salmon": (100, 100),
    "auto/sisimai": (98, 100),
    "auto/spamscope-mail-parser": (100, 100),
    "auto/zammad": (100, 100),
    "inbound/chatwoot": (100, 100),
    "inbound/django-helpdesk": (100, 100),
    "inbound/flanker": (100, 100),
    "inbound/mikel-mail": (98, 98),
    "inbound/mimekit": (100, 100),
    "inbound/nodemailer-mailparser": (100, 100),
    "inbound/php-mime-mail-parser": (91, 91),
    "inbound/rt": (100, 100),
    "inbound/spamscope-mail-parser": (94, 94),
    "inbound/tnef": (100, 100),
    "inbound/zammad": (97, 97),
    "replies/chatwoot": (100, 100),
    "replies/mikel-mail": (100, 100),
    "replies/mimekit": (100, 100),
    "replies/php-mime-mail-parser": (100, 100),
    "replies/talon": (100, 100),
    "replies/zammad": (100, 100),
    "auto": (98, 100),
    "inbound": (97, 97),
    "replies": (100, 100),
    "overall": (98, 98),
}
# (c) recipients, in percent, rounded down: expected address found; at least as many distinct
# recipients as the source test expects (sisimai); bounces with at least one recipient.
RECIPIENT_FLOORS = {"address": 100, "count": 94, "any": 95}


@dataclass(frozen=True)
class Case:
    path: str
    expected: str
    result: Classification

    @property
    def group(self) -> str:
        return "/".join(self.path.split("/")[:2])

    @property
    def kind_ok(self) -> bool:
        return self.result.kind == self.expected

    @property
    def robot_ok(self) -> bool:
        return self.result.is_robot == (self.expected != "human")


@dataclass(frozen=True)
class Expectations:
    addresses: dict[str, set[str]]  # path -> recipient addresses a source test names
    counts: dict[str, int]  # path -> number of recipients a source test expects


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def selected(rows: list[dict[str, str]]) -> list[tuple[str, str]]:
    """(path, expected kind) of the messages this test looks at."""
    out: list[tuple[str, str]] = []
    for row in rows:
        path, category = row["path"], row["category"]
        if row["kind"] != "message" or not path.endswith(MESSAGE_SUFFIXES):
            continue
        if category == "auto":
            out.append((path, row["classification"]))
        elif category == "inbound" or (category == "replies" and row["classification"] == "human"):
            out.append((path, "human"))
    return out


def read_expectations(root: Path) -> Expectations:
    addresses: dict[str, set[str]] = defaultdict(set)
    counts: dict[str, int] = {}
    for row in read_csv(root / "auto" / "expected_classification.csv"):
        if row["classification"] != "bounce":
            continue
        found = re.findall(r"[\w.+-]+@[\w.-]+\w", row["extra"])
        addresses[row["path"]].update(a.lower() for a in found)
        if row["recipient_index"].isdigit():
            counts[row["path"]] = max(counts.get(row["path"], 0), int(row["recipient_index"]))
    return Expectations({p: a for p, a in addresses.items() if a}, counts)


def classify_file(path: Path) -> Classification:
    msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    return classify(msg)


@pytest.fixture(scope="module")
def root() -> Path:
    return corpus_dir()


@pytest.fixture(scope="module")
def cases(root: Path) -> list[Case]:
    rows = read_csv(root / "index.csv")
    return [Case(p, kind, classify_file(root / p)) for p, kind in selected(rows)]


@pytest.fixture(scope="module")
def expectations(root: Path) -> Expectations:
    return read_expectations(root)


def share(hits: int, total: int) -> float:
    return 100.0 * hits / total if total else 100.0


def floor_pct(hits: int, total: int) -> int:
    return math.floor(share(hits, total) + 1e-9)


def groups(cases: list[Case]) -> dict[str, list[Case]]:
    out: dict[str, list[Case]] = defaultdict(list)
    for case in cases:
        out[case.group].append(case)
        out[case.path.split("/")[0]].append(case)
        out["overall"].append(case)
    return out


def recipient_shares(cases: list[Case], exp: Expectations) -> dict[str, tuple[int, int]]:
    by_path = {c.path: c for c in cases}
    address = [
        all(a in by_path[p].result.bounced_recipients for a in want)
        for p, want in exp.addresses.items()
    ]
    count = [len(by_path[p].result.bounced_recipients) >= n for p, n in exp.counts.items()]
    bounces = [c for c in cases if c.expected == "bounce"]
    any_found = [bool(c.result.bounced_recipients) for c in bounces]
    return {
        "address": (sum(address), len(address)),
        "count": (sum(count), len(count)),
        "any": (sum(any_found), len(any_found)),
    }


def table(cases: list[Case], exp: Expectations) -> str:
    lines = [f"{'source':32} {'n':>4} {'kind':>15} {'robot/human':>15}"]
    grouped = groups(cases)
    order = [*sorted(k for k in grouped if "/" in k), "auto", "inbound", "replies", "overall"]
    for name in order:
        items = grouped[name]
        kind, robot = sum(c.kind_ok for c in items), sum(c.robot_ok for c in items)
        lines.append(
            f"{name:32} {len(items):>4} {kind:>4}/{len(items):<4}{share(kind, len(items)):5.1f}%"
            f" {robot:>4}/{len(items):<4}{share(robot, len(items)):5.1f}%"
        )
    for name, (hits, total) in recipient_shares(cases, exp).items():
        lines.append(f"recipients ({name}): {hits}/{total} = {share(hits, total):.1f}%")
    for case in cases:
        if not case.kind_ok:
            note = KIND_DISPUTED.get(case.path) or JUDGED_WRONG.get(case.path) or ""
            lines.append(
                f"  {case.path}: expected {case.expected}, got {case.result.kind}"
                f" {list(case.result.reasons)} {note}"
            )
    return "\n".join(lines)


def test_agreement_per_source(cases: list[Case], expectations: Expectations) -> None:
    print("\n" + table(cases, expectations))
    grouped = groups(cases)
    assert set(grouped) == set(FLOORS), "a source appeared or vanished: update FLOORS"
    for name, (kind_floor, robot_floor) in FLOORS.items():
        items = grouped[name]
        kind = floor_pct(sum(c.kind_ok for c in items), len(items))
        robot = floor_pct(sum(c.robot_ok for c in items), len(items))
        assert kind >= kind_floor, f"{name}: kind agreement {kind}% < {kind_floor}%"
        assert robot >= robot_floor, f"{name}: robot agreement {robot}% < {robot_floor}%"


def test_no_robot_in_auto_is_classified_human(cases: list[Case]) -> None:
    missed = {
        c.path: c.result.reasons
        for c in cases
        if c.path.startswith("auto/") and c.expected != "human" and not c.result.is_robot
    }
    assert set(missed) <= set(JUDGED_WRONG), {
        p: r for p, r in missed.items() if p not in JUDGED_WRONG
    }


def test_judged_wrong_entries_are_still_wrong(cases: list[Case]) -> None:
    by_path = {c.path: c for c in cases}
    for path in JUDGED_WRONG:
        assert path in by_path, f"{path} is not in the corpus"
        assert not by_path[path].robot_ok, f"{path} is classified right now: drop it"


def test_hard_negatives_in_auto_stay_human(cases: list[Case]) -> None:
    negatives = [c for c in cases if c.path.startswith("auto/") and c.expected == "human"]
    assert negatives
    assert all(c.result.kind == "human" for c in negatives), [
        (c.path, c.result.reasons) for c in negatives if c.result.kind != "human"
    ]


def test_kind_disagreements_are_the_disputed_ones(cases: list[Case]) -> None:
    wrong = {c.path for c in cases if c.path.startswith("auto/") and not c.kind_ok}
    assert wrong <= set(KIND_DISPUTED) | set(JUDGED_WRONG), wrong - set(KIND_DISPUTED)


def test_bounced_recipients(cases: list[Case], expectations: Expectations) -> None:
    shares = recipient_shares(cases, expectations)
    for name, floor in RECIPIENT_FLOORS.items():
        hits, total = shares[name]
        assert total, name
        assert floor_pct(hits, total) >= floor, f"recipients ({name}): {hits}/{total} < {floor}%"


def enclosed_message_ids(path: Path) -> set[str]:
    """Message-IDs of the messages / header blocks enclosed in the file (read independently)."""
    msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.compat32)
    ids: set[str] = set()
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype == "message/rfc822":
            inner = part.get_payload()
            headers = str(inner[0].get("Message-ID", "")) if isinstance(inner, list) else ""
        elif ctype == "text/rfc822-headers":
            headers = "\n".join(re.findall(r"(?im)^message-id:.*$", str(part.get_payload())))
        else:
            continue
        ids.update(re.findall(r"<([^<>\s]+@[^<>\s]+)>", headers))
    return ids


def test_bounces_name_the_enclosed_original(root: Path, cases: list[Case]) -> None:
    """A bounce that returns the original message (or its headers) names its Message-ID."""
    checked = missed = 0
    for case in cases:
        if case.result.kind != "bounce":
            continue
        enclosed = enclosed_message_ids(root / case.path)
        if enclosed:
            checked += 1
            missed += not enclosed & set(case.result.original_message_ids)
    print(f"\nbounces naming the enclosed original: {checked - missed}/{checked}")
    assert checked > 100
    assert missed == 0

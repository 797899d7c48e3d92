"""Reading a satisfaction rating from the top of a reply, and from a survey link's subject."""

from __future__ import annotations

import pytest

from maild.sla.survey import Rating, parse_rating, rating_in_subject


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5", Rating(5, "")),
        ("4\n\nQuick and friendly, thanks!", Rating(4, "Quick and friendly, thanks!")),
        ("  3/5 - took a while\nbut fixed", Rating(3, "took a while\nbut fixed")),
        ("2 of 5. Nobody called back.", Rating(2, "Nobody called back.")),
        ("4 out of 5", Rating(4, "")),
        ("5 stars", Rating(5, "")),
        ("Rating: 1", Rating(1, "")),
        ("Excellent!", Rating(5, "")),
        ("Good, thanks for the help", Rating(4, "thanks for the help")),
        ("very good", Rating(5, "")),
        ("Not good - it took a week", Rating(2, "it took a week")),
        ("bad.\nStill slow.", Rating(1, "Still slow.")),
        ("poor", Rating(2, "")),
        ("okay", Rating(3, "")),
        ("OK", Rating(3, "")),
        ("\n\n  *5*  \n", Rating(5, "")),
        ("Sehr gut", Rating(5, "")),
    ],
)
def test_ratings_at_the_top(text: str, expected: Rating) -> None:
    assert parse_rating(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Good morning, the printer is on fire again",
        "5 minutes after your fix it broke again",
        "6",
        "0",
        "10/10",
        "Very good service but one question",
        "Thanks! 5",
        "Hello,\n5",
        "excellently done",
    ],
)
def test_text_that_is_not_a_rating(text: str) -> None:
    assert parse_rating(text) is None


def test_rating_in_a_survey_links_subject() -> None:
    assert rating_in_subject("[ACME-7] Rating: 4") == 4
    assert rating_in_subject("Re: AW: [ACME-7] Rating: 2") == 2
    assert rating_in_subject("[ACME-7] rating 5") == 5
    assert rating_in_subject("[ACME-7] Printer on fire") is None
    assert rating_in_subject("[ACME-7] Rating: 9") is None

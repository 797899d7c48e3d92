"""A sentiment score for a customer's message: VADER's compound score, from -1 (angry) to 1.

VADER (the ``vaderSentiment`` package, in the ``triage`` extra) is a lexicon and rules, fast and
offline. Without the package every score is None: nothing is stored, and rules that test
``sentiment`` do not hold (``rules check`` says why). The text scored is what the customer wrote
in this mail (quotes and signature removed, :func:`maild.pipeline.reply.reply_text`) after the
subject, cut to MAX_CHARS so that a huge mail costs no more than a long one.
"""

from __future__ import annotations

from functools import cache, lru_cache
from typing import Any

from maild.pipeline.message import InboundMessage
from maild.pipeline.reply import reply_text

MAX_CHARS = 5_000
NEGATIVE = -0.5  # below this a message counts as negative in the reports


@cache
def _analyzer() -> Any | None:
    try:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    except ImportError:
        return None
    return SentimentIntensityAnalyzer()


def available() -> bool:
    """Whether scores can be computed (the ``vaderSentiment`` package is installed)."""
    return _analyzer() is not None


MISSING = "vaderSentiment is not installed (pip install 'ticketd[triage]')"


@lru_cache(maxsize=64)
def score_text(text: str) -> float | None:
    """VADER's compound score of ``text`` rounded to 4 places; None without the package or text."""
    analyzer = _analyzer()
    text = text[:MAX_CHARS].strip()
    if analyzer is None or not text:
        return None
    return round(float(analyzer.polarity_scores(text)["compound"]), 4)


def message_text(msg: InboundMessage) -> str:
    """What is scored: the subject and the visible text of the mail."""
    return f"{msg.subject}\n{reply_text(msg)}"


def message_sentiment(msg: InboundMessage) -> float | None:
    """The score of ``msg`` (cached per text: intake and the rules ask for the same one)."""
    return score_text(message_text(msg))

"""The MTA's spam verdict: only its own headers (above the first Received) count, topmost first."""

from __future__ import annotations

from maild.pipeline.spam import mta_verdict

MX = "mx.example.com"
RECEIVED = ("received", "from mail.customer.test by mx.example.com")


def verdict(*headers: tuple[str, str], domain: str = "customer.test"):
    return mta_verdict(list(headers), authserv_id=MX, domain=domain)


def test_the_flag_and_score_of_our_mta_count() -> None:
    found = verdict(
        ("x-spam-flag", "YES"),
        ("x-spam-status", "Yes, score=7.3 required=5.0 tests=BAYES_99"),
        RECEIVED,
    )
    assert (found.flag, found.score) == (True, 7.3)
    assert found.field("spam_flag") == ("yes",)


def test_the_status_alone_gives_flag_and_score() -> None:
    found = verdict(("x-spam-status", "No, score=-0.4 required=5.0"), RECEIVED)
    assert (found.flag, found.score) == (False, -0.4)


def test_spam_headers_forged_below_our_received_header_do_not_count() -> None:
    found = verdict(
        RECEIVED,
        ("x-spam-flag", "NO"),
        ("x-spam-score", "-100"),
        ("authentication-results", f"{MX}; dkim=pass header.d=customer.test"),
    )
    assert (found.flag, found.score, found.dkim) == (None, None, ())


def test_a_mail_without_received_header_has_no_verdict() -> None:
    assert verdict(("x-spam-flag", "YES")).flag is None


def test_only_the_topmost_authentication_results_of_our_authserv_id_counts() -> None:
    found = verdict(
        ("authentication-results", "other.example; dkim=pass header.d=customer.test"),
        (
            "authentication-results",
            f"{MX}; spf=fail smtp.mailfrom=bob@customer.test; dkim=fail header.d=customer.test;"
            " dmarc=fail header.from=customer.test",
        ),
        ("authentication-results", f"{MX}; dkim=pass header.d=customer.test"),
        RECEIVED,
    )
    assert (found.spf, found.dkim, found.dmarc) == (("fail",), ("fail",), ("fail",))


def test_results_for_another_domain_are_not_the_senders() -> None:
    found = verdict(
        ("authentication-results", f"{MX}; dkim=pass header.d=evil.test"),
        RECEIVED,
    )
    assert found.dkim == ()

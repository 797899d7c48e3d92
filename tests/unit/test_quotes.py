"""Unit tests for ``maild.pipeline.quotes`` on reply shapes built by hand."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from inscriptis import get_text

from maild.pipeline.quotes import REPLY_MARKER, cut_html_quote, visible_text

QUOTE = "> Hello, how can we help?\n>\n> ACME Support\n"


def html_text(html: str) -> str:
    """What the worker shows of an HTML body: quote cut, converted, whitespace squeezed."""
    return " ".join(get_text(cut_html_quote(html)).split())


# --- plain text: quote headers ---------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        # Gmail
        "On Mon, Mar 4, 2024 at 9:12 AM ACME Support <support@example.com> wrote:",
        # Gmail, wrapped by the client
        "On Mon, Mar 4, 2024 at 9:12 AM ACME Support Team of Example Incorporated <\n"
        "support@example.com> wrote:",
        # Apple Mail
        "On 4 Mar 2024, at 09:12, ACME Support <support@example.com> wrote:",
        # Thunderbird
        "On 04/03/2024 09:12, ACME Support wrote:",
        # German Thunderbird / Gmail
        "Am 04.03.2024 um 09:12 schrieb ACME Support <support@example.com>:",
        "Am 04.03.2024 09:12, schrieb ACME Support via Help Desk:",
        # Dutch Gmail and Apple Mail
        "Op ma 4 mrt 2024 om 09:12 schreef ACME Support <support@example.com>:",
        "Op 4 mrt. 2024 om 09:12 heeft ACME Support <support@example.com> het volgende\n"
        "geschreven:",
        # French, sender name containing "le "
        "Le lun. 4 mars 2024 à 09:12, Gabrielle Martin <gabrielle@example.fr> a écrit :",
        # Spanish, Italian, Portuguese, Polish, Swedish, Russian
        "El lun, 4 mar 2024 a las 9:12, ACME Support (<support@example.com>) escribió:",
        "Il giorno lun 4 mar 2024 alle ore 09:12 ACME Support <support@example.com> ha scritto:",
        "Em seg., 4 de mar. de 2024 às 09:12, ACME Support <support@example.com> escreveu:",
        "W dniu 4.03.2024 o 09:12, ACME Support pisze:",
        "Den 4 mars 2024 kl. 09:12 skrev ACME Support <support@example.com>:",
        "пн, 4 мар. 2024 г. в 09:12, ACME Support <support@example.com>:",
        # Outlook separators
        "-----Original Message-----\nFrom: ACME Support\nSent: Monday, March 4, 2024 9:12 AM",
        "---------- Forwarded message ---------\nFrom: ACME Support <support@example.com>",
        "-----Ursprüngliche Nachricht-----\nVon: ACME Support",
    ],
)
def test_quote_header_cut(header: str) -> None:
    body = f"It still fails after the update.\n\nRegards,\nAnna\n\n{header}\n\n{QUOTE}"
    assert visible_text(body) == "It still fails after the update.\n\nRegards,\nAnna"


def test_outlook_from_sent_block_en() -> None:
    body = (
        "Please close the ticket, thanks.\n"
        "\n"
        "From: ACME Support <support@example.com>\n"
        "Sent: Monday, March 4, 2024 9:12 AM\n"
        "To: Anna <anna@example.org>\n"
        "Subject: RE: [#123] Export fails\n"
        "\n"
        "Hello Anna,\n"
        "the fix is deployed.\n"
    )
    assert visible_text(body) == "Please close the ticket, thanks."


def test_outlook_from_sent_block_de_with_separator_line() -> None:
    body = (
        "Hallo,\n"
        "\n"
        "das Problem besteht weiterhin.\n"
        "\n"
        "Mit freundlichen Grüßen\n"
        "Max Mustermann\n"
        "________________________________\n"
        "Von: ACME Support <support@example.com>\n"
        "Gesendet: Montag, 4. März 2024 09:12\n"
        "An: Max Mustermann <max@example.de>\n"
        "Betreff: AW: [#123] Export\n"
        "\n"
        "Hallo Herr Mustermann,\n"
        "bitte versuchen Sie es erneut.\n"
    )
    assert visible_text(body) == (
        "Hallo,\n\ndas Problem besteht weiterhin.\n\nMit freundlichen Grüßen\nMax Mustermann"
    )


def test_outlook_bold_fields() -> None:
    body = "Done.\n\n*From:* ACME Support\n*Sent:* Monday, March 4, 2024\n*To:* Anna\n\nHi"
    assert visible_text(body) == "Done."


# --- plain text: signatures ------------------------------------------------------------------


@pytest.mark.parametrize(
    "signature",
    [
        "Sent from my iPhone",
        "Sent from my Samsung Galaxy S21 Ultra",
        "Sent from my phone, please excuse typos",
        "Get Outlook for Android<https://aka.ms/AAb9ysg>",
        "Von meinem iPhone gesendet",
        "Envoyé de mon iPad",
        "Verstuurd vanaf mijn iPhone",
        "Sendt fra min iPad",
        "-- \nAnna Example\nExample Org",
    ],
)
def test_signature_removed(signature: str) -> None:
    body = f"Yes, tomorrow works.\n\n{signature}\n\n{QUOTE}"
    assert visible_text(body) == "Yes, tomorrow works."


def test_sent_from_my_sentence_is_text() -> None:
    body = "Here is the log.\n\nSent from my desk, which is much easier than from my phone."
    assert visible_text(body) == body


def test_sign_off_and_list_after_steps_kept() -> None:
    body = (
        "Hi,\n"
        "\n"
        "the export still fails.\n"
        "\n"
        "Steps:\n"
        "- open the report\n"
        "- click Export\n"
        "  - choose CSV\n"
        "\n"
        "Thanks,\n"
        "Anna\n"
        "\n"
        "On Mon, 4 Mar 2024 at 09:12, ACME Support <support@example.com> wrote:\n" + QUOTE
    )
    assert visible_text(body) == body.split("\n\nOn Mon")[0]


# --- plain text: our marker, quote-only, bottom/inline posting -------------------------------


def test_reply_marker_quoted_by_gmail() -> None:
    body = (
        "Thanks, that worked!\n"
        "\n"
        "On Tue, 5 Mar 2024 at 10:00, ACME Support <support@example.com> wrote:\n"
        f"> {REPLY_MARKER}\n"
        ">\n"
        "> Your ticket #123 was updated.\n"
    )
    assert visible_text(body) == "Thanks, that worked!"


def test_reply_marker_unquoted() -> None:
    body = f"Answer above the line.\r\n\r\n{REPLY_MARKER}\r\n\r\nTicket #123 was updated.\r\n"
    assert visible_text(body) == "Answer above the line."


def test_reply_below_quoted_marker() -> None:
    body = (
        "On Tue, 5 Mar 2024 at 10:00, ACME Support <support@example.com> wrote:\n"
        f"> {REPLY_MARKER}\n"
        "> Your ticket #123 was updated.\n"
        "\n"
        "Thanks, that worked!\n"
    )
    assert visible_text(body) == "Thanks, that worked!"


def test_quote_only_keeps_full_text() -> None:
    body = "\nOn Mon, 4 Mar 2024 at 09:12, ACME Support <support@example.com> wrote:\n" + QUOTE
    assert visible_text(body) == body.strip()


def test_bottom_posted_reply() -> None:
    body = "On 04/03/2024 09:12, ACME Support wrote:\n" + QUOTE + "\nThat fixed it, thank you."
    assert visible_text(body) == "That fixed it, thank you."


def test_inline_answers_kept() -> None:
    body = (
        "See my answers below.\n"
        "\n"
        "On Mon, 4 Mar 2024 at 09:12, ACME Support <support@example.com> wrote:\n"
        "> Which version do you run?\n"
        "3.2.1\n"
        "> Does it fail every time?\n"
        "Yes.\n"
    )
    assert visible_text(body) == (
        "See my answers below.\n\n> Which version do you run?\n3.2.1\n"
        "> Does it fail every time?\nYes."
    )


@pytest.mark.parametrize(
    "prose",
    [
        "On the surface this looks fine.\n\nOn the other hand, the export fails.",
        "The data comes From: our database, not From: external sources.",
        "The notification was sent from my iPhone app to all users.",
        "Here are timestamps:\n\n2024-01-15 14:30:25\n15.01.2024 14:30\n\nJust examples.",
        "This is not a -- signature.\n\nBest regards,\nJohn",
        "Dear team,\n\nMy number is: +00 0000 000 000\n\nKind regards\nJohn",
        "Trip details:\nFrom: Berlin\nTo: Paris\n\nSee you there.",
        "Quota:\nData: 5 GB\nDo: nothing yet\n\nThanks",
        "On Monday I rewrote:\nthe whole parser.",
    ],
)
def test_prose_unchanged(prose: str) -> None:
    assert visible_text(prose) == prose


def test_indentation_and_line_endings() -> None:
    body = "Code:\r\n\r\n    x = 1\r\n    y = 2   \r\n\r\n> quoted\r\n"
    assert visible_text(body) == "Code:\n\n    x = 1\n    y = 2"


@settings(derandomize=True, max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab >-_:\n\r@<>OnwroteFm0123 ")), max_size=300))
def test_visible_text_never_raises(text: str) -> None:
    out = visible_text(text)
    assert isinstance(out, str)
    assert bool(out) == bool(text.strip())


# --- HTML ------------------------------------------------------------------------------------


def test_html_gmail_quote() -> None:
    html = (
        '<div dir="ltr">Works now.</div><br><div class="gmail_quote"><div class="gmail_attr">'
        "On Mon, Mar 4, 2024 at 9:12 AM Support &lt;support@example.com&gt; wrote:<br></div>"
        '<blockquote class="gmail_quote"><div>How can we help?</div></blockquote></div>'
    )
    assert html_text(html) == "Works now."


def test_html_outlook_divrplyfwdmsg_and_everything_after() -> None:
    html = (
        "<div>Please close it.</div><hr>"
        '<div id="divRplyFwdMsg"><b>From:</b> Support<br><b>Sent:</b> Monday</div>'
        "<div>Hello Anna, the fix is deployed.</div>"
    )
    assert html_text(html) == "Please close it."


def test_html_outlook_desktop_from_block() -> None:
    html = (
        "<p class=MsoNormal>Thanks!</p>"
        "<div style='border:none;border-top:solid #B5C4DF 1.0pt;padding:3.0pt 0cm 0cm 0cm'>"
        "<p class=MsoNormal><b>Von:</b> Support [mailto:support@example.com]<br>"
        "<b>Gesendet:</b> Montag, 4. März 2024 09:12<br><b>An:</b> Max<br>"
        "<b>Betreff:</b> AW: Export</p></div><p class=MsoNormal>Hallo Max</p>"
    )
    assert html_text(html) == "Thanks!"


def test_html_thunderbird_cite() -> None:
    html = (
        "<body>Fine, thanks.<br>"
        '<div class="moz-cite-prefix">On 04.03.2024 09:12, Support wrote:<br></div>'
        '<blockquote type="cite">How are you?</blockquote></body>'
    )
    assert html_text(html) == "Fine, thanks."


def test_html_apple_mail_cite_with_attribution() -> None:
    html = (
        "<body><div>Sounds good.</div><div><br><div>On 4 Mar 2024, at 09:12, Support "
        "&lt;support@example.com&gt; wrote:</div><br>"
        '<blockquote type="cite"><div>Shall we call tomorrow?</div></blockquote></div></body>'
    )
    assert html_text(html) == "Sounds good."


def test_html_yahoo_quoted() -> None:
    html = (
        "<div>Yes.</div>"
        '<div id="yahoo_quoted_123" class="yahoo_quoted"><div>On Monday, Support wrote:</div>'
        "<div>Question?</div></div>"
    )
    assert html_text(html) == "Yes."


def test_html_trailing_plain_blockquote_with_attribution() -> None:
    html = (
        "<p>Hi. I am fine.<br><br>04.03.2024, 09:12, &quot;Support&quot; "
        "&lt;support@example.com&gt;:</p><blockquote>How are you?</blockquote>"
    )
    assert html_text(html) == "Hi. I am fine."


def test_html_reply_marker_without_quote_markup() -> None:
    html = (
        "<div>Thanks, that worked!</div><div>On Tue, 5 Mar 2024 at 10:00, Support "
        f"&lt;support@example.com&gt; wrote:</div><div>{REPLY_MARKER}</div>"
        "<div>Your ticket #123 was updated.</div>"
    )
    assert html_text(html) == "Thanks, that worked!"


def test_html_blockquote_in_the_middle_is_kept() -> None:
    html = "<p>As the poet says:</p><blockquote>Less is more.</blockquote><p>I agree.</p>"
    assert html_text(html) == "As the poet says: Less is more. I agree."


@pytest.mark.parametrize(
    "html",
    ["", "<", "<div class='gmail_quote'>", "</blockquote></div>", "<p>x<blockquote type=cite>"],
)
def test_html_malformed_never_raises(html: str) -> None:
    assert isinstance(cut_html_quote(html), str)


@settings(derandomize=True, max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from([*"<>/=\"' abp\n", "div", "blockquote", "hr", "type=cite", "id=x"]),
        max_size=60,
    ).map("".join)
)
def test_cut_html_quote_never_raises(html: str) -> None:
    out = cut_html_quote(html)
    assert isinstance(out, str)
    assert len(out) <= len(html)


def test_plain_text_html_roundtrip_keeps_content() -> None:
    html = "<p>One</p><p>Two</p>"
    assert re.sub(r"\s", "", get_text(cut_html_quote(html))) == "OneTwo"

"""Quote and signature stripping for inbound replies.

A customer's reply usually carries the whole conversation below (or, for bottom-posters, above)
the few lines they actually typed, plus a signature.  Before a reply is appended to a ticket we
keep only that new text:

* :func:`visible_text` takes the plain-text body of a reply and returns what the person wrote;
* :func:`cut_html_quote` takes an HTML body and removes the quoted history, so that the worker
  can convert what is left to text (with ``inscriptis``).

Plain text is handled in layers, cheapest and most certain first:

1. everything from our own :data:`REPLY_MARKER` line on is dropped (unless nothing is written
   above it: then the reply is looked for below the quoted notification);
2. a reply that *starts* with a quote header ("On ... wrote:", a forwarded-message banner, an
   Outlook ``From:``/``Sent:`` block) followed by the quote is a bottom-post or a bare forward:
   the header and the quote under it are skipped and the text after them is used;
3. the maintained ``mail-parser-reply`` library finds the first reply header it knows (it covers
   many languages); our own line classifier finds what the library misses (Dutch/French/Nordic/
   Russian/Gmail-localised headers split over several lines, Outlook header blocks in more
   languages, ``-----Original Message-----`` variants, ``-- `` signature delimiters, "Sent from
   my iPhone" lines) and overrules the library where it is known to be wrong (the header of an
   inline reply, prose such as "From: Berlin / To: Paris"); the text is cut at the earliest
   remaining point;
4. trailing ``>``-quoted lines, delimiter lines and left-over header fragments are trimmed.

If nothing is left (a reply that is only a quote), the whole text is returned, stripped.  Sign-off
lines such as "Thanks," or "Best regards," and whatever follows them are kept on purpose: they
are often followed by real content, and losing a customer's words is worse than keeping a name.

Both public functions never raise: on any internal error they fall back to returning their input
(stripped for :func:`visible_text`).
"""

from __future__ import annotations

from maild.pipeline.quotes.html import cut_html_quote
from maild.pipeline.quotes.patterns import LIBRARY_LANGUAGES, REPLY_MARKER
from maild.pipeline.quotes.text import visible_text

__all__ = ["LIBRARY_LANGUAGES", "REPLY_MARKER", "cut_html_quote", "visible_text"]

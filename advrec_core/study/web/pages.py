"""The participant's three HTML pages: the consent page of an open link, the personal page
(its content drawn by `static/participant.js` from the JSON views), and a one-line message.
No inline script or style (the Content-Security-Policy allows only this server's files); every
value written into a page is HTML-escaped."""
from __future__ import annotations

import html
import json

from ..design import StudyConfig

LAYOUT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Image study</title>
<link rel="stylesheet" href="/study/static/participant.css">
<script src="/study/static/participant.js" defer></script>
</head><body data-page="{page}" data-args="{args}"><main>
<h1>Image study</h1>
{body}
</main></body></html>"""


def _page(page: str, body: str, args: dict | None = None) -> str:
    return LAYOUT.format(page=page, body=body, args=html.escape(json.dumps(args or {})))


def consent_text(cfg: StudyConfig) -> str:
    """What a participant reads before agreeing (HTML)."""
    timed = (f"<li>The images disappear after {cfg.exposure_ms} ms: look carefully.</li>"
             if cfg.presentation == "timed" else "")
    minutes = max(1, round(cfg.trials_per_annotator * 5 / 60))
    return f"""
<p>You will see <b>{cfg.trials_per_annotator} pairs of product photos</b>, one pair at a time.
In some pairs one photo was changed by a computer in a way that may be hard to see. Answer as
well as you can; when unsure, guess. It takes about {minutes} minute{'s' if minutes > 1 else ''}.</p>
<ul>
<li>Answer with the buttons or the keyboard: <b>&larr;</b> / <b>&rarr;</b> for "which image",
<b>S</b> / <b>D</b> for same / different, <b>U</b> to undo your last answer.</li>
{timed}
<li>We store your answers, how long each took as measured in your browser, and a random
participant id; nothing else. You can stop at any time: your personal link (shown once you
agree) brings you back where you stopped.</li>
</ul>"""


CONSENT_FORM = """<form id="consent"><label><input type="checkbox" id="agree">
I have read the above and agree to take part.</label>
<p><button type="submit" id="start" disabled>Start</button></p></form>
<p id="message" class="message" role="alert"></p>"""


def consent_page(cfg: StudyConfig, query: dict[str, str]) -> str:
    """The open link's page: the study described, the consent box and Start."""
    return _page("open", consent_text(cfg) + CONSENT_FORM, {"query": query})


def invite_page(cfg: StudyConfig) -> str:
    """A personal link made ahead (an invitation), before its holder consented."""
    return _page("invite", consent_text(cfg) + CONSENT_FORM)


def personal_page() -> str:
    """The personal link's page: an empty frame the script fills from the view."""
    body = """<div id="app"><p class="muted">Loading...</p></div>
<noscript><p class="message">This study needs JavaScript to show the images at the right
time.</p></noscript>"""
    return _page("personal", body)


def message_page(text: str) -> str:
    """One line for a link that leads nowhere (closed study, refused id, bad link)."""
    return _page("message", f'<p class="message" role="alert">{html.escape(text)}</p>')

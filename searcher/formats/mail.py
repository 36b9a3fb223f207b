"""E-mail messages (.eml, as mail programs save or export one message): its subject as the title, then From, To and
Date lines, then its text - the plain-text part, else the HTML part's visible text (formats/html.py) - and the names
of its attachments (their contents are not read).

Parsed with the standard library's `email` package (its modern policy: headers decoded, quoted-printable and base64
bodies undone, charsets applied). A hit's line is a line of that text, which `searcher show` prints.
"""

from __future__ import annotations

HEADERS = ("From", "To", "Cc", "Date")


def read_eml(data: bytes) -> tuple[str, tuple[tuple[int, int, str], ...], str]:
    """(text, (), subject) of an .eml file: its headers worth searching, its body's text, its attachments' names."""
    from email import policy
    from email.parser import BytesParser

    from .document import UnreadableFileError
    from .html import html_to_text

    message = BytesParser(policy=policy.default).parsebytes(data)
    if not any(message.get(h) for h in ("From", "Subject", "Date", "Message-ID")):
        raise UnreadableFileError("not an e-mail message (no From, Subject, Date or Message-ID header)")
    subject = " ".join(str(message.get("Subject", "")).split())
    lines = [f"{h}: {' '.join(str(message[h]).split())}" for h in HEADERS if message.get(h)]
    body = message.get_body(preferencelist=("plain", "html"))
    text = ""
    if body is not None:
        try:
            content = body.get_content()
        except (LookupError, UnicodeError):  # a charset Python does not know, or bytes not in the one named
            payload = body.get_payload(decode=True)
            content = payload.decode("utf-8", errors="replace") if isinstance(payload, bytes) else ""
        text = html_to_text(content)[1] if body.get_content_type() == "text/html" else content
    attachments = [name for part in message.iter_attachments() if (name := part.get_filename())]
    parts = ["\n".join(lines), text.strip(), "Attachments: " + ", ".join(attachments) if attachments else ""]
    return "\n\n".join(p for p in parts if p), (), subject

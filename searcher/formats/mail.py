"""E-mail messages (.eml, as mail programs save or export one message): its subject as the title, then From, To and
Date lines, then its text - the plain-text part, else the HTML part's visible text (formats/html.py) - and the names
of its attachments (their contents are not read).

Mailboxes (mbox: `.mbox`, and a file without a suffix that starts as one does - Thunderbird's `Inbox`, the `mbox`
inside Apple Mail's export): each message a document of its own, read as an .eml is, so that a search lists the
messages that match, not one hit for the whole mailbox. A hit points at its line in the file: each line of a
message's text that stands in the file as written (headers, a plain-text body) is anchored at its own line, and the
rest (a base64 or HTML body, decoded) at the last line found before it, the message's `From ` line at worst.

Parsed with the standard library's `email` package (its modern policy: headers decoded, quoted-printable and base64
bodies undone, charsets applied). A hit's line in an .eml is a line of that text, which `searcher show` prints.
"""

from __future__ import annotations

import re

HEADERS = ("From", "To", "Cc", "Date")
# The line that starts each message of an mbox, as Python's mailbox module splits them ("From " at a line's start;
# a body line that starts so is written ">From "). The first must look like one: "From " a sender, a weekday.
FROM_LINE = re.compile(rb"^From ", re.M)
MBOX_START = re.compile(rb"From \S* +(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) ")
UNQUOTE = re.compile(rb"^>(>*From )", re.M)  # mboxrd: a body's ">From " was written for its "From "


def is_mbox(head: bytes) -> bool:
    """Whether a file's first bytes start an mbox mailbox."""
    return MBOX_START.match(head) is not None


def read_mbox(data: bytes) -> list[tuple[str, str, tuple[tuple[int, int], ...]]]:
    """[(text, subject, ((text offset, file line), ...))] of each message of an mbox mailbox (see the module
    docstring); messages without any mail header are left out."""
    from .document import UnreadableFileError

    if not is_mbox(data[:200]):
        raise UnreadableFileError("not an mbox mailbox (it does not start with a 'From sender weekday' line)")
    starts = [m.start() for m in FROM_LINE.finditer(data)]
    out = []
    line = 1
    for i, start in enumerate(starts):
        line += data.count(b"\n", starts[i - 1] if i else 0, start)
        end = starts[i + 1] if i + 1 < len(starts) else len(data)
        after = data.find(b"\n", start, end)  # the message begins on the line after its From line
        raw = UNQUOTE.sub(rb"\1", data[after + 1 : end]) if after >= 0 else b""
        message = _parse(raw)
        if message is not None:
            text, subject = _message_text(message)
            out.append((text, subject, _anchors(text, raw, line)))
    return out


def _anchors(text: str, raw: bytes, from_line: int, window: int = 400) -> tuple[tuple[int, int], ...]:
    """(offset in `text`, line of the mailbox) for each line of a message's text found, in order, among the lines
    of its raw form (`raw` begins on the line after the From line, `from_line`); a line looked for no further than
    `window` lines past the last one found."""
    found = [(0, from_line)]
    lines = [" ".join(x.split()) for x in raw.decode("utf-8", errors="replace").split("\n")]
    j = 0
    offset = 0
    for part in text.split("\n"):
        want = " ".join(part.split())
        if want:
            for r in range(j, min(j + window, len(lines))):
                if lines[r] == want:
                    if found[-1][0] == offset:  # the text's first line is in the file: the From line's anchor goes
                        found.pop()
                    found.append((offset, from_line + 1 + r))
                    j = r + 1
                    break
        offset += len(part) + 1
    return tuple(found)


def read_eml(data: bytes) -> tuple[str, tuple[tuple[int, int, str], ...], str]:
    """(text, (), subject) of an .eml file: its headers worth searching, its body's text, its attachments' names."""
    from .document import UnreadableFileError

    message = _parse(data)
    if message is None:
        raise UnreadableFileError("not an e-mail message (no From, Subject, Date or Message-ID header)")
    text, subject = _message_text(message)
    return text, (), subject


def _parse(data: bytes):
    """The message in `data`, or None when it has none of the headers every mail has."""
    from email import policy
    from email.parser import BytesParser

    message = BytesParser(policy=policy.default).parsebytes(data)
    return message if any(message.get(h) for h in ("From", "Subject", "Date", "Message-ID")) else None


def _message_text(message) -> tuple[str, str]:
    """(text, subject) of a parsed message: its headers worth searching, its body's text, its attachments' names."""
    from .html import html_to_text

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
    return "\n\n".join(p for p in parts if p), subject

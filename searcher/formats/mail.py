"""E-mail messages (.eml, as mail programs save or export one message): its subject as the title, then its text - the
plain-text part, else the HTML part's visible text (formats/html.py) - then From, To, Cc and Date lines and the names
of its attachments (their contents are not read). The text comes first: a hit found by meaning alone shows its
chunk's head, which is then what the message says, not who sent it (and the model reads the words before the
addresses).

Mailboxes (mbox: `.mbox`, and a file without a suffix that starts as one does - Thunderbird's `Inbox`, the `mbox`
inside Apple Mail's export): each message a document of its own, read as an .eml is, so that a search lists the
messages that match, not one hit for the whole mailbox. A hit points at its line in the file: each line of a
message's text that stands in the file as written (a plain-text body, the headers) is anchored at its own line, and
the rest (a base64 or HTML body, decoded) at the last line found before it, the body's first line at worst.

Parsed with the standard library's `email` package (its modern policy: headers decoded, quoted-printable and base64
bodies undone, charsets applied). A hit's line in an .eml is a line of that text, which `searcher show` prints.
"""

from __future__ import annotations

import bisect
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


def _anchors(text: str, raw: bytes, from_line: int) -> tuple[tuple[int, int], ...]:
    """(offset in `text`, line of the mailbox) for each line of a message's text found among the lines of its raw
    form (`raw` begins on the line after the From line, `from_line`): the body's lines in order, the header lines
    that follow them in the text wherever they stand. The text's head is anchored at the body's first line in the
    file (the line after the headers' blank line), where a decoded body begins."""
    lines = [" ".join(x.split()) for x in raw.decode("utf-8", errors="replace").split("\n")]
    where: dict[str, list[int]] = {}
    for r, line in enumerate(lines):
        if line:
            where.setdefault(line, []).append(r)
    blank = lines.index("") if "" in lines else len(lines) - 1
    found = [(0, from_line + 1 + min(blank + 1, len(lines) - 1))]
    j = blank + 1  # the body's lines are looked for in order from there
    offset = 0
    for part in text.split("\n"):
        rows = where.get(" ".join(part.split()), [])
        k = bisect.bisect_left(rows, j)
        if rows:
            if k < len(rows):  # the body's next line
                r = j = rows[k]
                j += 1
            else:  # a header line, above the body
                r = rows[0]
            if found[-1][0] == offset:  # the text's first line stands in the file itself
                found.pop()
            found.append((offset, from_line + 1 + r))
        offset += len(part) + 1
    return tuple(found)


def read_eml(data: bytes) -> tuple[str, tuple[tuple[int, int, str], ...], str]:
    """(text, (), subject) of an .eml file: its body's text, its headers worth searching, its attachments' names."""
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
    """(text, subject) of a parsed message: its body's text, its headers worth searching, its attachments' names."""
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
    parts = [text.strip(), "\n".join(lines), "Attachments: " + ", ".join(attachments) if attachments else ""]
    return "\n\n".join(p for p in parts if p), subject

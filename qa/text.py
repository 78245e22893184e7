"""Text that came from outside (documents, file names, questions) made safe to print or to quote to a model.

Documents and file names may hold terminal escape sequences (set the window
title, clear the screen, forge a hyperlink) or look-alike markup that would
close the quoted block of an LLM prompt. Each function here replaces a
dangerous character with one visible character, so the text keeps its length
and every offset into it (a citation's marks) stays valid.
"""

from __future__ import annotations

import re
import unicodedata

# C0 controls but tab and newline, DEL, and the C1 controls (CSI, OSC... in 8-bit form).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
# Characters that read as < or > to a model: ASCII, full-width, small, and the CJK and math angle brackets.
_OPENING = "<＜﹤〈⟨〈"
_CLOSING = ">＞﹥〉⟩〉"
_ANGLE = re.compile(f"[{_OPENING}{_CLOSING}]")


def _picture(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    if code < 0x20:
        return chr(0x2400 + code)  # ␀ … ␟: the character's own control picture
    if code == 0x7F:
        return "\u2421"  # ␡
    return "\ufffd"


def neutralise(text: str) -> str:
    """Control characters as visible pictures (ESC as ␛), unpaired surrogates as �; same length, same offsets.

    Tab and newline stay: they lay text out and command nothing.
    """
    return _SURROGATE.sub("\ufffd", _CONTROL.sub(_picture, text))


def one_line(text: str) -> str:
    """``neutralise``, and line breaks and tabs as pictures too: for a file name inside a one-line message."""
    return neutralise(text).translate(_LAYOUT)


_LAYOUT = {ord("\n"): "\u2424", ord("\r"): "\u240d", ord("\t"): "\u2409"}  # ␤ ␍ ␉


def fence(text: str) -> str:
    """Text to put inside a prompt's quoted-data block: no character of it can open or close a tag.

    Every angle bracket and look-alike becomes ‹ or ›, so ``< /passages >``,
    ``＜/passages＞`` and ``</pass\u200bages>`` are all plain text; the length is kept.
    """
    return _ANGLE.sub(lambda m: "‹" if m.group(0) in _OPENING else "›", neutralise(text))


def attribute(text: str) -> str:
    """A fenced value that can also stand between double quotes in a prompt's tag."""
    return fence(text).replace('"', "'")


def unpaired_surrogate(text: str) -> int | None:
    """The offset of the first lone UTF-16 surrogate (invalid UTF-8 on a command line arrives as one), else None."""
    match = _SURROGATE.search(text)
    return match.start() if match else None


def has_words(text: str) -> bool:
    """Whether the text has a letter or a digit to search for (punctuation, symbols and emoji alone have none)."""
    return any(unicodedata.category(char)[0] in "LN" for char in text)

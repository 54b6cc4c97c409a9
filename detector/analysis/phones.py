"""Chinese phone numbers in OCR text (the contact line of small illegal ads).

`find_phones` returns the numbers a text holds, normalised:

* mobile: ``1[3-9]`` + 9 digits → ``"13812345678"`` (a ``+86``/``0086``/``86`` prefix is dropped);
* landline with area code: ``010``/``02x`` + 8 digits, ``0xxx`` + 7 or 8 digits, the local
  number starting with 2-9 → ``"010-62345678"``, ``"0755-8765432"``;
* service numbers: ``400``/``800`` + 7 digits → ``"4001234567"``.

It is tolerant of what posters and OCR do to digits: spaces, dashes, dots and
brackets between digit groups, full-width digits and punctuation, and the usual
confusions (``O``/``o``→0, ``l``/``I``/``|``→1, ``S``→5, ``B``→8, ``Z``→2) — but
only inside a digit group that holds at least as many real digits as confusable
letters, and never at the edge of a group that touches a Latin word ("Tel",
"BOSS"). It never invents: digit groups are atomic (a 12-digit run is not cut
to 11), a number made of separated groups must be cleanly delimited (a group
hanging on with the same kind of separator voids it: ``138 1234 5678 9``), and
every number is checked against the national numbering structure, which dates,
prices and ids fail.
"""

from __future__ import annotations

import re
import unicodedata

#: letters OCR returns for digits, and the digit each stands for
_CONFUSABLE = {"O": "0", "o": "0", "l": "1", "I": "1", "|": "1", "S": "5", "B": "8", "Z": "2"}
_SEP_CHARS = " \t-‐‑‒–—―−_.·•()+"
_CANDIDATE = re.compile("[0-9" + re.escape("".join(_CONFUSABLE) + _SEP_CHARS) + "]+")
_GROUP = re.compile("[0-9" + re.escape("".join(_CONFUSABLE)) + "]+")
#: most groups a number is split into ("+86 0755 8765 4321" is 4; OCR may add a space)
_MAX_GROUPS = 6
#: most confusable letters accepted in one number
_MAX_CONFUSED = 3
_COUNTRY = ("0086", "86")
#: the only 4-digit area codes whose third digit is 0 ("0400-..." is a misread 400 number, not a landline)
_AREA_X0X = frozenset({"0701", "0901", "0902", "0903", "0906", "0908", "0909"})


def find_phones(text: str) -> list[str]:
    """The phone numbers in `text`, normalised, in order of appearance, without duplicates."""
    text = unicodedata.normalize("NFKC", text or "")
    out: list[str] = []
    for m in _CANDIDATE.finditer(text):
        before = text[m.start() - 1] if m.start() > 0 else ""
        after = text[m.end()] if m.end() < len(text) else ""
        for number in _numbers(m.group(), before, after):
            if number not in out:
                out.append(number)
    return out


def normalise_phone(digits: str) -> str | None:
    """`digits` (digits only) as a normalised number, or None when it is not a valid one."""
    return _classify(digits, (len(digits),))


# ---------------------------------------------------------------- internals


def _numbers(segment: str, before: str, after: str) -> list[str]:
    """The numbers in one run of digit-like characters and separators."""
    groups, seps, confused, plus = _groups(segment, before, after)
    if not groups:
        return []
    out: list[tuple[int, int, str]] = []  # (first group, last group, number)
    i = 0
    while i < len(groups):
        found = None
        for j in range(min(len(groups), i + _MAX_GROUPS) - 1, i - 1, -1):  # longest first
            if any(seps[k] is None for k in range(i + 1, j + 1)):
                continue  # a break inside the span
            if sum(confused[i : j + 1]) > _MAX_CONFUSED:
                continue
            number = _span_number(groups[i : j + 1], plus[i])
            if number is not None:
                found = (i, j, number)
                break
        if found is None:
            i += 1
            continue
        out.append(found)
        i = found[1] + 1
    # a number must be cleanly delimited: a neighbouring group joined by the same kind of separator
    # as the number's own (and not itself part of a number) means the digit run is longer than the number
    changed = True
    while changed:
        changed = False
        covered = {k for a, b, _ in out for k in range(a, b + 1)}
        for span in list(out):
            a, b, _ = span
            kinds = {_kind(seps[k]) for k in range(a + 1, b + 1)}
            left = a > 0 and seps[a] is not None and _kind(seps[a]) in kinds and (a - 1) not in covered
            right = b + 1 < len(groups) and seps[b + 1] is not None and _kind(seps[b + 1]) in kinds
            right = right and (b + 1) not in covered
            if left or right:
                out.remove(span)
                changed = True
    return [n for _, _, n in out]


def _groups(segment: str, before: str, after: str) -> tuple[list[str], list[str | None], list[int], list[bool]]:
    """Digit groups of a segment: digits, separator before each (None: a break), confusables, '+' before.

    Confusable letters become digits only inside a group with at least as many
    real digits; at an edge touching a Latin letter outside the segment they are
    dropped ("Tel13812345678" → "13812345678"). A group that is not digits (a
    word such as "BOSS") breaks the run.
    """
    groups: list[str] = []
    seps: list[str | None] = []
    confused: list[int] = []
    plus: list[bool] = []  # the group follows a "+" (a country code)
    prev_end: int | None = None  # end of the previous digit group in `segment`
    matches = list(_GROUP.finditer(segment))
    letters = "".join(_CONFUSABLE)
    for n, m in enumerate(matches):
        raw = m.group()
        if n == 0 and m.start() == 0 and _is_latin(before):
            raw = raw.lstrip(letters)
        if n == len(matches) - 1 and m.end() == len(segment) and _is_latin(after):
            raw = raw.rstrip(letters)
        digits = _digits(raw)
        if digits is None:
            prev_end = None
            continue
        seps.append(None if prev_end is None else segment[prev_end : m.start()])
        if prev_end is None:
            plus.append("+" in segment[max(0, m.start() - 2) : m.start()])
        else:
            plus.append(False)
        groups.append(digits)
        confused.append(sum(c in _CONFUSABLE for c in raw))
        prev_end = m.end()
    return groups, seps, confused, plus


def _digits(raw: str) -> str | None:
    """A group's digits, or None when it is not a digit group (too many confusable letters)."""
    if not raw:
        return None
    real = sum(c.isdigit() for c in raw)
    if real == 0 or real < len(raw) - real:
        return None
    return "".join(_CONFUSABLE.get(c, c) for c in raw)


def _is_latin(c: str) -> bool:
    return bool(c) and c.isascii() and c.isalpha()


def _kind(sep: str | None) -> str:
    """The kind of a separator: how it joins groups."""
    if sep is None:
        return "break"
    s = sep.strip()
    if not s:
        return "space"
    if "(" in s or ")" in s:
        return "bracket"
    if "+" in s:
        return "plus"
    if "." in s or "·" in s or "•" in s:
        return "dot"
    return "dash"


def _span_number(groups: list[str], plus: bool) -> str | None:
    """The number that these consecutive groups spell, or None."""
    digits = "".join(groups)
    sizes = tuple(len(g) for g in groups)
    number = _classify(digits, sizes)
    if number is not None:
        return number
    # country code: "+86 138...", "0086-138...", "86 755 8765 4321", "8613812345678"
    for cc in _COUNTRY:
        if not digits.startswith(cc):
            continue
        rest = digits[len(cc) :]
        separate = len(groups) > 1 and groups[0] == cc
        if rest[:1] == "1" and len(rest) == 11 and (separate or plus):
            number = _classify(rest, (11,))
            if number is not None:
                return number
        if separate and rest[:1] not in ("", "0"):  # "86 10 ..." / "86 755 ...": area code without 0
            return _classify("0" + rest, (len(groups[1]) + 1, *sizes[2:]))
    return None


def _classify(d: str, sizes: tuple[int, ...]) -> str | None:
    """Validates digits against the numbering plan; `sizes` are the printed group lengths."""
    if not d.isdigit():
        return None
    if len(d) == 11 and d[0] == "1" and d[1] in "3456789":
        return d
    if len(d) == 10 and d[:3] in ("400", "800"):
        return d
    if d[0] == "0" and d[1:2] not in ("", "0"):
        if d[1] in "12":
            if d[:3] not in ("010", "020", "021", "022", "023", "024", "025", "027", "028", "029"):
                return None
            area = 3
            ok = len(d) == 11
        else:
            area = 4
            ok = len(d) in (11, 12) and (d[2] != "0" or d[:4] in _AREA_X0X)
        if not ok or d[area] in "01":
            return None
        if len(sizes) > 1 and sizes[0] < area:  # "075 58765432": the grouping contradicts the area code
            return None
        if len(sizes) > 1 and sizes[0] > area and sizes[0] != len(d):
            # "07558 765432": a group straddles the area code and the local number
            return None
        return f"{d[:area]}-{d[area:]}"
    return None

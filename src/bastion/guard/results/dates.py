"""Dates written the ways people and tools write them, normalised so that they compare.

An injection writes "from the 1st to the 5th of May 2024"; the call it asks for carries
`start_day: "2024-05-01"`. Both become `2024-05-01` (and `--05-01`, the month and day, which
is what a date written without its year is compared by). Handled: ISO dates (and ISO date
times), `1 May 2024`, `the 1st of May`, `May 1st, 2024`, ranges and lists sharing a month
(`1st to the 5th of May 2024`, `May 1-5`, `May 1st and 3rd`), `01/05/2024` (both readings
when the day and month could be either). Not handled: relative dates ("next Friday"), which
name no fixed day a call could be compared with.

A library such as `dateparser` finds one date per phrase and reads "1st to the 5th of May"
as a single (wrong) date; these few shapes are what instructions and arguments use.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date

from bastion.guard.results.prefilter import Prefiltered
from bastion.guard.screened import fold

_MONTHS = {
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "oct": 10,
    "nov": 11, "dec": 12,
}  # fmt: skip
_MONTH = (r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sept?(?:ember)?|"
          r"oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?")  # fmt: skip
_DAY = r"(?:the\s+)?(?:0?[1-9]|[12]\d|3[01])(?:st|nd|rd|th)?(?![\d:])"
_JOIN = r"\s*(?:-|\u2013|\u2014|to|till|until|through|thru|and|or|,)\s*"
_YEAR = r"(?:19|20)\d{2}"
_DAY_FIRST = re.compile(
    rf"(?<![\w/.-])(?P<days>{_DAY}(?:{_JOIN}{_DAY})*)\s+(?:of\s+)?(?P<month>{_MONTH})(?![a-z])(?:,?\s+(?P<year>{_YEAR}))?(?!\d)",
    re.IGNORECASE,
)
_MONTH_FIRST = re.compile(
    rf"(?<![a-z])(?P<month>{_MONTH})\s+(?P<days>{_DAY}(?:{_JOIN}(?:{_MONTH}\s+)?{_DAY})*)(?![\d:])(?:,?\s+(?P<year>{_YEAR}))?(?!\d)",
    re.IGNORECASE,
)
_ISO = Prefiltered(
    re.compile(r"(?<!\d)(?P<year>(?:19|20)\d{2})[-/.](?P<month>\d{1,2})[-/.](?P<day>\d{1,2})(?!\d)"),
    r"(?:19|20)\p{Nd}{2}[-/.]\p{Nd}",
)
_NUMERIC = Prefiltered(
    re.compile(r"(?<![\d/.-])(?P<a>\d{1,2})[/.](?P<b>\d{1,2})[/.](?P<year>(?:19|20)\d{2})(?!\d)"),
    r"\p{Nd}[/.]\p{Nd}{1,2}[/.](?:19|20)\p{Nd}{2}",
)
_DAY_NUMBER = re.compile(r"(\d{1,2})(?:st|nd|rd|th)?", re.IGNORECASE)
_MONTH_WORD = re.compile(_MONTH, re.IGNORECASE)
_ASCII_DIGIT = re.compile(r"[0-9]")


def dates_in(text: str) -> set[str]:
    """Every date in `text`: `YYYY-MM-DD` when its year is written, `--MM-DD` always."""
    found: set[str] = set()
    for year, month, day in _dates(text):
        try:
            date(year or 2000, month, day)  # 2000 is a leap year: 29 February stands
        except ValueError:
            continue
        found.add(f"--{month:02d}-{day:02d}")
        if year:
            found.add(f"{year:04d}-{month:02d}-{day:02d}")
    return found


_MONTH_LITERALS = tuple(_MONTHS)
"""Every spelling of `_MONTH` begins with one of these (case folded as `screened.fold` folds)."""


def _dates(text: str) -> Iterator[tuple[int, int, int]]:
    if _ASCII_DIGIT.search(text) is None:
        return  # every shape below holds an ASCII digit: a year's `19`/`20`, or `_DAY`'s first digit
    yield from _numeric_dates(text)
    screen = fold(text)
    if any(map(screen.__contains__, _MONTH_LITERALS)):
        yield from _worded_dates(text)


def _numeric_dates(text: str) -> Iterator[tuple[int, int, int]]:
    for match in _ISO.finditer(text):
        yield int(match["year"]), int(match["month"]), int(match["day"])
    for match in _NUMERIC.finditer(text):
        a, b, year = int(match["a"]), int(match["b"]), int(match["year"])
        yield year, b, a  # 01/05/2024 as day/month
        yield year, a, b  # and as month/day


def _worded_dates(text: str) -> Iterator[tuple[int, int, int]]:
    for match in _DAY_FIRST.finditer(text):
        year = int(match["year"]) if match["year"] else 0
        month = _month(match["month"])
        for day in _DAY_NUMBER.findall(match["days"]):
            yield year, month, int(day)
    for match in _MONTH_FIRST.finditer(text):
        year = int(match["year"]) if match["year"] else 0
        month = _month(match["month"])
        at = 0
        days = match["days"]
        for item in _DAY_NUMBER.finditer(days):
            named = list(_MONTH_WORD.finditer(days, at, item.start()))
            if named:  # "May 30 to June 2": a later item names its own month
                month = _month(named[-1][0])
            at = item.end()
            yield year, month, int(item[1])


def _month(word: str) -> int:
    # folded, not lower-cased: `_MONTH` matches "\u017fept" (a long s) case-insensitively as "sept"
    return _MONTHS[fold(word)[:3]]

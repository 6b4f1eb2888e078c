"""`argument_objects` skips a string without a digit: no date or amount is written without one; and
`dates_in` skips the worded shapes in a text naming no month."""

from __future__ import annotations

import random

import pytest

from bastion.guard.results import dates, requests
from bastion.guard.results.dates import dates_in

WORDS = [
    "the", "first", "of", "May", "june", "Sept.", "December", "to", "and", "-", ",", "$", "€", "£", "usd", "eur",
    "dollars", "euros", "bucks", "st", "nd", "th", "twenty", "five", "thousand", "2024", "1st", "5", "12.50",
    "\u0661\u0662", "/", ".", "3rd", "31",
]  # fmt: skip


def _texts() -> list[str]:
    generator = random.Random(17)
    return [" ".join(generator.choice(WORDS) for _ in range(generator.randint(1, 10))) for _ in range(2000)]


def _objects_unscreened(text: str) -> set[str]:
    """What `argument_objects` found in one string before the screen."""
    found = set(dates_in(text))
    found.update(f"amount:{amount}" for amount in requests._amounts(text))
    number = requests._number(text.strip())
    if number is not None:
        found.add(f"amount:{number}")
    return found


@pytest.mark.parametrize("text", ["the first of May", "five dollars", "$ and €", "June the fifth, twenty twenty"])
def test_text_without_a_digit_names_no_object(text: str) -> None:
    assert _objects_unscreened(text) == set()
    assert requests.argument_objects({"text": text}) == set()


def test_the_screen_finds_what_the_full_search_finds() -> None:
    for text in _texts():
        assert requests.argument_objects({"text": text}) == _objects_unscreened(text), text


def _dates_unscreened(text: str) -> list[tuple[int, int, int]]:
    """`dates._dates` before its screens (an ASCII digit; a month's first three letters)."""
    return [*dates._numeric_dates(text), *dates._worded_dates(text)]


DATE_TEXTS = [
    "1 May 2024", "the 1st of MAY", "may 1st, 2024", "\u017fept 3", "SEP 3", "\u0661\u0662/\u0660\u0665/2024",
    "2024-05-01", "01/05/2024", "June 5th to the 7th", "Dec. 31", "\u0661 May", "Oct\u0131 4", "no date here",
]  # fmt: skip


@pytest.mark.parametrize("text", DATE_TEXTS)
def test_the_date_screens_find_what_the_full_search_finds(text: str) -> None:
    assert list(dates._dates(text)) == _dates_unscreened(text)


def test_the_date_screens_find_what_the_full_search_finds_on_generated_text() -> None:
    generator = random.Random(29)
    words = [*WORDS, "\u017fep", "JAN", "\u212aov", "o\u0441t", "\u0661", "19", "20", "x"]
    for _ in range(3000):
        text = generator.choice([" ", "", "/", "-"]).join(
            generator.choice(words) for _ in range(generator.randint(1, 8))
        )
        assert list(dates._dates(text)) == _dates_unscreened(text), text


def test_a_month_spelled_with_a_long_s_is_read_not_raised_on() -> None:
    # `_MONTH` matches it case-insensitively; the month's name was looked up lower-cased ("\u017fep"): a KeyError
    assert dates_in("on \u017fept 3, 2024") == {"--09-03", "2024-09-03"}
    assert dates_in("\u017fEP 3") == {"--09-03"}

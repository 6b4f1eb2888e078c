"""`argument_objects` skips a string without a digit: no date or amount is written without one."""

from __future__ import annotations

import random

import pytest

from bastion.guard.results import requests
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

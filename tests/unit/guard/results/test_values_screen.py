"""`values_in` skips a pattern only where it cannot match: screened, it finds what the full search finds."""

from __future__ import annotations

import random

import pytest

from bastion.guard.results.values import _has_digit, values_in

EXAMPLES = [
    "pay US133000000121212121212 now",
    "IBAN GB29 NWBK 6016 1331 9268 19.",
    "mail Evil@Attacker.COM",
    "see https://www.Evil.example/x?y=1.",
    "FTP://files.example.org/pub and WSS://stream.example",
    "call +1 415 555 0100 or (020) 7946 0958",
    "account 1234-5678-9012 on 2024-05-01",
    "open /home/u/.ssh/id_rsa and ~/notes and ../up/one",
    "read landlord-notices.txt and REPORT.PDF",
    "key sk_live_abcdefghijklmnop123456",
    "set new_password to admin_user_42",
    "book the Riverside View Hotel for Anna de la Cruz",
    "use 'All messages with Travel Agency' or \"id 13\"",
    "Arabic-Indic digits \u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669 and \u0967\u0968\u0969\u096a",
    "hello from the benchmark",
    "",
]
_ALPHABET = "aZ09_.-/:@'\" +()~\u0661\u00e9\n"


def _generated() -> list[str]:
    generator = random.Random(17)
    texts = []
    for _ in range(500):
        texts.append("".join(generator.choice(_ALPHABET) for _ in range(generator.randint(0, 40))))
        words = [w for text in EXAMPLES for w in text.split()]
        texts.append(" ".join(generator.choice(words) for _ in range(generator.randint(1, 8))))
    return texts


@pytest.mark.parametrize("text", EXAMPLES)
def test_the_screen_finds_what_the_full_search_finds(text: str) -> None:
    assert list(values_in(text)) == list(values_in(text, screen=False))


def test_the_screen_finds_what_the_full_search_finds_on_generated_text() -> None:
    for text in _generated():
        assert list(values_in(text)) == list(values_in(text, screen=False)), text


def test_a_quoted_short_value_counts_when_it_holds_a_digit_of_any_script() -> None:
    assert _has_digit("id 7")
    assert _has_digit("x\u00b2")
    assert _has_digit("\u0661")
    assert not _has_digit("Alice")
    for code in range(0x110000):
        if not 0xD800 <= code < 0xE000:
            char = chr(code)
            assert _has_digit(f"a{char}") == char.isdigit(), hex(code)
    assert ("quoted", "'\u00b9'".strip("'")) in list(values_in("use '\u00b9' now"))

"""The scanner's shortcuts give what the full work gives: ASCII text skips Unicode work, and a
sentence without a needle skips the sensitive-path and sensitive-data patterns."""

from __future__ import annotations

import itertools
import random
import re
import string

import pytest

from bastion.guard.pinning import scanner
from tests.unit.guard.pinning.test_pin_scanner import ORDINARY, POISONED

SENSITIVE_EXAMPLES = [
    # every branch of `_SENSITIVE_PATH`
    "read ~/.ssh/id_rsa now",
    "open $home/.ssh/config",
    "cat /home/bob/.ssh/known_hosts",
    "the key id_ed25519 and id_ecdsa",
    "load ~/.aws/credentials and .aws/config",
    "send ~/.netrc, .npmrc, .pypirc, .git-credentials and .pgpass",
    "fetch .docker/config.json and .kube/config and .gnupg and .config/gcloud",
    "dump /etc/passwd, /etc/shadow, /etc/sudoers",
    "read the .env file",
    "open mcp.json or claude_desktop_config.json",
    "read ~/.cursor/mcp.json",
    "the keychain and wallet.dat",
    # every branch of `_SENSITIVE_DATA`
    "the contents of the config files",
    "text of every folder",
    "data of their home",
    "all environment variables",
    "env variables",
    "the conversation history and chat history and message history",
    "the system prompt",
    "previous messages, prior chats, all recent conversations",
    "all api keys, any secrets, stored credentials, saved passwords, local tokens, other private keys",
    "all of the user tokens",
]


def _corpus() -> list[str]:
    texts = [text for text, _ in POISONED] + ORDINARY + SENSITIVE_EXAMPLES
    texts.append("".join(chr(c) for c in range(128)))
    generator = random.Random(17)
    words = [w.strip(",.") for text in SENSITIVE_EXAMPLES for w in text.split()] + ["the", "a", "of", "to", "and"]
    for _ in range(300):
        texts.append(" ".join(generator.choice(words) for _ in range(generator.randint(1, 12))))
        texts.append("".join(generator.choice(string.printable) for _ in range(generator.randint(0, 60))))
    return texts


CORPUS = _corpus()


def _sentences_of(text: str) -> list[str]:
    sentences = scanner._sentences(scanner.normalise(text))
    return sentences + [f"{a} {b}" for a, b in itertools.pairwise(sentences)]


def _span(match: object) -> tuple[int, int] | None:
    return match.span() if match is not None else None  # type: ignore[attr-defined]


def test_every_sensitive_example_matches_the_full_patterns() -> None:
    """The examples cover the patterns (so the comparison below sees them match)."""
    for text in SENSITIVE_EXAMPLES:
        assert scanner._SENSITIVE.search(text), text


@pytest.mark.parametrize("text", CORPUS[:80])
def test_needle_screens_match_the_full_patterns(text: str) -> None:
    for sentence in [*_sentences_of(text), text.lower()]:
        assert _span(scanner._sensitive(sentence, scanner.LITERALS.find(sentence))) == _span(
            scanner._SENSITIVE.search(sentence)
        ), sentence
        assert _span(scanner._sensitive_file(sentence, scanner.LITERALS.find(sentence))) == _span(
            scanner._SENSITIVE_FILE.search(sentence)
        ), sentence


def test_needle_screens_match_the_full_patterns_on_generated_text() -> None:
    for text in CORPUS[80:]:
        for sentence in [*_sentences_of(text), text.lower()]:
            assert _span(scanner._sensitive(sentence, scanner.LITERALS.find(sentence))) == _span(
                scanner._SENSITIVE.search(sentence)
            ), sentence
            assert _span(scanner._sensitive_file(sentence, scanner.LITERALS.find(sentence))) == _span(
                scanner._SENSITIVE_FILE.search(sentence)
            )


def test_ascii_shortcuts_give_what_the_full_work_gives() -> None:
    for text in CORPUS:
        if not text.isascii():
            continue
        assert scanner._normalise_ascii(text) == scanner._normalise_any(text), text
        assert scanner._invisible_in(text) is None
        assert scanner._homoglyph_words(text) == []
        assert scanner._smuggled_text(text) == ""


def test_non_ascii_text_still_takes_the_full_path() -> None:
    assert scanner.normalise("\uff29\uff47\uff4e\uff4f\uff52\uff45\u200b") == "ignore"
    assert scanner._invisible("a\u200bb") is not None


def _reference_judge(sentence: str) -> list[tuple[str, str]]:
    """`scanner._judge` with every pattern searched whole: no literal screen, no shortcut."""
    found: list[tuple[str, str]] = []
    for kind, pattern in (
        ("hidden-tag", scanner._HIDDEN_TAG),
        ("override", scanner._OVERRIDE),
        ("concealment", scanner._CONCEALMENT),
    ):
        if match := pattern.full.search(sentence):
            found.append((kind, match[0].strip()))
    if scanner._REDIRECT.full.search(sentence):
        found.append(("redirect", sentence))
    read = scanner._READ.full.search(sentence)
    addressed = scanner._MODEL_ADDRESSED.full.search(sentence)
    secret = scanner._SECRET.full.search(sentence)
    passes = scanner._PASS.full.search(sentence)
    if (read and scanner._SENSITIVE_FILE.search(sentence)) or (addressed and (read or passes) and secret):
        found.append(("sensitive-read", sentence))
    sensitive = scanner._SENSITIVE.search(sentence) or (read and (secret or scanner._sensitive_referent(sentence)))
    if sensitive and passes and scanner._DESTINATION.full.search(sentence):
        found.append(("exfiltration", sentence))
    return found


def test_the_screened_judge_finds_what_the_whole_patterns_find() -> None:
    judged = 0
    for text in CORPUS:
        for sentence in [*_sentences_of(text), scanner.normalise(text)]:
            expected = _reference_judge(sentence)
            assert list(scanner._judge(sentence)) == expected, sentence
            judged += bool(expected)
    assert judged > 50  # the corpus's poisoned texts are found, so the comparison sees findings


def test_the_screened_judge_finds_what_the_whole_patterns_find_in_a_long_sentence() -> None:
    # past `screened.LONG`, the literals are probed one by one rather than found by the automaton
    for text in [t for t, _ in POISONED][:40]:
        sentence = "x " * 1100 + scanner.normalise(text).replace("\n", " ")
        assert list(scanner._judge(sentence)) == _reference_judge(sentence), text


def _reference_scan(text: str) -> list[tuple[str, str]]:
    """`scanner.scan_text`'s sentence findings with `_reference_judge`, each pair's literals found afresh."""
    found: list[tuple[str, str]] = []
    for each in filter(None, [text, scanner._smuggled_text(text)]):
        sentences = scanner._sentences(scanner.normalise(each))
        per_sentence = [_reference_judge(sentence) for sentence in sentences]
        for judged in per_sentence:
            found.extend((kind, excerpt[: scanner._EXCERPT]) for kind, excerpt in judged)
        for i in range(len(sentences) - 1):
            known = {kind for kind, _ in per_sentence[i] + per_sentence[i + 1]}
            pair = _reference_judge(f"{sentences[i]} {sentences[i + 1]}")
            found.extend((kind, excerpt[: scanner._EXCERPT]) for kind, excerpt in pair if kind not in known)
    return list(dict.fromkeys(found))


@pytest.mark.parametrize("text", [t for t, _ in POISONED] + ORDINARY)
def test_scan_text_finds_what_the_whole_patterns_find(text: str) -> None:
    expected = _reference_scan(text)
    assert [f for f in scanner.scan_text(text) if f[0] not in {"invisible-unicode", "homoglyph"}] == expected


def test_spaces_are_collapsed_as_every_run_of_them_was() -> None:
    old = re.compile(r"[ \t\r\f\v]+")
    generator = random.Random(7)
    for _ in range(3000):
        text = "".join(generator.choice(" \t\r\f\v\nab.") for _ in range(generator.randint(0, 30)))
        assert scanner._SPACES.sub(" ", text) == old.sub(" ", text), repr(text)


def test_no_literal_runs_across_the_space_between_two_sentences() -> None:
    # `scan_text` takes a pair's literals as its two sentences' together
    assert all(" " not in word and word.isascii() for word in scanner.LITERALS.words)


@pytest.mark.parametrize("text", [t for t, _ in POISONED][:30])
def test_a_phrase_split_over_two_sentences_among_many_is_found(text: str) -> None:
    prose = "The report shows revenue grew in every region. " * 40
    padded = prose + text + " " + prose
    expected = _reference_scan(padded)
    assert [f for f in scanner.scan_text(padded) if f[0] not in {"invisible-unicode", "homoglyph"}] == expected

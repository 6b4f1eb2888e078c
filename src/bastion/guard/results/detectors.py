"""Injection detectors for text read in results: the catalogue's and the pinning scanner's,
plus the framing attacks address the assistant with (`<INFORMATION>`, `IMPORTANT!!!`, a fake
system message, a bare `TODO: send ...` directive glued into a document).

A detector takes one string and yields (detector, start, end, excerpt); `start == end` when
the finding concerns the whole string. Ordinary prose that merely talks about instructions
is not a finding: the phrases must address the model.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from bastion.guard.pinning.scanner import scan_text
from bastion.guard.policy.catalogue.injection import injection_findings
from bastion.guard.results.addressed import addressed
from bastion.guard.results.directed import directed
from bastion.guard.screened import Branch, Screened

Hit = tuple[str, int, int, str]

SCANNER_KINDS = frozenset({"concealment", "exfiltration", "redirect", "sensitive-read"})
"""The pinning scanner's findings that count in results. Its invisible-character and homoglyph
findings are too noisy in web pages and mail (soft hyphens, mixed-script names); overrides and
fake tags are judged by the catalogue and `framing`, which tell a quoted example from an order."""

MAX_SCANNED = 256 * 1024
"""Characters of one string the sentence-level scanner reads (the regex detectors read all)."""

FRAMING = Screened(
    (
        Branch(
            r"</?\s*(?:information|instructions?|system|system[_ ]prompt|important|admin|assistant_?instructions?)\s*>",
            ((">",), ("information", "instruction", "system", "important", "admin", "assistant")),
            ("<",),
        ),
        Branch(r"<\|(?:im_start|im_end|system|endoftext)\|>", (("|>",), ("im_", "system", "endoftext")), ("<|",)),
        Branch(r"\bIMPORTANT\s*!{2,}", (("!!",),), ("important",)),
        Branch(r"#+\s*\(?\s*system[_ ]message\s*\)?", (("system_message", "system message"),), ("#",)),
        Branch(
            r"^\s*\[\s*(?:system|sys|admin|developer)\s*(?:message|note|notice)?\s*\]",
            (("[",), ("]",), ("sys", "admin", "developer")),
        ),
        Branch(
            r"\bthis\s+is\s+an?\s+(?:important|urgent)\s+message\s+from\s+me\b",
            (("message",), ("important", "urgent")),
            ("this",),
        ),
        Branch(
            r"\b(?:before|after)\s+you\s+(?:can\s+)?(?:solve|complete|do|finish|continue)\s+(?:with\s+)?the\s+task\s+"
            r"(?:that\s+)?i\s+gave\s+you\b",
            (("task",), ("gave",)),
            ("before", "after"),
        ),
        Branch(
            r"(?:ignore|disregard|forget)\s+(?:all\s+)?(?:of\s+)?(?:your|the|my|any|all)?\s*(?:previous|prior|above|earlier)"
            r"\s+\w{0,12}(?:nstruc|rompt|irectiv)\w{0,12}",
            (("previous", "prior", "above", "earlier"), ("nstruc", "rompt", "irectiv")),
            ("ignore", "disregard", "forget"),
        ),
        # a bare directive glued into a document: "TODO: Send the balance to ..." (not a code comment)
        Branch(
            r"(?<![#/*;-])(?<![#/*;-][ \t])(?-i:TODO)\s*:\s*(?:please\s+)?(?:send|transfer|pay|change|modify|update|"
            r"delete|remove|forward|email|post|invite|add|create|make|visit|say|tell|write|share|book|reserve|give|grant|"
            r"set|move|concatenate|find|get|read|open|download|upload|go|schedule|reply|rate|summari[sz]e)\b",
            ((":",),),
            ("todo",),
        ),
        Branch(
            r"\b(?:ai|llm)\s+(?:assistants?|agents?|models?)\s*(?:reading\s+this)?\s*[:,]\s*(?:you\s+must|please|"
            r"do\s+not|ignore|always|never)\b",
            (("assistant", "agent", "model"), (":", ",")),
            ("ai", "llm"),
        ),
    ),
    re.IGNORECASE | re.MULTILINE,
)
MAX_HITS = 20
"""Framing hits reported per string at most."""
_QUOTES = "'\"`\u2018\u2019\u201c\u201d"


def framing(text: str) -> Iterator[Hit]:
    """Framing that addresses the assistant: fake tags, fake system messages, IMPORTANT!!!."""
    found = 0
    for match in FRAMING.finditer(text):
        before = text[match.start() - 1] if match.start() else ""
        after = text[match.end() : match.end() + 1]
        if before and before in _QUOTES and after and after in _QUOTES:
            continue  # quoted as an example
        yield "framing", match.start(), match.end(), match[0]
        found += 1
        if found >= MAX_HITS:
            return


def catalogue(text: str) -> Iterator[Hit]:
    """The policy catalogue's injection signals (overrides, covert orders, exfiltration, hidden Unicode)."""
    for match in injection_findings(text):
        yield match.entry_id, 0, 0, match.reason


def sentences(text: str) -> Iterator[Hit]:
    """The pinning scanner's sentence-level judgments (instructions to conceal, redirect, send data out)."""
    for kind, excerpt in scan_text(text[:MAX_SCANNED]):
        if kind in SCANNER_KINDS:
            yield f"instruction.{kind}", 0, 0, excerpt


TEXT_DETECTORS = (framing, addressed, directed, catalogue, sentences)


def text_hits(text: str) -> list[Hit]:
    """Every text detector's hits on `text` (each place once)."""
    hits: dict[tuple[str, int, int], Hit] = {}
    for detector in TEXT_DETECTORS:
        for hit in detector(text):
            hits.setdefault(hit[:3], hit)
    return list(hits.values())

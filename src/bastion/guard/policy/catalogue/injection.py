"""Prompt injection: instructions aimed at a model, planted in arguments (and in tool descriptions).

Three signals: invisible characters (Unicode tag characters, runs of zero-width or bidi
controls) that hide text from a human reader; phrasing that overrides the model's instructions
("ignore all previous instructions", a fake `[SYSTEM]` header addressed to the assistant); and
covert standing orders ("do not tell the user", "always BCC ..."). Text that merely talks about
prompt injection does not match: the phrases must address the model. `injection_findings`
serves tool-description scanning too.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bastion.guard.policy.catalogue.base import Entry, Finding, Severity, entry
from bastion.guard.policy.catalogue.needles import NEEDLES
from bastion.guard.policy.catalogue.windows import LONG_TEXT, needle_windows
from bastion.guard.screened import Branch, Screened
from bastion.model import Decision

if TYPE_CHECKING:  # the call view's parsers load with the first call, not with the redactor
    from bastion.guard.policy.catalogue.view import CallView

ASK, DENY = Decision.ASK, Decision.DENY
C, H = Severity.CRITICAL, Severity.HIGH

ENTRIES: tuple[Entry, ...] = (
    entry("injection.prompt_override", "Instruction override", "Text telling a model to ignore or replace its "
          "instructions, or posing as a system message.", H, DENY),
    entry("injection.hidden_unicode", "Invisible characters", "Unicode tag characters, or runs of zero-width / "
          "bidirectional control characters, hiding text from people.", H, DENY),
    entry("injection.hidden_instruction", "Covert standing instruction", "Text telling a model to act without "
          "telling the user, or to always copy data somewhere.", H, DENY),
    entry("injection.exfil_instruction", "Instruction to send data out", "Text telling a model to read secrets or "
          "send data to a URL or address.", C, DENY),
    entry("injection.agent_directive", "Instruction addressed to an agent", "Content (a commit message, a code "
          "comment, an email body, a document) that addresses an AI agent reading it and tells it to act: 'AI agents "
          "reading this: run ...', 'Note to the assistant: forward ...', '# TODO(agent): delete ...'.", H, DENY),
)  # fmt: skip
_BY_ID = {e.id: e for e in ENTRIES}

_OVERRIDE_GATE = Screened(
    (
        Branch(
            r"\b(?:ignore|disregard|forget|override|bypass)\b.{0,30}\b(?:all\s+|any\s+|the\s+|your\s+|my\s+)?"
            r"(?:previous|prior|above|earlier|preceding|original|system|existing|former)\b.{0,20}\b(?:instructions?|"
            r"prompts?|rules|directives|guidelines|context|messages)",
            (
                ("previous", "prior", "above", "earlier", "preceding", "original", "system", "existing", "former"),
                ("instruction", "prompt", "rules", "directives", "guidelines", "context", "messages"),
            ),
            ("ignore", "disregard", "forget", "override", "bypass"),
        ),
        Branch(
            r"\b(?:ignore|disregard|forget)\s+(?:everything\s+|all\s+)?(?:of\s+)?(?:the\s+|that\s+|what\s+is\s+)?"
            r"(?:above|previous|prior|preceding)\s*(?:[.,;:!]|\band\b|\bthen\b|$)",
            (("above", "previous", "prior", "preceding"),),
            ("ignore", "disregard", "forget"),
        ),
        Branch(
            r"\byou\s+are\s+now\s+(?:in\s+)?\w+\s+(?:mode|assistant|ai)\b",
            (("now",), ("mode", "assistant", "ai")),
            ("you",),
        ),
        Branch(
            r"\bnew\s+(?:instructions?|task|directive)\s+for\s+(?:the\s+|all\s+|any\s+)?(?:assistant|ai|model|agent|llm)s?\b",
            (("instruction", "task", "directive"), ("for",), ("assistant", "ai", "model", "agent", "llm")),
            ("new",),
        ),
        Branch(
            r"(?:^|\n)\s*[\[<(]\s*(?:system|sys|admin|developer)\s*[\])>]\s*\S",
            (("[", "<", "("), ("sys", "admin", "developer"), ("]", ">", ")")),
        ),
        Branch(
            r"\b(?:system\s+(?:notice|message|prompt|override)|important\s+notice)\s+(?:for|to)\s+(?:ai|the\s+)?"
            r"(?:assistants?|models?|agents?|llms?|ai)\b",
            (("notice", "message", "prompt", "override"), ("for", "to"), ("assistant", "model", "agent", "llm", "ai")),
            ("system", "important"),
        ),
        Branch(r"</?(?:system|im_start|im_end)>", (("system", "im_start", "im_end"), (">",)), ("<",)),
        Branch(r"<\|im_start\|>", (), ("<|im_start|>",)),
    ),
    re.IGNORECASE | re.DOTALL,
)
_COVERT_GATE = Screened(
    (
        Branch(
            r"\b(?:do\s+not|don'?t|never|without)\s+(?:mention|tell|inform|notify|reveal|show|alert|telling|informing|"
            r"mentioning)\w*\s+(?:this\s+|it\s+)?(?:to\s+)?(?:the\s+)?(?:user|human|operator|anyone|them)\b",
            (
                ("not", "don", "never", "without"),
                ("mention", "tell", "inform", "notify", "reveal", "show", "alert"),
                ("user", "human", "operator", "anyone", "them"),
            ),
            ("do", "don", "never", "without"),
        ),
        Branch(
            r"\balways\s+(?:bcc|cc|forward|copy|send|include)\b.{0,60}\b(?:to|@)",
            (("cc", "forward", "copy", "send", "include"), ("to", "@")),
            ("always",),
        ),
        Branch(r"\bsecretly\b", (), ("secretly",)),
        Branch(r"\bcovertly\b", (), ("covertly",)),
        Branch(
            r"\bwithout\s+(?:the\s+)?user'?s?\s+(?:knowledge|consent|approval)",
            (("user",), ("knowledge", "consent", "approval")),
            ("without",),
        ),
    ),
    re.IGNORECASE | re.DOTALL,
)
_EXFIL_GATE = Screened(
    (
        Branch(
            r"\b(?:read|cat|send|post|upload|email|exfiltrate|leak|copy)\b.{0,40}(?:\.ssh|id_rsa|\.env\b|credentials|"
            r"api[_\s]?keys?|secrets?|passwords?|tokens?)\b.{0,60}\b(?:to|at)\s+(?:https?://|\S+@)",
            (
                (".ssh", "id_rsa", ".env", "credentials", "api", "secret", "password", "token"),
                ("to", "at"),
                ("://", "@"),
            ),
            ("read", "cat", "send", "post", "upload", "email", "exfiltrate", "leak", "copy"),
        ),
    ),
    re.IGNORECASE | re.DOTALL,
)
"""The three phrase families as screened alternations: a text none of whose branches' literals it
holds skips the family (the windows below are searched only when one is live)."""
_OVERRIDE = _OVERRIDE_GATE.full
_COVERT = _COVERT_GATE.full
_EXFIL = _EXFIL_GATE.full
_AGENT = (r"(?:(?:ai|llm|coding|automated|autonomous|language\s+model)\s+)?(?:ai|a\.i\.|llms?|(?:large\s+)?"
          r"language\s+models?|assistants?|agents?|copilots?|claude|chatgpt|gpt-?\d*|gemini|codex|cursor|bots?"
          r"|models?|(?<=ai\s)reviewers?|(?<=automated\s)(?:reviewers?|tools?|systems?))")  # fmt: skip
_VERBS = (r"run|execute|exec|invoke|call|send|forward|e-?mail|post|upload|delete|remove|drop|wipe|erase|push|merge"
          r"|approve|grant|transfer|disable|ignore|fetch|curl|wget|download|install|read|cat|print|reveal|output"
          r"|include|copy|paste|exfiltrate|commit|deploy|open|visit|navigate|pay|share|leak|rm|sudo|chmod|pipe|bcc"
          r"|reply|tell|respond|write|add|change|set|update|create|make|give|replace|insert|skip|bypass|close"
          r"|stop|kill|rotate|revoke|publish|release|force|rewrite|reset|truncate|move|rename|store|save|append"
          r"|modify")  # fmt: skip
_ACT = rf"\b(?:{_VERBS}|must|should|need\s+to|have\s+to|please|always|never|do\s+not|don'?t)\b"
_IMPERATIVE = rf"(?:(?:also|now|then|first|just|please|kindly|immediately|quietly|silently)\s+)*(?:{_VERBS})\b"
_ADDRESS_TAIL = r"[ \t]*(?:[:,\-\u2014]|$)"
_AGENT_DIRECTIVE = re.compile(
    r"(?is)(?:\b(?:note|message|instructions?|attention|reminder|memo|directive|notice|important|warning|request"
    rf"|task|p\.?s\.?)\s+(?:to|for)\s+(?:the\s+|all\s+|any\s+|every\s+)?{_AGENT}(?:[ \t]+[\w.-]+){{0,2}}"
    r"\s*(?:[:\-,!]|\n)"
    rf"|\b(?:dear|hey|hi|hello|attention|psst|listen|yo)\s*,?\s+(?:the\s+)?{_AGENT}\b"
    rf"|\b{_AGENT}\s+(?:reading|processing|reviewing|parsing|seeing|summari[sz]ing|handling|scanning|analy[sz]ing"
    r"|(?:that|who|which)\s+(?:reads?|sees?|process(?:es)?|reviews?|summari[sz]es|handles?))\s+(?:this|these|"
    r"the\s+(?:file|code|repo|repository|message|email|commit|comment|page|document|ticket|issue|pr|diff|thread))"
    r"|\bif\s+you\s+are\s+(?:an?\s+)?(?:ai|llm|(?:large\s+)?language\s+model|assistant|agent|bot|automated"
    r"|autonomous|coding|model)\b"
    rf"|\bif\s+(?:an?|any|the|some)\s+{_AGENT}\s+(?:is\s+)?(?:reads?|reading|sees?|seeing|process(?:es|ing)?"
    r"|summari[sz](?:es|ing)|parses|parsing)\b"
    r"|\b(?:when|once|after|as\s+soon\s+as|upon)\s+(?:you\s+)?(?:read|see|process|parse|encounter|summari[sz]e"
    r"|reading|seeing|processing)\s+(?:this|these)\b"
    r"|\b(?:todo|fixme|note|hack)\s*\(\s*(?:ai|agents?|assistants?|llms?|claude|copilot|bots?)\s*\)"
    rf"|\b{_AGENT}\s+(?:instructions?|notes?|notice|directives?|message|tasks?|memo|reminder)\s*[:\-\n])"
    rf"[^\n]{{0,40}}(?:\n[^\n]{{0,120}})?{_ACT}"
    rf"|(?m:^)[ \t]*(?:#|//|/\*|<!--|--|\*|>|;)?[ \t]*(?:[\[(<]{_AGENT}[\])>][ \t]*[:,\-]?|@?{_AGENT}{_ADDRESS_TAIL})"
    rf"[ \t]*{_IMPERATIVE}"
    rf"|@{_AGENT}\b[ \t,:]*{_IMPERATIVE}"
    rf"|\b(?:to|for)\s+(?:the\s+|all\s+|any\s+|every\s+)?{_AGENT}\s*[:,\-\u2014]\s*{_IMPERATIVE}"
)  # fmt: skip
"""Text that turns to an agent reading it ("AI agents reading this:", "Note to the assistant:", "if you are an
LLM", "# TODO(agent):", a line opening `Assistant: run ...`) and tells it to act."""
_AGENT_WORD = re.compile(
    r"\b(?:a(?:i|\.i\.|ssistants?|gents?)|llms?|language\s+models?|c(?:opilots?|laude|hatgpt|odex|ursor)"
    r"|g(?:pt-?\d*|emini)|bots?|models?|automated|if\s+you\s+are|(?:read|see|process|parse|encounter|summari[sz]e|reading"
    r"|seeing|processing)\s+(?:this|these))\b"
)  # fmt: skip
"""Searched in lower-case text (case-insensitive matching costs twice as much)."""
MAX_AGENT_WINDOWS = 32
_AGENT_NEEDLES = ("agent", "assistant", "ai ", " ai", "ai:", "ai,", "ai)", "a.i", "llm", "language model", "copilot",
                  "claude", "gpt", "gemini", "codex", "cursor", "bot", "model", "if you are", "this",
                  "these")  # fmt: skip
"""Lower-case substrings without which `_AGENT_DIRECTIVE` cannot match; it needs words, so only text with a
space is searched (paths, identifiers and URLs skip these checks)."""
_PHRASES: tuple[tuple[str, re.Pattern[str], tuple[str, ...]], ...] = (
    ("injection.prompt_override", _OVERRIDE, ("ignor", "disregard", "forget", "overrid", "bypass", "you are now",
                                              "instruction", "system", "sys]", "admin", "developer", "im_start",
                                              "im_end", "notice")),
    ("injection.hidden_instruction", _COVERT, ("mention", "tell", "inform", "notify", "reveal", "show", "alert",
                                               "always", "secretly", "covertly", "without")),
    ("injection.exfil_instruction", _EXFIL, ("://", "@")),
    ("injection.agent_directive", _AGENT_DIRECTIVE, _AGENT_NEEDLES),
)  # fmt: skip
"""(entry id, pattern, lower-case substrings a match must contain) for each phrase family."""
_GATES = {
    "injection.prompt_override": _OVERRIDE_GATE,
    "injection.hidden_instruction": _COVERT_GATE,
    "injection.exfil_instruction": _EXFIL_GATE,
}
_TAGS = re.compile("[\U000e0000-\U000e007f]")
_INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\u180e]{3,}")
_NEEDLES = (
    "ignor", "disregard", "forget", "overrid", "bypass", "you are now", "instruction", "system", "sys]", "admin",
    "developer", "im_start", "im_end", "notice", "mention", "tell", "inform", "reveal", "notify", "alert", "show",
    "always", "secret", "covert", "without", "ssh", "id_rsa", ".env", "credential", "key", "password", "token",
)  # fmt: skip
"""Lower-case substrings without which no phrase pattern can match (a cheap gate before the regexes)."""
NEEDLE_SET = NEEDLES.add(_NEEDLES)
AGENT_NEEDLE_SET = NEEDLES.add(_AGENT_NEEDLES)
_PHRASE_NEEDLES = {entry_id: NEEDLES.add(needles) for entry_id, _, needles in _PHRASES}


@dataclass(frozen=True, slots=True)
class InjectionMatch:
    """An injection signal in a text: its entry id and what was seen."""

    entry_id: str
    reason: str


def _tag_text(text: str) -> str:
    return "".join(chr(ord(c) - 0xE0000) for c in _TAGS.findall(text) if 0x20 <= ord(c) - 0xE0000 < 0x7F)


def _fix_surrogates(text: str) -> str:
    """Pairs of UTF-16 surrogates (as some JSON decoders leave them) joined into the characters they encode."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        return text.encode("utf-16", "surrogatepass").decode("utf-16")
    except UnicodeError:
        return text


def injection_findings(text: str) -> list[InjectionMatch]:
    """Injection signals in `text` (an argument, or a tool description). Never raises."""
    if not isinstance(text, str) or len(text) < 6:
        return []
    return injection_in(text, NEEDLES.find(text.lower()))


def injection_in(text: str, hits: frozenset[str]) -> list[InjectionMatch]:
    """`injection_findings(text)`, given the registered needles `text.lower()` holds (`NEEDLES.find`)."""
    if len(text) < 6 or not past_gate(text, hits):
        return []
    try:
        return list(_scan(_fix_surrogates(text), hits))
    except Exception:
        return []


def past_gate(text: str, hits: frozenset[str]) -> bool:
    """Whether `injection_in` reads `text` past its gate: False when it finds nothing there, an ASCII
    text holding no needle of a phrase, nor one of an agent's name with a space to address it. `hits`
    may hold more than the needles (what `quiet` found): only these count."""
    return (
        not text.isascii() or not hits.isdisjoint(NEEDLE_SET) or (" " in text and not hits.isdisjoint(AGENT_NEEDLE_SET))
    )


def _scan(text: str, text_hits: frozenset[str]) -> Iterator[InjectionMatch]:
    hidden = "" if text.isascii() else _tag_text(text)
    if hidden:
        yield InjectionMatch("injection.hidden_unicode", f"{len(hidden)} invisible tag characters: {hidden[:60]!r}")
    elif not text.isascii() and _INVISIBLE.search(text):
        yield InjectionMatch("injection.hidden_unicode", "a run of zero-width or bidi control characters")
    visible = text if text.isascii() else unicodedata.normalize("NFKC", _TAGS.sub("", text)) + "\n" + hidden
    long_ascii = len(visible) > LONG_TEXT and visible.isascii()
    lowered = visible.lower()
    hits = text_hits if visible is text else NEEDLES.find(lowered)
    for entry_id, pattern, needles in _PHRASES:
        if pattern is _AGENT_DIRECTIVE:
            if visible.isascii() and hits.isdisjoint(_PHRASE_NEEDLES[entry_id]):
                continue
            agent = _agent_directive(visible)
            if agent:
                yield InjectionMatch(entry_id, f"{agent.group(0).strip()[:60]!r}")
            continue
        elif long_ascii:
            windows = needle_windows(lowered, needles, 250, 250)
        elif not visible.isascii() or not hits.isdisjoint(_PHRASE_NEEDLES[entry_id]):
            windows = [(0, len(visible))]
        else:
            continue
        if windows and not _GATES[entry_id].live(visible):
            continue  # no branch of the family can match anywhere in the text
        m = next((m for start, end in windows if (m := _addressed(pattern, visible, start, end))), None)
        if m:
            yield InjectionMatch(entry_id, f"{m.group(0).strip()[:60]!r}")


_QUOTES = "'\"`\u2018\u2019\u201c\u201d"


def _agent_directive(text: str) -> re.Match[str] | None:
    """The first instruction to an agent in `text`. Every form names its addressee (`agent`, `assistant`, `AI`,
    `if you are`, `read this`), so the pattern is tried only where a word or a line starts in the 80 characters
    before each such word (`Note to the assistant`, `[agent]`, `# TODO(agent)`), never across the whole text
    (`gpt` inside a base64 blob is no addressee)."""
    tried: set[int] = set()
    lowered = text.lower() if text.isascii() else text.casefold()
    for count, word in enumerate(_AGENT_WORD.finditer(lowered)):
        if count >= MAX_AGENT_WINDOWS:
            break
        p = word.start()
        lo = max(0, p - 80)
        starts = {p, text.rfind("\n", 0, p) + 1, *(t.start() for t in _TRIGGERS.finditer(lowered, lo, p))}
        if p and text[p - 1] in "@[(<":
            starts.add(p - 1)
        for i in sorted(starts - tried):
            if i < lo and i != 0 and text[i - 1] != "\n":
                continue
            tried.add(i)
            m = _AGENT_DIRECTIVE.match(text, i)
            if m and not _quoted(text, m):
                return m
    return None


_TRIGGERS = re.compile(
    r"\b(?:note|message|instructions?|attention|reminder|memo|directive|notice|important|warning|request|task|p\.?s"
    r"|dear|hey|hi|hello|psst|listen|yo|if|to|for|when|once|after|as|upon|todo|fixme|hack)\b"
)  # fmt: skip
"""Words an address to an agent may open with, before the agent's name (`Note to the`, `Dear`, `if an`)."""


def _quoted(text: str, m: re.Match[str]) -> bool:
    before = text[m.start() - 1] if m.start() else ""
    after = text[m.end() : m.end() + 1]
    return bool(before and before in _QUOTES and after and after in _QUOTES)


def _addressed(pattern: re.Pattern[str], text: str, start: int, end: int) -> re.Match[str] | None:
    """The first match not quoted as an example (`attackers write 'ignore previous instructions'`)."""
    for m in pattern.finditer(text, start, end):
        before = text[m.start() - 1] if m.start() else ""
        after = text[m.end() : m.end() + 1]
        if not (before and before in _QUOTES and after and after in _QUOTES):
            return m
    return None


def detect(call: CallView) -> Iterator[Finding]:
    for s, hits in zip(call.strings, call.hits, strict=True):
        if not hits and s.value.isascii():
            continue  # no needle of any family in an ASCII text: `injection_in` would find nothing, slower
        for match in injection_in(s.value, hits):
            yield Finding(_BY_ID[match.entry_id], f"{match.reason} in {s.path}", s.path)

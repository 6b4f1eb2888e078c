"""Text addressed to the assistant by name: "Dear AI assistant, ...", "Note to the LLM:",
"Assistant: send ...". An ordinary document speaks to people; one that greets the model, or
gives it an order under its own name, is an injection whatever else it says. Models have no
fixed vocabulary of framing, so this detector keys on who is addressed, not on any template.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from bastion.guard.screened import Branch, Screened

Hit = tuple[str, int, int, str]
DETECTOR = "addressed"
_MODEL = (
    r"(?:ai|a\.i\.|llms?|gpt(?:-?\d[\w.]*)?|chat\s?gpt|claude|gemini|copilot|chatbots?|language\s+models?"
    r"|(?:ai|virtual|digital)\s+(?:assistants?|agents?|models?)|assistants?)"
)
_ORDER = (
    r"(?:send|transfer|forward|delete|remove|e-?mail|post|invite|visit|open|go|ignore|disregard|create|update|change|"
    r"share|reply|pay|book|reserve|make|add|grant|give|write|upload|download|tell|say|do|follow|run|execute)"
)
_MODEL_WORDS = (
    *("ai", "a.i.", "llm", "gpt", "claude", "gemini", "copilot", "chatbot", "language", "virtual", "digital"),
    "assistant",
)
"""A literal every spelling of `_MODEL` holds."""
ADDRESSED = Screened(
    (
        # a greeting or a note to the model: "Dear AI,", "Hello assistant!", "Note to the LLM:"
        Branch(
            rf"\b(?:dear|hey|hi|hello|attention|note\s+to|message\s+(?:to|for)|instructions?\s+(?:to|for)|reminder\s+for)"
            rf"\s+(?:the\s+|all\s+|any\s+|my\s+)?{_MODEL}\s*[,:!\-]",
            (_MODEL_WORDS, (",", ":", "!", "-")),
            ("dear", "hey", "hi", "hello", "attention", "note", "message", "instruction", "reminder"),
        ),
        # an order under the model's name at the start of a sentence: "Assistant: send ...", "AI, please delete ..."
        Branch(
            rf"(?:^|[.!?]\s+){_MODEL}\s*[,:]\s*(?:please\s+)?(?:now\s+)?(?:also\s+)?(?:you\s+(?:must|should)\s+)?{_ORDER}\b",
            (_MODEL_WORDS, (",", ":")),
        ),
    ),
    re.IGNORECASE | re.MULTILINE,
)


def addressed(text: str) -> Iterator[Hit]:
    """Where `text` greets the model or orders it by name (the first place)."""
    match = ADDRESSED.search(text)
    if match is not None:
        start = match.start() + len(match[0]) - len(match[0].lstrip(".!? \t\n"))
        yield DETECTOR, start, match.end(), match[0].strip()

"""What a result detector reports: which detector, which string, which span of it."""

from __future__ import annotations

from dataclasses import dataclass

EXCERPT = 100


@dataclass(frozen=True, slots=True)
class ResultFinding:
    """One reason a result looks poisoned (or too big)."""

    detector: str
    """`injection.prompt_override`, `instruction.exfiltration`, `framing`, `hidden.html_comment`,
    `hidden.styled_text`, `exfil.markdown_image`, `exfil.markdown_link`, `encoded.base64`, `encoded.hex`,
    `encoded.url`, `volume.records`, `volume.bytes`, ..."""
    path: str
    """Where in the result: `content[0].text`, `structuredContent.rows[3].note`, ..."""
    start: int = 0
    end: int = 0
    """The span of the string at `path` that matched (`start == end`: the whole string)."""
    excerpt: str = ""

    def __str__(self) -> str:
        span = f"[{self.start}:{self.end}]" if self.end > self.start else ""
        return f"{self.detector} in {self.path}{span}: {self.excerpt[:EXCERPT]!r}"

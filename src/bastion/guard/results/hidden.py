"""What hides in fetched content: HTML comments and invisibly styled text that speak to the
assistant, and markdown images or links whose URL carries data out.

Ordinary pages have comments (`<!-- header -->`) and hidden menus; those are not findings.
Hidden text is a finding when it addresses the model or a text detector flags it. A markdown
image is fetched by the client as soon as it is shown, so an image URL with a placeholder or a
long query value is a way out for data; a link is flagged for placeholders only.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import parse_qsl, unquote, urlsplit

from bastion.guard.results.detectors import Hit, text_hits

MAX_HIDDEN = 4000
"""Characters of one hidden element read at most (the whole string is read by the text detectors anyway)."""
_INVISIBLE_STYLE = (
    r"display\s*:\s*none|visibility\s*:\s*hidden|font-size\s*:\s*0(?:\.0*)?(?:px|pt|em|rem|%)?\s*(?:;|\"|'|$)"
    r"|opacity\s*:\s*0(?:\.0*)?\s*(?:;|\"|'|$)|color\s*:\s*(?:white|#fff(?:fff)?|rgba?\(\s*255\s*,\s*255\s*,\s*255)"
    r"|(?:height|width)\s*:\s*0(?:px)?\s*;[^\"']*overflow\s*:\s*hidden|left\s*:\s*-\d{4,}px"
)
_STYLED = re.compile(
    r"<(?P<tag>[a-z][a-z0-9]*)\b(?P<attrs>[^>]*?(?:style\s*=\s*[\"'][^\"']*(?:" + _INVISIBLE_STYLE + r")[^\"']*[\"']"
    r"|\shidden(?:\s|>|=)|aria-hidden\s*=\s*[\"']true)[^>]*)>(?P<body>.{0,4000}?)</(?P=tag)\s*>",
    re.IGNORECASE | re.DOTALL,
)
_ADDRESSES_MODEL = re.compile(
    r"\b(?:ai|llm|assistant|language\s+model|chatbot|agent|gpt|claude|gemini|copilot)s?\b.{0,80}"
    r"\b(?:must|should|please|do\s+not|don't|never|always|ignore|instead|instructed|tell|send|include|say|respond)\b"
    r"|\b(?:you\s+must|you\s+should|you\s+are\s+to|your\s+(?:new\s+)?task)\b",
    re.IGNORECASE | re.DOTALL,
)
_MARKDOWN_IMAGE = re.compile(r"!\[[^\]\n]{0,200}\]\(\s*<?(https?://[^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_MARKDOWN_LINK = re.compile(r"(?<!!)\[[^\]\n]{0,200}\]\(\s*<?(https?://[^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HTML_IMAGE = re.compile(r"<img\b[^>]*\bsrc\s*=\s*[\"'](https?://[^\"']+)[\"']", re.IGNORECASE)
_PLACEHOLDER = re.compile(
    r"[{}<>$\[\]]|\.\.\.|\b(?:data|secret|password|token|key|conversation|history|summary|info|email|answer|"
    r"content|chat|message|memory|context|pii|ssn|credit|card)\b",
    re.IGNORECASE,
)
LONG_QUERY_VALUE = 40


def html_comments(text: str) -> Iterator[Hit]:
    """HTML comments that speak to the model, or that a text detector flags."""
    start = text.find("<!--")
    while start != -1:
        close = text.find("-->", start + 4)
        end = len(text) if close == -1 else close + 3
        body = text[start + 4 : min(end - 3 if close != -1 else end, start + 4 + MAX_HIDDEN)]
        if _suspicious(body):
            yield "hidden.html_comment", start, end, body.strip()
        start = text.find("<!--", end)


def styled_text(text: str) -> Iterator[Hit]:
    """Elements styled invisible (display:none, zero size or opacity, white text) that speak to the model."""
    if "<" not in text:
        return
    for match in _STYLED.finditer(text):
        body = re.sub(r"<[^>]+>", " ", match["body"])
        if _suspicious(body):
            yield "hidden.styled_text", match.start(), match.end(), body.strip()


def _suspicious(body: str) -> bool:
    return len(body.strip()) >= 12 and (bool(_ADDRESSES_MODEL.search(body)) or bool(text_hits(body)))


def exfil_links(text: str) -> Iterator[Hit]:
    """Markdown (and HTML) images whose URL carries data out; markdown links with placeholders for data."""
    if "](" in text:
        for match in _MARKDOWN_IMAGE.finditer(text):
            if _carries_data(match[1], image=True):
                yield "exfil.markdown_image", match.start(), match.end(), match[0]
        for match in _MARKDOWN_LINK.finditer(text):
            if _carries_data(match[1], image=False):
                yield "exfil.markdown_link", match.start(), match.end(), match[0]
    if "<img" in text.lower():
        for match in _HTML_IMAGE.finditer(text):
            if _carries_data(match[1], image=True):
                yield "exfil.html_image", match.start(), match.end(), match[0]


def _carries_data(url: str, *, image: bool) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return image
    query = parse_qsl(parts.query, keep_blank_values=True)
    values = [value for _, value in query]
    if any(_PLACEHOLDER.search(value) and not value.isdigit() for value in values):
        return True
    if re.search(r"[{}<>$\[\]]|\.\.\.", unquote(parts.path)):
        return True
    return image and any(len(value) >= LONG_QUERY_VALUE for value in values)


HIDDEN_DETECTORS = (html_comments, styled_text, exfil_links)

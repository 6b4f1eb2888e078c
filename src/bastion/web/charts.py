"""Small bar charts as inline SVG, rendered on the server (no script, no styles: only numbers go in)."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

BAR_WIDTH = 4
HEIGHT = 40


def bar_chart(values: Sequence[int], label: str, css_class: str = "") -> Markup:
    """An SVG of one bar per value, scaled to the largest, titled `label` with the total."""
    top = max(values, default=0) or 1
    width = BAR_WIDTH * len(values)
    bars = []
    for index, value in enumerate(values):
        if value <= 0:
            continue
        height = max(1.0, HEIGHT * value / top)
        bars.append(
            f'<rect x="{index * BAR_WIDTH}" y="{HEIGHT - height:.1f}" width="{BAR_WIDTH - 1}" height="{height:.1f}">'
            f"<title>{value}</title></rect>"
        )
    title = escape(f"{label}: {sum(values)} in the last hour, at most {max(values, default=0)} a minute")
    return Markup(
        f'<svg class="chart {escape(css_class)}" viewBox="0 0 {width} {HEIGHT}" preserveAspectRatio="none" '
        f'role="img" aria-label="{title}"><title>{title}</title>'
        f'<line x1="0" y1="{HEIGHT - 0.5}" x2="{width}" y2="{HEIGHT - 0.5}" class="axis"></line>'
        + "".join(bars)
        + "</svg>"
    )

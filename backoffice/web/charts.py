"""Server-rendered bar charts: the geometry in whole pixels, computed here with integer math from amounts in
minor units; templates/_charts.html draws it as SVG with its text equivalent. No JavaScript, no library."""

from __future__ import annotations

from dataclasses import dataclass

WIDTH, HEIGHT = 560, 200
LEFT, RIGHT, TOP, BOTTOM = 8, 8, 22, 36  # room for the value above a bar and two label lines below it
GAP = 8  # between bars


@dataclass(frozen=True)
class Bar:
    label: str
    sublabel: str  # a second line under the label (a date), or ""
    value: int  # minor units
    x: int
    y: int
    width: int
    height: int
    emphasis: bool  # drawn in the warning colour (the overdue bar)

    @property
    def centre(self) -> int:
        return self.x + self.width // 2


@dataclass(frozen=True)
class BarChart:
    id: str  # unique on the page: the title's and the text equivalent's ids derive from it
    title: str
    currency: str
    bars: list[Bar]
    width: int = WIDTH
    height: int = HEIGHT
    baseline: int = HEIGHT - BOTTOM
    top: int = TOP

    @property
    def peak(self) -> int:
        return max((b.value for b in self.bars), default=0)

    @property
    def empty(self) -> bool:
        return self.peak == 0


def bar_chart(
    chart_id: str, title: str, currency: str, values: list[tuple[str, str, int]], *, emphasise_first: bool = False
) -> BarChart:
    """Bars of (label, sublabel, value in minor units), scaled so the largest reaches the top; a bar of a
    value above zero is at least 1 px high, so no amount is drawn as nothing."""
    n = max(len(values), 1)
    plot_width = WIDTH - LEFT - RIGHT
    plot_height = HEIGHT - TOP - BOTTOM
    slot = plot_width // n
    peak = max((max(v, 0) for _, _, v in values), default=0)
    bars = []
    for i, (label, sublabel, value) in enumerate(values):
        height = 0 if peak == 0 or value <= 0 else max(1, value * plot_height // peak)
        bars.append(
            Bar(
                label=label,
                sublabel=sublabel,
                value=value,
                x=LEFT + i * slot + GAP // 2,
                y=HEIGHT - BOTTOM - height,
                width=slot - GAP,
                height=height,
                emphasis=emphasise_first and i == 0,
            )
        )
    return BarChart(chart_id, title, currency, bars)

"""``vlmdata stats --html``: one self-contained page of plots (inline SVG, no script, no network).

Per dataset of the input (a meta file or dataset_info.json names several; files and folders are
one each): the token length distribution with the ``--max-length`` line and how many samples cross
it, image sizes (width x height scatter) and aspect ratios, boxes per sample and box sizes, and the
mixture's effective share of each dataset after InternVL's ``repeat_time``. Token lengths are
estimates: text by ``media.tokens.estimate_text_tokens`` plus image tokens by the model's resize
rule (``media.tokens.image_tokens``). They leave out the tokens ``vlmdata validate``'s budget (VD5)
adds per turn and per image wrapper and keep the media tags' text, so they differ from validate's
by a few tokens per turn and image: the page shows the shape of the mixture, validate the budget.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from vlmdata.convert.engine import batches
from vlmdata.media.inspect import MediaInspector
from vlmdata.media.tokens import estimate_text_tokens, image_tokens, min_image_tokens
from vlmdata.schemas.sample import Sample
from vlmdata.tools.overlap import Dataset, datasets_of, iter_samples
from vlmdata.tools.stats import CHUNK, Stats, add_chunk, image_path, trained_count

COLOURS = ("#3b6fd4", "#e07a2e", "#2e9e5b", "#b8418f", "#8c6d31", "#17a2b8", "#6f42c1", "#d62728")
MAX_POINTS = 4000  # scatter points drawn per plot (a deterministic subsample beyond that)
W, H = 640, 220  # plot size in px
PAD_L, PAD_B, PAD_T, PAD_R = 56, 34, 24, 16


@dataclass
class DatasetStats:
    name: str
    file: str
    repeat_time: float
    stats: Stats = field(default_factory=Stats)
    tokens: list[int] = field(default_factory=list)
    sizes: list[tuple[int, int]] = field(default_factory=list)  # per image reference

    @property
    def trained(self) -> int:
        return trained_count(self.stats.samples, {"repeat_time": self.repeat_time})


def sample_tokens(sample: Sample, sizes: list[tuple[int, int] | None], model: str) -> int:
    """Estimated tokens of one sample: its text plus its images at the model's resolution."""
    text = "".join(p.text for m in sample.messages for p in m.parts if hasattr(p, "text"))
    n = estimate_text_tokens(text, model)
    if sizes:
        floor = min_image_tokens(model)
        n += sum(t if t is not None else floor for t in image_tokens(model, sizes))
    return n


def collect(
    paths: Iterable[str], *, root: str | None = None, model: str = "qwen2.5-vl", cache_dir: str | None = None
) -> list[DatasetStats]:
    out = []
    with MediaInspector(cache_dir=cache_dir) as insp:
        for ds in datasets_of(paths, root):
            out.append(_one(ds, insp, model))
    return out


def _one(ds: Dataset, insp: MediaInspector, model: str) -> DatasetStats:
    d = DatasetStats(ds.name, ds.path, ds.repeat_time)
    d.stats.files = [ds.path]

    def readable() -> Iterator[Sample]:
        for _, sample, _why in iter_samples(ds):
            if sample is None:
                d.stats.unreadable_records += 1
            else:
                yield sample

    for chunk in batches(readable(), CHUNK):
        infos = add_chunk(d.stats, chunk, insp)
        for s in chunk:
            sizes: list[tuple[int, int] | None] = []
            for i in range(len(s.images)):
                info = infos.get(image_path(s, i))
                size = (info.width, info.height) if info and info.exists and info.width and info.height else None
                sizes.append(size)
                if size:
                    d.sizes.append(size)
            d.tokens.append(sample_tokens(s, sizes, model))
    return d


# --------------------------------------------------------------------------- SVG


def _esc(v: object) -> str:
    return html.escape(str(v), quote=True)


def _fmt(v: float) -> str:
    if abs(v) >= 10_000:
        return f"{v / 1000:.0f}k"
    if abs(v) >= 1000:
        return f"{v / 1000:.1f}k"
    return f"{v:.0f}" if float(v).is_integer() or abs(v) >= 10 else f"{v:.2g}"


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(s * mag for s in (1, 2, 2.5, 5, 10) if s * mag >= raw)
    start = math.ceil(lo / step) * step
    return [start + k * step for k in range(int((hi - start) / step) + 1)]


class Plot:
    """An SVG plot area with linear axes mapping data (x, y) to pixels."""

    def __init__(
        self, name: str, title: str, xr: tuple[float, float], yr: tuple[float, float], xlabel: str, ylabel: str
    ):
        self.name, self.title = name, title
        self.x0, self.x1 = xr if xr[1] > xr[0] else (xr[0], xr[0] + 1)
        self.y0, self.y1 = yr if yr[1] > yr[0] else (yr[0], yr[0] + 1)
        self.xlabel, self.ylabel = xlabel, ylabel
        self.parts: list[str] = []
        self.attrs: dict[str, Any] = {}

    def px(self, x: float) -> float:
        return PAD_L + (x - self.x0) / (self.x1 - self.x0) * (W - PAD_L - PAD_R)

    def py(self, y: float) -> float:
        return H - PAD_B - (y - self.y0) / (self.y1 - self.y0) * (H - PAD_B - PAD_T)

    def svg(self) -> str:
        axes = [
            f'<line x1="{PAD_L}" y1="{H - PAD_B}" x2="{W - PAD_R}" y2="{H - PAD_B}" stroke="#444"/>',
            f'<line x1="{PAD_L}" y1="{PAD_T}" x2="{PAD_L}" y2="{H - PAD_B}" stroke="#444"/>',
        ]
        for t in _ticks(self.x0, self.x1):
            x = self.px(t)
            axes.append(f'<line x1="{x:.1f}" y1="{H - PAD_B}" x2="{x:.1f}" y2="{H - PAD_B + 4}" stroke="#444"/>')
            axes.append(f'<text x="{x:.1f}" y="{H - PAD_B + 15}" text-anchor="middle">{_fmt(t)}</text>')
        for t in _ticks(self.y0, self.y1, 4):
            y = self.py(t)
            axes.append(f'<line x1="{PAD_L - 4}" y1="{y:.1f}" x2="{W - PAD_R}" y2="{y:.1f}" stroke="#e4e4e4"/>')
            axes.append(f'<text x="{PAD_L - 6}" y="{y + 4:.1f}" text-anchor="end">{_fmt(t)}</text>')
        axes.append(f'<text x="{(W + PAD_L) / 2:.0f}" y="{H - 4}" text-anchor="middle">{_esc(self.xlabel)}</text>')
        axes.append(
            f'<text x="12" y="{(H - PAD_B + PAD_T) / 2:.0f}" text-anchor="middle" '
            f'transform="rotate(-90 12 {(H - PAD_B + PAD_T) / 2:.0f})">{_esc(self.ylabel)}</text>'
        )
        extra = "".join(f' data-{k}="{_esc(v)}"' for k, v in self.attrs.items())
        return (
            f"<figure><figcaption>{_esc(self.title)}</figcaption>"
            f'<svg class="plot" data-plot="{_esc(self.name)}"{extra} xmlns="http://www.w3.org/2000/svg" '
            f'width="{W}" height="{H}" viewBox="0 0 {W} {H}" role="img" aria-label="{_esc(self.title)}">'
            + "".join(axes)
            + "".join(self.parts)
            + "</svg></figure>"
        )


def _bins(values: list[float], lo: float, hi: float, n: int) -> list[int]:
    counts = [0] * n
    span = (hi - lo) or 1
    for v in values:
        counts[min(n - 1, max(0, int((v - lo) / span * n)))] += 1
    return counts


def histogram_plot(
    name: str, title: str, series: list[tuple[str, list[float], str]], xlabel: str, *, bins: int = 40,
    vline: float | None = None, integer: bool = False, ylabel: str = "samples",
) -> str:  # fmt: skip
    """Overlaid step histograms (one per dataset), optionally with a labelled vertical line."""
    values = [v for _, vs, _ in series for v in vs]
    if not values:
        return f'<p class="empty">{_esc(title)}: no values</p>'
    lo, hi = min(values), max(values)
    if vline is not None:
        hi = max(hi, vline * 1.05)
        lo = min(lo, vline)
    if integer:
        lo, hi = math.floor(lo) - 0.5, math.ceil(hi) + 0.5
        bins = max(1, min(bins, int(hi - lo)))
    counted = [(label, _bins(vs, lo, hi, bins), colour) for label, vs, colour in series]
    top = max(max(c) for _, c, _ in counted) or 1
    plot = Plot(name, title, (lo, hi), (0, top * 1.1), xlabel, ylabel)
    width = (hi - lo) / bins
    for label, counts, colour in counted:
        pts = []
        for k, c in enumerate(counts):
            x0, x1 = plot.px(lo + k * width), plot.px(lo + (k + 1) * width)
            y = plot.py(c)
            pts.append(f"{x0:.1f},{y:.1f} {x1:.1f},{y:.1f}")
        base = plot.py(0)
        path = f"{plot.px(lo):.1f},{base:.1f} " + " ".join(pts) + f" {plot.px(hi):.1f},{base:.1f}"
        plot.parts.append(
            f'<polygon points="{path}" fill="{colour}" fill-opacity="0.18" stroke="{colour}" stroke-width="1.5">'
            f"<title>{_esc(label)}</title></polygon>"
        )
    if vline is not None:
        x = plot.px(vline)
        over = sum(1 for v in values if v > vline)
        plot.attrs["max-length"] = _fmt(vline) if not float(vline).is_integer() else int(vline)
        plot.attrs["over"] = over
        plot.parts.append(
            f'<line class="limit" x1="{x:.1f}" y1="{PAD_T}" x2="{x:.1f}" y2="{H - PAD_B}" stroke="#d00" '
            f'stroke-width="2" stroke-dasharray="6 3"/>'
            f'<text x="{x - 4:.1f}" y="{PAD_T + 12}" text-anchor="end" fill="#d00">--max-length {int(vline)}: '
            f"{over} sample(s) over</text>"
        )
    return plot.svg()


def scatter_plot(
    name: str, title: str, series: list[tuple[str, list[tuple[float, float]], str]], xl: str, yl: str
) -> str:
    pts = [p for _, ps, _ in series for p in ps]
    if not pts:
        return f'<p class="empty">{_esc(title)}: no values</p>'
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    plot = Plot(name, title, (0, max(xs) * 1.05), (0, max(ys) * 1.05), xl, yl)
    plot.attrs["points"] = len(pts)
    for label, ps, colour in series:
        step = max(1, len(ps) // max(1, MAX_POINTS // max(1, len(series))))
        dots = "".join(f'<circle cx="{plot.px(x):.1f}" cy="{plot.py(y):.1f}" r="2.5"/>' for x, y in ps[::step])
        plot.parts.append(f'<g fill="{colour}" fill-opacity="0.5"><title>{_esc(label)}</title>{dots}</g>')
    return plot.svg()


def share_plot(data: list[DatasetStats]) -> str:
    """Horizontal bars: each dataset's share of the records and of what is trained after repeat_time."""
    total_raw = sum(d.stats.samples for d in data) or 1
    total = sum(d.trained for d in data) or 1
    row_h = 26
    height = PAD_T + row_h * 2 * len(data) + 24
    parts = []
    label_w = 190
    bar_w = W - label_w - 70
    for k, d in enumerate(data):
        raw, eff = d.stats.samples / total_raw, d.trained / total
        colour = COLOURS[k % len(COLOURS)]
        y = PAD_T + k * 2 * row_h
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end">{_esc(d.name)} ×{d.repeat_time:g}</text>'
            f'<rect x="{label_w}" y="{y + 3}" width="{raw * bar_w:.1f}" height="{row_h - 8}" fill="{colour}" '
            f'fill-opacity="0.35"><title>records</title></rect>'
            f'<text x="{label_w + raw * bar_w + 4:.1f}" y="{y + 15}">{raw:.1%} of records</text>'
            f'<rect class="effective" data-dataset="{_esc(d.name)}" data-share="{eff:.4f}" x="{label_w}" '
            f'y="{y + row_h}" width="{eff * bar_w:.1f}" height="{row_h - 8}" fill="{colour}">'
            "<title>trained</title></rect>"
            f'<text x="{label_w + eff * bar_w + 4:.1f}" y="{y + row_h + 12}">{eff:.1%} trained '
            f"({d.trained:,} samples)</text>"
        )
    return (
        "<figure><figcaption>Mixture: share of records (light) and effective share after repeat_time (dark)"
        f'</figcaption><svg class="plot" data-plot="mixture" xmlns="http://www.w3.org/2000/svg" width="{W}" '
        f'height="{height}" viewBox="0 0 {W} {height}">' + "".join(parts) + "</svg></figure>"
    )


_CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; max-width: 1400px; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 28px; }
.grid { display: flex; flex-wrap: wrap; gap: 18px; }
figure { margin: 0; } figcaption { font-weight: 600; margin-bottom: 4px; }
svg text { font-size: 11px; fill: #333; }
table { border-collapse: collapse; } td, th { padding: 3px 10px; border-bottom: 1px solid #ddd; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.legend span { display: inline-block; margin-right: 14px; } .legend i { display: inline-block; width: 12px;
height: 12px; margin-right: 4px; vertical-align: -1px; }
.empty { color: #888; }
"""


def render_html(data: list[DatasetStats], *, title: str, max_length: int | None, model: str) -> str:
    colours = [COLOURS[k % len(COLOURS)] for k in range(len(data))]
    legend = "".join(
        f'<span><i style="background:{c}"></i>{_esc(d.name)}</span>' for d, c in zip(data, colours, strict=True)
    )
    rows = "".join(
        f"<tr><td>{_esc(d.name)}</td><td>{d.stats.samples:,}</td><td>{d.repeat_time:g}</td><td>{d.trained:,}</td>"
        f"<td>{len(d.sizes):,}</td><td>{int(sum(d.stats.boxes_per_sample)):,}</td>"
        f"<td>{(sorted(d.tokens)[len(d.tokens) // 2] if d.tokens else 0):,}</td>"
        f"<td>{max(d.tokens, default=0):,}</td></tr>"
        for d in data
    )
    table = (
        "<table><tr><th>dataset</th><th>samples</th><th>repeat_time</th><th>trained</th><th>images</th>"
        f"<th>boxes</th><th>median tokens</th><th>max tokens</th></tr>{rows}</table>"
    )

    def series(get: Any) -> list[Any]:
        return [(d.name, get(d), c) for d, c in zip(data, colours, strict=True)]

    plots = [
        histogram_plot(
            "tokens",
            f"Tokens per sample (estimated for {model})",
            series(lambda d: [float(t) for t in d.tokens]),
            "tokens",
            vline=float(max_length) if max_length else None,
        ),
        scatter_plot(
            "image-sizes",
            "Image sizes",
            series(lambda d: [(float(w), float(h)) for w, h in d.sizes]),
            "width (px)",
            "height (px)",
        ),
        histogram_plot(
            "aspect",
            "Aspect ratio (log2 of W/H: 0 = square, 1 = 2:1, -1 = 1:2)",
            series(lambda d: [math.log2(w / h) for w, h in d.sizes]),
            "log2(W/H)",
            ylabel="images",
        ),
        histogram_plot(
            "boxes-per-sample", "Boxes per sample", series(lambda d: d.stats.boxes_per_sample), "boxes", integer=True
        ),
        scatter_plot(
            "box-sizes",
            "Box sizes (pixels of the original image)",
            series(lambda d: list(zip(d.stats.box_width, d.stats.box_height, strict=True))),
            "width (px)",
            "height (px)",
        ),
        histogram_plot(
            "box-area", "Box area / image area", series(lambda d: d.stats.box_area_fraction), "fraction", ylabel="boxes"
        ),
        share_plot(data),
    ]
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{_esc(title)}</title>'
        f'<style>{_CSS}</style></head><body data-datasets="{len(data)}"><h1>{_esc(title)}</h1>{table}'
        f'<p class="legend">{legend}</p><div class="grid">' + "".join(plots) + "</div></body></html>\n"
    )


def save_stats_html(
    paths: list[str], out: str, *, root: str | None = None, max_length: int | None = None, model: str = "qwen2.5-vl",
    cache_dir: str | None = None,
) -> list[DatasetStats]:  # fmt: skip
    from vlmdata.outputs import atomic_write_bytes

    data = collect(paths, root=root, model=model, cache_dir=cache_dir)
    page = render_html(data, title=f"vlmdata stats {' '.join(paths)}", max_length=max_length, model=model)
    atomic_write_bytes(out, page.encode("utf-8"))
    return data

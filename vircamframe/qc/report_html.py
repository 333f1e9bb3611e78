"""The QC report as one static HTML page: inline CSS, no script, relative links to the figures.

The page opens from the output tree over ``file://`` with no server and no network: the only
resources it names are the QC figures, by paths relative to the page (percent-encoded, since
VIRCAM file names hold colons, which would otherwise read as a URL scheme). The warnings come
first, then an overview of the product categories, then a section per category in pipeline
order: a table of the product-level QC values, and per product its figures and a table of its
QC values per detector, out-of-range cells highlighted. Tables of products without warnings
of categories with many products (pawprints) are folded (``<details>``, plain HTML) unless
they hold a warning.
"""

from __future__ import annotations

import html
import os
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

from ..errors import ProductWriteError
from ..tags import PRODUCT_TAGS
from .report_model import ProductQC, QCCheck, QCReport, format_number

__all__ = ["render_html", "write_html"]

_UNFOLDED = 3  # categories with this many products or fewer show every detector table open

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 0 2em 3em;
       color: #1d2430; background: #fff; line-height: 1.4; }
h1 { margin: 0.8em 0 0.2em; font-size: 1.7em; }
h2 { margin-top: 1.8em; border-bottom: 2px solid #c9d3e0; padding-bottom: 0.2em; }
h3 { margin: 1.4em 0 0.4em; font-size: 1.05em; font-family: ui-monospace, "DejaVu Sans Mono", monospace; }
.meta, .meaning { color: #556070; }
nav { display: flex; flex-wrap: wrap; gap: 0.3em 1.2em; }
nav a { white-space: nowrap; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.85em; }
th, td { border: 1px solid #c9d3e0; padding: 0.2em 0.5em; text-align: right; vertical-align: top; }
th { background: #eef2f7; font-weight: 600; }
th .range { display: block; font-weight: normal; color: #556070; font-size: 0.9em; }
td.name, th.name, td.text { text-align: left; font-family: ui-monospace, "DejaVu Sans Mono", monospace; }
td.warn { background: #f8d7da; color: #721c24; font-weight: 600; }
.verdict-ok { color: #1e6b34; font-weight: 600; }
.verdict-warn { color: #a4161a; font-weight: 600; }
.figures { display: flex; flex-wrap: wrap; gap: 1em; }
figure { margin: 0; width: 460px; }
figure img { width: 100%; height: auto; border: 1px solid #c9d3e0; }
figcaption { font-size: 0.8em; color: #556070; font-family: ui-monospace, "DejaVu Sans Mono", monospace; }
details summary { cursor: pointer; color: #2b4a7a; margin: 0.3em 0; }
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def figure_url(figure: Path, page_folder: Path) -> str:
    """A relative, percent-encoded link from the page's folder to ``figure``."""
    relative = os.path.relpath(figure, page_folder)
    return quote(Path(relative).as_posix(), safe="/")


def _cell(check: QCCheck | None) -> str:
    if check is None:
        return "<td></td>"
    number = check.value.number
    shown = format_number(number) if number == number else str(check.value.value)
    kind = "warn" if check.warning else ""
    title = f' title="{_e(check.message())}"' if check.range is not None else ""
    return f'<td class="{kind}"{title}>{_e(shown)}</td>'


def _header(key: str, checks: Sequence[QCCheck]) -> str:
    first = next((c for c in checks if c.value.key == key), None)
    unit = (first.range.unit if first and first.range else first.value.unit if first else "") or ""
    label = f"{key} [{unit}]" if unit else key
    expected = next((c.range for c in checks if c.value.key == key and c.range is not None), None)
    range_text = f'<span class="range">{_e(expected.text())}</span>' if expected else ""
    return f"<th>{_e(label)}{range_text}</th>"


def _grid(rows: dict[tuple[str, ...], dict[str, QCCheck]], labels: Sequence[str],
          checks: Sequence[QCCheck], links: dict[str, str] | None = None) -> str:
    """A table: one row per key tuple, one column per QC key."""
    keys = list(dict.fromkeys(key for row in rows.values() for key in row))
    head = "".join(f'<th class="name">{_e(label)}</th>' for label in labels)
    head += "".join(_header(key, checks) for key in keys)
    lines = [f"<table><thead><tr>{head}</tr></thead><tbody>"]
    for row_key, row in rows.items():
        cells = []
        for part in row_key:
            target = (links or {}).get(part)
            text = f'<a href="#{target}">{_e(part)}</a>' if target else _e(part)
            cells.append(f'<td class="name">{text}</td>')
        cells += [_cell(row.get(key)) for key in keys]
        lines.append(f"<tr>{''.join(cells)}</tr>")
    lines.append("</tbody></table>")
    return "\n".join(lines)


def _figures(product: ProductQC, page_folder: Path) -> str:
    if not product.figures:
        return '<p class="meta">No QC figures.</p>'
    items = []
    for figure in product.figures:
        url = figure_url(figure, page_folder)
        caption = figure.name[len(product.base) + 1 : -len(".png")]
        items.append(f'<figure><a href="{_e(url)}"><img src="{_e(url)}" alt="{_e(figure.name)}" '
                     f'loading="eager"></a><figcaption>{_e(caption)}</figcaption></figure>')
    return f'<div class="figures">{"".join(items)}</div>'


def _product(product: ProductQC, anchor: str, checks: Sequence[QCCheck], page_folder: Path,
             unfold: bool) -> str:
    parts = [f'<article id="{anchor}"><h3>{_e(product.name)}</h3>', _figures(product, page_folder)]
    rows: dict[tuple[str, ...], dict[str, QCCheck]] = defaultdict(dict)
    detector_checks = [c for c in checks if c.value.detector is not None]
    has_frames = any(c.value.frame for c in detector_checks)
    for check in sorted(detector_checks, key=lambda c: (c.value.frame, c.value.detector)):
        key = (check.value.frame, str(check.value.detector)) if has_frames else (str(check.value.detector),)
        rows[key][check.value.key] = check
    if rows:
        warnings = sum(c.warning for c in detector_checks)
        detectors = len({c.value.detector for c in detector_checks})
        summary = f"QC per detector: {detectors} detector(s), {warnings} warning(s)"
        labels = ("frame", "detector") if has_frames else ("detector",)
        opened = " open" if warnings or unfold else ""
        parts.append(f"<details{opened}><summary>{_e(summary)}</summary>"
                     f"{_grid(rows, labels, detector_checks)}</details>")
    parts.append("</article>")
    return "\n".join(parts)


def render_html(report: QCReport, page: Path, table: Path | None = None) -> str:
    """The page of ``report`` as it will be written to ``page`` (links are relative to it).

    ``table`` is the ``QC_REPORT`` product, linked from the header when given.
    """
    from ..recipe import framework_version

    folder = page.absolute().parent
    by_product: dict[str, list[QCCheck]] = defaultdict(list)
    for check in report.checks:
        by_product[check.value.product].append(check)
    anchors = {p.name: f"p{i}" for i, p in enumerate(report.products)}
    warnings = report.warnings
    judged = sum(c.range is not None for c in report.checks)
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>{_e(report.title)}</title><style>{_CSS}</style></head><body>",
           f"<header><h1>{_e(report.title)}</h1>",
           f'<p class="meta">{len(report.products)} product(s), {len(report.checks)} QC value(s), '
           f"{judged} judged against expected ranges; made {stamp} by vircamframe "
           f"{_e(framework_version())}.</p>"]
    if table is not None:
        out.append(f'<p class="meta">The same as a table: <a href="{_e(figure_url(table, folder))}">'
                   f"{_e(table.name)}</a>.</p>")
    verdict = (f'<span class="verdict-warn">{len(warnings)} QC value(s) out of range</span>' if warnings
               else '<span class="verdict-ok">every judged QC value is within its range</span>')
    out.append(f"<p>{verdict}.</p></header>")
    categories = report.categories()
    out.append("<nav>" + "".join(f'<a href="#{_e(_cat_id(c))}">{_e(c)}</a>' for c in categories) + "</nav>")
    out.append(f'<section id="warnings"><h2>Warnings ({len(warnings)})</h2>')
    if warnings:
        out.append("<table><thead><tr><th class='name'>product</th><th class='name'>where</th>"
                   "<th class='name'>QC</th><th>value</th><th>expected</th>"
                   "<th class='name'>why it matters</th></tr></thead><tbody>")
        for check in warnings:
            v, r = check.value, check.range
            unit = f" {r.unit}" if r and r.unit else ""
            out.append(f'<tr><td class="name"><a href="#{anchors[v.product]}">{_e(v.product)}</a></td>'
                       f'<td class="name">{_e(v.where)}</td><td class="name">{_e(v.key)}</td>'
                       f"{_cell(check)}<td>{_e(r.text() + unit if r else '')}</td>"
                       f'<td class="text">{_e(r.why if r else "")}</td></tr>')
        out.append("</tbody></table>")
    else:
        out.append('<p class="verdict-ok">No QC value is out of range.</p>')
    out.append("</section>")
    out.append(_overview(report, by_product))
    for category in categories:
        products = [p for p in report.products if p.category == category]
        recipes = ", ".join(dict.fromkeys(p.recipe for p in products if p.recipe)) or "unknown recipe"
        meaning = PRODUCT_TAGS.get(category, "")
        out.append(f'<section id="{_e(_cat_id(category))}"><h2>{_e(category)}</h2>'
                   f'<p class="meaning">{_e(meaning)}{"; " if meaning else ""}made by {_e(recipes)}; '
                   f"{len(products)} product(s).</p>")
        rows: dict[tuple[str, ...], dict[str, QCCheck]] = {}
        level = [c for p in products for c in by_product[p.name] if c.value.detector is None]
        for check in level:
            rows.setdefault((check.value.product,), {})[check.value.key] = check
        if rows:
            out.append("<p>QC of each product as a whole:</p>" + _grid(rows, ("product",), level, anchors))
        for product in products:
            out.append(_product(product, anchors[product.name], by_product[product.name], folder,
                                unfold=len(products) <= _UNFOLDED))
        out.append("</section>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _cat_id(category: str) -> str:
    return f"cat-{category}"


def _overview(report: QCReport, by_product: dict[str, list[QCCheck]]) -> str:
    lines = ['<section id="overview"><h2>Products</h2><table><thead><tr><th class="name">category</th>'
             '<th class="name">recipe</th><th>products</th><th>figures</th><th>QC values</th>'
             "<th>warnings</th></tr></thead><tbody>"]
    for category in report.categories():
        products = [p for p in report.products if p.category == category]
        checks = [c for p in products for c in by_product[p.name]]
        warnings = sum(c.warning for c in checks)
        recipes = ", ".join(dict.fromkeys(p.recipe for p in products if p.recipe))
        cell = f'<td class="warn">{warnings}</td>' if warnings else f"<td>{warnings}</td>"
        lines.append(f'<tr><td class="name"><a href="#{_e(_cat_id(category))}">{_e(category)}</a></td>'
                     f'<td class="name">{_e(recipes)}</td><td>{len(products)}</td>'
                     f"<td>{sum(len(p.figures) for p in products)}</td><td>{len(checks)}</td>{cell}</tr>")
    lines.append("</tbody></table></section>")
    return "\n".join(lines)


def write_html(report: QCReport, page: Path, table: Path | None = None) -> Path:
    """Write the page atomically (a temporary file in its folder, then a rename)."""
    page = Path(page).absolute()
    text = render_html(report, page, table)
    page.parent.mkdir(parents=True, exist_ok=True)
    tmp = page.parent / f".{page.name}.{os.getpid()}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, page)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise ProductWriteError(f"{page}: cannot write the QC report ({err.strerror or err})") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return page

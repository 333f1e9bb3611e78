"""Documentation generated from a recipe's declarations: man page and parameter table.

Nothing here is written by hand per recipe: the man page, ``--params`` and the docs all read
the same :class:`~vircamframe.recipe.Recipe` attributes.
"""

from __future__ import annotations

import textwrap

from .parameters import format_value
from .recipe import Recipe, framework_version

__all__ = ["man_page", "parameter_table"]

_INDENT = "    "


def _count(minimum: int, maximum: int | None) -> str:
    if maximum is None:
        return f"{minimum}.."
    return str(minimum) if minimum == maximum else f"{minimum}..{maximum}"


def parameter_table(recipe: type[Recipe]) -> str:
    """One row per parameter: name, type, default, allowed values, meaning."""
    rows = [("name", "type", "default", "allowed", "meaning")]
    rows += [
        (f"--{p.name}", p.type_name, format_value(p.default), p.range_text() or "-", p.help)
        for p in recipe.parameters
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r[:4], widths, strict=True)) + "  " + r[4]
             for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def man_page(recipe: type[Recipe]) -> str:
    """An EsoRex-style manual page for ``recipe``."""
    out = ["NAME", f"{_INDENT}{recipe.name} -- {recipe.synopsis}", ""]
    out += [
        "SYNOPSIS",
        f"{_INDENT}vircam-recipe [OPTIONS] {recipe.name} [--PARAM=VALUE ...] SOF",
        "",
        "DESCRIPTION",
    ]
    out += [_INDENT + line if line else "" for line in recipe.description.splitlines()]
    out += ["", f"{_INDENT}Input frames:", ""]
    rows = [("Tag", "Group", "Count", "Meaning")]
    for spec in recipe.inputs:
        first, *alternatives = spec.tag_tuple
        rows.append((first, spec.group, _count(spec.min, spec.max), spec.help))
        rows += [(tag, spec.group, '"', f"counted with {first}") for tag in alternatives]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for r in rows:
        out.append(f"{_INDENT}  " + "  ".join(c.ljust(w) for c, w in zip(r[:3], widths, strict=True))
                   + "  " + r[3])
    out += ["", f"{_INDENT}Products:", ""]
    width = max((len(p.category) for p in recipe.products), default=0)
    out += [f"{_INDENT}  {p.category.ljust(width)}  {p.help}" for p in recipe.products]
    out += ["", f"{_INDENT}In a chain (vircam chain, vircam pipeline):", ""]
    if not recipe.in_chain():
        out.append(f"{_INDENT}  not run: the chain feeds none of its inputs (run it on an SOF).")
    else:
        grouping = "one job per frame" if recipe.group_by == ("frame",) else \
            "jobs group frames of equal " + ", ".join(recipe.group_by)
        out.append(f"{_INDENT}  {grouping}.")
    for spec in recipe.inputs:
        if spec.chain_tags:
            fed = ", ".join(spec.chain_tags)
            out.append(f"{_INDENT}  {'/'.join(spec.tag_tuple)}: the chain feeds {fed} only.")
    per_frame = [p.category + (f" (for {', '.join(p.for_tags)})" if p.for_tags else "")
                 for p in recipe.products if p.per_frame]
    if per_frame:
        out.append(f"{_INDENT}  One product per input frame: {', '.join(per_frame)}.")
    out += ["", "OPTIONS"]
    for p in recipe.parameters:
        out.append(f"{_INDENT}--{p.name}=<{p.type_name}>")
        detail = p.help.rstrip(".") + "."
        if p.range_text():
            detail += f" Allowed: {p.range_text()}."
        detail += f" [{format_value(p.default)}]"
        out += textwrap.wrap(detail, 92, initial_indent=_INDENT * 2, subsequent_indent=_INDENT * 2)
    if not recipe.parameters:
        out.append(f"{_INDENT}(none)")
    out += [
        "",
        "AUTHOR",
        f"{_INDENT}{recipe.author}" + (f" <{recipe.email}>" if recipe.email else ""),
        "",
        "RELEASE",
        f"{_INDENT}{recipe.name} version {recipe.version}, {recipe.pipe_id()}, "
        f"vircamframe {framework_version()}",
    ]
    return "\n".join(out) + "\n"

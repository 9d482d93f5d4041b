"""A page = sections of blocks (tables, figures, text, links), rendered twice from the same
objects: report.html through a Jinja2 template (figures as data: URIs, CSS inline, nothing
fetched) and report.md, its plain-text twin (figures as PNG files beside it).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from lmlab.report.tables import Table
from lmlab.io import atomic_write_bytes


@dataclass
class Figure:
    """A PNG: `data` drawn now (written to `path` for the markdown), or read from an existing `path`."""

    title: str
    path: str  # relative to the page's folder
    data: bytes = b""
    caption: str = ""
    drawn: bool = True  # False: the file exists already (analysis/*.png, plots/*.png)

    @property
    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.data).decode("ascii")


@dataclass
class PageBlock:
    kind: str  # table | figures | pre | text | links | notes
    title: str = ""
    table: Table | None = None
    figures: list[Figure] = field(default_factory=list)
    text: str = ""
    links: list[tuple[str, str, str]] = field(default_factory=list)  # (label, href, detail)
    items: list[str] = field(default_factory=list)
    collapsed: bool = False  # pre: inside <details> on screen


@dataclass
class PageSection:
    id: str
    title: str
    blocks: list[PageBlock] = field(default_factory=list)
    intro: str = ""


def table(t: Table) -> PageBlock:
    return PageBlock("table", table=t)


def figures(figs: list[Figure]) -> PageBlock:
    return PageBlock("figures", figures=figs)


def existing_figure(page_dir: Path, path: Path, caption: str = "") -> Figure:
    """A PNG another stage wrote (analysis/, plots/, data/), embedded as it is."""
    rel = path.relative_to(page_dir).as_posix()
    title = path.stem.replace("_", " ").replace("-", " ")
    return Figure(title, rel, path.read_bytes(), caption or rel, drawn=False)


def _env():
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    env = Environment(loader=PackageLoader("lmlab.report", "templates"), undefined=StrictUndefined,
                      autoescape=select_autoescape(["html.j2"]), trim_blocks=True, lstrip_blocks=True,
                      keep_trailing_newline=True)
    env.filters["md_cell"] = lambda text: str(text).replace("|", "\\|").replace("\n", " ")
    return env


def render(kind: str, title: str, subtitle: str, sections: list[PageSection], notes: list[str]) -> tuple[str, str]:
    """(html, markdown) of one page."""
    env = _env()
    context = {"kind": kind, "title": title, "subtitle": subtitle, "sections": sections, "notes": notes,
               "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    return env.get_template("page.html.j2").render(context), env.get_template("page.md.j2").render(context)


def write_page(directory: Path, kind: str, title: str, subtitle: str, sections: list[PageSection],
               notes: list[str]) -> Path:
    """Render in memory first, then write the drawn PNGs, report.md and report.html (each atomically)."""
    html, md = render(kind, title, subtitle, sections, notes)
    for section in sections:
        for block in section.blocks:
            for fig in block.figures:
                if fig.drawn and fig.data:
                    _write(directory / fig.path, fig.data)
    _write(directory / "report.md", md.encode("utf-8"))
    _write(directory / "report.html", html.encode("utf-8"))
    return directory / "report.html"


def _write(path: Path, data: bytes) -> None:
    """atomic_write_bytes, naming `path` when it fails: a write() that meets a full disk names no file."""
    try:
        atomic_write_bytes(path, data)
    except OSError as err:
        err.filename = err.filename or str(path)
        raise

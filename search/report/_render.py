"""Report blocks -> Markdown and self-contained HTML (images inlined)."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]


@dataclass
class Image:
    path: Path
    caption: str


@dataclass
class Code:
    text: str


@dataclass
class Para:
    """A paragraph of (text, bold) spans; `bullet` makes it a list item."""

    spans: list[tuple[str, bool]]
    bullet: bool = False

    @property
    def text(self) -> str:
        return "".join(t for t, _ in self.spans)


Block = Union[Table, Image, Code, Para, str]


@dataclass
class Report:
    """The report as data; rendered to Markdown and HTML."""

    title: str
    sections: list[tuple[str, list[Block]]] = field(default_factory=list)  # (heading, blocks)
    files: list[Path] = field(default_factory=list)

    def add(self, heading: str, *blocks: Block) -> None:
        self.sections.append((heading, list(blocks)))


def to_markdown(report: Report, out: Path) -> str:
    lines = [f"# {report.title}", ""]
    for heading, blocks in report.sections:
        lines += [f"## {heading}", ""]
        for b in blocks:
            if isinstance(b, Table):
                lines += ["| " + " | ".join(b.header) + " |", "|" + "---|" * len(b.header)]
                lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in b.rows]
            elif isinstance(b, Image):
                lines.append(f"![{b.caption}]({b.path.relative_to(out)})")
                lines.append(f"*{b.caption}*")
            elif isinstance(b, Code):
                lines += ["```yaml", b.text.rstrip(), "```"]
            elif isinstance(b, Para):
                text = "".join(f"**{t}**" if bold else t for t, bold in b.spans)
                lines.append(("- " if b.bullet else "") + text)
            else:
                lines.append(str(b))
            lines.append("")
    return "\n".join(lines)


def to_html(report: Report) -> str:
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(report.title)}</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
             "text-align:left}img{max-width:100%}pre{background:#f4f4f4;padding:1em}</style></head><body>",
             f"<h1>{html.escape(report.title)}</h1>"]
    for heading, blocks in report.sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        parts += [_html_block(b) for b in blocks]
    parts.append("</body></html>")
    return "\n".join(parts)


def _html_block(b: Any) -> str:
    if isinstance(b, Table):
        head = "".join(f"<th>{html.escape(h)}</th>" for h in b.header)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in b.rows)
        return f"<table><tr>{head}</tr>{body}</table>"
    if isinstance(b, Image):
        data = base64.b64encode(b.path.read_bytes()).decode()
        return (f"<figure><img src='data:image/png;base64,{data}' alt='{html.escape(b.caption)}'>"
                f"<figcaption>{html.escape(b.caption)}</figcaption></figure>")
    if isinstance(b, Code):
        return f"<pre>{html.escape(b.text)}</pre>"
    if isinstance(b, Para):
        text = "".join(f"<b>{html.escape(t)}</b>" if bold else html.escape(t) for t, bold in b.spans)
        return f"<ul><li>{text}</li></ul>" if b.bullet else f"<p>{text}</p>"
    return f"<p>{html.escape(str(b))}</p>"

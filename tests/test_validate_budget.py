"""VD5 token budgets: InternVL tiling, Qwen smart_resize tokens, LLaVA 576, and the rules with --max-length."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from vlmdata.errors import VlmdataError
from vlmdata.media import tokens as tk
from vlmdata.validators import validate

from .conftest import make_image, write_jsonl

# --- InternVL dynamic_preprocess -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "max_num", "grid", "tiles"),
    [
        ((448, 448), 12, (1, 1), 1),  # one tile: no thumbnail
        ((896, 448), 12, (2, 1), 3),  # 2x1 grid + thumbnail
        ((448, 896), 12, (1, 2), 3),
        # 800x1300: aspect 0.615; (2,3)=0.667 is closest among i*j <= 12 ((3,5)=0.6 would be 15 tiles)
        ((800, 1300), 12, (2, 3), 7),
        ((1300, 800), 12, (3, 2), 7),
        # 896x896 ties (1,1), (2,2), (3,3): the larger grid wins while W*H > 0.5 * 448^2 * i*j
        # (802,816 > 401,408 for 2x2, not > 903,168 for 3x3)
        ((896, 896), 12, (2, 2), 5),
        ((448, 448), 1, (1, 1), 1),
        ((1920, 1080), 6, (2, 1), 3),  # aspect 1.78: 2x1 (2.0) beats 3x2 (1.5) within 6 tiles
        ((1920, 1080), 12, (4, 2), 9),
        ((100, 2000), 12, (1, 12), 13),
        # a small 4:3 image matches the 4x3 grid exactly: upscaled to 12 tiles + thumbnail (3,328 tokens)
        ((320, 240), 12, (4, 3), 13),
        ((256, 256), 12, (1, 1), 1),
    ],
)
def test_internvl_grid_matches_dynamic_preprocess(size, max_num, grid, tiles):
    assert tk.internvl_grid(*size, max_num) == grid
    assert tk.internvl_tiles(*size, max_num) == tiles


def test_internvl_tokens_256_per_tile_with_thumbnail():
    assert tk.image_tokens("internvl3", [(448, 448)]) == [256]
    assert tk.image_tokens("internvl2.5", [(896, 448)]) == [768]  # 3 tiles
    assert tk.image_tokens("internvl3", [(800, 1300)]) == [7 * 256]
    assert tk.internvl_tiles(896, 448, use_thumbnail=False) == 2


def test_internvl_multi_image_divides_max_dynamic_patch():
    assert tk.internvl_max_num(12, 1) == 12
    assert tk.internvl_max_num(12, 2) == 6
    assert tk.internvl_max_num(12, 5) == 2
    assert tk.internvl_max_num(12, 13) == 1  # max(1, 12 // 13)
    # two 800x1300 images: 6 tiles each at most -> (1,2)=0.5 vs (2,3)=0.667: (2,3) -> 6 + thumbnail
    assert tk.image_tokens("internvl3", [(800, 1300), (800, 1300)]) == [7 * 256, 7 * 256]
    # five 1920x1080 images: 2 tiles each at most -> 2x1 + thumbnail = 3 tiles
    assert tk.image_tokens("internvl3", [(1920, 1080)] * 5) == [768] * 5
    # thirteen images: one tile each, no thumbnail
    assert tk.image_tokens("internvl3", [(1920, 1080)] * 13) == [256] * 13
    # a meta entry's max_dynamic_patch 2: 800x1300 -> (1,2) + thumbnail
    assert tk.image_tokens("internvl3", [(800, 1300)], max_dynamic_patch=2) == [768]


# --- Qwen2-VL / Qwen2.5-VL and LLaVA ------------------------------------------------------------------


def test_qwen_tokens_from_smart_resize():
    # 640x428 -> smart_resize (h 428 -> 420, w 640 -> 644) -> 644 * 420 / 784 = 345
    assert tk.qwen_image_tokens(640, 428) == 345
    assert tk.image_tokens("qwen2.5-vl", [(640, 428)]) == [345]
    assert tk.image_tokens("qwen2-vl", [(28, 28)]) == [4]  # grown to min_pixels 3,136 = 56x56
    # 4000x3000: round(3000/28) = 107 -> 2996, round(4000/28) = 143 -> 4004; 4004 * 2996 = 11,995,984 is under
    # the default max_pixels 12,845,056, so no scaling: 143 * 107 = 15,301 tokens (docs/frames.md#smart_resize)
    assert tk.qwen_image_tokens(4000, 3000) == 15301
    # 4144x3080 is already a multiple of 28 on both sides (148 x 110) and 12,763,520 px, still under
    # max_pixels: kept as it is, 148 * 110 = 16,280 tokens
    assert tk.qwen_image_tokens(4144, 3080) == 16280
    # with max_pixels 1,003,520: beta = sqrt(12,000,000 / 1,003,520) = 3.458, floor(3000/3.458/28) = 30 -> 840,
    # floor(4000/3.458/28) = 41 -> 1148: 41 * 30 = 1,230 tokens
    assert tk.qwen_image_tokens(4000, 3000, max_pixels=1_003_520) == 1230
    # LLaMA-Factory shrinks to image_max_pixels 589,824 first: 886x665 -> 896x672 -> 768 tokens
    assert tk.qwen_image_tokens(4000, 3000, image_max_pixels=tk.LLAMAFACTORY_IMAGE_MAX_PIXELS) == 768
    assert tk.image_tokens("qwen2.5-vl", [(10_000, 10)]) == [None]  # aspect ratio over 200: refused


def test_qwen3_vl_tokens_use_factor_32():
    """Qwen3-VL: patch 16 x merge 2, so smart_resize rounds to multiples of 32 and a token is 32x32 px;
    defaults min_pixels 65,536, max_pixels 16,777,216 (its preprocessor_config.json). By hand:"""
    # 640x428: round(428/32) = 13 -> 416, round(640/32) = 20 -> 640; 266,240 px is within the bounds: 13 * 20
    assert tk.qwen_image_tokens(640, 428, model="qwen3-vl") == 260
    assert tk.image_tokens("qwen3-vl", [(640, 428)]) == [260]
    # 4000x3000: round(3000/32) = 94 -> 3008, round(4000/32) = 125 -> 4000; 12,032,000 px: 94 * 125
    assert tk.image_tokens("qwen3-vl", [(4000, 3000)]) == [11750]
    # 6000x4000: 4000 x 6016 (round(187.5) = 188) = 24,064,000 px > 16,777,216: beta = sqrt(24e6 / 16,777,216)
    # = 1.19604, floor(4000/1.19604/32) = 104 -> 3328, floor(6000/1.19604/32) = 156 -> 4992: 104 * 156
    assert tk.image_tokens("qwen3-vl", [(6000, 4000)]) == [16224]
    # 100x50: 96 x 64 = 6,144 px < 65,536: beta = sqrt(65,536 / 5,000) = 3.62039, ceil(50*3.62039/32) = 6,
    # ceil(100*3.62039/32) = 12: 6 * 12
    assert tk.image_tokens("qwen3-vl", [(100, 50)]) == [72]
    assert tk.min_image_tokens("qwen3-vl") == 64  # 65,536 / 1,024
    assert "qwen3-vl" in tk.BUDGET_MODELS


def test_validate_counts_qwen3_vl_budgets(tmp_path: Path):
    make_image(tmp_path / "a.png", (640, 428))
    src = write_jsonl(tmp_path / "a.jsonl", [_internvl_row("a.png")])
    report = validate(str(src), model="qwen3-vl", max_length=200, select=["VD501"], target="internvl")
    assert [f.code for f in report.findings] == ["VD501"]
    message = report.findings[0].message
    assert "260 tokens with qwen3-vl" in message and "h*w/1024" in message and "16,777,216" in message


def test_llava_576_per_image_and_unknown_sizes():
    assert tk.image_tokens("llava-1.5", [(4000, 3000), (10, 10)]) == [576, 576]
    assert tk.image_tokens("llava-1.5", [None]) == [576]
    assert tk.image_tokens("internvl3", [None]) == [None]
    assert tk.min_image_tokens("internvl3") == 256
    assert tk.min_image_tokens("qwen2.5-vl") == 4


def test_unknown_model_is_a_usage_error(tmp_path: Path):
    with pytest.raises(VlmdataError, match="unknown model 'gpt-4v'"):
        tk.check_model("gpt-4v")
    src = write_jsonl(tmp_path / "a.jsonl", [_internvl_row("a.jpg")])
    with pytest.raises(VlmdataError, match=r"choose one of internvl2\.5"):
        validate(str(src), model="gpt-4v", select=["VD5"])


def test_text_estimate():
    assert tk.estimate_text_tokens("") == 0
    assert tk.estimate_text_tokens("a" * 400) == 100
    assert tk.estimate_text_tokens("汉" * 100) == 70
    assert tk.estimate_text_tokens("a" * 350, "llava-1.5") == 100


# --- the rules -------------------------------------------------------------------------------------


def _internvl_row(image: str | None, answer: str = "a", **extra) -> dict:
    row = {"id": "1", "conversations": [{"from": "human", "value": "<image>\nq"}, {"from": "gpt", "value": answer}]}
    if image is not None:
        row["image"] = image
    row.update(extra)
    return row


def _codes(report, prefix: str = "VD5") -> list[str]:
    return [f.code for f in report.findings if f.code.startswith(prefix)]


def _internvl_file(tmp_path: Path, size=(896, 448), answer: str = "a") -> Path:
    make_image(tmp_path / "img.png", size)
    return write_jsonl(tmp_path / "train.jsonl", [_internvl_row("img.png", answer)])


def test_vd501_images_alone_over_max_length(tmp_path: Path):
    src = _internvl_file(tmp_path)  # 3 tiles = 768 image tokens
    report = validate(str(src), model="internvl3", max_length=700, select=["VD5"])
    assert _codes(report) == ["VD501"]
    msg = report.findings[0].message
    assert "768 tokens with internvl3" in msg and "3 tile(s)" in msg and "--max-length 700" in msg
    assert "image tokens are truncated" in msg  # the InternVL consumer's failure
    assert report.findings[0].line == 1
    assert _codes(validate(str(src), model="internvl3", max_length=800, select=["VD501"])) == []
    assert _codes(validate(str(src), model="internvl3", select=["VD5"])) == []  # no --max-length: nothing
    assert _codes(validate(str(src), max_length=10, select=["VD5"])) == []  # no --model: nothing


def test_vd502_images_plus_text_over_max_length(tmp_path: Path):
    short = _internvl_file(tmp_path / "s")
    assert _codes(validate(str(short), model="internvl3", max_length=800, select=["VD5"])) == []
    long = _internvl_file(tmp_path / "l", answer="word " * 200)  # ~250 text tokens
    report = validate(str(long), model="internvl3", max_length=800, select=["VD5"])
    assert _codes(report) == ["VD502"]
    assert "768 image +" in report.findings[0].message and "estimated" in report.findings[0].message
    assert report.findings[0].severity == "warning"
    # images alone over: only VD501, not both
    assert _codes(validate(str(long), model="internvl3", max_length=700, select=["VD5"])) == ["VD501"]


def test_vd502_text_only_record(tmp_path: Path):
    src = write_jsonl(
        tmp_path / "t.jsonl",
        [{"messages": [{"role": "user", "content": "x " * 2000}, {"role": "assistant", "content": "y"}]}],
    )
    report = validate(str(src), model="qwen2.5-vl", max_length=500, select=["VD5"])
    assert _codes(report) == ["VD502"]
    assert "drops the row silently" in report.findings[0].message  # ms-swift's consumer


def test_qwen_budget_rule(tmp_path: Path):
    img = make_image(tmp_path / "p.png", (640, 428))
    src = write_jsonl(
        tmp_path / "s.jsonl",
        [
            {
                "messages": [{"role": "user", "content": "<image>q"}, {"role": "assistant", "content": "a"}],
                "images": [str(img)],
            }
        ],
    )
    report = validate(str(src), model="qwen2.5-vl", max_length=300, select=["VD5"])
    assert _codes(report) == ["VD501"]
    assert "345 tokens with qwen2.5-vl" in report.findings[0].message
    assert "12,845,056 (qwen-vl-utils' default)" in report.findings[0].message
    assert _codes(validate(str(src), model="qwen2.5-vl", max_length=400, select=["VD5"])) == []
    assert _codes(validate(str(src), model="llava-1.5", max_length=500, select=["VD5"])) == ["VD501"]  # 576
    assert _codes(validate(str(src), model="llava-1.5", max_length=600, select=["VD5"])) == []


def test_declared_size_used_when_the_file_is_missing(tmp_path: Path):
    src = write_jsonl(tmp_path / "d.jsonl", [_internvl_row("gone.jpg", width=800, height=1300)])
    report = validate(str(src), model="internvl3", max_length=1000, select=["VD5"])
    assert _codes(report) == ["VD501"] and "1792 tokens" in report.findings[0].message
    # no size at all: counted at the minimum (one tile), so nothing is claimed over 1000
    src2 = write_jsonl(tmp_path / "u.jsonl", [_internvl_row("gone.jpg")])
    assert _codes(validate(str(src2), model="internvl3", max_length=1000, select=["VD501"])) == []
    report = validate(str(src2), model="internvl3", max_length=200, select=["VD501"])
    assert "unknown size counted at their minimum" in report.findings[0].message


def test_meta_entry_max_dynamic_patch_lowers_the_budget(tmp_path: Path):
    make_image(tmp_path / "img.png", (800, 1300))
    ann = write_jsonl(tmp_path / "train.jsonl", [_internvl_row("img.png")])
    entry = {"root": str(tmp_path), "annotation": str(ann), "data_augment": False, "repeat_time": 1}
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps({"ds": entry}))
    assert _codes(validate(str(meta), model="internvl3", max_length=1000, select=["VD5"])) == ["VD501"]  # 1792
    meta.write_text(json.dumps({"ds": {**entry, "max_dynamic_patch": 2}}))
    assert _codes(validate(str(meta), model="internvl3", max_length=1000, select=["VD5"])) == []  # 768


def test_tokenizer_folder_counts_text_exactly(tmp_path: Path):
    tokenizers = pytest.importorskip("tokenizers")
    from tokenizers import models, pre_tokenizers

    tok = tokenizers.Tokenizer(models.WordLevel({"[UNK]": 0, "word": 1}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    (tmp_path / "tok").mkdir()
    tok.save(str(tmp_path / "tok" / "tokenizer.json"))
    src = _internvl_file(tmp_path / "d", answer="word " * 30)  # 30 tokens exactly
    report = validate(str(src), model="internvl3", max_length=790, tokenizer=str(tmp_path / "tok"), select=["VD5"])
    assert _codes(report) == ["VD502"]
    # 768 image + (1 ("q") + 30 + 2 turns x 4 + 2 wrapper) text
    assert "takes 809 tokens" in report.findings[0].message and "by the tokenizer" in report.findings[0].message


def test_tokenizer_problems_are_usage_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    src = _internvl_file(tmp_path)
    tk.text_counter.cache_clear()
    with pytest.raises(VlmdataError, match=r"no tokenizer\.json"):
        validate(str(src), model="internvl3", max_length=100, tokenizer=str(tmp_path), select=["VD5"])
    (tmp_path / "tokenizer.json").write_text("{}")
    monkeypatch.setitem(sys.modules, "tokenizers", None)  # not installed
    tk.text_counter.cache_clear()
    with pytest.raises(VlmdataError, match="pip install tokenizers"):
        validate(str(src), model="internvl3", max_length=100, tokenizer=str(tmp_path), select=["VD5"])
    tk.text_counter.cache_clear()


def test_budget_rules_have_docs():
    from vlmdata.validators import RULES

    for code in ("VD501", "VD502"):
        doc = RULES[code].doc()
        assert "## Why is this bad?" in doc and "ms-swift" in doc

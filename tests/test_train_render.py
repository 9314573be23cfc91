"""Data -> tensors for each model family: rendered grounding, label masks, lengths, checks.

Tiny random models are built from configs (vlmdata.train.tiny), nothing is downloaded. Box
numbers are recomputed here from the conventions of docs/frames.md#pixel_resized, docs/frames.md#frames-at-a-glance
and, for Qwen, checked against the upstream oracle of shared/realdata (Qwen's process_bbox.ipynb).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from PIL import Image  # noqa: E402

import vlmdata  # noqa: E402
from vlmdata.errors import RecordError, VlmdataError  # noqa: E402
from vlmdata.schemas.sample import Box, Boxes, Frame, ImageSlot, MediaRef, Message, Ref, Sample, Text  # noqa: E402
from vlmdata.train.collate import IGNORE, Collator  # noqa: E402
from vlmdata.train.data import LengthCounter  # noqa: E402
from vlmdata.train.families import FAMILIES, detect_family  # noqa: E402
from vlmdata.train.model import builtin_template, choose_template  # noqa: E402
from vlmdata.train.render import Renderer, qwen_resized  # noqa: E402
from vlmdata.train.tiny import TINY_FAMILIES, save_tiny  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SWIFT = REPO / "sample_data" / "swift" / "train.jsonl"
IMAGES = REPO / "sample_data" / "images"
# ground-0002 of the sample data: pixel boxes on shapes_320x240.png (sample_data/README.md).
RED_SQUARES = [(37, 52, 101, 116), (205, 31, 269, 95)]
BLUE_CIRCLE = [(118, 128, 206, 216)]


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny-models")
    return {f: Path(save_tiny(f, str(root / f))) for f in TINY_FAMILIES}


def _processor(folder: Path, family_name: str):
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(folder)
    choose_template(processor, FAMILIES[family_name], "builtin")
    return processor


@pytest.fixture(scope="module")
def samples() -> dict[str, Sample]:
    return {s.id: s for s in vlmdata.read(str(SWIFT), root=str(IMAGES))}


def _norm1000(box: tuple[int, ...], w: int, h: int) -> list[int]:
    return [round(box[0] / w * 1000), round(box[1] / h * 1000), round(box[2] / w * 1000), round(box[3] / h * 1000)]


def _supervised(processor, batch, row: int) -> list[str]:
    """The decoded runs of consecutive labelled tokens of one row."""
    ids, labels = batch["input_ids"][row].tolist(), batch["labels"][row].tolist()
    runs, current = [], []
    for t, lab in zip(ids, labels, strict=True):
        if lab != IGNORE:
            assert lab == t
            current.append(t)
        elif current:
            runs.append(processor.tokenizer.decode(current))
            current = []
    if current:
        runs.append(processor.tokenizer.decode(current))
    return runs


def _expected_answer(family: str) -> str:
    w, h = 320, 240
    red = [_norm1000(b, w, h) for b in RED_SQUARES]
    blue = [_norm1000(b, w, h) for b in BLUE_CIRCLE]
    if family == "internvl":  # docs/formats.md#internvl-grounding: <ref>..</ref><box>[[..], [..]]</box>, 0-1000
        return (
            f"<ref>red square</ref><box>{json.dumps(red)}</box> and <ref>blue circle</ref><box>{json.dumps(blue)}</box>"
        )
    if family == "qwen2_vl":  # one <|box_start|> group per box, consecutive groups = one referent

        def tokens(boxes: list[list[int]]) -> str:
            return "".join(f"<|box_start|>({b[0]},{b[1]}),({b[2]},{b[3]})<|box_end|>" for b in boxes)

        return (
            f"<|object_ref_start|>red square<|object_ref_end|>{tokens(red)} and "
            f"<|object_ref_start|>blue circle<|object_ref_end|>{tokens(blue)}"
        )
    if family == "qwen2_5_vl":  # docs/frames.md#pixel_resized: absolute pixels of the resized image, round(x * W'/W)
        rw, rh = 112, 84  # smart_resize(240, 320) with the tiny processor's max_pixels 16*28*28

        def scaled(b: tuple[int, ...]) -> list[int]:
            return [round(b[0] * rw / w), round(b[1] * rh / h), round(b[2] * rw / w), round(b[3] * rh / h)]

        def answer(label: str, boxes: list) -> str:
            body = ",\n\t".join(json.dumps({"bbox_2d": scaled(b), "label": label}) for b in boxes)
            return f"```json\n[\n\t{body}\n]\n```"

        return f"{answer('red square', RED_SQUARES)} and {answer('blue circle', BLUE_CIRCLE)}"

    if family == "qwen3_vl":  # docs/frames.md#pixel_resized: Qwen3-VL is relative 0-1000 again, in the JSON answers

        def json_answer(label: str, boxes: list[list[int]]) -> str:
            body = ",\n\t".join(json.dumps({"bbox_2d": b, "label": label}) for b in boxes)
            return f"```json\n[\n\t{body}\n]\n```"

        return f"{json_answer('red square', red)} and {json_answer('blue circle', blue)}"

    # LLaVA: fractions of the image with 2 decimals (docs/formats.md#llava-boxes)
    def frac(b: tuple[int, ...]) -> str:
        return "[" + ", ".join(repr(round(v / s, 2)) for v, s in zip(b, (w, h, w, h), strict=True)) + "]"

    return f"red square {frac(RED_SQUARES[0])}, {frac(RED_SQUARES[1])} and blue circle {frac(BLUE_CIRCLE[0])}"


@pytest.mark.parametrize("family", TINY_FAMILIES)
def test_grounding_sample_renders_in_the_family_syntax_and_labels_only_the_answer(family, tiny_models, samples):
    processor = _processor(tiny_models[family], family)
    collator = Collator(Renderer(detect_family(str(tiny_models[family])), processor), processor)
    batch = collator([samples["ground-0002"]])
    eos = processor.tokenizer.eos_token
    runs = _supervised(processor, batch, 0)
    # Exactly one supervised span: the answer with its end-of-turn token; no prompt, no image token.
    assert len(runs) == 1
    expected = _expected_answer(family) + eos
    if family == "llava":  # byte-level BPE glues "ASSISTANT: " + "red" into one token "Ġred" (notes, step 6)
        assert runs[0].lstrip() == expected
    else:
        assert runs[0] == expected
    image_id = processor.image_token_id
    assert int((batch["input_ids"] == image_id).sum()) > 0
    assert not bool((batch["labels"] == image_id).any())
    text = processor.tokenizer.decode(batch["input_ids"][0])
    assert "Locate the red squares and the blue circle." in text
    assert "Locate" not in "".join(runs)


@pytest.mark.parametrize("family", TINY_FAMILIES)
def test_multi_turn_supervises_every_answer_and_nothing_else(family, tiny_models, samples):
    processor = _processor(tiny_models[family], family)
    collator = Collator(Renderer(detect_family(str(tiny_models[family])), processor), processor)
    sample = samples["multi-turn-0004"]
    batch = collator([sample, samples["ground-0002"]])  # padded batch of two
    eos = processor.tokenizer.eos_token
    runs = [r.strip() for r in _supervised(processor, batch, 0)]
    answers = [m.text() for m in sample.messages if m.role == "assistant"]
    assert runs[0] == answers[0] + eos
    assert len(runs) == 2 and runs[1].endswith(eos) and "orange circle" in runs[1]
    # Padding is never a label.
    pad = processor.tokenizer.pad_token_id
    assert not bool(((batch["input_ids"] == pad) & (batch["labels"] != IGNORE) & (batch["attention_mask"] == 0)).any())


def test_chatml_mask_equals_a_token_scan_of_assistant_turns(tiny_models, samples):
    """The generation-block mask == every token after '<|im_start|>assistant\\n' up to and including <|im_end|>."""
    processor = _processor(tiny_models["qwen2_vl"], "qwen2_vl")
    collator = Collator(Renderer(FAMILIES["qwen2_vl"], processor), processor)
    batch = collator(list(samples.values()))
    tok = processor.tokenizer
    start, end = tok.convert_tokens_to_ids("<|im_start|>"), tok.convert_tokens_to_ids("<|im_end|>")
    header = tok.encode("assistant\n", add_special_tokens=False)
    for row_ids, row_labels in zip(batch["input_ids"].tolist(), batch["labels"].tolist(), strict=True):
        scan = [IGNORE] * len(row_ids)
        i = 0
        while i < len(row_ids):
            if row_ids[i] == start and row_ids[i + 1 : i + 1 + len(header)] == header:
                j = i + 1 + len(header)
                while row_ids[j] != end:
                    scan[j] = row_ids[j]
                    j += 1
                scan[j] = row_ids[j]
                i = j
            i += 1
        assert scan == row_labels


@pytest.mark.parametrize("family", TINY_FAMILIES)
def test_lengths_from_headers_equal_the_encoded_lengths(family, tiny_models, samples):
    processor = _processor(tiny_models[family], family)
    renderer = Renderer(FAMILIES[family], processor)
    counter = LengthCounter(renderer, processor)
    collator = Collator(renderer, processor)
    for sample in samples.values():
        batch = collator([sample])
        assert counter(sample) == batch["input_ids"].shape[1], sample.id


def _notebook_sample(image: Path) -> Sample:
    box = Box(146, 137, 615, 415, Frame.PIXEL)  # Qwen process_bbox.ipynb input box, 640x428 image
    return Sample(
        [
            Message("user", [ImageSlot(0), Text("Locate the bowl of carrots.")]),
            Message("assistant", [Ref("bowl of carrots"), Boxes((box,))]),
        ],
        images=[MediaRef(str(image), str(image))],
        id="notebook",
    )


def test_qwen25_boxes_use_the_resize_the_processor_applies_upstream_oracle(tiny_models, realdata):
    case = realdata / "qwen-bbox-notebook"
    expected = json.loads((case / "case.json").read_text())["expected"]
    oracle = expected["qwen25vl_resized_pixels"]
    args = oracle["smart_resize_args"]
    processor = _processor(tiny_models["qwen2_5_vl"], "qwen2_5_vl")
    processor.image_processor.size = {"shortest_edge": args["min_pixels"], "longest_edge": args["max_pixels"]}
    image = case / expected["image"]["path"]
    assert qwen_resized(processor.image_processor, 640, 428) == tuple(reversed(oracle["resized_HxW"]))
    collator = Collator(Renderer(FAMILIES["qwen2_5_vl"], processor), processor)
    batch = collator([_notebook_sample(image)])
    answer = _supervised(processor, batch, 0)[0]
    assert json.loads(answer.split("```json\n")[1].split("\n```")[0]) == [
        {"bbox_2d": oracle["value"], "label": "bowl of carrots"}
    ]
    # The grid the processor returned is the resize the boxes were written for (420 x 644 = 30 x 46 patches).
    assert batch["image_grid_thw"].tolist() == [[1, 30, 46]]


def test_qwen2_and_internvl_boxes_match_the_notebook_norm1000(tiny_models, realdata):
    case = realdata / "qwen-bbox-notebook"
    expected = json.loads((case / "case.json").read_text())["expected"]
    image = case / expected["image"]["path"]
    values = expected["qwen2vl_norm1000"]["value"]
    for family, text in (
        ("qwen2_vl", "<|box_start|>({},{}),({},{})<|box_end|>".format(*values)),
        ("internvl", "<box>[[{}, {}, {}, {}]]</box>".format(*values)),
    ):
        processor = _processor(tiny_models[family], family)
        batch = Collator(Renderer(FAMILIES[family], processor), processor)([_notebook_sample(image)])
        assert text in _supervised(processor, batch, 0)[0]


def test_max_pixels_moves_qwen25_boxes_with_the_resize(tiny_models, samples):
    processor = _processor(tiny_models["qwen2_5_vl"], "qwen2_5_vl")
    processor.image_processor.size = {"shortest_edge": 3136, "longest_edge": 64 * 28 * 28}
    w, h = qwen_resized(processor.image_processor, 320, 240)
    assert (w, h) == (252, 168)  # 76,800 px > 50,176: beta = 1.237, floor(320/beta/28)*28, floor(240/beta/28)*28
    batch = Collator(Renderer(FAMILIES["qwen2_5_vl"], processor), processor)([samples["ground-0002"]])
    first = json.loads(_supervised(processor, batch, 0)[0].split("```json\n")[1].split("\n```")[0])[0]
    assert first["bbox_2d"] == [round(37 * w / 320), round(52 * h / 240), round(101 * w / 320), round(116 * h / 240)]
    assert batch["image_grid_thw"].tolist() == [[1, h // 14, w // 14]]


def test_a_resize_disagreement_is_caught(tiny_models, samples, monkeypatch):
    processor = _processor(tiny_models["qwen2_5_vl"], "qwen2_5_vl")
    renderer = Renderer(FAMILIES["qwen2_5_vl"], processor)
    monkeypatch.setattr("vlmdata.train.render.qwen_resized", lambda ip, w, h: (w, h))  # the upstream bug class
    with pytest.raises(AssertionError, match="rendered for a 320x240 resize but the processor made 112x84"):
        Collator(renderer, processor)([samples["ground-0002"]])


def test_box_syntax_override_renders_qwen25_tokens_in_resized_pixels(tiny_models, samples):
    processor = _processor(tiny_models["qwen2_5_vl"], "qwen2_5_vl")
    batch = Collator(Renderer(FAMILIES["qwen2_5_vl"], processor, "tokens"), processor)([samples["ground-0002"]])
    assert "<|box_start|>(13,18),(35,41)<|box_end|>" in _supervised(processor, batch, 0)[0]


def test_a_template_without_generation_block_is_refused_not_trained_on_zeros(tiny_models, samples):
    processor = _processor(tiny_models["qwen2_vl"], "qwen2_vl")
    processor.chat_template = (
        builtin_template(FAMILIES["qwen2_vl"]).replace("{%- generation -%}", "").replace("{%- endgeneration -%}", "")
    )
    with pytest.raises(VlmdataError, match=r"no \{% generation %\} block"):
        choose_template(processor, FAMILIES["qwen2_vl"], "model")
    with pytest.raises(RecordError, match="no assistant token is supervised"):
        Collator(Renderer(FAMILIES["qwen2_vl"], processor), processor)([samples["ground-0002"]])


def _sample(messages: list[Message], **kw) -> Sample:
    return Sample(messages, id="x", **kw)


@pytest.mark.parametrize(
    ("sample", "message"),
    [
        (
            _sample([Message("user", [Text("hi")]), Message("assistant", [Text("a")])], videos=[MediaRef("v.mp4")]),
            "video",
        ),
        (_sample([Message("user", [Text("hi")]), Message("tool_call", [Text("{}")])]), "tool_call turn"),
        (_sample([Message("user", [Text("hi")])]), "no assistant turn"),
        (_sample([Message("user", [ImageSlot(1), Text("hi")]), Message("assistant", [Text("a")])]), "image slot 1"),
    ],
)
def test_samples_the_model_cannot_take_are_refused_with_the_reason(tiny_models, sample, message):
    processor = _processor(tiny_models["internvl"], "internvl")
    with pytest.raises(RecordError, match=message):
        Renderer(FAMILIES["internvl"], processor).render(sample, [])


def test_builtin_qwen2_template_renders_the_released_template_text(tiny_models, samples):
    """Same text as Qwen2-VL-7B-Instruct's chat_template (generation markers aside)."""
    released = (
        "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}{% for message in "
        "messages %}{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful "
        "assistant.<|im_end|>\n{% endif %}<|im_start|>{{ message['role'] }}\n{% if message['content'] is string "
        "%}{{ message['content'] }}<|im_end|>\n{% else %}{% for content in message['content'] %}{% if "
        "content['type'] == 'image' or 'image' in content or 'image_url' in content %}{% set image_count.value = "
        "image_count.value + 1 %}{% if add_vision_id %}Picture {{ image_count.value }}: {% endif "
        "%}<|vision_start|><|image_pad|><|vision_end|>{% elif content['type'] == 'video' or 'video' in content "
        "%}{% set video_count.value = video_count.value + 1 %}{% if add_vision_id %}Video {{ video_count.value "
        "}}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>{% elif 'text' in content %}{{ content['text'] "
        "}}{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}{% if add_generation_prompt "
        "%}<|im_start|>assistant\n{% endif %}"
    )
    processor = _processor(tiny_models["qwen2_vl"], "qwen2_vl")
    renderer = Renderer(FAMILIES["qwen2_vl"], processor)
    for sample in samples.values():
        conversation = renderer.render(sample, [Image.new("RGB", (64, 64))] * len(sample.images)).conversation
        ours = processor.apply_chat_template(conversation)
        theirs = processor.apply_chat_template(conversation, chat_template=released)
        assert ours == theirs, sample.id


def test_builtin_internvl_template_renders_the_hf_conversion_template_text(tiny_models, samples):
    """Same text as the template transformers' InternVL -> hf conversion script writes."""
    released = (
        "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n'}}{% if message['content'] is "
        "string %}{{ message['content'] }}{% else %}{% for content in message['content'] %}{% if content['type'] "
        "== 'image' %}{{ '<IMG_CONTEXT>\n' }}{% elif content['type'] == 'video' %}{{ '<video>\n' }}{% elif "
        "content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %}{% endif %}{{'<|im_end|>\n'}}{% "
        "endfor %}{% if add_generation_prompt %}{{'<|im_start|>assistant\n' }}{% endif %}"
    )
    processor = _processor(tiny_models["internvl"], "internvl")
    renderer = Renderer(FAMILIES["internvl"], processor)
    for sample in samples.values():
        conversation = renderer.render(sample, [Image.new("RGB", (64, 64))] * len(sample.images)).conversation
        assert processor.apply_chat_template(conversation) == processor.apply_chat_template(
            conversation, chat_template=released
        ), sample.id


def test_family_detection_reads_config_json(tmp_path, tiny_models):
    for family, folder in tiny_models.items():
        assert detect_family(str(folder)).name == family
    (tmp_path / "config.json").write_text('{"model_type": "internvl_chat"}')
    with pytest.raises(VlmdataError, match=r"-hf transformers checkpoints"):
        detect_family(str(tmp_path))
    with pytest.raises(VlmdataError, match=r"no config\.json"):
        detect_family(str(tmp_path / "missing"))


def test_parts_of_the_model_are_told_apart(tiny_models):
    from transformers import AutoModelForImageTextToText

    for family, folder in tiny_models.items():
        model = AutoModelForImageTextToText.from_pretrained(folder)
        parts = {FAMILIES[family].part_of(n) for n, _ in model.named_parameters()}
        assert parts == {"vision", "projector", "language"}, family
        merger = [n for n, _ in model.named_parameters() if "merger" in n]
        assert all(FAMILIES[family].part_of(n) == "projector" for n in merger)


def test_qwen_resize_is_the_formats_md_algorithm(tiny_models):
    processor = _processor(tiny_models["qwen2_vl"], "qwen2_vl")
    ip = processor.image_processor
    ip.size = {"shortest_edge": 3136, "longest_edge": 1003520}
    for w, h in [(640, 428), (1920, 1080), (30, 30), (4000, 100)]:
        f = 28
        hb, wb = round(h / f) * f, round(w / f) * f
        if hb * wb > 1003520:
            beta = math.sqrt(h * w / 1003520)
            hb, wb = math.floor(h / beta / f) * f, math.floor(w / beta / f) * f
        elif hb * wb < 3136:
            beta = math.sqrt(3136 / (h * w))
            hb, wb = math.ceil(h * beta / f) * f, math.ceil(w * beta / f) * f
        assert qwen_resized(ip, w, h) == (wb, hb)


def _batch_text(family: str, folder: Path, samples_: list[Sample]) -> tuple[list[list[str]], object]:
    processor = _processor(folder, family)
    batch = Collator(Renderer(FAMILIES[family], processor), processor)(samples_)
    return [_supervised(processor, batch, i) for i in range(len(samples_))], batch


def test_one_sample_trains_the_same_from_every_format_that_keeps_its_boxes_exact(tiny_models):
    """ms-swift (pixels), legacy ms-swift (pixels, JSON-string objects) and InternVL (0-1000) copies
    of the sample data give the same supervised tokens: the format never reaches the model."""
    sources = {
        "swift": vlmdata.read(str(SWIFT), root=str(IMAGES)),
        "swift-legacy": vlmdata.read(str(REPO / "sample_data" / "swift-legacy" / "train.jsonl"), root=str(IMAGES)),
        "internvl": vlmdata.read(str(REPO / "sample_data" / "internvl" / "train.jsonl"), root=str(IMAGES)),
    }
    answers = {}
    for name, stream in sources.items():
        by_id = {s.id: s for s in stream}
        ordered = [by_id[k] for k in sorted(by_id)]
        answers[name], _ = _batch_text("internvl", tiny_models["internvl"], ordered)
    assert answers["swift"] == answers["swift-legacy"] == answers["internvl"]
    assert any("<box>" in run for runs in answers["swift"] for run in runs)


def test_llamafactory_demo_data_encodes_for_training(tiny_models, realdata):
    """LLaMA-Factory's own mllm_demo.json (6 rows, images [2, 1, 1, 2, 1, 1]) through the train path."""
    from vlmdata.train.data import load, sources_of

    folder = realdata / "lf-mllm-demo"
    expected = json.loads((folder / "case.json").read_text())["expected"]
    loaded = load(sources_of([str(folder / "mllm_demo.json")], None, "sharegpt"))
    assert loaded.records_in == len(loaded.samples) == expected["records"] and not loaded.rejected
    runs, batch = _batch_text("qwen2_vl", tiny_models["qwen2_vl"], loaded.samples)
    # One <|vision_start|> per image, each expanded by the processor; every row supervises its answers.
    start = _processor(tiny_models["qwen2_vl"], "qwen2_vl").tokenizer.convert_tokens_to_ids("<|vision_start|>")
    per_row = (batch["input_ids"] == start).sum(dim=1).tolist()
    assert per_row == expected["images_per_record"]
    assert batch["image_grid_thw"].shape[0] == sum(expected["images_per_record"])
    answers = [[m.text() for m in s.messages if m.role == "assistant"] for s in loaded.samples]
    assert [len(r) for r in runs] == [len(a) for a in answers]
    for row_runs, row_answers in zip(runs, answers, strict=True):
        assert [r.removesuffix("<|im_end|>") for r in row_runs] == row_answers


def test_meta_repeat_time_is_honoured_as_internvl_does(tmp_path):
    """repeat_time 2 reads the annotation twice; 0.4 keeps the head int(5 * 0.4) = 2 records
    (docs/formats.md#internvl-meta)."""
    from vlmdata.train.data import load, sources_of

    annotation = str(REPO / "sample_data" / "internvl" / "train.jsonl")
    meta = tmp_path / "meta.json"
    entry = {"root": str(IMAGES), "annotation": annotation, "data_augment": False, "length": 5}
    meta.write_text(json.dumps({"twice": {**entry, "repeat_time": 2}, "head": {**entry, "repeat_time": 0.4}}))
    loaded = load(sources_of([str(meta)], None, None))
    ids = [s.id for s in loaded.samples]
    once = [s.id for s in vlmdata.read(annotation, root=str(IMAGES))]
    assert ids == once + once + once[:2]
    assert loaded.records_in == 12 and not loaded.rejected
    assert any("head" in w for w in loaded.warnings)

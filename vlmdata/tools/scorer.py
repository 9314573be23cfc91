"""Model-scored filtering: a local judge model rates each sample 0-10; samples under a threshold go.

InternVL 2.5 filtered its SFT data with a judge LLM/VLM scoring each sample 0-10 and dropping the
low ones, and with a second prompt that flags repetitive answers. ``ScoreStage`` does both on the
Sample stream (a transform for ``tools.stream``):

* the prompt is a template with ``{conversation}`` (the sample as ``role: text`` lines, media as
  ``<image0>``) and ``{images}`` (how many); users pass their own with ``--prompt FILE``;
* the judge answers ``Score: N`` / ``Reason: ...`` (or ``Repetitive: yes|no`` / ``Reason: ...``);
  an answer that does not parse keeps the sample and is counted as ``unparsed``;
* samples are judged in batches; every verdict is appended to a JSONL cache keyed by the hash of
  (judge, prompt, sample text, image paths) as soon as its batch is done, so a run that is
  interrupted resumes where it stopped and a second run over the same data asks the model nothing.

``HFJudge`` runs a local transformers model from a folder (nothing is downloaded): a causal LM for
text, or, when the folder has an image processor, a VLM that also sees the sample's images.
Tests pass any callable ``(list[JudgeInput]) -> list[str]`` as the judge.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from vlmdata.convert.engine import batches
from vlmdata.errors import VlmdataError
from vlmdata.schemas.sample import Sample
from vlmdata.tools.stream import Drop, Events
from vlmdata.tools.transforms import sample_text

SCORE_PROMPT = """You are a strict judge of training data for a vision-language assistant.
Rate the assistant's answers in the conversation below from 0 to 10: 0 = wrong, irrelevant,
garbled or unhelpful; 5 = acceptable but flawed; 10 = correct, relevant to the question and the
image(s), complete and fluent. The conversation shows {images} image(s) as <image0>, <image1>...

Conversation:
{conversation}

Reply in exactly this form:
Score: <an integer from 0 to 10>
Reason: <one sentence>"""

REPETITION_PROMPT = """You check training data for a vision-language assistant.
Does any assistant answer in the conversation below contain repetitive patterns: the same word,
phrase, sentence or list item repeated without adding information, or text that loops?

Conversation:
{conversation}

Reply in exactly this form:
Repetitive: <yes or no>
Reason: <one sentence>"""

_NUMBER = r"(10(?:\.0+)?|[0-9](?:\.[0-9]+)?)"
_SCORE = re.compile(r"score\s*[:=]?\s*\**\s*" + _NUMBER + r"(?![0-9])", re.IGNORECASE)
_BARE = re.compile(r"^\s*" + _NUMBER + r"\s*(?:/\s*10)?\s*$", re.MULTILINE)
_REPETITIVE = re.compile(r"repetitive\s*[:=]?\s*\**\s*(yes|no)\b", re.IGNORECASE)
_REASON = re.compile(r"reason\s*[:=]\s*(.+)", re.IGNORECASE)


@dataclass(slots=True, frozen=True)
class JudgeInput:
    """What the judge sees for one sample: the filled-in prompt and the sample's image files."""

    prompt: str
    images: tuple[str, ...] = ()


Judge = Callable[[Sequence[JudgeInput]], list[str]]


def parse_score(text: str) -> tuple[float | None, str]:
    """(score 0-10 or None, reason) from a judge's reply."""
    m = _SCORE.search(text) or _BARE.search(text)
    reason = _REASON.search(text)
    return (float(m.group(1)) if m else None), (reason.group(1).strip() if reason else text.strip()[:300])


def parse_repetition(text: str) -> tuple[bool | None, str]:
    """(True repetitive / False not / None unparsed, reason) from a judge's reply."""
    m = _REPETITIVE.search(text)
    reason = _REASON.search(text)
    verdict = None if m is None else m.group(1).lower() == "yes"
    return verdict, (reason.group(1).strip() if reason else text.strip()[:300])


def render_prompt(template: str, sample: Sample) -> str:
    return template.replace("{conversation}", sample_text(sample)).replace("{images}", str(len(sample.images)))


class ScoreCache:
    """Verdicts by key in an append-only JSONL file (one line per judged sample)."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.entries: dict[str, dict[str, Any]] = {}
        if path and os.path.exists(path):
            with open(path, "rb") as f:
                for line in f:
                    try:
                        entry = orjson.loads(line)
                    except orjson.JSONDecodeError:
                        continue  # a line cut by the interruption
                    if isinstance(entry, dict) and isinstance(entry.get("key"), str):
                        self.entries[entry["key"]] = entry
        self._file = None

    def add_many(self, entries: list[dict[str, Any]]) -> None:
        for e in entries:
            self.entries[e["key"]] = e
        if not self.path or not entries:
            return
        if self._file is None:
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
            self._file = open(self.path, "ab")  # noqa: SIM115  # held for the run, closed in close()
        self._file.write(b"".join(orjson.dumps(e) + b"\n" for e in entries))
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class ScoreStage:
    """A stream transform: judge each sample, drop those under ``min_score`` (or flagged repetitive).

    ``judged``, ``cached``, ``unparsed`` count samples sent to the judge, answered from the cache,
    and whose verdict did not parse (kept).
    """

    def __init__(
        self,
        judge: Judge,
        *,
        judge_name: str,
        min_score: float = 5.0,
        template: str | None = None,
        repetition: bool = False,
        batch_size: int = 8,
        cache: ScoreCache | None = None,
    ) -> None:
        self.judge = judge
        self.judge_name = judge_name
        self.min_score = min_score
        self.repetition = repetition
        self.template = template or (REPETITION_PROMPT if repetition else SCORE_PROMPT)
        if "{conversation}" not in self.template:
            raise VlmdataError("the prompt template must contain {conversation} (where the sample goes)")
        self.batch_size = max(1, batch_size)
        self.cache = cache or ScoreCache(None)
        self.judged = self.cached = self.unparsed = 0
        self.name = "llm-repetition" if repetition else "llm-score"

    def key(self, sample: Sample, prompt: str) -> str:
        h = hashlib.sha256()
        for part in (self.judge_name, self.name, prompt, *(m.resolved or m.path for m in sample.images)):
            h.update(part.encode("utf-8", "surrogatepass") + b"\x00")
        return h.hexdigest()

    def __call__(self, samples: Iterable[Sample], events: Events | None = None) -> Iterator[Sample]:
        events = events or Events()
        try:
            for batch in batches(samples, self.batch_size):
                yield from self._batch(batch, events)
        finally:
            self.cache.close()

    def _batch(self, batch: list[Sample], events: Events) -> Iterator[Sample]:
        prompts = [render_prompt(self.template, s) for s in batch]
        keys = [self.key(s, p) for s, p in zip(batch, prompts, strict=True)]
        todo = [k for k, key in enumerate(keys) if key not in self.cache.entries]
        self.cached += len(batch) - len(todo)
        if todo:
            inputs = [JudgeInput(prompts[k], tuple(m.resolved or m.path for m in batch[k].images)) for k in todo]
            replies = self.judge(inputs)
            if len(replies) != len(inputs):
                raise VlmdataError(f"the judge answered {len(replies)} of {len(inputs)} prompts")
            self.judged += len(todo)
            fresh = []
            for k, reply in zip(todo, replies, strict=True):
                if self.repetition:
                    flag, reason = parse_repetition(reply)
                    value: Any = flag
                else:
                    value, reason = parse_score(reply)
                fresh.append({"key": keys[k], "value": value, "reason": reason, "reply": reply[:2000]})
            self.cache.add_many(fresh)
        for sample, key in zip(batch, keys, strict=True):
            entry = self.cache.entries[key]
            value, reason = entry.get("value"), entry.get("reason", "")
            if value is None:
                self.unparsed += 1
                yield sample
                continue
            detail = {"judge": self.judge_name, "judge_reason": reason, "judge_reply": entry.get("reply", "")}
            if self.repetition:
                if value is True:
                    events.drop(sample, Drop(self.name, 1.0, f"the judge flags repetition: {reason}", detail))
                    continue
            elif float(value) < self.min_score:
                detail["judge_score"] = value
                events.drop(
                    sample,
                    Drop(
                        self.name,
                        float(value),
                        f"the judge scored it {value:g}/10 (< {self.min_score:g}): {reason}",
                        detail,
                    ),
                )
                continue
            yield sample


# --------------------------------------------------------------------------- a local transformers judge


class HFJudge:
    """A local transformers model folder as a judge (greedy decoding, left-padded batches)."""

    def __init__(self, folder: str, *, max_new_tokens: int = 64, device: str | None = None) -> None:
        if not os.path.isdir(folder):
            raise VlmdataError(f"--scorer {folder}: not a folder (a local transformers model folder)")
        from vlmdata.train.compat import setup_environment

        setup_environment()  # offline, the train extra present
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.folder = folder
        self.max_new_tokens = max_new_tokens
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.processor: Any = None
        self.vision = any(
            os.path.exists(os.path.join(folder, name)) for name in ("preprocessor_config.json", "processor_config.json")
        )
        try:
            if self.vision:
                from transformers import AutoModelForImageTextToText, AutoProcessor

                self.processor = AutoProcessor.from_pretrained(folder)
                self.tokenizer = self.processor.tokenizer
                self.model = AutoModelForImageTextToText.from_pretrained(folder)
            else:
                self.tokenizer = AutoTokenizer.from_pretrained(folder)
                self.model = AutoModelForCausalLM.from_pretrained(folder)
        except (OSError, ValueError) as exc:
            raise VlmdataError(f"--scorer {folder}: cannot load the model: {exc}") from None
        self.model.to(self.device).eval()
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if self.processor is not None and hasattr(self.processor, "tokenizer"):
            self.processor.tokenizer.padding_side = "left"

    def _chat(self, text: str, n_images: int) -> str:
        content: list[dict[str, Any]] = [{"type": "image"} for _ in range(n_images)] + [{"type": "text", "text": text}]
        messages = [{"role": "user", "content": content if self.vision else text}]
        owner = self.processor if self.vision else self.tokenizer
        if getattr(owner, "chat_template", None):
            return owner.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return text + "\n"

    def __call__(self, inputs: Sequence[JudgeInput]) -> list[str]:
        import torch

        if self.vision and any(x.images for x in inputs):  # one at a time: images vary per row
            out = []
            for x in inputs:
                pics = _open_images(x.images)
                out.append(self._generate([self._chat(x.prompt, len(pics))], pics))
            return out
        texts = [self._chat(x.prompt, 0) for x in inputs]
        with torch.no_grad():
            enc = self.tokenizer(texts, return_tensors="pt", padding=True).to(self.device)
            out = self.model.generate(
                **enc, max_new_tokens=self.max_new_tokens, do_sample=False, pad_token_id=self.tokenizer.pad_token_id
            )
        return self.tokenizer.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)

    def _generate(self, texts: list[str], pics: list[Any]) -> str:
        import torch

        with torch.no_grad():
            enc = self.processor(text=texts, images=pics or None, return_tensors="pt", padding=True).to(self.device)
            out = self.model.generate(
                **enc, max_new_tokens=self.max_new_tokens, do_sample=False, pad_token_id=self.tokenizer.pad_token_id
            )
        return self.tokenizer.decode(out[0, enc["input_ids"].shape[1] :], skip_special_tokens=True)


def _open_images(paths: Sequence[str]) -> list[Any]:
    """The images that open (RGB); a missing or broken one is left out (the judge sees the text)."""
    from PIL import Image

    pics = []
    for p in paths:
        try:
            with Image.open(p) as im:
                pics.append(im.convert("RGB"))
        except (OSError, ValueError):
            continue
    return pics

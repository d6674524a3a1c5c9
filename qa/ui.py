"""The web chat (Gradio): ask, see each claim's paragraph, add documents, run evaluations.

This is the only module that imports gradio. `create_app(service)` builds the Blocks;
`launch()` starts it, bound to 127.0.0.1 unless told otherwise. Chat questions take turns on
the one model through `ModelGate` (qa/gate.py), which lets a waiting question say its place in
line in the chat; evaluations are background jobs (qa/background.py) that yield the model to
every chat question. Library errors become short messages in the page; tracebacks never
reach it. Only checked sentences are ever rendered (the model's draft never reaches the page).

API endpoints (used by tests and scripts through gradio_client): /ask (question, history
JSON) -> answer JSON, /search, /upload, /documents.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import tempfile
import threading
import time
from pathlib import Path

from . import config
from .answer import Answer, NOT_IN_DOCUMENT, Passage, VerifiedSentence
from .documents import SUPPORTED_SUFFIXES, load_document
from .errors import DuplicateDocumentError, QAError
from .limits import DEFAULT_LIMITS, check_question, trim_history
from .background import Evaluations, minutes
from .gate import ModelGate
from .policy import DEFAULT_POLICY
from .sessions import PrivateUploads

config.set_offline()  # before gradio is imported: no analytics, no hub

import gradio as gr  # noqa: E402

CHECKING = "Checking the answer against the document…"
WAIT_POLL_S = 0.5  # how often a waiting question's place in line is refreshed
CHAT_CONCURRENCY = 16  # questions Gradio hands to the chat at once; ModelGate runs one at a time
MAX_UPLOAD_MB = DEFAULT_LIMITS.upload_file_mb  # also Gradio's own cap, before a file reaches us
MAX_HISTORY_MESSAGES = 40  # per browser session: keeps memory bounded in long chats
EXAMPLES = [
    "Which countries led the initiative on veto restraint?",
    "What did Mr. Dieng say about impunity?",
    "Why did some delegates think formal agenda inclusion was premature?",
    "What is the capital of Australia?",
]
WHAT_YOU_CAN_ASK = ("Ask what these documents say: who said or did what, numbers, dates, reasons. "
                    "Each answer cites its paragraphs; when the documents do not say, the answer says so.")
CHAT_HEIGHT = 280  # px: with the header, the documents, the box and the examples, one 1280×800 screen (20 px spare)
CSS = """
.qa-status {font-size: 0.9em}
#overview, #status {margin: 0}
#try {flex: 0 0 auto !important; width: auto !important; min-width: 0 !important}
.qa-example {padding: 2px 8px !important}
.prose h1 {margin-bottom: 0.2em !important}
.qa-docs {margin: 0; padding-left: 1.2em}
.qa-docs li {margin: 0}
.qa-overview p {margin: 0.2em 0}
.qa-examples {gap: 6px !important; flex-wrap: wrap !important; align-items: center}
.qa-examples button {flex: 0 1 auto !important; min-width: 0 !important; white-space: normal; text-align: left}
.qa-spinner {display: inline-block; width: 0.8em; height: 0.8em; border: 2px solid currentColor;
  border-right-color: transparent; border-radius: 50%; animation: qa-spin 0.8s linear infinite;
  vertical-align: -0.1em; margin-right: 0.35em}
@keyframes qa-spin {to {transform: rotate(360deg)}}
@media (prefers-reduced-motion: reduce) {.qa-spinner {animation: none}}
a.qa-chip {display: inline-block; padding: 0 0.45em; margin: 0 0.1em; border-radius: 0.8em;
  background: #e0e7ff; color: #312e81 !important; text-decoration: none !important; font-weight: 600;
  font-size: 0.9em; line-height: 1.5; border: 1px solid #a5b4fc; cursor: pointer}
a.qa-chip:hover, a.qa-chip:focus {background: #c7d2fe; outline: 2px solid #4338ca; outline-offset: 1px}
.qa-waiting {font-weight: 600}
.qa-eval-bar {width: 100%; height: 0.9em}
footer {display: none !important}
@media (max-width: 640px) {#chat {height: 60vh !important; max-height: 60vh !important}}
"""
# Event delegation and one observer, installed once in <head>: Gradio re-renders messages.
HEAD = """<script>
(() => {
  // A citation chip opens the paragraph it cites, under its answer.
  document.addEventListener('click', (event) => {
    const chip = event.target.closest && event.target.closest('a.qa-chip');
    if (!chip) return;
    event.preventDefault();
    event.stopPropagation();
    const target = document.getElementById((chip.getAttribute('href') || '').slice(1));
    if (!target) return;
    target.open = true;
    target.scrollIntoView({block: 'nearest'});
    const summary = target.querySelector('summary');
    if (summary) summary.focus({preventScroll: true});
  }, true);
  // A new question scrolls to its own top, so the answer's first line is in view as it
  // streams (Gradio's autoscroll is off: it would follow the end of the answer). It stays
  // pinned there while the answer grows, until the reader scrolls.
  let users = 0, pinned = null;
  const scroller = (node) => {
    for (let box = node.parentElement; box && box !== document.body; box = box.parentElement) {
      const style = getComputedStyle(box).overflowY;
      if (style === 'auto' || style === 'scroll') return box;
    }
    return null;
  };
  const follow = () => {
    const chat = document.getElementById('chat');
    if (!chat) return;
    fixUploadNames();
    const mine = chat.querySelectorAll('[data-testid="user"]');
    const fresh = mine.length > users;
    if (fresh) pinned = mine[mine.length - 1];
    users = mine.length;
    if (pinned && pinned.isConnected) {
      const box = scroller(pinned);
      if (box) {
        const want = box.scrollTop + pinned.getBoundingClientRect().top - box.getBoundingClientRect().top - 4;
        if (Math.abs(box.scrollTop - want) > 2) box.scrollTop = want;
      }
      // Then the page itself, when the question is off screen (a phone).
      const top = pinned.getBoundingClientRect().top;
      if (top < 0 || top > window.innerHeight - 160) window.scrollBy(0, top - 8);
    }
  };
  const unpin = () => { pinned = null; };
  ['wheel', 'touchmove', 'keydown'].forEach((kind) => document.addEventListener(kind, (event) => {
    if (kind !== 'keydown' || ['PageUp', 'PageDown', 'ArrowUp', 'ArrowDown', 'Home', 'End'].includes(event.key)) unpin();
  }, {passive: true}));
  // Gradio's upload area is named only by its label: axe wants its visible words in the name.
  const fixUploadNames = () => document.querySelectorAll('.upload-container[aria-label]').forEach((area) => {
    const visible = area.innerText.replace(/\s+/g, ' ').trim();
    const name = area.getAttribute('aria-label');
    if (visible && !name.includes(visible)) area.setAttribute('aria-label', `${visible}: ${name}`);
  });
  new MutationObserver(follow).observe(document.documentElement, {childList: true, subtree: true});
})();
</script>"""


# --------------------------------------------------------------------------- formatting


def _escape(text: str) -> str:
    return html.escape(text, quote=False)


def _highlight(text: str, answer_text: str) -> str:
    """The paragraph with the sentences the answer drew on in bold."""
    from . import grounding

    claims = [grounding.strip_markers(s) for s in grounding.split_sentences(answer_text)]
    parts = []
    for sentence in grounding.split_sentences(text):
        used = any(grounding.support(c, sentence).score >= DEFAULT_POLICY.min_support for c in claims)
        parts.append(f"**{_escape(sentence)}**" if used else _escape(sentence))
    return " ".join(parts)


def _anchor(turn: int, paragraph_id: str) -> str:
    return f"qa-src-{turn}-" + re.sub(r"[^A-Za-z0-9_-]+", "-", paragraph_id).strip("-")


def _where(p, page: int | None = None) -> str:
    """"¶11 · document · section · page 3": what a reader needs to find the paragraph."""
    parts = [f"<b>{_escape(p.label)}</b>", _escape(p.document)]
    if p.section:
        parts.append(_escape(p.section))
    if page:
        parts.append(f"page {page}")
    return " · ".join(parts)


def _passage_block(p: Passage, answer_text: str = "", open_: bool = False, anchor: str = "",
                   page: int | None = None, score: bool = False) -> str:
    body = _highlight(p.text, answer_text) if answer_text else _escape(p.text)
    extra = f" <small>(score {p.score:.2f})</small>" if score else ""
    return (f"<details{f' id={chr(34)}{anchor}{chr(34)}' if anchor else ''}{' open' if open_ else ''}>"
            f"<summary>{_where(p, page)}{extra}</summary>\n\n{body}\n\n</details>")


def _chips(text: str, targets: dict[str, str]) -> str:
    """Escaped answer text with each citation a chip that opens its paragraph.

    `targets` maps a marker's label ("¶11", "doc.txt ¶11") to the anchor of its source; a
    marker without one stays bold text."""
    def one(label: str) -> str:
        label = label.strip()
        anchor = targets.get(label)
        if anchor:
            return (f'<a class="qa-chip" href="#{anchor}" title="Show paragraph {_escape(label)}">'
                    f"{_escape(label)}</a>")
        return f"**[{_escape(label)}]**"

    def marker(match: re.Match) -> str:
        return "".join(one(part) for part in re.split(r",\s*|\s+and\s+", match.group(1)) if part.strip())

    pieces = re.split(r"(\[[^\[\]]{1,100}\])", text)
    return "".join(marker(re.match(r"\[(.*)\]", piece)) if piece.startswith("[") and piece.endswith("]")
                   else _escape(piece) for piece in pieces)


def _cited(text: str) -> str:
    """Escaped answer text with its citations in bold, so they stand out."""
    return _chips(text, {})


def _targets(turn: int, citations, passages=()) -> dict[str, str]:
    from .answer import Answerer

    targets = {}
    for c in citations:
        targets[c.label] = _anchor(turn, c.id)
        targets[f"{c.document} {c.label}"] = _anchor(turn, c.id)
    for pid, label in Answerer.display_labels(list(passages)).items():
        targets.setdefault(label, _anchor(turn, pid))
    return targets


_JARGON = re.compile(r"\d|draft|passage|score|similarity|claim|restat|quoted|verif|token", re.IGNORECASE)


def _trace_block(answer: Answer) -> str:
    """How the answer was reached, stage by stage, behind a fold."""
    if not answer.trace:
        return ""
    def detail(step: dict) -> str:
        # A step that judged the model's words names them in its detail ("names not in the
        # passage: canberra"): on the page only its kind of reason shows, never the words.
        text = step.get("detail", "")
        return text.split(":")[0] if step.get("draft_text") else text

    rows = "\n".join(f"- **{_escape(s['stage'])}**: {_escape(s['decision'])}"
                     + (f" — <small>{_escape(detail(s))}</small>" if detail(s) else "")
                     for s in answer.trace)
    return f"<details><summary>How this answer was checked</summary>\n\n{rows}\n\n</details>"


def format_answer(answer: Answer, turn: int = 0, page_of=None) -> str:
    """Markdown for one assistant turn: the answer with citation chips, its sources (closed:
    a chip opens one), then the details a developer wants behind folds.

    `turn` keeps the sources' anchors unique in the chat; `page_of(paragraph id)` gives a
    PDF paragraph's page."""
    page_of = page_of or (lambda pid: None)
    details = []
    if answer.reason:
        details.append(f"Note: {_escape(answer.reason)}.")
    seconds = answer.timings.get("total")
    if seconds:
        details.append(f"Answered in {seconds:.1f} s.")
    if answer.abstained:
        lines = [f"⚠ **{NOT_IN_DOCUMENT}**"]
        plain = answer.reason if answer.reason and not _JARGON.search(answer.reason) else ""
        lines.append(f"<small>{'Why: ' + _escape(plain) + '. ' if plain else ''}Nothing is cited.</small>")
        if answer.passages:
            details.append("Closest paragraphs (they do not answer it):\n\n"
                           + "\n\n".join(_passage_block(p, page=page_of(p.id), score=True) for p in answer.passages))
    else:
        cited_ids = {c.id for c in answer.citations}
        cited = [p for p in answer.passages if p.id in cited_ids]
        others = [p for p in answer.passages if p.id not in cited_ids]
        lines = [f"✓ {_chips(answer.text, _targets(turn, answer.citations, answer.passages))}"]
        if answer.quoted:
            lines.append("<small>Part of this answer is quoted from the document.</small>")
        lines.append(f"**Sources ({len(cited)})** <small>— select a citation or a source to read it</small>")
        lines += [_passage_block(p, answer.text, anchor=_anchor(turn, p.id), page=page_of(p.id)) for p in cited]
        if others:
            details.append(f"Other paragraphs found ({len(others)}):\n\n"
                           + "\n\n".join(_passage_block(p, page=page_of(p.id), score=True) for p in others))
    if details:
        lines.append("<details><summary>Details</summary>\n\n" + "\n\n".join(details) + "\n\n</details>")
    lines.append(_trace_block(answer))
    return "\n\n".join(line for line in lines if line)


def _history_turns(messages: list[dict]) -> list[dict]:
    """Chat messages -> [{question, answer}] for follow-ups (answers as their plain text)."""
    turns, question = [], None
    for m in messages or []:
        content = m.get("content") if isinstance(m, dict) else None
        if isinstance(content, list):  # Gradio 6 may send [{"type": "text", "text": ...}]
            content = "".join(part.get("text", "") for part in content if isinstance(part, dict)) or None
        if not isinstance(content, str):
            continue
        if m.get("role") == "user":
            question = content
        elif m.get("role") == "assistant" and question is not None:
            first = content.split("\n\n", 1)[0].lstrip("✓⚠ ").replace("**", "")
            first = re.sub(r'<a class="qa-chip"[^>]*>(.*?)</a>', r"[\1]", first)  # chips back to markers
            first = html.unescape(re.sub(r"<[^>]+>", "", first))
            turns.append({"question": question, "answer": first})
            question = None
    return turns


def waiting_message(ahead: int) -> str:
    others = "1 question" if ahead == 1 else f"{ahead} questions"
    return (f'<span class="qa-waiting"><span class="qa-spinner" aria-hidden="true"></span>'
            f"Waiting for your turn: {others} ahead of yours (you are number {ahead + 1} in line).</span> "
            f"<small>It starts by itself; you can keep this page open.</small>")


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else error.__class__.__name__


# --------------------------------------------------------------------------- app


class ChatApp:
    """The handlers, holding the service they drive (no gradio objects in here)."""

    def __init__(self, service, private_uploads: bool = False):
        self.service = service  # the shared one: the index every session reads unless it uploaded
        # With --network, each session's uploads go to an index of its own (qa/sessions.py).
        self.private = PrivateUploads(service, config.uploads_dir() / "sessions") if private_uploads else None
        self.loading_error = ""
        self.upload_lock = threading.Lock()
        self.session_uploads: dict[str, list[int]] = {}  # session -> [files, bytes] added
        # Chat questions in turn, as many at once as the generator allows (one in-process, a
        # server's slots plus its queue); evaluations only in between.
        self.gate = ModelGate(getattr(service, "generation_concurrency", 1))
        self.evaluations = Evaluations(service, self.gate)
        self._overviews: dict[tuple, str] = {}  # manifest sources -> html: each index described once

    # -- model loading in the background, so the page opens at once

    def preload(self) -> None:
        def run():
            try:
                self.service.answerer()  # loads the embedder, the index and the generator
            except QAError as error:
                self.loading_error = _one_line(error)
            except Exception as error:  # shown in the page, never a traceback
                self.loading_error = f"could not load the models: {_one_line(error)}"

        threading.Thread(target=run, daemon=True, name="preload").start()

    def status(self) -> str:
        if self.loading_error:
            return f"✗ {self.loading_error}"
        if not self.service.generator_loaded:
            return ('<span class="qa-spinner" aria-hidden="true"></span>Loading the model… The very first start '
                    "assembles and converts it once (about a minute); later starts take a few seconds. "
                    "You can type your question meanwhile.")
        return "● Ready."

    def service_for(self, request=None):
        """The service this browser session's questions go to (its own index if it uploaded
        something while served with --network, else the shared one)."""
        if self.private is None:
            return self.service
        return self.private.service(getattr(request, "session_hash", None))

    def page_load(self, request: gr.Request = None) -> tuple[str, str]:
        return self.documents_markdown(request), self.overview(request)

    def overview(self, request: gr.Request = None) -> str:
        """The loaded documents, one line each, and what a newcomer can ask (HTML)."""
        from .overview import describe_documents
        from .store import stored_copy

        service = self.service_for(request)
        try:
            index = service.index
            sources = index.manifest.get("sources", [])
        except QAError as error:
            return f"✗ {_escape(_one_line(error))}"
        key = tuple((s["name"], s.get("sha256", ""), s.get("paragraphs")) for s in sources)
        if key in self._overviews:
            return self._overviews[key]

        def source_file(source):
            return stored_copy(service.index_path, source) or Path(source["path"])

        rows = "".join(f"<li><b>{_escape(d.name)}</b> — {_escape(d.line())}</li>"
                       for d in describe_documents(index, source_file))
        heading = "Loaded document" if len(sources) == 1 else f"Loaded documents ({len(sources)})"
        text = (f'<div class="qa-overview"><p><b>{heading}:</b></p><ul class="qa-docs">{rows}</ul>'
                f"<p>{_escape(WHAT_YOU_CAN_ASK)}</p></div>")
        if len(self._overviews) >= 32:  # one per distinct set of documents; sessions come and go
            self._overviews.pop(next(iter(self._overviews)))
        self._overviews[key] = text
        return text

    def page_of(self, paragraph_id: str, service=None):
        try:
            paragraph = (service or self.service).index.by_id.get(paragraph_id)
        except QAError:
            return None
        return getattr(paragraph, "page", None)

    def documents_markdown(self, request: gr.Request = None) -> str:
        try:
            sources = self.service_for(request).index.manifest.get("sources", [])
        except QAError as error:
            return f"✗ {_one_line(error)}"
        rows = [f"- **{_escape(s['name'])}** — {s['paragraphs']} paragraph{'s' if s['paragraphs'] != 1 else ''}" for s in sources]
        return "**Indexed documents**\n\n" + "\n".join(rows)

    # -- chat

    def chat(self, message: str, messages: list[dict], request: gr.Request = None):
        """Stream the assistant turn into the chat; the checked answer replaces the draft."""
        service = self.service_for(request)
        messages = list(messages or [])[-MAX_HISTORY_MESSAGES:]
        if message is None or (isinstance(message, str) and not message.strip()):
            gr.Warning("Type a question first.")
            yield messages, ""
            return
        try:
            # Before anything loads: an oversized question or history is refused at once.
            question = check_question(message, self.service.limits)
            history = trim_history(_history_turns(messages), self.service.limits)
        except QAError as error:
            shown = str(message)[:200] + ("…" if len(str(message)) > 200 else "")
            yield messages + [{"role": "user", "content": shown},
                              {"role": "assistant", "content": f"✗ {_escape(_one_line(error))}"}], ""
            return
        messages = messages + [{"role": "user", "content": question}]

        def show(content: str):
            # A fresh list and message each time: Gradio diffs what it is given.
            return messages + [{"role": "assistant", "content": content}], ""

        turn = len(messages)  # keeps this answer's source anchors apart from earlier ones
        ticket = self.gate.enter()
        try:
            # In line behind other questions: the chat says so, with the position, live.
            while not self.gate.wait_turn(ticket, WAIT_POLL_S):
                yield show(waiting_message(self.gate.ahead(ticket)))
            if not service.generator_loaded:
                yield show('<small><span class="qa-spinner" aria-hidden="true"></span>'
                           "Loading the model first (only once)…</small>")
            answerer = service.answerer()
            # Only checked text is ever rendered: the model's draft stays off the page, and
            # each sentence appears once it has passed verification against the document.
            yield show(f"<small>{CHECKING}</small>")
            shown: list[str] = []
            citations: list = []
            for item in answerer.stream(question, history):
                if isinstance(item, VerifiedSentence):
                    shown.append(item.text)
                    citations.extend(item.citations)
                    yield show(f"✓ {_chips(' '.join(shown), _targets(turn, citations))}\n\n<small>{CHECKING}</small>")
                else:
                    yield show(format_answer(item, turn, lambda pid: self.page_of(pid, service)))
        except QAError as error:
            yield show(f"✗ {_escape(_one_line(error))}")
        except Exception as error:
            yield show(f"✗ Something went wrong: {_escape(_one_line(error))}")
        finally:
            self.gate.leave(ticket)  # also when the page goes away mid-answer

    # -- API endpoints (plain JSON in and out)

    def ask_api(self, question: str, history_json: str = "", request: gr.Request = None) -> dict:
        try:
            history = json.loads(history_json) if history_json and history_json.strip() else []
            # Checked before the answerer (and its models) is asked for.
            question = check_question(question, self.service.limits)
            history = trim_history(history, self.service.limits)
            with self.gate.turn():
                answer = self.service_for(request).answerer().ask(question, history)
        except (json.JSONDecodeError, RecursionError):  # RecursionError: "[[[[..." nested too deep
            raise gr.Error("history must be a JSON list of {question, answer}") from None
        except QAError as error:
            raise gr.Error(_one_line(error)) from None
        return {
            "answer": answer.text, "abstained": answer.abstained, "reason": answer.reason,
            "citations": [{"id": c.id, "label": c.label, "document": c.document, "text": c.text} for c in answer.citations],
            "passages": [{"id": p.id, "label": p.label, "score": round(p.score, 4), "text": p.text} for p in answer.passages],
            "timings": answer.timings,
        }

    def search_api(self, query: str, k: float = 5, request: gr.Request = None) -> list[dict]:
        try:
            hits = self.service_for(request).index.search(query, k=int(k))
        except QAError as error:
            raise gr.Error(_one_line(error)) from None
        return [{"id": h.paragraph.id, "label": h.paragraph.label, "document": h.paragraph.document,
                 "score": round(h.score, 4), "text": h.paragraph.text} for h in hits]

    # -- uploads

    def upload(self, files, request: gr.Request = None, progress=None) -> tuple[str, str]:
        """Validate, copy under safe names into the uploads folder, re-index, swap in.

        Never replaces: a file named like an indexed document is refused (rename it), so no
        visitor can change the documents everyone else's answers come from. Each browser
        session may add `upload_files_per_session` files of `upload_mb_per_session` MB. Served
        with --network, the files go to the session's own index (qa/sessions.py), not the
        shared one.
        """
        # No gr.Progress: the embedding is one batch, so a bar would sit at 0 % until done;
        # the page shows Gradio's spinner and elapsed time instead.
        progress = progress or (lambda *a, **k: None)
        limits = self.service.limits
        files = files if isinstance(files, list) else [files] if files else []
        if not files:
            return f"Choose one or more {', '.join(SUPPORTED_SUFFIXES)} files first.", self.documents_markdown(request)
        paths = [Path(f if isinstance(f, str) else getattr(f, "name", f)) for f in files]
        session = getattr(request, "session_hash", None) or "local"
        service = self.service_for(request)
        with self.upload_lock:
            staged = []
            try:
                sizes = []
                for path in paths:
                    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
                        raise QAError(f"{_safe_name(path.name)}: only {', '.join(SUPPORTED_SUFFIXES)} files are accepted")
                    sizes.append(path.stat().st_size)
                    if sizes[-1] > limits.upload_file_mb * 2**20:
                        raise QAError(f"{_safe_name(path.name)}: larger than {limits.upload_file_mb} MB")
                self._check_session_quota(session, len(paths), sum(sizes))
                self._refuse_same_names([_safe_name(p.name) for p in paths], service)
                for path in paths:
                    load_document(path)  # fails early, before anything is copied or indexed
                destination = self.private.files_dir(session) if self.private else config.uploads_dir()
                destination.mkdir(parents=True, exist_ok=True)
                for path in paths:
                    target = destination / _safe_name(path.name)
                    # Never overwrite in place: a failed re-index must leave the old copy intact.
                    temp = Path(tempfile.mkstemp(dir=destination, suffix=target.suffix)[1])
                    shutil.copyfile(path, temp)
                    staged.append((temp, target))
                progress(0, desc="Indexing…")
                final = []
                for temp, target in staged:
                    backup = target.with_name(target.name + ".previous")
                    if target.exists():  # a leftover of an earlier failed upload, not indexed
                        shutil.copyfile(target, backup)
                    temp.replace(target)
                    final.append((target, backup))
                embedding = lambda done, total: progress(done / max(total, 1), desc="Embedding paragraphs")
                try:
                    if self.private:
                        self.private.add(session, [t for t, _ in final], embedding)
                    else:
                        self.service.add_documents([t for t, _ in final], replace=False, progress=embedding)
                except BaseException:
                    for target, backup in final:  # put back what was there
                        if backup.exists():
                            backup.replace(target)
                        else:
                            target.unlink(missing_ok=True)
                    raise
                for _, backup in final:
                    backup.unlink(missing_ok=True)
                used = self.session_uploads.setdefault(session, [0, 0])
                used[0] += len(paths)
                used[1] += sum(sizes)
            except DuplicateDocumentError as error:  # indexed meanwhile, by another session
                for temp, _ in staged:
                    temp.unlink(missing_ok=True)
                return self._same_name_message(error.names, service), self.documents_markdown(request)
            except QAError as error:
                for temp, _ in staged:
                    temp.unlink(missing_ok=True)
                return f"✗ {_escape(_one_line(error))} — the index is unchanged.", self.documents_markdown(request)
            except Exception as error:
                for temp, _ in staged:
                    temp.unlink(missing_ok=True)
                return (f"✗ Could not add the documents ({_escape(_one_line(error))}) — the index is unchanged.",
                        self.documents_markdown(request))
        names = ", ".join(_safe_name(p.name) for p in paths)
        if not self.private and self.service.warnings:  # a very long line, cut into parts
            names += " (" + "; ".join(_escape(w) for w in self.service.warnings) + ")"
        if self.private:
            return (f"✓ Added {names}, for this page only: other visitors' answers do not use it, and it is "
                    f"removed when you close the page. Ask about it in the chat."), self.documents_markdown(request)
        return f"✓ Added {names}. Ask about it in the chat.", self.documents_markdown(request)

    def _check_session_quota(self, session: str, count: int, size: int) -> None:
        limits = self.service.limits
        files, total = self.session_uploads.get(session, (0, 0))
        if files + count > limits.upload_files_per_session:
            raise QAError(f"this session may add {limits.upload_files_per_session} documents and has added {files}; "
                          f"an operator can add more with `qa index --add`")
        if total + size > limits.upload_mb_per_session * 2**20:
            raise QAError(f"this session may upload {limits.upload_mb_per_session} MB in all and has used "
                          f"{total / 2**20:.1f} MB; an operator can add more with `qa index --add`")

    def _refuse_same_names(self, names: list[str], service) -> None:
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise QAError(f"two of the files would both be named {', '.join(twice)}: rename one")
        try:
            indexed = {s["name"] for s in service.index.manifest["sources"]}
        except QAError:
            return  # no usable index: add_documents says so
        clashing = [n for n in names if n in indexed]
        if clashing:
            raise DuplicateDocumentError(clashing)

    def _same_name_message(self, names: list[str], service) -> str:
        try:
            sources = service.index.manifest["sources"]
        except QAError:
            sources = []
        corpus = config.corpus_dir().resolve()
        bundled = [s["name"] for s in sources if s["name"] in names and corpus in Path(s["path"]).resolve().parents]
        shown = ", ".join(_escape(n) for n in names)
        if bundled:
            return (f"✗ {shown}: a bundled document has this name, and the bundled documents cannot be "
                    f"replaced from this page. Rename your file and upload it again — the index is unchanged.")
        return (f"✗ {shown}: a document of this name is already indexed, and documents are not replaced "
                f"from this page. Rename your file and upload it again — the index is unchanged.")

    # -- evaluation tab: a background job per browser session (qa/background.py)

    def evaluate(self, testset_file, progress=None):
        """Run a test set to the end in this thread (tests and scripts); the page uses
        start_evaluation / evaluation_progress instead, which never block the chat."""
        job, message = self._start(testset_file, "local")
        if job is None:
            return message, None, ""
        while not job.finished:
            job.thread.join(0.2)
            job.last_seen = time.monotonic()
        return self._results(job)

    def _start(self, testset_file, session: str):
        from .evaluate import DEFAULT_TESTSET, load_testset

        path = Path(testset_file if isinstance(testset_file, str) else getattr(testset_file, "name", "")) \
            if testset_file else DEFAULT_TESTSET
        try:
            items = load_testset(path, set(self.service.index.by_id))
            self.service.generator()  # loads the model here, so a load error is one line now
            return self.evaluations.start(session, items, path), ""
        except QAError as error:
            return None, f"✗ {_escape(_one_line(error))}"
        except ValueError as error:
            return None, f"✗ {_escape(str(error))}"

    def _results(self, job) -> tuple[str, str | None, str]:
        from .evaluate import failures

        if job.state == "failed":
            return f"✗ The evaluation stopped: {_escape(job.error)}", None, ""
        if job.state == "cancelled":
            if not job.results:
                return "", None, ""
            from .evaluate import summarise

            return (f"Figures for the {len(job.results)} questions done before it stopped:\n\n"
                    + metrics_table(summarise(job.results)), None, "")
        failed = failures(job.results)
        rows = "\n".join(f"- **{r.item.id}** {why}: {_escape(r.item.question)} → "
                         f"{_escape(r.answer.text if r.answer else '')}" for r, why in failed) or "None."
        plot = str(job.report / "metrics.png") if job.report else None
        return metrics_table(job.summary), plot, f"**Questions that went wrong ({len(failed)})**\n\n{rows}"

    def start_evaluation(self, testset_file, request: gr.Request = None):
        session = getattr(request, "session_hash", None) or "local"
        job, message = self._start(testset_file, session)
        if job is None:
            return (message, "", gr.Image(value=None, visible=False), "", gr.Timer(active=False),
                    gr.Button(interactive=True), gr.Button(interactive=False))
        return (progress_html(job.progress()), "", gr.Image(value=None, visible=False), "", gr.Timer(active=True),
                gr.Button(interactive=False), gr.Button(interactive=True))

    def evaluation_progress(self, request: gr.Request = None):
        job = self.evaluations.get(getattr(request, "session_hash", None) or "local")
        if job is None:
            return "", gr.skip(), gr.skip(), gr.skip(), gr.Timer(active=False), gr.skip(), gr.skip()
        shown = progress_html(job.progress())
        if not job.finished:
            return shown, gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        table, plot, failed = self._results(job)
        return (shown, table, gr.Image(value=plot, visible=plot is not None), failed, gr.Timer(active=False),
                gr.Button(interactive=True), gr.Button(interactive=False))

    def cancel_evaluation(self, request: gr.Request = None):
        job = self.evaluations.get(getattr(request, "session_hash", None) or "local")
        if job:
            job.cancel()
        return "Stopping the evaluation…" if job and not job.finished else gr.skip()

    def end_session(self, request: gr.Request = None):
        """The browser session ended (tab closed): its evaluation stops."""
        session = getattr(request, "session_hash", None)
        if session:
            self.evaluations.end_session(session)
            if self.private:
                self.private.end(session)  # its own documents go with its page


# What each number means, in plain words, shown next to it (keys of evaluate.summarise).
METRICS = [
    ("key_fact_accuracy", "Key facts", "answerable questions whose answer contains every expected fact"),
    ("unanswerable_declined", "Declined when it should", "questions the document cannot answer that got "
                                                          "“the document does not say”"),
    ("answerable_declined", "Declined wrongly", "answerable questions it declined (lower is better)"),
    ("cites_gold", "Cites the right paragraph", "answers citing at least one paragraph that holds the answer"),
    ("citation_precision", "Citations that are right", "of all paragraphs cited, the share that hold the answer"),
    ("alce_citation_recall", "Sentences backed by their citations",
     "answer sentences whose cited paragraphs support them (checked word by word)"),
    ("alce_citation_precision", "Citations that back their sentence",
     "citations that support the sentence they follow"),
    ("token_f1", "Word overlap with the reference", "how many words the answer shares with the expected answer "
                                                    "(1 = the same words)"),
    ("recall@1", "Right paragraph found first", "the paragraph that holds the answer is the first one found"),
    ("recall@3", "Right paragraph in the top 3", "the paragraph that holds the answer is among the 3 the answer "
                                                 "is written from"),
    ("recall@5", "Right paragraph in the top 5", "the same, among the first 5 found"),
    ("mrr", "Mean reciprocal rank", "1 when the right paragraph is always found first, ½ when second, …"),
    ("ndcg@10", "nDCG@10", "how high the right paragraphs rank among the first 10 (1 = at the top)"),
    ("quoted_share", "Answers quoting the document", "answers that quote the document's own sentences"),
    ("median_answer_words", "Words per answer", "the median length of an answer"),
    ("median_first_shown", "Seconds to the first checked sentence", "median time until a reader sees something"),
    ("median_seconds", "Seconds per answer", "median time to the whole answer"),
    ("p95_seconds", "Seconds per answer, slowest 5 %", "95 of 100 answers are faster than this"),
]
_SHARES = {"key_fact_accuracy", "unanswerable_declined", "answerable_declined", "cites_gold", "citation_precision",
           "alce_citation_recall", "alce_citation_precision", "recall@1", "recall@3", "recall@5", "quoted_share"}


def _value(key: str, value) -> str:
    if not isinstance(value, (int, float)) or value != value:  # NaN: nothing to measure it on
        return "–"
    if key in _SHARES:
        return f"{value:.0%}"
    if "seconds" in key or "first" in key:
        return f"{value:.1f} s"
    if key == "median_answer_words":
        return f"{value:.0f}"
    return f"{value:.2f}"


def metrics_table(summary: dict) -> str:
    """Markdown: each metric with its value and what it means."""
    head = (f"**{summary.get('questions', 0)} questions** ({summary.get('answerable', 0)} the document answers, "
            f"{summary.get('unanswerable', 0)} it does not)\n\n| measure | value | what it means |\n|---|---|---|")
    rows = [f"| {label} | {_value(key, summary[key])} | {meaning} |"
            for key, label, meaning in METRICS if key in summary]
    return head + "\n" + "\n".join(rows)


def progress_html(progress) -> str:
    """The job's state for the page: a bar, counts, time left, and why it waits."""
    done, total = progress.done, progress.total
    if progress.state == "done":
        return f"✓ Evaluation finished: {total} questions."
    if progress.state == "cancelled":
        why = f" ({_escape(progress.message)})" if progress.message and progress.message != "cancelled" else ""
        return f"Evaluation stopped after {done} of {total} questions{why}."
    if progress.state == "failed":
        return f"✗ The evaluation stopped: {_escape(progress.message)}"
    left = minutes(progress.seconds_left)
    bits = [f"{done} of {total} questions"]
    bits.append(f"{left} left" if left else "estimating the time left…")
    waiting = (" <b>Paused while a chat question is answered</b> (chat questions always go first)."
               if progress.state == "paused" else "")
    return (f'<div role="status"><progress class="qa-eval-bar" max="{total}" value="{done}" '
            f'aria-label="Evaluation progress"></progress><p><span class="qa-spinner" aria-hidden="true"></span>'
            f"Evaluating: {' · '.join(bits)}.{waiting}</p></div>")


def _safe_name(name: str) -> str:
    """A file name we choose: no folders, no dots at the start, only plain characters."""
    base = Path(str(name).replace("\\", "/")).name
    stem, suffix = Path(base).stem, Path(base).suffix.lower()
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", stem).strip("-.")[:80] or "document"
    return f"{stem}{suffix}"


def create_app(service, private_uploads: bool = False) -> gr.Blocks:
    """The page. `private_uploads` (with --network): each browser session's uploads are its own."""
    app = ChatApp(service, private_uploads)
    with gr.Blocks(title="Document Q&A") as demo:
        gr.Markdown("# Ask the document\nAnswers come only from the indexed documents, "
                    "each claim cited to its paragraph. If the document does not say, neither does this.")
        overview = gr.HTML(app.overview(), elem_id="overview", container=False, padding=False)
        status = gr.HTML(app.status(), elem_classes="qa-status", elem_id="status", container=False, padding=False)
        with gr.Tabs():
            with gr.Tab("Chat"):
                chatbot = gr.Chatbot(height=CHAT_HEIGHT, label="Conversation", show_label=False, buttons=["copy"],
                                     elem_id="chat", autoscroll=False, feedback_options=None,
                                     placeholder="Ask something about the documents, or pick an example below.")
                with gr.Row(equal_height=True):
                    box = gr.Textbox(placeholder="Your question…", label="Your question", show_label=False,
                                     scale=6, max_lines=4, autofocus=True, elem_id="question")
                    send = gr.Button("Ask", variant="primary", scale=1, elem_id="ask")
                with gr.Row(elem_classes="qa-examples", elem_id="examples"):
                    gr.HTML("<b>Try:</b>", padding=False, container=False, scale=0, min_width=30, elem_id="try")
                    example_buttons = [gr.Button(q, size="sm", variant="secondary", elem_classes="qa-example",
                                                 scale=0, min_width=0) for q in EXAMPLES]
                    clear = gr.Button("New conversation", size="sm", variant="secondary", elem_id="clear",
                                      scale=0, min_width=0)
            with gr.Tab("Documents"):
                documents = gr.Markdown(app.documents_markdown())
                uploads = gr.File(file_count="multiple", file_types=list(SUPPORTED_SUFFIXES),
                                  label=f"Add documents ({', '.join(SUPPORTED_SUFFIXES)}; up to "
                                        f"{service.limits.upload_file_mb} MB each, "
                                        f"{service.limits.upload_files_per_session} per session; names already "
                                        f"indexed are refused"
                                        + ("; only this page's questions use them)" if private_uploads else ")"))
                add = gr.Button("Add to the index", variant="primary", elem_id="add")
                upload_result = gr.Markdown(elem_id="upload-result")
            with gr.Tab("Evaluate"):
                gr.Markdown("Run a test set (JSONL; see docs/EVALUATION.md) through the same pipeline, in the "
                            "background: chat questions always go first, and it stops if you cancel or close "
                            "this page. Leave the file empty to use the bundled test set (a few seconds per "
                            "question).")
                testset = gr.File(file_count="single", file_types=[".jsonl"], label="Test set (optional)")
                with gr.Row():
                    run_eval = gr.Button("Run evaluation", variant="primary", elem_id="run-eval")
                    cancel_eval = gr.Button("Cancel", variant="stop", interactive=False, elem_id="cancel-eval")
                eval_progress = gr.HTML(elem_id="eval-progress")
                eval_table = gr.Markdown(elem_id="eval-table")
                eval_plot = gr.Image(label="Metrics", type="filepath", visible=False)  # shown with results
                eval_failures = gr.Markdown()
                eval_timer = gr.Timer(1.0, active=False)

        # Chat: Gradio hands questions over at once; ModelGate runs them one at a time and
        # tells the waiting ones their place in line, in the chat.
        chat_args = dict(fn=app.chat, inputs=[box, chatbot], outputs=[chatbot, box],
                         concurrency_limit=CHAT_CONCURRENCY, concurrency_id="chat", api_visibility="private",
                         show_progress="hidden")
        box.submit(**chat_args)
        send.click(**chat_args)
        for button in example_buttons:  # an example asks at once, not only fills the box
            button.click(lambda q: q, inputs=button, outputs=box, queue=False, api_visibility="private",
                         show_progress="hidden").then(**chat_args)
        clear.click(lambda: ([], ""), outputs=[chatbot, box], queue=False, api_visibility="private")
        add.click(app.upload, inputs=uploads, outputs=[upload_result, documents], concurrency_limit=1,
                  api_name="upload", show_progress="minimal").then(
            app.overview, outputs=overview, queue=False, api_visibility="private", show_progress="hidden")
        eval_outputs = [eval_progress, eval_table, eval_plot, eval_failures, eval_timer, run_eval, cancel_eval]
        run_eval.click(app.start_evaluation, inputs=testset, outputs=eval_outputs, concurrency_limit=2,
                       concurrency_id="evaluation", api_visibility="private", show_progress="hidden")
        eval_timer.tick(app.evaluation_progress, outputs=eval_outputs, queue=False, api_visibility="private",
                        show_progress="hidden")
        cancel_eval.click(app.cancel_evaluation, outputs=eval_progress, queue=False, api_visibility="private",
                          show_progress="hidden")
        timer = gr.Timer(1.0)
        timer.tick(lambda: (app.status(), gr.Timer(active=not service.generator_loaded and not app.loading_error)),
                   outputs=[status, timer], queue=False, api_visibility="private", show_progress="hidden")
        gr.api(app.ask_api, api_name="ask", concurrency_limit=CHAT_CONCURRENCY, concurrency_id="chat")
        gr.api(app.search_api, api_name="search")
        gr.api(app.documents_markdown, api_name="documents")
        demo.load(app.page_load, outputs=[documents, overview], queue=False,
                  api_visibility="private", show_progress="hidden")
        demo.unload(app.end_session)
    demo.qa_app = app  # for launch() and tests
    return demo


def theme():
    """Soft, with the contrast axe-core asks for (4.5:1) on buttons, labels and hints."""
    return gr.themes.Soft(font=["system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"]).set(
        button_primary_background_fill="*primary_700", button_primary_background_fill_hover="*primary_800",
        button_primary_text_color="white", block_label_text_color="*primary_800",
        block_title_text_color="*primary_800", body_text_color_subdued="*neutral_600",
        input_placeholder_color="*neutral_500")


def launch(service, host: str = "127.0.0.1", port: int = 7860, share_network: bool = False,
           block: bool = True):
    # Open to the network, a visitor's uploads stay that visitor's (qa/sessions.py).
    demo = create_app(service, private_uploads=share_network)
    demo.qa_app.preload()
    demo.queue(max_size=32, default_concurrency_limit=2)
    return demo.launch(
        server_name="0.0.0.0" if share_network else host,
        server_port=port,
        share=False,
        show_error=False,
        max_file_size=f"{MAX_UPLOAD_MB}mb",
        theme=theme(),
        css=CSS,
        head=HEAD,
        footer_links=[],
        prevent_thread_lock=not block,
        quiet=not block,
        ssr_mode=False,
        # Announced to screen readers when an event ends; Gradio has no text for it otherwise.
        i18n=gr.I18n(en={"common.complete": "Done", "common.error": "Error"}),
    )

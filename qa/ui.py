"""The web chat (Gradio): ask, see each claim's paragraph, add documents, run evaluations.

This is the only module that imports gradio. `create_app(service)` builds the Blocks;
`launch()` starts it, bound to 127.0.0.1 unless told otherwise, with a queue that serialises
generation (one model, two cores) and bounds the waiting line. Library errors become short
messages in the page; tracebacks never reach it.

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
from pathlib import Path

from . import config
from .answer import Answer, NOT_IN_DOCUMENT, Passage, VerifiedSentence
from .documents import SUPPORTED_SUFFIXES, load_document
from .errors import DuplicateDocumentError, QAError
from .limits import DEFAULT_LIMITS, check_question, trim_history
from .policy import DEFAULT_POLICY

config.set_offline()  # before gradio is imported: no analytics, no hub

import gradio as gr  # noqa: E402

CHECKING = "Checking the answer against the document…"
MAX_UPLOAD_MB = DEFAULT_LIMITS.upload_file_mb  # also Gradio's own cap, before a file reaches us
MAX_HISTORY_MESSAGES = 40  # per browser session: keeps memory bounded in long chats
EXAMPLES = [
    "Which countries led the initiative on veto restraint?",
    "What did Mr. Dieng say about impunity?",
    "Why did some delegates think formal agenda inclusion was premature?",
    "What is the capital of Australia?",
]
CSS = """
.qa-status {font-size: 0.9em; opacity: 0.85}
footer {display: none !important}
"""


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


def _passage_block(p: Passage, answer_text: str = "", open_: bool = False) -> str:
    where = f"{_escape(p.document)} · {_escape(p.label)}" + (f" · {_escape(p.section)}" if p.section else "")
    body = _highlight(p.text, answer_text) if answer_text else _escape(p.text)
    return (f"<details{' open' if open_ else ''}><summary><b>[{_escape(p.label)}]</b> {where}"
            f" <small>(score {p.score:.2f})</small></summary>\n\n{body}\n\n</details>")


def _cited(text: str) -> str:
    """Escaped answer text with its citations in bold, so they stand out."""
    return re.sub(r"\[([^\[\]]{1,40})\]", r"**[\1]**", _escape(text))


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


def format_answer(answer: Answer) -> str:
    """Markdown for one assistant turn: the answer, then its sources under it."""
    if answer.abstained:
        lines = [f"⚠ **{NOT_IN_DOCUMENT}**"]
        if answer.reason:
            lines.append(f"<small>Why: {_escape(answer.reason)}. Nothing is cited.</small>")
        if answer.passages:
            lines.append("<details><summary>Closest passages (they do not answer it)</summary>\n\n"
                         + "\n\n".join(_passage_block(p) for p in answer.passages) + "\n\n</details>")
        lines.append(_trace_block(answer))
        return "\n\n".join(line for line in lines if line)
    text = _cited(answer.text)
    cited_ids = {c.id for c in answer.citations}
    cited = [p for p in answer.passages if p.id in cited_ids]
    others = [p for p in answer.passages if p.id not in cited_ids]
    lines = [f"✓ {text}", f"**Sources** ({len(cited)})"]
    lines += [_passage_block(p, answer.text, open_=True) for p in cited]
    if others:
        lines.append(f"<details><summary>Other retrieved passages ({len(others)})</summary>\n\n"
                     + "\n\n".join(_passage_block(p) for p in others) + "\n\n</details>")
    if answer.reason:
        lines.append(f"<small>Note: {_escape(answer.reason)}.</small>")
    if answer.quoted and "quoted" not in answer.reason:
        lines.append("<small>Note: part of this answer is quoted from the document.</small>")
    seconds = answer.timings.get("total")
    if seconds:
        lines.append(f"<small>{seconds:.1f} s</small>")
    lines.append(_trace_block(answer))
    return "\n\n".join(line for line in lines if line)


def _history_turns(messages: list[dict]) -> list[dict]:
    """Chat messages -> [{question, answer}] for follow-ups (answers as their plain text)."""
    turns, question = [], None
    for m in messages or []:
        content = m.get("content") if isinstance(m, dict) else None
        if not isinstance(content, str):
            continue
        if m.get("role") == "user":
            question = content
        elif m.get("role") == "assistant" and question is not None:
            first = content.split("\n\n", 1)[0].lstrip("✓⚠ ").replace("**", "")
            turns.append({"question": question, "answer": first})
            question = None
    return turns


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else error.__class__.__name__


# --------------------------------------------------------------------------- app


class ChatApp:
    """The handlers, holding the service they drive (no gradio objects in here)."""

    def __init__(self, service):
        self.service = service
        self.loading_error = ""
        self.upload_lock = threading.Lock()
        self.session_uploads: dict[str, list[int]] = {}  # session -> [files, bytes] added

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
            return ("⧗ Loading the model… The very first start assembles and converts it once "
                    "(about a minute); later starts take a few seconds. You can type your question meanwhile.")
        return "● Ready — answers come only from the indexed documents, with their paragraphs cited."

    def documents_markdown(self) -> str:
        try:
            sources = self.service.index.manifest.get("sources", [])
        except QAError as error:
            return f"✗ {_one_line(error)}"
        rows = [f"- **{_escape(s['name'])}** — {s['paragraphs']} paragraph{'s' if s['paragraphs'] != 1 else ''}" for s in sources]
        return "**Indexed documents**\n\n" + "\n".join(rows)

    # -- chat

    def chat(self, message: str, messages: list[dict]):
        """Stream the assistant turn into the chat; the checked answer replaces the draft."""
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

        try:
            if not self.service.generator_loaded:
                yield show("<small>Loading the model first (only once)…</small>")
            answerer = self.service.answerer()
            # Only checked text is ever rendered: the model's draft stays off the page, and
            # each sentence appears once it has passed verification against the document.
            yield show(f"<small>{CHECKING}</small>")
            shown: list[str] = []
            for item in answerer.stream(question, history):
                if isinstance(item, VerifiedSentence):
                    shown.append(item.text)
                    yield show(f"✓ {_cited(' '.join(shown))}\n\n<small>{CHECKING}</small>")
                else:
                    yield show(format_answer(item))
        except QAError as error:
            yield show(f"✗ {_escape(_one_line(error))}")
        except Exception as error:
            yield show(f"✗ Something went wrong: {_escape(_one_line(error))}")

    # -- API endpoints (plain JSON in and out)

    def ask_api(self, question: str, history_json: str = "") -> dict:
        try:
            history = json.loads(history_json) if history_json and history_json.strip() else []
            # Checked before the answerer (and its models) is asked for.
            question = check_question(question, self.service.limits)
            history = trim_history(history, self.service.limits)
            answer = self.service.answerer().ask(question, history)
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

    def search_api(self, query: str, k: float = 5) -> list[dict]:
        try:
            hits = self.service.index.search(query, k=int(k))
        except QAError as error:
            raise gr.Error(_one_line(error)) from None
        return [{"id": h.paragraph.id, "label": h.paragraph.label, "document": h.paragraph.document,
                 "score": round(h.score, 4), "text": h.paragraph.text} for h in hits]

    # -- uploads

    def upload(self, files, request: gr.Request = None, progress=gr.Progress()) -> tuple[str, str]:
        """Validate, copy under safe names into the uploads folder, re-index, swap in.

        Never replaces: a file named like an indexed document is refused (rename it), so no
        visitor can change the documents everyone else's answers come from. Each browser
        session may add `upload_files_per_session` files of `upload_mb_per_session` MB.
        """
        limits = self.service.limits
        files = files if isinstance(files, list) else [files] if files else []
        if not files:
            return "Choose one or more .txt, .md or .pdf files first.", self.documents_markdown()
        paths = [Path(f if isinstance(f, str) else getattr(f, "name", f)) for f in files]
        session = getattr(request, "session_hash", None) or "local"
        with self.upload_lock:
            staged = []
            try:
                sizes = []
                for path in paths:
                    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
                        raise QAError(f"{_safe_name(path.name)}: only .txt, .md and .pdf files are accepted")
                    sizes.append(path.stat().st_size)
                    if sizes[-1] > limits.upload_file_mb * 2**20:
                        raise QAError(f"{_safe_name(path.name)}: larger than {limits.upload_file_mb} MB")
                self._check_session_quota(session, len(paths), sum(sizes))
                self._refuse_same_names([_safe_name(p.name) for p in paths])
                for path in paths:
                    load_document(path)  # fails early, before anything is copied or indexed
                destination = config.uploads_dir()
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
                try:
                    self.service.add_documents([t for t, _ in final], replace=False,
                                               progress=lambda done, total: progress(done / max(total, 1), desc="Embedding paragraphs"))
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
                return self._same_name_message(error.names), self.documents_markdown()
            except QAError as error:
                for temp, _ in staged:
                    temp.unlink(missing_ok=True)
                return f"✗ {_escape(_one_line(error))} — the index is unchanged.", self.documents_markdown()
            except Exception as error:
                for temp, _ in staged:
                    temp.unlink(missing_ok=True)
                return f"✗ Could not add the documents ({_escape(_one_line(error))}) — the index is unchanged.", self.documents_markdown()
        names = ", ".join(_safe_name(p.name) for p in paths)
        return f"✓ Added {names}. Ask about it in the chat.", self.documents_markdown()

    def _check_session_quota(self, session: str, count: int, size: int) -> None:
        limits = self.service.limits
        files, total = self.session_uploads.get(session, (0, 0))
        if files + count > limits.upload_files_per_session:
            raise QAError(f"this session may add {limits.upload_files_per_session} documents and has added {files}; "
                          f"an operator can add more with `qa index --add`")
        if total + size > limits.upload_mb_per_session * 2**20:
            raise QAError(f"this session may upload {limits.upload_mb_per_session} MB in all and has used "
                          f"{total / 2**20:.1f} MB; an operator can add more with `qa index --add`")

    def _refuse_same_names(self, names: list[str]) -> None:
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise QAError(f"two of the files would both be named {', '.join(twice)}: rename one")
        try:
            indexed = {s["name"] for s in self.service.index.manifest["sources"]}
        except QAError:
            return  # no usable index: add_documents says so
        clashing = [n for n in names if n in indexed]
        if clashing:
            raise DuplicateDocumentError(clashing)

    def _same_name_message(self, names: list[str]) -> str:
        try:
            sources = self.service.index.manifest["sources"]
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

    # -- evaluation tab

    def evaluate(self, testset_file, progress=gr.Progress()):
        from .evaluate import DEFAULT_TESTSET, evaluate, failures, load_testset, summary_table, write_report

        path = Path(testset_file if isinstance(testset_file, str) else getattr(testset_file, "name", "")) \
            if testset_file else DEFAULT_TESTSET
        try:
            items = load_testset(path, set(self.service.index.by_id))
            answerer = self.service.answerer()
            progress(0, desc="Evaluating")
            results, summary = evaluate(
                answerer, items, progress=lambda n, total, r: progress(n / total, desc=f"Question {n}/{total}"))
        except QAError as error:
            return f"✗ {_escape(_one_line(error))}", None, ""
        folder = write_report(Path(tempfile.mkdtemp(prefix="qa-eval-")), results, summary, "default", path)
        failed = failures(results)
        rows = "\n".join(f"- **{r.item.id}** {why}: {_escape(r.item.question)} → "
                         f"{_escape(r.answer.text if r.answer else '')}" for r, why in failed) or "None."
        return summary_table({"this run": summary}), str(folder / "metrics.png"), f"**Failures ({len(failed)})**\n\n{rows}"


def _safe_name(name: str) -> str:
    """A file name we choose: no folders, no dots at the start, only plain characters."""
    base = Path(str(name).replace("\\", "/")).name
    stem, suffix = Path(base).stem, Path(base).suffix.lower()
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", stem).strip("-.")[:80] or "document"
    return f"{stem}{suffix}"


def create_app(service) -> gr.Blocks:
    app = ChatApp(service)
    generating = getattr(service, "generation_concurrency", 1)  # 1 in-process; a server's slots + queue
    with gr.Blocks(title="Document Q&A") as demo:
        gr.Markdown("# Ask the document\nAnswers come only from the indexed documents, "
                    "each claim cited to its paragraph. If the document does not say, neither does this.")
        status = gr.Markdown(app.status(), elem_classes="qa-status")
        with gr.Tabs():
            with gr.Tab("Chat"):
                chatbot = gr.Chatbot(height=560, label="Conversation", buttons=["copy"], elem_id="chat",
                                     placeholder="Ask something about the document, or pick an example below.",
                                     feedback_options=None)
                with gr.Row():
                    box = gr.Textbox(placeholder="Your question…", show_label=False, scale=6, max_lines=4,
                                     autofocus=True, elem_id="question")
                    send = gr.Button("Ask", variant="primary", scale=1, elem_id="ask")
                with gr.Row():
                    gr.Examples(EXAMPLES, inputs=box, label="Examples")
                    clear = gr.Button("New conversation", scale=0)
            with gr.Tab("Documents"):
                documents = gr.Markdown(app.documents_markdown())
                uploads = gr.File(file_count="multiple", file_types=list(SUPPORTED_SUFFIXES),
                                  label=f"Add documents (.txt, .md, .pdf; up to {service.limits.upload_file_mb} MB "
                                        f"each, {service.limits.upload_files_per_session} per session; names already "
                                        f"indexed are refused)")
                add = gr.Button("Add to the index", variant="primary")
                upload_result = gr.Markdown()
            with gr.Tab("Evaluate"):
                gr.Markdown("Run a test set (JSONL; see docs/EVALUATION.md) through the same pipeline. "
                            "Leave empty to use the bundled test set. Takes a few seconds per question.")
                testset = gr.File(file_count="single", file_types=[".jsonl"], label="Test set (optional)")
                run_eval = gr.Button("Run evaluation", variant="primary")
                eval_table = gr.Markdown()
                eval_plot = gr.Image(label="Metrics", type="filepath")
                eval_failures = gr.Markdown()

        chat_args = dict(fn=app.chat, inputs=[box, chatbot], outputs=[chatbot, box],
                         concurrency_limit=generating, concurrency_id="model", api_visibility="private")
        box.submit(**chat_args)
        send.click(**chat_args)
        clear.click(lambda: ([], ""), outputs=[chatbot, box], queue=False, api_visibility="private")
        add.click(app.upload, inputs=uploads, outputs=[upload_result, documents], concurrency_limit=1,
                  api_name="upload")
        run_eval.click(app.evaluate, inputs=testset, outputs=[eval_table, eval_plot, eval_failures],
                       concurrency_limit=generating, concurrency_id="model", api_visibility="private")
        timer = gr.Timer(1.0)
        timer.tick(lambda: (app.status(), gr.Timer(active=not service.generator_loaded and not app.loading_error)),
                   outputs=[status, timer], queue=False, api_visibility="private")
        gr.api(app.ask_api, api_name="ask", concurrency_limit=generating, concurrency_id="model")
        gr.api(app.search_api, api_name="search")
        gr.api(app.documents_markdown, api_name="documents")
        demo.load(app.documents_markdown, outputs=documents, queue=False, api_visibility="private")
    demo.qa_app = app  # for launch() and tests
    return demo


def launch(service, host: str = "127.0.0.1", port: int = 7860, share_network: bool = False,
           block: bool = True):
    demo = create_app(service)
    demo.qa_app.preload()
    demo.queue(max_size=32, default_concurrency_limit=2)
    theme = gr.themes.Soft(font=["system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])
    return demo.launch(
        server_name="0.0.0.0" if share_network else host,
        server_port=port,
        share=False,
        show_error=False,
        max_file_size=f"{MAX_UPLOAD_MB}mb",
        theme=theme,
        css=CSS,
        footer_links=[],
        prevent_thread_lock=not block,
        quiet=not block,
        ssr_mode=False,
    )

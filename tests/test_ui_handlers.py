"""The web app's handlers with fakes: streaming, errors as messages, uploads, evaluation tab."""

import json
import re

import pytest

from qa.answer import AnswerSettings
from qa.service import Service

from .conftest import SEED, FakeEmbedder, ScriptedGenerator

ui = pytest.importorskip("qa.ui")


@pytest.fixture
def app(tmp_path, monkeypatch):
    monkeypatch.setenv("QA_UPLOADS", str(tmp_path / "uploads"))
    service = Service(index_path=tmp_path / "index", embedder=FakeEmbedder(),
                      generator=ScriptedGenerator("France and Mexico led the initiative on veto restraint [¶11]."),
                      settings=AnswerSettings(min_dense=0.05))
    service.build([SEED])
    return ui.ChatApp(service)


def test_chat_streams_only_checked_sentences_then_the_answer_with_sources(app):
    updates = list(app.chat("Which countries led the initiative on veto restraint?", []))
    interim = [u[0][-1]["content"] for u in updates[:-1]]
    assert any(ui.CHECKING in d for d in interim)
    final_text = updates[-1][0][-1]["content"]
    for content in interim:
        # Before the answer is complete, the page shows nothing but sentences that passed.
        shown = content.split("\n\n")[0]
        if shown.startswith("✓"):
            assert shown in final_text
    final = updates[-1][0]
    assert final[-2] == {"role": "user", "content": "Which countries led the initiative on veto restraint?"}
    content = final[-1]["content"]
    # The citation is a chip that opens its source, which is under the answer (closed).
    chip = re.search(r'<a class="qa-chip" href="#([^"]+)"[^>]*>¶11</a>', content)
    assert chip and f'<details id="{chip.group(1)}">' in content and "Sources (1)" in content
    assert "Interactive Dialogue" in content  # document, label and section shown
    # No developer words in the default view: scores and timings are inside "Details".
    default_view = content.split("<details><summary>Details")[0]
    assert "score" not in default_view and not re.search(r"\d s\b", default_view)


def test_an_out_of_scope_draft_never_reaches_the_page(tmp_path, fake_embedder):
    from qa.service import Service

    service = Service(index_path=tmp_path / "index", embedder=fake_embedder,
                      generator=ScriptedGenerator("The capital of Australia is Canberra [¶10]."),
                      settings=AnswerSettings(min_dense=0.05))
    service.build([SEED])
    updates = list(ui.ChatApp(service).chat("What is the capital of Australia?", []))
    assert all("canberra" not in u[0][-1]["content"].lower() for u in updates)
    assert "does not say" in updates[-1][0][-1]["content"]


def test_declined_answer_looks_different_and_cites_nothing(app):
    final = list(app.chat("What did China say?", []))[-1][0][-1]["content"]
    assert final.startswith("⚠") and "does not say" in final and "Sources" not in final


def test_errors_become_messages_not_tracebacks(app):
    final = list(app.chat("x" * 10_000, []))[-1][0][-1]["content"]
    assert final.startswith("✗") and "limit" in final and "Traceback" not in final


def test_history_is_passed_for_followups(app):
    first = list(app.chat("Who led the initiative on veto restraint?", []))[-1][0]
    list(app.chat("Which group wrote a code of conduct on it?", first))
    messages = app.service.generator().seen[-1]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[1]["content"] == "Who led the initiative on veto restraint?"


def test_upload_rejects_bad_files_and_keeps_the_index(app, tmp_path):
    before = app.service.index.manifest["sources"]
    for name, content in (("../../evil.exe", b"MZ"), ("empty.txt", b"")):
        path = tmp_path / name.replace("../", "")
        path.write_bytes(content)
        message, _ = app.upload([str(path)], progress=lambda *a, **k: None)
        assert message.startswith("✗") and "unchanged" in message
    assert app.service.index.manifest["sources"] == before
    assert not (tmp_path / "uploads").exists() or not any((tmp_path / "uploads").iterdir())


def test_upload_uses_safe_names_inside_the_uploads_folder(app, tmp_path):
    path = tmp_path / "My Notes (draft).md"
    path.write_text("# Notes\n\nThe Danube ends in a delta on the Black Sea, after ten countries.\n")
    message, documents = app.upload([str(path)], progress=lambda *a, **k: None)
    assert message.startswith("✓") and "My-Notes-draft.md" in documents
    assert [p.name for p in (tmp_path / "uploads").iterdir()] == ["My-Notes-draft.md"]
    assert app.service.index.search("Danube delta", k=1)[0].paragraph.document == "My-Notes-draft.md"


@pytest.mark.parametrize("name,expected", [
    ("../../etc/passwd.txt", "passwd.txt"), ("..\\..\\x.md", "x.md"), (".hidden.md", "hidden.md"),
    ("a b/c?.pdf", "c.pdf"), ("???.txt", "document.txt"),
])
def test_safe_name(name, expected):
    assert ui._safe_name(name) == expected


def test_evaluation_tab_reports_table_plot_and_failures(app, tmp_path):
    testset = tmp_path / "mini.jsonl"
    testset.write_text("\n".join(json.dumps(x) for x in [
        {"id": 1, "question": "Which countries led the initiative on veto restraint?",
         "gold": ["r2p-2017-dialogue-summary#11"], "answer": "France and Mexico", "key_facts": ["France", "Mexico"]},
        {"id": 2, "question": "What did China say?", "gold": [], "answer": ""},
    ]) + "\n")
    table, plot, failed = app.evaluate(str(testset), progress=lambda *a, **k: None)
    # Each number with what it means, in plain words.
    assert "| Key facts | 100% | answerable questions whose answer contains every expected fact |" in table
    assert "| Declined when it should | 100% |" in table
    assert plot.endswith("metrics.png")
    assert "Questions that went wrong (0)" in failed


def test_evaluation_tab_bad_testset_is_a_message(app, tmp_path):
    testset = tmp_path / "bad.jsonl"
    testset.write_text("{oops\n")
    table, plot, _ = app.evaluate(str(testset), progress=lambda *a, **k: None)
    assert table.startswith("✗") and "bad.jsonl:1" in table and plot is None


def test_app_builds(app):
    demo = ui.create_app(app.service)
    assert demo.qa_app.service is app.service


def test_quoted_answer_says_so():
    from qa.answer import Answer, Citation

    quoted = Answer("q", "Some delegations argued that force is a last resort [¶11].", False,
                    [Citation("d#11", "¶11", "d", "", "text")], [], quoted=True)
    assert "quoted from the document" in ui.format_answer(quoted)
    own = Answer("q", "France and Mexico led it [¶11].", False, [Citation("d#11", "¶11", "d", "", "text")], [])
    assert "quoted" not in ui.format_answer(own)

"""Typed errors of the library.

The library raises these; only the edges (the command line, the web app) turn them into
one-line messages. Each message is written to be shown as it is: it says what went wrong
and, where there is one, the fix.
"""


class QAError(Exception):
    """Base class: anything the user can act on."""


class DocumentError(QAError):
    """A document cannot be read: missing, empty, binary, undecodable, unsupported."""


class IndexStoreError(QAError):
    """An index on disk is missing, incomplete or built with other settings."""


class ModelError(QAError):
    """A model cannot be found, fails its hash check or fails to load."""


class ServerBusyError(ModelError):
    """A model server refused a question because all its slots and its queue are taken:
    the user may simply retry (the message says so)."""


class QuestionError(QAError):
    """A question is empty or too long, or the history sent with it is malformed or too long."""


class DuplicateDocumentError(QAError):
    """A document of this name is already indexed, and replacing it was not asked for.

    `names` lists the clashing names, so each edge can say its own fix (rename the file in
    the web page, `--replace` on the command line).
    """

    def __init__(self, names: list[str]):
        self.names = list(names)
        super().__init__(f"already in the index: {', '.join(self.names)}")


class TestSetError(QAError):
    """An evaluation test set is malformed (the message names the line)."""

    __test__ = False  # not a pytest test class despite the name


class GenerationTimeout(QAError):
    """Generating an answer ran past the per-request time limit (Limits.generation_timeout_s);
    generation was stopped and the model is free for the next question."""

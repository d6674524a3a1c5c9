"""The web chat on fakes, for browser tests that are about the page, not the models:
`python -m tests.fake_server PORT FOLDER` (DELAY=seconds per generated piece)."""

import os
import sys
import time
from pathlib import Path


def main() -> None:
    from qa import config, ui
    from qa.answer import AnswerSettings
    from qa.service import Service
    from tests.conftest import SEED, FakeEmbedder, ScriptedGenerator

    config.set_offline()
    delay = float(os.environ.get("DELAY", "0.02"))

    class Paced(ScriptedGenerator):
        def stream(self, messages, max_new_tokens=120):
            for piece in super().stream(messages, max_new_tokens):
                time.sleep(delay)
                yield piece

    def reply(messages):
        question = messages[-1]["content"].lower()
        if "australia" in question:
            return "The capital of Australia is Canberra [¶10]."
        return ("France and Mexico led the initiative on veto restraint [¶11]. A significant number of speakers "
                "underlined their support for the initiative led by France and Mexico [¶11].")

    port, root = int(sys.argv[1]), Path(sys.argv[2])
    os.environ.setdefault("QA_UPLOADS", str(root / "uploads"))
    service = Service(index_path=root / "index", embedder=FakeEmbedder(), generator=Paced(reply),
                      settings=AnswerSettings(min_dense=0.05))
    service.build([SEED])
    ui.launch(service, port=port, block=True)


if __name__ == "__main__":
    main()

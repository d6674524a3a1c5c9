"""qa: offline question answering over documents, with paragraph citations.

Start at `qa.service.Service` (Python), `qa.cli` (the `qa` command) or `qa.ui` (the web chat).
"""

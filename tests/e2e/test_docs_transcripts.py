"""The command output shown in the docs is what the commands print today.

`scripts/docs_transcripts.py` runs the commands of every `<!-- transcript:NAME -->`
block for real (the `orderq` command, a scratch database, a worker of its own) and
writes their output into the docs. These tests run the same scenarios and fail when a
checked-in transcript differs — after the normalising that lets times, dates, host
names (and, for the demo, figures) differ. To fix a failure, regenerate the docs:

    DATABASE_URL=… CELERY_BROKER_URL=… python scripts/docs_transcripts.py

read `git diff`, and commit what is right.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

from tests.support.environment import TEST_BROKER_URL, TEST_DATABASE_URL

pytestmark = pytest.mark.e2e

SCRIPT_PATH = Path(__file__).resolve().parents[2] / "scripts" / "docs_transcripts.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("docs_transcripts", SCRIPT_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


transcripts = _load_script()


def test_every_marked_transcript_is_made_by_a_scenario_and_every_block_is_marked():
    made = set(re.findall(r'run\.block\(\s*"([\w-]+)"', SCRIPT_PATH.read_text()))
    marked = set(transcripts.blocks_in_docs())

    assert made == marked


def test_rewrite_replaces_only_the_text_between_the_markers(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text(
        "before\n<!-- transcript:one -->\n```console\n$ old\nold output\n```\n"
        "<!-- /transcript -->\nafter\n<!-- transcript:other -->\n```text\nkept\n```\n"
        "<!-- /transcript -->\n"
    )
    block = transcripts.Block("one", lines=["$ orderq status k", " status  unknown"])

    changed = transcripts.rewrite({"one": block}, [doc])

    assert changed == [doc]
    assert doc.read_text() == (
        "before\n<!-- transcript:one -->\n```console\n$ orderq status k\n status  unknown\n```\n"
        "<!-- /transcript -->\nafter\n<!-- transcript:other -->\n```text\nkept\n```\n"
        "<!-- /transcript -->\n"
    )
    assert transcripts.blocks_in_docs([doc])["one"][1] == "$ orderq status k\n status  unknown\n"


def test_normalise_lets_times_and_hosts_differ_and_nothing_else():
    first = ' result {"due_at": "2026-12-20T11:45:48.788554+00:00"} on celery@vm 0:00:03\n'
    later = ' result {"due_at": "2027-01-02T08:00:00+00:00"} on celery@ci-runner 0:01:10\n'
    other = ' result {"due_at": "2027-01-02T08:00:00+00:00", "loan_id": 2} on celery@vm 0:00:01\n'

    assert transcripts.normalise(first) == transcripts.normalise(later)
    assert transcripts.normalise(first) != transcripts.normalise(other)


def test_normalise_lets_keyset_cursors_differ():
    first = "next page: --cursor 'WzEsIm9yZGVycyIsIjIwMjYtMTEtMjkiLDJd.Rc2RaN6CAEijtfZFs11dxg'\n"
    later = "next page: --cursor 'WzEsIm9yZGVycyIsIjIwMjctMDEtMDIiLDJd.AAAAaN6CAEijtfZFs11dxg'\n"

    assert transcripts.normalise(first) == transcripts.normalise(later)
    assert "<cursor>" in transcripts.normalise(first)


@pytest.mark.parametrize("scenario", sorted(transcripts.SCENARIOS))
def test_the_transcripts_in_the_docs_are_what_the_commands_print(migrated_database, scenario):
    rendered = transcripts.render([scenario], TEST_DATABASE_URL, TEST_BROKER_URL)

    problems = transcripts.stale(rendered, transcripts.blocks_in_docs())

    assert rendered, f"scenario {scenario} made no transcript"
    assert not problems, "\n\n".join(problems) + (
        "\n\nregenerate them: DATABASE_URL=… CELERY_BROKER_URL=… "
        f"python scripts/docs_transcripts.py --only {scenario}"
    )

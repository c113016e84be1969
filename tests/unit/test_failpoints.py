"""The failpoint handshake: a record per firing, written before the action, and `pause`
holding until the test releases it."""

from __future__ import annotations

import threading

import pytest

from tests.support.failpoints import FailpointRecords
from worker.service.failpoints import Failpoints, InjectedFault, PauseNotReleased


def test_a_firing_is_recorded_before_its_action_runs(tmp_path):
    failpoints = Failpoints("before_commit=raise*1@fp-", tmp_path)

    with pytest.raises(InjectedFault):
        failpoints.hit("before_commit", "fp-1", attempt=1)
    failpoints.hit("before_commit", "fp-1", attempt=2)  # past `*1`: nothing fires
    failpoints.hit("after_lock", "fp-2", attempt=1)  # another point: nothing fires

    [hit] = FailpointRecords(tmp_path).hits("fp-")
    assert (hit.point, hit.action, hit.key, hit.attempt) == ("before_commit", "raise", "fp-1", 1)
    assert hit.pid > 0
    assert not list(tmp_path.glob(".*"))  # no half-written record left


def test_without_a_folder_nothing_is_written_and_pause_is_refused(tmp_path):
    Failpoints("after_lock=sleep:0@x-").hit("after_lock", "x-1", attempt=1)

    with pytest.raises(ValueError, match="ORDERQ_FAILPOINT_DIR"):
        Failpoints("after_lock=pause@x-")


def test_pause_holds_until_its_record_is_released(tmp_path):
    failpoints = Failpoints("after_lock=pause@race-", tmp_path)
    records = FailpointRecords(tmp_path)
    paused = threading.Thread(target=failpoints.hit, args=("after_lock", "race-1", 1))

    paused.start()
    [hit] = records.wait_for("race-1", timeout=10)
    paused.join(0.2)
    assert paused.is_alive()  # held at the failpoint
    records.release(hit)
    paused.join(10)

    assert not paused.is_alive()


def test_release_all_lets_every_pause_through_and_an_unreleased_one_gives_up(tmp_path):
    records = FailpointRecords(tmp_path)
    records.release_all()
    Failpoints("after_lock=pause@a-", tmp_path).hit("after_lock", "a-1", attempt=1)

    (tmp_path / "release-all").unlink()
    with pytest.raises(PauseNotReleased, match=r"not released within 0\.1s"):
        Failpoints("after_lock=pause:0.1@b-", tmp_path).hit("after_lock", "b-1", attempt=1)
    assert [hit.key for hit in records.hits()] == ["a-1", "b-1"]

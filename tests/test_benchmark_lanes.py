"""The benchmark drivers' lane claim (benchmarks/lib.sh ``claim``): two lanes walking the same list
of models train each one once, and a lane that dies leaves no claim behind."""

import os
import signal
import subprocess
from pathlib import Path

LIB = Path(__file__).resolve().parent.parent / "benchmarks" / "lib.sh"


def _claim(model_dir: Path) -> int:
    """Exit status of a fresh shell's ``claim`` on model_dir (0: taken, 1: held by another lane)."""
    return subprocess.run(["bash", "-c", f'source "{LIB}"; claim "$1"', "_", str(model_dir)]).returncode


def _holding_lane(model_dir: Path) -> subprocess.Popen:
    """A shell that claims model_dir, says so, then trains (sleeps) while holding it."""
    lane = subprocess.Popen(
        ["bash", "-c", f'source "{LIB}"; claim "$1" || exit 3; echo claimed; exec sleep 60', "_", str(model_dir)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert lane.stdout.readline().strip() == "claimed"
    return lane


def test_a_claimed_model_is_skipped_by_the_other_lane_and_free_once_that_lane_dies(tmp_path):
    model = tmp_path / "standalone" / "pick"
    lane = _holding_lane(model)
    try:
        assert model.is_dir()
        assert _claim(model) == 1  # the other lane skips it
        assert _claim(tmp_path / "standalone" / "other_pick") == 0  # and takes the next one
    finally:
        os.killpg(lane.pid, signal.SIGKILL)  # the lane is killed mid-training, no release
        lane.wait()
    assert _claim(model) == 0  # no stale claim: a restarted lane resumes the model


def test_release_hands_the_model_to_another_lane(tmp_path):
    model = tmp_path / "finetune" / "pick"
    script = f'source "{LIB}"; claim "$1"; release; echo released; exec sleep 60'
    lane = subprocess.Popen(
        ["bash", "-c", script, "_", str(model)], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert lane.stdout.readline().strip() == "released"
        assert _claim(model) == 0
    finally:
        os.killpg(lane.pid, signal.SIGKILL)
        lane.wait()


def test_committed_lanes_refuse_an_unknown_architecture_before_writing_anything(tmp_path):
    lanes = LIB.parent / "multi30k_lanes.sh"
    work = tmp_path / "work"
    done = subprocess.run(
        ["bash", str(lanes), "committed", "largest", "no_such_pick"],
        env={**os.environ, "M30K_WORK": str(work)},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "no architecture benchmarks/results/multi30k/archs/no_such_pick.yml" in done.stderr
    assert not (work / "committed_archs").exists()  # nothing copied, no lane started
    assert not (work / "logs" / "laneA.pid").exists()

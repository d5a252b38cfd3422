"""The benchmark drivers' lanes: the claim (benchmarks/lib.sh ``claim``: two lanes walking the same list
of models train each one once, and a lane that dies leaves no claim behind), the Multi30k lanes' modes
refusing bad input before they write anything, and the resumed report's check of its markers."""

import os
import signal
import subprocess
import sys
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
    assert done.stderr.startswith("committed: no architecture ")
    assert done.stderr.strip().endswith("benchmarks/results/multi30k/archs/no_such_pick.yml")
    assert not (work / "committed_archs").exists()  # nothing copied, no lane started
    assert not (work / "logs" / "laneA.pid").exists()


def test_again_lanes_refuse_a_core_the_machine_lacks_before_writing_anything(tmp_path):
    lanes = LIB.parent / "multi30k_lanes.sh"
    work = tmp_path / "work"
    done = subprocess.run(
        ["bash", str(lanes), "again", "0", str(os.cpu_count() + 3)],
        env={**os.environ, "M30K_WORK": str(work)},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert f"again: '{os.cpu_count() + 3}' is not a core of this machine" in done.stderr
    assert not (work / "committed_picks").exists() and not list((work / "logs").glob("again_*"))


def test_again_plan_retrains_picks_never_trained_alone_before_those_missing_only_their_loss(tmp_path):
    lanes = LIB.parent / "multi30k_lanes.sh"
    work, committed = tmp_path / "work", tmp_path / "committed"
    (committed / "archs").mkdir(parents=True)
    (committed / "hyp").mkdir()
    for name in ("neuron_a", "neuron_b", "neuron_c", "neuron_d", "neuron_e", "spos_a"):
        (committed / "archs" / f"inherited_{name}.yml").write_text("encoder_embed_dim: 192\n")
    # neuron_a has figures (trained on the old machine), neuron_b only hypotheses, neuron_c and spos_a nothing;
    # the BLEU-only file: neuron_d without its loss (retrained for it), neuron_e with one (not retrained)
    (committed / "standalone_intel.json").write_text('{"archs": {"neuron_a": {"bleu": 1.0, "valid_loss": 2.0}}}')
    (committed / "standalone_bleu_only.json").write_text(
        '{"archs": {"neuron_d": {"bleu": 1.0, "valid_loss": null}, "neuron_e": {"bleu": 1.0, "valid_loss": 3.0}}}'
    )
    (committed / "hyp" / "neuron_b.test.txt").write_text("ein Hund\n")
    (committed / "hyp" / "spos_a.valid.txt").write_text("ein Hund\n")  # not the test set: not trained alone
    done = subprocess.run(
        ["bash", str(lanes), "again-plan"],
        env={**os.environ, "M30K_WORK": str(work), "M30K_COMMITTED": str(committed)},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "retrained first (never trained alone): neuron_c spos_a",
        "retrained after every fine-tuning (loss figure only): neuron_b neuron_d",
    ]
    assert not list((work / "logs").glob("again_*"))  # nothing started


def test_resumed_report_refuses_a_report_without_its_markers_and_leaves_everything_as_it_was(tmp_path):
    work, committed, data = tmp_path / "work", tmp_path / "committed", tmp_path / "data"
    for d in (work / "supernets", committed / "hyp", committed / "archs", data):
        d.mkdir(parents=True)
    (committed / "latency_intel.json").write_text('{"cpu": "toy", "measured_at": "now", "as_trained": {}}')
    (data / "test.de").write_text("ein Hund\n")
    report = tmp_path / "report.md"
    report.write_text("# committed report\n\n<!-- resumed: end -->\n")
    done = subprocess.run(
        [
            sys.executable,
            str(LIB.parent / "multi30k_resumed_report.py"),
            *("--work", str(work), "--report", str(report), "--committed", str(committed), "--data", str(data)),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "multi30k_resumed_report: the report needs exactly one '<!-- resumed: begin (written by "
        "benchmarks/multi30k_resumed_report.py) -->' line followed by one '<!-- resumed: end -->' line"
    )
    assert report.read_text() == "# committed report\n\n<!-- resumed: end -->\n"
    assert not list(committed.rglob("*.png")) and not list(committed.glob("hyp/*"))


def test_resumed_report_of_a_machine_that_trained_nothing_alone_has_no_trained_alone_table(tmp_path):
    """A later machine may only train a supernet again (no ``standalone/`` directory): its section names the
    machine and says what it has, other sections and lines stay as they were."""
    work, committed, data = tmp_path / "work", tmp_path / "committed", tmp_path / "data"
    for d in (work / "supernets", work / "logs", committed / "hyp", committed / "archs", data):
        d.mkdir(parents=True)
    (work / "logs" / "lscpu.txt").write_text("Architecture:  x86_64\nModel name:    Toy CPU 9000\n")
    (committed / "latency_intel.json").write_text('{"cpu": "toy", "measured_at": "now", "as_trained": {}}')
    (data / "test.de").write_text("ein Hund\n")
    report = tmp_path / "report.md"
    begin = "<!-- resumed-5: begin (written by benchmarks/multi30k_resumed_report.py) -->"
    kept = "# committed report\n\n<!-- resumed: begin (written by benchmarks/multi30k_resumed_report.py) -->\nsecond\n"
    report.write_text(f"{kept}<!-- resumed: end -->\n{begin}\nstale\n<!-- resumed-5: end -->\n## Notes\n")
    done = subprocess.run(
        [
            sys.executable,
            str(LIB.parent / "multi30k_resumed_report.py"),
            *("--work", str(work), "--report", str(report), "--committed", str(committed), "--data", str(data)),
            *("--section", "resumed-5", "--title", "Resumed on a fifth machine"),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    text = report.read_text()
    assert text.startswith(f"{kept}<!-- resumed: end -->\n{begin}\n## Resumed on a fifth machine\n")
    assert "Machine: **Toy CPU 9000**" in text and "stale" not in text and text.rstrip().endswith("## Notes")
    assert "### Models trained alone on this machine" not in text
    assert (committed / "latency_bleu_resumed-5.png").is_file()

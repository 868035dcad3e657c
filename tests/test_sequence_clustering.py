"""Sequence clustering (methods.md §4) beyond the method contract: recordings cut at their
boundaries with the threshold chosen leave-one-recording-out, the CLI, and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from actionops.cli.main import app
from conftest import tiny_cfg

METHOD = "sequence-clustering"
runner = CliRunner()


@pytest.mark.slow  # ~20 s: make test stays within its budget; the segmentation logic has fast unit tests
def test_segment_recordings_and_cluster_from_the_cli(run_of, tmp_path):
    run = run_of(METHOD)
    recordings = tmp_path / "recordings"
    for seed in (1, 2):  # two recordings of three actions each, from the sample's test files
        made = runner.invoke(app, ["data", "concat", str(run["data"]), "--actions", "3", "--per-action", "1", "--split",
                                   "test", "--seed", str(seed), "--name", f"rec{seed}", "--out", str(recordings), "--json"])
        assert made.exit_code == 0, made.output
    model = str(run["out"] / "seq2seq.pt")
    result = runner.invoke(app, ["segment", str(recordings), "--model", model, "--out", str(tmp_path / "seg"),
                                 *tiny_cfg(METHOD), "--json"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert set(metrics["recordings"]) == {"rec1", "rec2"} and metrics["selection"] == "leave-one-recording-out"
    for row in metrics["recordings"].values():
        assert row["boundaries_true"] == 2 and 0.0 <= row["boundary_f1"] <= 1.0 and row["frame_accuracy"] > 0.34
    assert json.loads((tmp_path / "seg" / "segments.json").read_text()).keys() == {"rec1", "rec2"}

    clustered = runner.invoke(app, ["cluster", "sequences", str(recordings), "--model", model, "--n-clusters", "3",
                                    "--out", str(tmp_path / "cl"), *tiny_cfg(METHOD), "--set", "seqcluster.split=null",
                                    "--json"])
    assert clustered.exit_code == 0, clustered.output
    assert json.loads(clustered.stdout)["clusters"] == 3
    labels = (tmp_path / "cl" / "predictions" / "all" / "labels" / "rec1.csv").read_text().splitlines()
    assert labels[0] == "frame,cluster,truth" and len(labels) > 40


def test_bad_sequence_inputs_are_clear(run_of, tmp_path):
    run = run_of(METHOD)
    other = tmp_path / "wide" / "test" / "a"
    other.mkdir(parents=True)
    np.save(other / "a.npy", np.random.default_rng(0).normal(size=(40, 7)).astype(np.float32))  # 7 channels, model: 5
    result = runner.invoke(app, ["cluster", "sequences", str(tmp_path / "wide"), "--model", str(run["out"] / "seq2seq.pt"),
                                 "--n-clusters", "2", "--out", str(tmp_path / "o"), *tiny_cfg(METHOD)])
    assert result.exit_code == 1 and "has 7 channels, the model was trained on 5" in result.exception.message
    short = tmp_path / "short" / "train" / "a"
    short.mkdir(parents=True)
    np.save(short / "a.npy", np.ones((5, 3), np.float32))
    np.save(short / "b.npy", np.arange(15, dtype=np.float32).reshape(5, 3))
    trained = runner.invoke(app, ["train", "sequences", str(tmp_path / "short"), "--out", str(tmp_path / "o2"),
                                  *tiny_cfg(METHOD)])
    assert trained.exit_code == 1 and "shorter than source_len + target_len = 16 frames" in trained.exception.message
    videos = runner.invoke(app, ["evaluate", "sequences", str(run["root"] / "nope")])
    assert videos.exit_code != 0

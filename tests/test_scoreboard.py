"""The scoreboard's own logic (benchmarks/scoreboard.py): UT-Interaction is split by sequence, never
by clip, and the table names every row's score and baseline. The scoreboard itself runs on real
data (`make scoreboard`), not here."""

from __future__ import annotations

import pandas as pd
import pytest

from benchmarks import scoreboard


def test_ut_interaction_folds_split_by_sequence(tmp_path):
    src = tmp_path / "ut"
    rows = []
    for label in ("hug", "push"):
        for seq in range(1, 21):
            path = f"{label}/{seq}_{seq}_{label}.avi"
            (src / path).parent.mkdir(parents=True, exist_ok=True)
            (src / path).write_bytes(b"x")
            rows.append({"path": path, "label": label, "sequence": seq})
    pd.DataFrame(rows).to_csv(src / "labels.csv", index=False)
    for name, fold in scoreboard.UT_FOLDS.items():
        dst = tmp_path / name
        scoreboard.ut_as_csv_layout(src, dst, fold)
        splits = {s: pd.read_csv(dst / f"{s}.csv") for s in ("train", "val", "test")}
        seqs = {s: set(t["sequence"]) for s, t in splits.items()}
        assert seqs["test"] == fold["test"] and seqs["val"] == fold["val"]
        assert not (seqs["train"] & seqs["test"]) and not (seqs["train"] & seqs["val"])  # no performer leaks across
        assert sum(len(t) for t in splits.values()) == len(rows)  # every clip once
        assert all((dst / p).is_file() for t in splits.values() for p in t["path"])
    assert not (scoreboard.UT_FOLDS["A"]["test"] & scoreboard.UT_FOLDS["B"]["test"])


def test_table_names_score_baseline_and_time():
    rows = [{"method": "clip-classification", "dataset": "weizmann4", "split": "A",
             "score": {"accuracy": 0.75, "macro_f1": 0.7}, "baseline": {"name": "logreg", "accuracy": 1.0},
             "train_seconds": 12.3}]
    text = scoreboard.table(rows)
    assert "| clip-classification | weizmann4 | A | accuracy 0.750, macro_f1 0.700 | accuracy 1.000 (logreg) | 12 |" in text


def test_compare_names_the_rows_a_setting_lowers():
    def row(split, f1):
        return {"method": "clip-classification", "dataset": "ut_interaction", "split": split,
                "score": {"accuracy": f1, "macro_f1": f1}, "baseline": {"name": "b"}, "train_seconds": 1}

    text, lowered = scoreboard.compare([row("A", 0.8), row("B", 0.5)], [row("A", 0.6), row("B", 0.55)])
    assert "| clip-classification | ut_interaction | A | macro_f1 | 0.600 | 0.800 | +0.200 |" in text
    assert lowered == [("clip-classification", "ut_interaction", "B", "macro_f1", 0.55, 0.5)]
    assert scoreboard.compare([row("A", 0.8)], [row("A", 0.8)])[1] == []


def test_seeded_row_scores_the_mean_over_seeds_and_keeps_each(monkeypatch, tmp_path):
    """`--seeds`: every configuration runs in its own folder; the row's score is the mean, each run is kept."""
    seen = []

    def fake_run_row(method, dataset, split, cfg, work):  # the rows themselves run on real data (make scoreboard)
        seen.append((cfg, work))
        return {"score": {"macro_f1": cfg}, "baseline": {"name": "b", "macro_f1": 0.5}, "train_seconds": 10.0,
                "extra": {"epochs": 3}}

    monkeypatch.setattr(scoreboard, "run_row", fake_run_row)
    row = scoreboard.seeded_row("clip-classification", "ut_interaction", "A", {0: 0.8, 1: 0.9, 2: 1.0}, tmp_path)
    assert row["score"]["macro_f1"] == pytest.approx(0.9) and row["train_seconds"] == 30.0
    assert [s["score"]["macro_f1"] for s in row["extra"]["per_seed"]] == [0.8, 0.9, 1.0]
    assert len({w for _, w in seen}) == 3 and all(w.is_dir() for _, w in seen)
    seen.clear()  # sequence rows: the split is the seed, one run
    row = scoreboard.seeded_row("sequence-clustering", "cmu_mocap", "seed0", {0: 0.8, 1: 0.9}, tmp_path / "seq")
    assert row["score"]["macro_f1"] == 0.8 and len(seen) == 1

"""Do the generated scenes rank settings as real video does? (issue #20)

    python -m benchmarks.synth_ranking [--methods clip-classification,individual-clustering] [--out FILE]

For each method, the setting shipped before issue #20 ("before") and the shipped params.yaml
("shipped") run through the real stages on data from `data synth` (one person per clip for the
classifier, operating-room scenes for individual clustering), with the same scores as the
scoreboard (`benchmarks/scoreboard.py`) computes on Weizmann / UT-Interaction. The ranking on
the generated data is then compared with the scoreboard's rows for the same two tags
(benchmarks/results/scoreboard.json): `agrees` is true when the better setting is the same.
Writes benchmarks/results/synth_ranking.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks import machine
from benchmarks.scoreboard import PRIMARY, fit_and_score_clustering

RESULTS = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parents[1]
# the settings shipped before issue #20 (params.yaml at 16ed540), as overrides of today's params.yaml
BEFORE = {
    "clip-classification": ["classifier.clip_input=rgb", "classifier.epochs=6", "classifier.early_stopping=0"],
    "individual-clustering": ["autoencoder.seq_len=8", "autoencoder.width=96", "autoencoder.height=72",
                              "clustering.add_motion_feature=false", "clustering.motion_weight=1.0",
                              "clustering.epochs=6"],
}
CLIPS = {"videos": 60, "frames": 48, "width": 128, "height": 96}  # 15 per activity: 9 train, 3 val, 3 test
SCENES = {"videos": 6, "frames": 80, "width": 192, "height": 144}  # the demo's scenes


def classifier_score(cfg, work: Path) -> dict:
    from actionops.pipelines.clip_classification.stages import evaluate_classifier, train_classifier
    from actionops.pipelines.context import Context
    from actionops.platform.synth import generate_clips

    data = work / "clips"
    if not data.is_dir():
        generate_clips(data, seed=7, **CLIPS)
    ctx = Context(cfg=cfg, dataset=data, out=work / f"out-{time.monotonic_ns()}")
    tick = time.perf_counter()
    train_classifier(ctx, register=False)
    seconds = time.perf_counter() - tick
    metrics = evaluate_classifier(ctx, None, "test")
    return {"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"], "train_seconds": round(seconds, 1)}


def clustering_score(cfg, work: Path) -> dict:
    from actionops.pipelines.individual_clustering import stages
    from actionops.platform.synth import generate_or_scenes

    data = work / "or"
    if not data.is_dir():
        generate_or_scenes(data, seed=7, **SCENES)
    ctx = stages.Context(cfg=cfg, dataset=data, out=work / f"out-{time.monotonic_ns()}")
    _, window, seconds = fit_and_score_clustering(ctx)
    return {"hungarian_window": window["hungarian_accuracy"], "nmi_window": window["nmi"],
            "train_seconds": round(seconds, 1)}


def ranked(scores: dict[str, float], tie: float = 1e-9) -> str:
    """The tag with the higher score, or "tie"."""
    (a, x), (b, y) = sorted(scores.items(), key=lambda kv: -kv[1])
    return "tie" if x - y <= tie else a


def real_ranking(method: str, board: dict) -> dict | None:
    """The scoreboard's mean primary score of `method` per tag (before / shipped), over its rows."""
    out = {}
    for tag in ("before", "shipped"):
        rows = [r for r in board.get("runs", {}).get(tag, {}).get("rows", []) if r["method"] == method]
        if not rows:
            return None
        out[tag] = {"mean": float(np.mean([r["score"][PRIMARY[method]] for r in rows])),
                    "rows": [f"{r['dataset']}/{r['split']}" for r in rows]}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", default="clip-classification,individual-clustering")
    parser.add_argument("--out", type=Path, default=RESULTS / "synth_ranking.json")
    args = parser.parse_args()

    from actionops.pipelines import load_config
    from actionops.platform.cluster import ray_session

    work = Path(tempfile.mkdtemp(prefix="synth-ranking-"))
    os.environ["ACTIONOPS_MLRUNS"] = str(work / "mlruns")
    os.environ["ACTIONOPS_STORAGE"] = str(work / "ray_results")
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    board_path = RESULTS / "scoreboard.json"
    board = json.loads(board_path.read_text()) if board_path.is_file() else {}
    result = {"machine": machine(), "clips": CLIPS, "scenes": SCENES, "before": BEFORE, "methods": {}}
    start = time.perf_counter()
    try:
        base = load_config(REPO / "params.yaml")
        with ray_session(base.ray):
            for method in args.methods.split(","):
                score = classifier_score if method == "clip-classification" else clustering_score
                synth = {}
                for tag in ("before", "shipped"):
                    cfg = load_config(REPO / "params.yaml", BEFORE[method] if tag == "before" else [])
                    synth[tag] = score(cfg, work / method)
                    print(method, tag, json.dumps(synth[tag]), flush=True)
                metric = PRIMARY[method]
                winner = ranked({t: synth[t][metric] for t in synth})
                real = real_ranking(method, board)
                real_winner = ranked({t: real[t]["mean"] for t in real}) if real else None
                result["methods"][method] = {"metric": metric, "synthetic": synth, "synthetic_winner": winner,
                                             "real": real, "real_winner": real_winner,
                                             "agrees": None if real is None else winner == real_winner}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result["seconds"] = round(time.perf_counter() - start, 1)
    args.out.write_text(json.dumps(result, indent=2, default=float))
    for method, r in result["methods"].items():
        print(f"{method}: synthetic {r['metric']} before {r['synthetic']['before'][r['metric']]:.3f} / shipped "
              f"{r['synthetic']['shipped'][r['metric']]:.3f} -> {r['synthetic_winner']}; real winner {r['real_winner']}; "
              f"agrees {r['agrees']}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

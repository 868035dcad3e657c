"""Do the generated scenes rank settings as real video does? (issue #20)

    python -m benchmarks.synth_ranking [--methods clip-classification,individual-clustering] [--seeds 0,1] [--against before|rgb_diff|ic_8_epochs]
                                       [--no-demo] [--out FILE]

For each method, the setting shipped before issue #20 ("before") and the shipped params.yaml
("shipped") run through the real stages on data from `data synth` (one person per clip for the
classifier, operating-room scenes for individual clustering), with the same scores as the
scoreboard (`benchmarks/scoreboard.py`) computes on Weizmann / UT-Interaction. The ranking on
the generated data is then compared with the scoreboard's rows for the same two tags
(benchmarks/results/scoreboard.json): `agrees` is true when the better setting is the same. The
generated data is drawn once per seed and the settings are ranked by the mean over seeds. Seed 0's
scenes are the demo's (`make demo`); the "demo" entry ranks the two settings there with the
demo's own sizes (DEMO_SETS) on top, as `actionops demo` runs them.
`--against rgb_diff` ranks the classifier's previous default (frame differences, shipped until stop 30)
against today's (flow from the flow stage) instead, with the scoreboard's tag of the old rows;
`--against ic_8_epochs` individual clustering's epochs until stop 31 (8 + 8) against today's (4 + 4).
Writes benchmarks/results/synth_ranking.json (synth_ranking_AGAINST.json for the others).
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
                              "autoencoder.epochs=8", "clustering.epochs=6"],
}
# other settings to rank against the shipped one: name -> (overrides per method, the scoreboard tag of its real rows)
AGAINST = {
    "before": (BEFORE, "before"),
    # the classifier default until stop 30 (frame differences), replaced by flow from the flow stage
    "rgb_diff": ({"clip-classification": ["classifier.clip_input=rgb_diff", "classifier.flow_source=input"]},
                 "rgb_diff-shipped-until-stop30"),
    # individual clustering's epochs until stop 31 (autoencoders 8, clustering 8), halved at stop 32
    "ic_8_epochs": ({"individual-clustering": ["autoencoder.epochs=8", "clustering.epochs=8"]}, "flow-shipped-stop31"),
}
CLIPS = {"videos": 60, "frames": 48, "width": 128, "height": 96}  # 15 per activity: 9 train, 3 val, 3 test
SCENES = {"videos": 6, "frames": 80, "width": 192, "height": 144}  # the demo's scenes


def classifier_score(cfg, work: Path, seed: int) -> dict:
    from actionops.pipelines.clip_classification.stages import evaluate_classifier, train_classifier
    from actionops.pipelines.context import Context
    from actionops.platform.synth import generate_clips

    data = work / f"clips-{seed}"
    if not data.is_dir():
        generate_clips(data, seed=seed, **CLIPS)
    ctx = Context(cfg=cfg, dataset=data, out=work / f"out-{time.monotonic_ns()}")
    tick = time.perf_counter()
    train_classifier(ctx, register=False)
    seconds = time.perf_counter() - tick
    metrics = evaluate_classifier(ctx, None, "test")
    return {"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"], "train_seconds": round(seconds, 1)}


def clustering_score(cfg, work: Path, seed: int) -> dict:
    from actionops.pipelines.individual_clustering import stages
    from actionops.platform.synth import generate_or_scenes

    data = work / f"or-{seed}"
    if not data.is_dir():
        generate_or_scenes(data, seed=seed, **SCENES)
    ctx = stages.Context(cfg=cfg, dataset=data, out=work / f"out-{time.monotonic_ns()}")
    _, window, seconds = fit_and_score_clustering(ctx)
    return {"hungarian_window": window["hungarian_accuracy"], "nmi_window": window["nmi"],
            "train_seconds": round(seconds, 1)}


def ranked(scores: dict[str, float], tie: float = 1e-9) -> str:
    """The tag with the higher score, or "tie"."""
    (a, x), (b, y) = sorted(scores.items(), key=lambda kv: -kv[1])
    return "tie" if x - y <= tie else a


def real_ranking(method: str, board: dict, other: str = "before") -> dict | None:
    """The scoreboard's mean primary score of `method` per setting (`other` / shipped), over its rows."""
    out = {}
    for tag in (other, "shipped"):
        board_tag = AGAINST[other][1] if tag == other else tag
        rows = [r for r in board.get("runs", {}).get(board_tag, {}).get("rows", []) if r["method"] == method]
        if not rows:
            return None
        out[tag] = {"mean": float(np.mean([r["score"][PRIMARY[method]] for r in rows])),
                    "rows": [f"{r['dataset']}/{r['split']}" for r in rows]}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", default="clip-classification,individual-clustering")
    parser.add_argument("--seeds", default="0,1", help="generated datasets, one per seed (0: the demo's scenes)")
    parser.add_argument("--no-demo", action="store_true", help="skip the ranking with the demo's sizes")
    parser.add_argument("--against", default="before", choices=sorted(AGAINST),
                        help="the setting ranked against the shipped one (before: the defaults before issue #20)")
    parser.add_argument("--out", type=Path, default=None, help="default benchmarks/results/synth_ranking[_AGAINST].json")
    args = parser.parse_args()
    other, sets = args.against, AGAINST[args.against][0]
    if args.out is None:
        args.out = RESULTS / ("synth_ranking.json" if other == "before" else f"synth_ranking_{other}.json")
    seeds = [int(x) for x in args.seeds.split(",")]

    from actionops.pipelines import load_config
    from actionops.platform.cluster import ray_session

    work = Path(tempfile.mkdtemp(prefix="synth-ranking-"))
    os.environ["ACTIONOPS_MLRUNS"] = str(work / "mlruns")
    os.environ["ACTIONOPS_STORAGE"] = str(work / "ray_results")
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    board_path = RESULTS / "scoreboard.json"
    board = json.loads(board_path.read_text()) if board_path.is_file() else {}
    from actionops.pipelines.demo import DEMO_SETS
    from actionops.platform.synth import GENERATOR_VERSION

    result = {"machine": machine(), "generator_version": GENERATOR_VERSION, "seeds": seeds, "clips": CLIPS,
              "scenes": SCENES, "against": other, other: sets, "methods": {}}
    start = time.perf_counter()
    try:
        base = load_config(REPO / "params.yaml")
        with ray_session(base.ray):
            for method in [m for m in args.methods.split(",") if m in sets]:
                score = classifier_score if method == "clip-classification" else clustering_score
                metric = PRIMARY[method]
                synth = {}
                for tag in (other, "shipped"):
                    cfg = load_config(REPO / "params.yaml", sets[method] if tag == other else [])
                    per_seed = {}
                    for seed in seeds:
                        per_seed[seed] = score(cfg, work / method, seed)
                        print(method, tag, f"seed {seed}", json.dumps(per_seed[seed]), flush=True)
                    synth[tag] = {metric: float(np.mean([r[metric] for r in per_seed.values()])), "seeds": per_seed}
                winner = ranked({t: synth[t][metric] for t in synth})
                real = real_ranking(method, board, other)
                real_winner = ranked({t: real[t]["mean"] for t in real}) if real else None
                entry = {"metric": metric, "synthetic": synth, "synthetic_winner": winner,
                         "per_seed_winners": [ranked({t: synth[t]["seeds"][sd][metric] for t in synth}) for sd in seeds],
                         "real": real, "real_winner": real_winner,
                         "agrees": None if real is None else winner == real_winner}
                if method == "individual-clustering" and not args.no_demo:  # the demo's scenes and sizes
                    demo = {}
                    for tag in (other, "shipped"):
                        cfg = load_config(REPO / "params.yaml", [*DEMO_SETS, *(sets[method] if tag == other else [])])
                        demo[tag] = score(cfg, work / method, 0)
                        print(method, tag, "demo", json.dumps(demo[tag]), flush=True)
                    entry["demo"] = {**demo, "sets": list(DEMO_SETS), "winner": ranked({t: demo[t][metric] for t in demo})}
                    entry["demo"]["agrees"] = None if real is None else entry["demo"]["winner"] == real_winner
                result["methods"][method] = entry
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result["seconds"] = round(time.perf_counter() - start, 1)
    args.out.write_text(json.dumps(result, indent=2, default=float))
    for method, r in result["methods"].items():
        print(f"{method}: synthetic {r['metric']} (mean of seeds {seeds}) {other} {r['synthetic'][other][r['metric']]:.3f}"
              f" / shipped {r['synthetic']['shipped'][r['metric']]:.3f} -> {r['synthetic_winner']} (per seed "
              f"{r['per_seed_winners']}); real winner {r['real_winner']}; agrees {r['agrees']}")
        if "demo" in r:
            d = r["demo"]
            print(f"  demo sizes, demo scenes: {other} {d[other][r['metric']]:.3f} / shipped {d['shipped'][r['metric']]:.3f}"
                  f" -> {d['winner']}; agrees {d['agrees']}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

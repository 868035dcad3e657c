"""Benchmark: sequence clustering and segmentation on real motion capture nobody here made (CMU,
exp-map format).

    python -m benchmarks.sequences_real [--parts cases variants subject86] [--actions 3 5 7] [--seeds 10]
                                        [--hidden 256] [--epochs 8] [--linkages single average] [--out FILE]

Each part run replaces its own entry in the output JSON and keeps the others (so parts can be run
one at a time).

Case (i) of the reference: for each number of actions and seed, `data concat` builds a recording
from one instance of each of N randomly chosen actions of `../shared/data/cmu_mocap` (train and
test files), the seq2seq is trained on that recording (unsupervised, as in the reference) through
the real stages (Ray Data windows, Ray Train, MLflow) and its windows are clustered into N; scores
per frame (ARI, AMI, V-measure, Hungarian accuracy) for each embedding / linkage asked. Baselines
on the same windows and frames: k-means on the raw (normalised) windows, on window statistics
(mean, std, mean absolute change per channel), and PCA (20) + k-means. Mean and std over seeds.
The Ray Data overhead ratio of this job is not measured here (benchmarks/ingest_flow.py does it
for videos).

variants: the same case (i) with a variant of the model (default: the fixed_state decoder of
`models/seq2seq.py`, and the two GRU discriminators at weight 0.05) on --variant-actions /
--variant-seeds, against the plain model of the cases part on the same seeds.

subject86: one seq2seq trained on all subject-86 trials (unsupervised: no label is read in
training), then `segment` with each boundary cue (embedding change, prediction error, cluster
labels); per trial boundary P/R/F1 (inside the annotated [earliest, latest] windows) and frame
accuracy, the cue's width / peak share / shortest segment chosen leave-one-trial-out. Baseline:
the same change-point detector and selection on the raw normalised frames (cosine change of the
windows' mean pose). With --adversarial W > 0 a second model is trained with the two GRU
discriminators of the reference's subject-86 variant and segmented with the default cue.
Writes benchmarks/results/sequences_real.json.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
SHARED = Path(os.environ.get("ACTIONOPS_SHARED_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))


def baselines(ctx, rows, spec, normaliser, k: int, seed: int) -> dict:
    """Scores of the three baselines on the recording's windows, per frame as the method."""
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    from actionops.evaluation.metrics import clustering_scores
    from actionops.pipelines.sequence_clustering.data import frame_truth, frames_to_windows, read_row

    row = rows[0]
    x = normaliser(read_row(row, spec["subsample"]))
    length = spec["source_len"] + spec["target_len"]
    starts = np.arange(0, len(x) - length + 1, spec["stride"])
    windows = np.stack([x[s:s + length] for s in starts])
    features = {
        "kmeans_raw_windows": windows.reshape(len(windows), -1),
        "kmeans_window_stats": np.concatenate([windows.mean(1), windows.std(1), np.abs(np.diff(windows, axis=1)).mean(1)], 1),
    }
    features["pca_kmeans"] = PCA(n_components=min(20, features["kmeans_raw_windows"].shape[1]), random_state=seed).fit_transform(
        features["kmeans_raw_windows"])
    truth = frame_truth(row, spec["subsample"])
    which = frames_to_windows(len(x), starts, spec["source_len"])
    out = {}
    for name, f in features.items():
        labels = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(f)[which]
        n = min(len(truth), len(labels))
        out[name] = clustering_scores(truth[:n], [str(v) for v in labels[:n]])
    return out


VARIANTS = {"learned": [], "fixed_state": ["sequences.decoder=fixed_state"],
            "fixed_weights": ["sequences.decoder=fixed_weights"], "adversarial": ["sequences.adversarial=0.05"]}


def one_run(actions: int, seed: int, args, work: Path, variant: str = "learned") -> dict:
    from actionops.pipelines import load_config
    from actionops.pipelines.context import Context
    from actionops.pipelines.sequence_clustering.data import checkpoint_spec, sequence_rows
    from actionops.pipelines.sequence_clustering.stages import cluster_split, train_sequences
    from actionops.platform.sequences import concat_recording, list_sequences

    _, entries, _ = list_sequences(SHARED / "cmu_mocap")
    data = work / f"a{actions}_s{seed}"
    summary = concat_recording(entries, actions=actions, per_action=1, seed=seed, out=data)
    sets = [f"sequences.hidden={args.hidden}", f"sequences.epochs={args.epochs}", f"sequences.lr={args.lr}",
            "seqcluster.split=null", f"train.seed={seed}", *VARIANTS[variant]]
    cfg = load_config(None, sets)
    ctx = Context(cfg=cfg, dataset=data, out=work / f"out_a{actions}_s{seed}_{variant}")
    tick = time.perf_counter()
    trained = train_sequences(ctx, register=False)
    seconds = time.perf_counter() - tick
    result = {"seed": seed, "variant": variant, "actions": summary["actions"], "frames": summary["frames"], "train_seconds": round(seconds, 1),
              "final_loss": trained["final_loss"], "method": {}}
    emb = None  # embedded once, clustered with every setting
    for embedding in args.embeddings:
        for linkage in args.linkages:
            c = cfg.with_overrides({"seqcluster.embedding": embedding, "seqcluster.linkage": linkage})
            got = cluster_split(Context(cfg=c, dataset=data, out=ctx.out), None, None, actions, emb=emb)
            emb = got["emb"]
            result["method"][f"{embedding}/{linkage}"] = {k: float(v) for k, v in got["report"]["scores"].items()}
    state = got["state"]
    spec, normaliser = checkpoint_spec(state)
    result["baselines"] = baselines(ctx, sequence_rows(ctx), spec, normaliser, actions, seed)
    return result


def summarise(runs: list[dict]) -> dict:
    keys = ("ari", "ami", "v_measure", "homogeneity", "completeness", "hungarian_accuracy")
    names = {("method", n) for r in runs for n in r["method"]} | {("baselines", n) for r in runs for n in r["baselines"]}
    out = {}
    for group, name in sorted(names):
        values = {k: [r[group][name][k] for r in runs if name in r[group]] for k in keys}
        out[f"{group}:{name}"] = {k: {"mean": float(np.mean(v)), "std": float(np.std(v))} for k, v in values.items()}
    return out


def subject86(args, work: Path) -> dict:
    """Segmentation of the subject-86 trials: each cue of `segment`, the raw-pose change-point
    baseline, and (optionally) the adversarial variant."""
    from actionops.evaluation.segmentation import boundary_scores, frame_accuracy
    from actionops.pipelines import load_config
    from actionops.pipelines.context import Context
    from actionops.pipelines.sequence_clustering.data import (checkpoint_spec, frame_truth, read_row, sequence_rows,
                                                              truth_segments)
    from actionops.pipelines.sequence_clustering.stages import (_segment_labels, choose_boundaries, load_model, segment,
                                                                train_sequences)

    data = SHARED / "cmu_mocap" / "subject_86"
    base = [f"sequences.hidden={args.hidden}", f"sequences.epochs={args.s86_epochs}", f"sequences.lr={args.lr}",
            "seqcluster.split=null", "train.seed=0"]
    report: dict = {"config": {"epochs": args.s86_epochs, "hidden": args.hidden, "lr": args.lr}, "cues": {}}

    def cues(ctx_sets: list[str], out: Path, which: list[tuple[str, str]]) -> dict:
        got = {}
        for cue, embedding in which:
            cfg = load_config(None, [*ctx_sets, f"seqcluster.boundary_cue={cue}", f"seqcluster.segment_embedding={embedding}"])
            m = segment(Context(cfg=cfg, dataset=data, out=out / f"{cue}_{embedding}"), model=str(out / "seq2seq.pt"))
            got[f"{cue}/{embedding}"] = {k: m[k] for k in ("boundary_precision", "boundary_recall", "boundary_f1",
                                                            "frame_accuracy")} | {"trials": m["recordings"]}
            print(f"subject 86, {cue}/{embedding}: boundary F1 {m['boundary_f1']:.3f} (P {m['boundary_precision']:.3f} "
                  f"R {m['boundary_recall']:.3f}), frame accuracy {m['frame_accuracy']:.3f}", flush=True)
        return got

    cfg = load_config(None, base)
    ctx = Context(cfg=cfg, dataset=data, out=work / "s86")
    tick = time.perf_counter()
    trained = train_sequences(ctx, register=False)
    report["train_seconds"], report["final_loss"] = round(time.perf_counter() - tick, 1), trained["final_loss"]
    report["cues"] = cues(base, ctx.out, [("embedding", "both"), ("embedding", "decoder"), ("embedding", "encoder"),
                                          ("error", "both"), ("labels", "both")])
    # baseline: the same detector and selection on the raw normalised frames
    state, _ = load_model(ctx, None)
    spec, normaliser = checkpoint_spec(state)
    every, length = int(spec["subsample"]), int(spec["source_len"]) + int(spec["target_len"])
    recs = {}
    for row in sequence_rows(ctx):
        x = normaliser(read_row(row, every))
        starts = np.arange(0, len(x) - length + 1, int(spec["stride"]))
        pose = np.stack([x[s:s + int(spec["source_len"])].mean(0) for s in starts])
        truth = frame_truth(row, every)
        recs[str(row["video_id"])] = {"x": pose, "start": starts, "frames": len(x), "segments": truth_segments(row),
                                      "truth": truth, "k": len(set(truth))}
    chosen, found, selection, _ = choose_boundaries(recs, spec, cfg.seqcluster, "embedding")
    trials = {}
    for vid, rec in recs.items():
        labels = _segment_labels(rec, found[vid], rec["k"], every, int(spec["source_len"]))
        n = min(len(rec["truth"]), len(labels))
        trials[vid] = {**boundary_scores(found[vid], rec["segments"]), "boundaries": found[vid],
                       "frame_accuracy": frame_accuracy(rec["truth"][:n], [str(v) for v in labels[:n]]),
                       "setting": list(chosen[vid])}
    keys = ("boundary_precision", "boundary_recall", "boundary_f1", "frame_accuracy")
    report["baseline_cosine_change_point"] = {k: float(np.mean([t[k] for t in trials.values()])) for k in keys} | {
        "trials": trials, "selection": selection}
    b = report["baseline_cosine_change_point"]
    print(f"subject 86, cosine change point on raw poses: boundary F1 {b['boundary_f1']:.3f}, "
          f"frame accuracy {b['frame_accuracy']:.3f}", flush=True)
    if args.adversarial > 0:
        sets = [*base, f"sequences.adversarial={args.adversarial}"]
        adv = Context(cfg=load_config(None, sets), dataset=data, out=work / "s86_adv")
        tick = time.perf_counter()
        trained = train_sequences(adv, register=False)
        report["adversarial"] = {"weight": args.adversarial, "train_seconds": round(time.perf_counter() - tick, 1),
                                 "final_loss": trained["final_loss"],
                                 "cues": cues(sets, adv.out, [("embedding", "both"), ("error", "both")])}
    return report


def run_cases(args, work: Path, actions_list: list[int], seeds: int, variant: str, say_prefix: str = "",
              earlier: dict | None = None, seed_start: int = 0, on_run=None) -> dict:
    """Case (i) runs for seeds `seed_start`..`seeds`-1, seed by seed over the action counts (an
    interrupted run leaves every count with as many seeds); with `earlier` (a previous report's
    cases), its runs of the seeds before `seed_start` are kept (runs are deterministic per seed:
    re-running seeds 0 and 1 reproduced them to the digit)."""
    runs: dict[int, list[dict]] = {}
    for actions in actions_list:
        runs[actions] = list((earlier or {}).get(str(actions), {}).get("runs", []))[:seed_start]
        for seed, run in enumerate(runs[actions]):
            run.setdefault("seed", seed)
            run.setdefault("variant", variant)
    cases = {str(a): {"runs": r, "summary": summarise(r)} for a, r in runs.items() if r}
    for seed in range(seed_start, seeds):
        for actions in actions_list:
            run = one_run(actions, seed, args, work, variant)
            runs[actions].append(run)
            cases[str(actions)] = {"runs": runs[actions], "summary": summarise(runs[actions])}
            if on_run:  # saved after every run: an interrupted benchmark keeps what it measured
                on_run(cases)
            best = max(run["method"].items(), key=lambda kv: kv[1]["ari"])
            print(f"{say_prefix}{actions} actions, seed {seed}: " + ", ".join(f"{n} ARI {s['ari']:.3f}" for n, s in run["method"].items())
                  + " | " + ", ".join(f"{n} {s['ari']:.3f}" for n, s in run["baselines"].items())
                  + f" (best {best[0]})", flush=True)
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", nargs="+", default=["cases", "variants", "subject86"],
                        choices=["cases", "variants", "subject86"])
    parser.add_argument("--actions", type=int, nargs="+", default=[3, 5, 7])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--lr", type=float, default=0.001)
    parser.add_argument("--embeddings", nargs="+", default=["decoder", "encoder"])
    parser.add_argument("--linkages", nargs="+", default=["single", "average"])
    parser.add_argument("--seed-start", type=int, default=0,
                        help="run seeds from here; earlier seeds' runs are kept from the output file")
    parser.add_argument("--variants", nargs="+", default=["fixed_state", "adversarial"], choices=sorted(VARIANTS))
    parser.add_argument("--variant-actions", type=int, nargs="+", default=[5, 7])
    parser.add_argument("--variant-seeds", type=int, default=5)
    parser.add_argument("--s86-epochs", type=int, default=4, help="epochs on the ~6800 subject-86 windows")
    parser.add_argument("--adversarial", type=float, default=0.0,
                        help="subject 86: also train with the discriminators at this weight (0: skip; ~4x the cost)")
    parser.add_argument("--out", type=Path, default=RESULTS / "sequences_real.json")
    args = parser.parse_args()
    if not (SHARED / "cmu_mocap").is_dir():
        raise SystemExit(f"no CMU data at {SHARED / 'cmu_mocap'} (set ACTIONOPS_SHARED_DATA)")
    from actionops.platform.cluster import ray_session
    from actionops.pipelines import load_config

    work = Path(tempfile.mkdtemp(prefix="seqbench-"))
    os.environ.setdefault("ACTIONOPS_MLRUNS", str(work / "mlruns"))
    os.environ.setdefault("ACTIONOPS_STORAGE", str(work / "ray_results"))
    report: dict = json.loads(args.out.read_text()) if args.out.exists() else {}
    report.setdefault("config", {})[",".join(args.parts)] = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}

    def save() -> None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1, default=float))

    with ray_session(load_config(None).ray):
        for part in args.parts:  # in the order given
            if part == "cases":
                earlier = report.get("cases")
                report["cases"] = run_cases(args, work, args.actions, args.seeds, "learned", earlier=earlier,
                                            seed_start=args.seed_start, on_run=lambda c: (report.update(cases={**(earlier or {}), **c}), save()))
            elif part == "variants":
                report["variants"] = {}
                for v in args.variants:
                    report["variants"][v] = run_cases(args, work, args.variant_actions, args.variant_seeds, v, f"[{v}] ",
                                                      on_run=lambda c, v=v: (report["variants"].update({v: c}), save()))
            else:
                report["subject86"] = subject86(args, work)
            save()
    report.pop("note", None)
    save()
    for group in ("cases", *(f"variants.{v}" for v in report.get("variants", {}))):
        cases = report.get("cases") if group == "cases" else report["variants"][group.split(".", 1)[1]]
        for actions, case in (cases or {}).items():
            for name, s in case["summary"].items():
                print(f"{group} {actions} actions  {name:34s} ARI {s['ari']['mean']:.3f} +- {s['ari']['std']:.3f}  "
                      f"AMI {s['ami']['mean']:.3f}  V {s['v_measure']['mean']:.3f}")


if __name__ == "__main__":
    main()

"""`actionops data ...`: synthetic scenes, index, DVC versions (add, versions, checkout)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from actionops.cli.common import AddressOpt, JsonOpt, ParamsOpt, SetOpt, console, group, load_cfg, print_json

app = group(
    "data",
    "Datasets: generate synthetic scenes, index and check videos, version them with DVC.",
    "actionops data synth data/or --kind or-scene --videos 6 --seed 0\n  actionops data index data/or",
)


@app.command("synth")
def synth(
    out: Annotated[Path, typer.Argument(help="Output folder (created).")],
    kind: Annotated[Optional[str], typer.Option(help="or-scene (operating-room layout) or clips (class folders + CSVs).")] = None,
    videos: Annotated[Optional[int], typer.Option(help="Number of videos.")] = None,
    frames: Annotated[Optional[int], typer.Option(help="Frames per video.")] = None,
    width: Annotated[Optional[int], typer.Option(help="Frame width (even).")] = None,
    height: Annotated[Optional[int], typer.Option(help="Frame height (even).")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Random seed: same seed, same bytes.")] = None,
    params: ParamsOpt = None,
    set_: SetOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Generate deterministic synthetic videos with boxes and activity labels.

    \b
    Example:
      actionops data synth data/or --kind or-scene --videos 6
      actionops data synth data/clips --kind clips --videos 24 --set synth.frames=48
    """
    from actionops.pipelines.demo import synthesize

    cfg = load_cfg(
        params, set_, synth__kind=kind, synth__videos=videos, synth__frames=frames,
        synth__width=width, synth__height=height, synth__seed=seed,
    )
    summary = synthesize(cfg.synth, out, console=None if json_out else console)
    if json_out:
        print_json(summary)


LayoutOpt = Annotated[str, typer.Option("--layout", help="auto, or (operating room), csv, class-folders or flat for videos; "
                                         "sequences (auto), sequences/class-folders, sequences/csv, sequences/recordings "
                                         "or sequences/pose (pose.json tracks of a video layout) for pose / mocap sequences.")]
StrictOpt = Annotated[bool, typer.Option("--strict", help="Exit with code 1 when any video is rejected.")]


@app.command("index")
def index(
    dataset: Annotated[Path, typer.Argument(help="Dataset folder.")],
    layout: LayoutOpt = "auto",
    out: Annotated[Optional[Path], typer.Option("--out", help="Manifest path (default DATASET/manifest.parquet). Later commands take this .parquet in place of DATASET.")] = None,
    flow_dir: Annotated[Optional[Path], typer.Option("--flow-dir", help="Put every video's optical flow under this folder (default: beside the video for the operating-room layout, DATASET/flow/ otherwise).")] = None,
    strict: StrictOpt = False,
    address: AddressOpt = None,
    params: ParamsOpt = None,
    set_: SetOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Find and probe every video of a dataset on Ray Data; write the manifest and rejected.csv.

    Probes frames, fps, size, codec and duration of each video (decoding it fully, so truncated
    files are caught) and checks pose/annotation files. Bad files land in rejected.csv with a
    reason; the others are indexed.

    \b
    Example:
      actionops data index data/or
      actionops data index ../shared/data/weizmann4 --layout class-folders --out w4.parquet
      actionops data index data/demo --out outputs/demo/manifest.parquet --flow-dir outputs/demo/flow  # dataset left untouched
    """
    from actionops.platform.cluster import ray_session
    from actionops.platform.data import index_dataset
    from actionops.platform.progress import progress_bar
    from actionops.platform.sequences import index_sequences, is_sequence_dataset

    cfg = load_cfg(params, set_, ray__address=address)
    quiet = None if json_out else console
    sequences = layout.startswith("sequences") or (layout == "auto" and is_sequence_dataset(dataset))
    with ray_session(cfg.ray), progress_bar(quiet, "reading sequences" if sequences else "probing videos", 0) as update:
        if sequences:
            seq_layout = layout.partition("/")[2] or "auto"
            result = index_sequences(dataset, layout=seq_layout, out=out, progress=lambda d, t: update(d, total=t))
        else:
            result = index_dataset(dataset, layout=layout, out=out, flow_dir=flow_dir, progress=lambda d, t: update(d, total=t))
    summary = index_summary(result)
    if json_out:
        print_json(summary)
    else:
        show_index(summary, result)
    if result.rejected and strict:
        raise typer.Exit(1)


def index_summary(result) -> dict:
    m = result.manifest
    splits = {str(k): int(v) for k, v in m["split"].value_counts().sort_index().items()} if len(m) else {}
    labels = sorted({str(v) for v in m["label"].dropna()}) if len(m) else []
    summary = {"layout": result.layout, "videos": int(len(m)), "rejected": len(result.rejected),
               "splits": splits, "labels": labels, "frames": int(m["frames"].sum()) if len(m) else 0}
    if "dims" in m:  # sequences: channels instead of sizes, truth files instead of hours
        summary.update(sequences=summary.pop("videos"), dims=sorted({int(d) for d in m["dims"]}) if len(m) else [],
                       with_truth=int(m["truth_path"].notna().sum()) if len(m) else 0,
                       nonfinite_frames_dropped=int(m["nonfinite_dropped"].sum()) if len(m) else 0)
    else:
        summary.update(hours=float(m["duration"].sum() / 3600) if len(m) else 0.0,
                       sizes=sorted({f"{w}x{h}" for w, h in zip(m["width"], m["height"])}) if len(m) else [])
    return {**summary, "manifest": str(result.manifest_path), "rejected_csv": str(result.rejected_path),
            "rejected_rows": [{"path": r.path, "reason": r.reason} for r in result.rejected]}


def show_index(summary: dict, result) -> None:
    from rich.table import Table

    noun = "sequences" if "sequences" in summary else "videos"
    table = Table(title=f"{summary[noun]} {noun} indexed ({summary['layout']} layout)")
    table.add_column("")
    table.add_column("value")
    keys = ("splits", "labels", "frames", "dims", "with_truth", "nonfinite_frames_dropped") if noun == "sequences" else \
        ("splits", "labels", "frames", "hours", "sizes")
    for key in (*keys, "manifest"):
        value = summary[key]
        if isinstance(value, dict):
            value = ", ".join(f"{k}: {v}" for k, v in value.items())
        elif isinstance(value, list):
            value = ", ".join(map(str, value[:12])) + (" ..." if len(value) > 12 else "")
        elif isinstance(value, float):
            value = f"{value:.3f}"
        table.add_row(key, str(value))
    console.print(table)
    if result.rejected:
        console.print(f"[yellow]warning:[/] {len(result.rejected)} rejected (see {result.rejected_path}):")
        for row in result.rejected[:10]:
            console.print(f"  [yellow]-[/] {row.reason}", highlight=False, markup=False)


@app.command("concat")
def concat(
    dataset: Annotated[Path, typer.Argument(help="A labelled sequence dataset (class folders or CSVs of .txt/.csv/.npy/.mat files).")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the recording (created); itself a dataset the sequence commands accept.")],
    actions: Annotated[int, typer.Option("--actions", min=1, help="How many different actions (labels), drawn at random.")] = 3,
    per_action: Annotated[int, typer.Option("--per-action", min=1, help="Instances of each action (files, drawn at random).")] = 1,
    seed: Annotated[int, typer.Option("--seed", help="Random seed: the same seed gives the same recording.")] = 0,
    split: Annotated[Optional[str], typer.Option("--split", help="Draw only from this split (default: every split).")] = None,
    name: Annotated[str, typer.Option("--name", help="File name of the recording (without suffix).")] = "recording",
    json_out: JsonOpt = False,
) -> None:
    """Build a test recording: PER_ACTION instances of each of ACTIONS randomly chosen actions in
    random order, as OUT/NAME.npy with OUT/NAME.labels.csv (one label a frame) and NAME.json (what
    went in). The reference's case (i) of sequence clustering.

    \b
    Example:
      actionops data concat ../shared/data/cmu_mocap --actions 5 --per-action 2 --seed 0 --out data/cmu5_s0
    """
    from actionops.platform.sequences import concat_recording, list_sequences

    _, entries, _ = list_sequences(dataset)
    if split:
        entries = [e for e in entries if e.split == split]
    summary = concat_recording(entries, actions=actions, per_action=per_action, seed=seed, out=out, name=name)
    if json_out:
        print_json(summary)
    else:
        console.print(f"{summary['recording']}: {summary['frames']} frames, {len(summary['pieces'])} pieces of "
                      f"{', '.join(summary['actions'])} (labels in {Path(summary['recording']).with_suffix('')}.labels.csv)",
                      highlight=False)


@app.command("add")
def add(
    path: Annotated[Path, typer.Argument(help="Dataset folder inside a DVC repository.")],
    name: Annotated[Optional[str], typer.Option("--name", help="Dataset name (default: the folder's name).")] = None,
    push: Annotated[bool, typer.Option("--push/--no-push", help="Push the version to the DVC remote.")] = True,
    pack_threshold: Annotated[int, typer.Option("--pack-threshold", help="Pack sub-folders with at least this many image files into one .tar (0: never).")] = 1000,
    note: Annotated[str, typer.Option("--note", help="A line saying what changed in this version.")] = "",
    json_out: JsonOpt = False,
) -> None:
    """Track a dataset folder with DVC, record its version and push it to the remote.

    The version is DVC's hash of the folder; datasets.yaml at the repository root lists every
    version (commit it with the .dvc file). Remote: $ACTIONOPS_DVC_REMOTE (any DVC URL: a
    folder, s3://, gs://, ssh://), else the repository's default remote, else .dvc/storage.
    Training runs log this hash to MLflow as their dataset input.

    \b
    Example:
      actionops data add data/demo
      ACTIONOPS_DVC_REMOTE=/mnt/shared/dvc actionops data add data/or --name or-videos --note "relabelled p3"
    """
    from actionops.platform.versioning import add_dataset

    result = add_dataset(path, name=name, push=push, pack_threshold=pack_threshold, note=note,
                         say=None if json_out else console.print)
    if json_out:
        from dataclasses import asdict

        print_json(asdict(result))
        return
    state = "new version" if result.new else "unchanged, same as"
    console.print(f"{result.name}: {state} [bold]{result.version}[/] ({result.md5}, {result.files} files, "
                  f"{result.size / 1e6:.1f} MB)" + (f", pushed to {result.remote}" if result.remote else ", not pushed"))
    console.print(f"commit it: git add {result.path}.dvc datasets.yaml && git commit -m 'data: {result.name} {result.version}'",
                  highlight=False, markup=False)


@app.command("versions")
def versions(
    name: Annotated[str, typer.Argument(help="Dataset name given to `data add`.")],
    json_out: JsonOpt = False,
) -> None:
    """List the recorded versions of a dataset and which one the workspace holds.

    \b
    Example:
      actionops data versions demo
    """
    from rich.table import Table

    from actionops.platform.versioning import list_versions

    info = list_versions(name)
    if json_out:
        print_json(info)
        return
    table = Table(title=f"{info['name']} ({info['path']})")
    for column in ("version", "hash", "files", "MB", "added", "by", "note", ""):
        table.add_column(column)
    for v in info["versions"]:
        table.add_row(v["version"], v["md5"][:12], str(v["files"]), f"{v['size'] / 1e6:.1f}", v["added"], v["by"],
                      v.get("note") or "", "workspace" + {True: " (modified)", False: "", "unknown": " (state unknown)"}[
                          info["modified"]] if v["current"] else "")
    console.print(table)
    for edit in info["edits"]:
        console.print(f"[yellow]modified:[/] {edit}", highlight=False)


@app.command("checkout")
def checkout(
    ref: Annotated[str, typer.Argument(help="NAME@VERSION: a version number (v2) or a hash prefix.")],
    force: Annotated[bool, typer.Option("--force", help="Discard edits of the folder that are in no version.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Put a dataset folder back exactly as it was at a version (from the DVC cache, else the remote).

    \b
    Example:
      actionops data checkout demo@v1
    """
    from actionops.platform.versioning import checkout_dataset

    result = checkout_dataset(ref, force=force)
    if json_out:
        print_json(result)
    else:
        console.print(f"{result['path']} is now {result['name']}@{result['version']} ({result['md5']}, from the {result['source']})")

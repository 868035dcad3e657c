"""Lineage: what makes a stage stale. `pipeline run` re-runs a stage when the BYTES of an input
changed (a video replaced by one of the same size and length, an annotation file, a label CSV),
when its params or the code changed, and runs nothing when nothing changed; the manifest records
content digests, so everything downstream of it (and DVC, which hashes it) follows; a video
changed after indexing is named instead of failing deep in a reader."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from actionops.cli.main import app
from actionops.errors import DataError
from actionops.pipelines import load_config
from actionops.pipelines.context import Context
from actionops.pipelines.method import Method, Stage, TuneDefaults
from actionops.pipelines.runner import code_digest, dataset_inputs, output_file, run_pipeline
from actionops.platform.synth import generate_clips, generate_or_scenes

runner = CliRunner()


def same_size_replacement(video: Path, other: Path) -> None:
    """Give `video` the frames of `other` at exactly its old size (mp4 tolerates trailing padding).
    Both must be padded to the larger size first: call on a fresh pair."""
    a, b = video.read_bytes(), other.read_bytes()
    n = max(len(a), len(b))
    video.write_bytes(a + b"\0" * (n - len(a)))
    return b + b"\0" * (n - len(b))


def _toy_method(calls: list[str]) -> Method:
    """Two stages over real files: `index` reads the dataset's videos and annotation files (as
    every method's index stage does) and writes a digest list; `use` reads that file. No Ray."""
    from actionops.platform.data import annotation_md5, file_md5
    from actionops.platform.layout import list_entries

    def index(ctx):
        calls.append("index")
        _, entries, _ = list_entries(ctx.dataset)
        rows = [{"id": e.video_id, "md5": file_md5(e.path), "ann": annotation_md5(dataclasses.asdict(e))} for e in entries]
        Path(ctx.out).mkdir(parents=True, exist_ok=True)
        (Path(ctx.out) / "index.json").write_text(json.dumps(rows))
        return {}

    def use(ctx):
        calls.append("use")
        (Path(ctx.out) / "use.txt").write_text((Path(ctx.out) / "index.json").read_text()[:40])
        return {}

    stages = (Stage("index", "", index, dataset_inputs, output_file("index.json")),
              Stage("use", "", use, output_file("index.json"), output_file("use.txt"), ("classifier",)))
    return Method(id="toy", description="", package="toy", sections=("classifier",), stages=stages, train=None,
                  evaluate=None, predict=None, register=None, prepare_tune=None, sample=None, reports=(), checkpoint="x.pt",
                  registered_model_key="classifier.registered_model", tune=TuneDefaults("loss", "min", "classifier.epochs"),
                  score="x", loss="loss")


def _statuses(rows):
    return {r["stage"]: r["status"] for r in rows}


def test_stage_reruns_on_changed_bytes_annotations_params_and_code_only(tmp_path, monkeypatch):
    data, other = tmp_path / "or", tmp_path / "other"
    generate_or_scenes(data, videos=2, frames=8, width=48, height=32, seed=1)
    generate_or_scenes(other, videos=2, frames=8, width=48, height=32, seed=2)
    calls: list[str] = []
    method = _toy_method(calls)
    ctx = Context(cfg=load_config(None), dataset=data, out=tmp_path / "out")
    video = sorted(data.rglob("*.mp4"))[0]
    replacement = same_size_replacement(video, sorted(other.rglob("*.mp4"))[0])  # padded before the first run

    assert _statuses(run_pipeline(method, ctx)) == {"index": "done", "use": "done"}
    assert _statuses(run_pipeline(method, ctx)) == {"index": "up to date", "use": "up to date"}  # nothing changed
    assert calls == ["index", "use"]

    size = video.stat().st_size
    video.write_bytes(replacement)  # other frames, the same size and frame count
    assert video.stat().st_size == size
    rows = run_pipeline(method, ctx)
    assert _statuses(rows) == {"index": "done", "use": "done"}
    assert rows[0]["reason"] == f"1 input file(s) changed, e.g. {video}"
    assert _statuses(run_pipeline(method, ctx)) == {"index": "up to date", "use": "up to date"}

    pose = sorted(data.rglob("pose.json"))[0]  # an annotation: the boxes of one person move
    boxes = json.loads(pose.read_text())
    boxes[0]["bbox"] = [v + 1 for v in boxes[0]["bbox"]] if "bbox" in boxes[0] else boxes[0]
    pose.write_text(json.dumps(boxes) + "\n")
    rows = run_pipeline(method, ctx)
    assert _statuses(rows) == {"index": "done", "use": "done"} and str(pose) in rows[0]["reason"]

    rows = run_pipeline(method, dataclasses.replace(ctx, cfg=load_config(None, ["classifier.lr=0.01"])))
    assert _statuses(rows) == {"index": "up to date", "use": "done"} and "config sections classifier" in rows[1]["reason"]

    import actionops

    monkeypatch.setattr(actionops, "__version__", actionops.__version__ + "+changed")  # the code digest covers it
    code_digest.cache_clear()
    try:
        rows = run_pipeline(method, dataclasses.replace(ctx, cfg=load_config(None, ["classifier.lr=0.01"])))
    finally:
        code_digest.cache_clear()
    assert _statuses(rows) == {"index": "done", "use": "done"} and rows[0]["reason"] == "the actionops code changed"


def test_moving_a_registry_alias_reruns_the_stage_that_reads_it(tmp_path, mlflow_store):
    """A `models:/NAME@ALIAS` in a stage's config is pinned to its version in the stamp: after a
    promotion moves the alias, the stage runs again; while it stays, nothing runs."""
    import mlflow

    data = tmp_path / "or"
    generate_or_scenes(data, videos=1, frames=8, width=48, height=32, seed=1)
    client = mlflow.MlflowClient()
    client.create_registered_model("toy-model")
    for k in (1, 2):
        (tmp_path / f"m{k}").mkdir()
        client.create_model_version("toy-model", source=str(tmp_path / f"m{k}"))
    client.set_registered_model_alias("toy-model", "champion", "1")
    calls: list[str] = []
    method = _toy_method(calls)
    ctx = Context(cfg=load_config(None, ["classifier.weights=models:/toy-model@champion"]), dataset=data, out=tmp_path / "out")
    assert _statuses(run_pipeline(method, ctx)) == {"index": "done", "use": "done"}
    assert _statuses(run_pipeline(method, ctx)) == {"index": "up to date", "use": "up to date"}
    client.set_registered_model_alias("toy-model", "champion", "2")  # a promotion
    rows = run_pipeline(method, ctx)
    assert _statuses(rows) == {"index": "up to date", "use": "done"} and "config sections classifier" in rows[1]["reason"]
    assert _statuses(run_pipeline(method, ctx)) == {"index": "up to date", "use": "up to date"}


def test_manifest_records_content_and_names_a_video_changed_since_indexing(ray_local, tmp_path):
    from actionops.platform.data import data_digest, index_dataset, load_manifest

    data, other = tmp_path / "clips", tmp_path / "other"
    generate_clips(data, videos=4, frames=8, width=48, height=32, seed=0)
    generate_clips(other, videos=4, frames=8, width=48, height=32, seed=7)
    video = sorted(data.rglob("*.mp4"))[0]
    replacement = same_size_replacement(video, sorted(other.rglob("*.mp4"))[0])
    first = index_dataset(data)
    _, rows = load_manifest(data)
    assert all(len(r["content_md5"]) == 32 and r["size_bytes"] > 0 for r in rows)
    before = data_digest(rows)
    manifest_bytes = (data / "manifest.parquet").read_bytes()

    video.write_bytes(replacement)  # after indexing: same size, same frame count, other frames
    with pytest.raises(DataError) as err:
        load_manifest(data)
    assert f"video {video} changed since indexing: its bytes differ" in str(err.value)
    assert f"actionops data index {data}" in err.value.hint
    # training from the CLI says the same, instead of failing in the window reader
    result = runner.invoke(app, ["train", "classifier", str(data), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1 and "changed since indexing" in result.exception.message

    index_dataset(data)  # re-indexed: a new manifest (DVC stages that depend on it re-run), a new data id
    _, rows = load_manifest(data)
    assert data_digest(rows) != before and (data / "manifest.parquet").read_bytes() != manifest_bytes
    assert len(first.manifest) == len(rows)
    csv = data / "train.csv"  # a label changed in the CSV: the manifest and its digest change too
    if csv.is_file():
        text = csv.read_text().splitlines()
        path, label = text[1].rsplit(",", 1)
        labels = sorted({line.rsplit(",", 1)[1] for line in text[1:]})
        text[1] = f"{path},{next(lab for lab in labels if lab != label)}"
        csv.write_text("\n".join(text) + "\n")
        index_dataset(data)
        assert data_digest(load_manifest(data)[1]) != data_digest(rows)


def test_flow_is_recomputed_for_replaced_video_bytes(ray_local, tmp_path):
    from actionops.platform.data import compute_flow, index_dataset, load_manifest

    data, other = tmp_path / "or", tmp_path / "other"
    generate_or_scenes(data, videos=2, frames=8, width=48, height=32, seed=1)
    generate_or_scenes(other, videos=2, frames=8, width=48, height=32, seed=2)
    video = sorted(data.rglob("*.mp4"))[0]
    replacement = same_size_replacement(video, sorted(other.rglob("*.mp4"))[0])
    index_dataset(data)
    _, rows = load_manifest(data)
    assert compute_flow(rows, method="dis").videos == 2
    assert compute_flow(rows, method="dis").skipped == 2  # done: same spec, same bytes
    video.write_bytes(replacement)
    stale = compute_flow(rows, method="dis")  # the old manifest: the changed video fails alone, by name
    assert stale.skipped == 1 and [r.path for r in stale.failed] == [str(video)]
    index_dataset(data)
    _, rows = load_manifest(data)
    again = compute_flow(rows, method="dis")  # same name, size and length, other bytes: its flow is recomputed
    assert again.skipped == 1 and again.videos == 1 and again.frames == 8


@pytest.mark.slow
def test_pipeline_run_reruns_what_reads_a_changed_video_or_label(ray_local, tmp_path, monkeypatch):
    """The real clip-classification pipeline from the CLI: nothing changed -> nothing runs; one
    video's bytes replaced (same size and frame count) -> index, train and evaluate run again and
    the evaluation changes; one test label changed in its CSV -> the evaluation scores the new truth."""
    from conftest import tiny_cfg, use_stores

    use_stores(monkeypatch, tmp_path)
    data, other, out = tmp_path / "clips", tmp_path / "other", tmp_path / "out"
    generate_clips(data, videos=20, frames=12, width=48, height=48, seed=3)
    generate_clips(other, videos=20, frames=12, width=48, height=48, seed=4)
    test_csv = data / "test.csv"
    rows = test_csv.read_text().splitlines()
    video = data / rows[1].split(",")[0]
    replacement = same_size_replacement(video, other / rows[1].split(",")[0])

    def run() -> dict:
        result = runner.invoke(app, ["pipeline", "run", "clip-classification", str(data), "--out", str(out),
                                     *tiny_cfg("clip-classification"), "--json"])
        assert result.exit_code == 0, result.output
        return {r["stage"]: r["status"] for r in json.loads(result.stdout)}

    # `flow` always runs (it checks its own work) and does nothing for an rgb input
    assert run() == {"index": "done", "flow": "done", "train": "done", "evaluate": "done"}
    predictions = (out / "predictions_eval.csv").read_text()
    assert run() == {"index": "up to date", "flow": "done", "train": "up to date", "evaluate": "up to date"}

    video.write_bytes(replacement)
    assert run() == {"index": "done", "flow": "done", "train": "done", "evaluate": "done"}
    changed = (out / "predictions_eval.csv").read_text()
    assert changed != predictions  # the scores of a model trained and evaluated on the new bytes

    path, label = rows[1].rsplit(",", 1)
    labels = sorted({line.rsplit(",", 1)[1] for line in rows[1:]})
    new_label = next(lab for lab in labels if lab != label)
    test_csv.write_text("\n".join([rows[0], f"{path},{new_label}", *rows[2:]]) + "\n")
    assert run()["evaluate"] == "done"
    truth = {line.split(",")[0]: line.split(",")[1] for line in (out / "predictions_eval.csv").read_text().splitlines()[1:]}
    assert truth[str(Path(path).with_suffix(""))] == new_label


def test_a_manifest_cannot_point_outside_its_dataset(tmp_path):
    import pandas as pd

    from actionops.platform.data import load_manifest

    root, flow = tmp_path / "ds", tmp_path / "flow"
    root.mkdir()
    manifest = tmp_path / "m" / "manifest.parquet"
    manifest.parent.mkdir()
    manifest.with_suffix(".json").write_text(json.dumps({"layout": "class-folders", "root": str(root), "flow_root": str(flow)}))

    def write(**row):
        pd.DataFrame([{"video_id": "a/v", "path": str(root / "a" / "v.mp4"), "flow_path": str(flow / "a" / "v.npy"), **row}]).to_parquet(manifest)

    write()
    assert load_manifest(root, manifest, verify=False)[0] == "class-folders"
    write(path=str(root / ".." / "elsewhere" / "v.mp4"))
    with pytest.raises(DataError, match=r"path .*elsewhere/v.mp4 of a/v is outside"):
        load_manifest(root, manifest, verify=False)
    write(flow_path="/etc/passwd")
    with pytest.raises(DataError, match="flow_path /etc/passwd of a/v is outside"):
        load_manifest(root, manifest, verify=False)
    write(truth_path=str(tmp_path / "truth.csv"))
    with pytest.raises(DataError, match="truth_path"):
        load_manifest(root, manifest, verify=False)

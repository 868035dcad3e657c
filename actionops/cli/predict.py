"""`actionops predict ...`: predictions from a trained or registered model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from actionops.cli.common import AddressOpt, JsonOpt, OutOpt, ParamsOpt, SetOpt, group, show_result, stage_context

app = group(
    "predict",
    "Predictions from a trained (local checkpoint) or registered (models:/NAME@ALIAS) model.",
    "actionops predict clustering data/or --stage test --model models:/individual-clustering@champion",
)


@app.command("clustering")
def clustering(
    dataset: Annotated[Path, typer.Argument(help="Dataset folder (operating-room layout), or the manifest .parquet written by `data index --out`.")],
    stage: Annotated[str, typer.Option("--stage", help="Split to predict: train or test.")] = "test",
    model: Annotated[Optional[str], typer.Option("--model", help="models:/NAME@ALIAS (default: the local clustering.pt).")] = None,
    out: OutOpt = None,
    address: AddressOpt = None,
    params: ParamsOpt = None,
    set_: SetOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Assign every person of every window to a cluster; write per-video JSON
    ([{"frame", "id", "label"}]), embeddings.npz and a video with coloured boxes.

    \b
    Example:
      actionops predict clustering data/or --stage test
      actionops predict clustering data/or --model models:/individual-clustering@champion
    """
    from actionops.pipelines.individual_clustering.stages import predict
    from actionops.platform.cluster import ray_session

    ctx = stage_context(dataset, out, params, set_, address, json_out=json_out)
    with ray_session(ctx.cfg.ray):
        result = predict(ctx, stage, model)
    show_result(f"predictions ({stage})", result, json_out)


@app.command("classifier")
def classifier(
    videos: Annotated[list[Path], typer.Argument(help="Video files and/or folders of videos.")],
    model: Annotated[str, typer.Option("--model", help="models:/clip-classifier@champion, or a classifier.pt file.")],
    out: Annotated[Path, typer.Option("--out", help="Where predictions.json and predictions.csv go.")] = Path("outputs/predictions"),
    address: AddressOpt = None,
    params: ParamsOpt = None,
    set_: SetOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Label videos with a classifier: sliding windows (classifier.window_frames frames every
    classifier.window_stride) scored as a Ray Data batch-inference job, the model loaded once
    per actor. Writes per-window scores (CSV) and a label per video (JSON).

    \b
    Example:
      actionops predict classifier new_videos/ --model models:/clip-classifier@champion
      actionops predict classifier a.mp4 b.mp4 --model outputs/clip_classification/clips/classifier.pt
    """
    from actionops.cli.common import console, err_console, load_cfg
    from actionops.pipelines.clip_classification.stages import predict_classifier
    from actionops.platform.cluster import ray_session

    cfg = load_cfg(params, set_, ray__address=address)
    with ray_session(cfg.ray):
        result = predict_classifier(cfg, videos, out, model, err_console if json_out else console)
    show_result("classifier predictions", result, json_out)

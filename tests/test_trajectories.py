"""Trajectory clustering pieces (issue #18): dense trajectories follow motion; Fisher
vectors match a hand computation; a Fisher model refuses descriptors of another spec."""

from __future__ import annotations

import math

import numpy as np
import pytest

from actionops.errors import DataError
from actionops.pipelines.trajectory_clustering.fisher import fit_fisher_model, fisher_vector
from actionops.pipelines.trajectory_clustering.tracks import TrackSpec, dense_trajectories, track


def _moving_square(frames=20, size=(96, 72), square=24, velocity=(2.0, 1.0), seed=0):
    """A textured square moving `velocity` px a frame over a flat background; its top-left corners."""
    import cv2

    rng = np.random.default_rng(seed)
    texture = cv2.GaussianBlur(rng.integers(0, 255, (square, square)).astype(np.uint8), (3, 3), 0)
    w, h = size
    out, corners = [], []
    for t in range(frames):
        x, y = 10 + velocity[0] * t, 12 + velocity[1] * t
        img = np.full((h, w), 90, np.uint8)
        move = np.float32([[1, 0, x], [0, 1, y]])  # sub-pixel placement
        patch = cv2.warpAffine(texture, move, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)
        mask = cv2.warpAffine(np.ones_like(texture), move, (w, h), flags=cv2.INTER_NEAREST, borderValue=0) > 0
        img[mask] = patch[mask]
        out.append(img)
        corners.append((x, y))
    return np.stack(out), np.array(corners)


def _flow(gray):
    from actionops.platform.flow import flow_sequence

    return np.stack(list(flow_sequence(gray, "farneback", first_is_zero=False)))


def test_trajectories_follow_a_moving_square_within_a_pixel():
    gray, corners = _moving_square()
    spec = TrackSpec(step=4, length=8)
    trajs = track(gray, _flow(gray), spec)
    on_square = [t for t in trajs if np.ptp(t["points"][:, 0]) > 8]
    assert len(on_square) >= 5 and len(on_square) >= 0.8 * len(trajs)  # the flat background gives none
    for t in on_square:  # each point where the square carried it
        truth = t["points"][0] + (corners[t["start"]:t["start"] + spec.length + 1] - corners[t["start"]])
        assert np.abs(t["points"] - truth).max() < 1.0, (t["points"], truth)
    info, desc = dense_trajectories(gray, _flow(gray), spec)
    assert desc.shape == (len(info), spec.dim) and np.isfinite(desc).all()
    steps = desc[:, :2 * spec.length].reshape(len(desc), spec.length, 2)
    assert np.allclose(steps.sum(axis=1).mean(0), [2 / math.hypot(2, 1), 1 / math.hypot(2, 1)], atol=0.1)


def test_static_video_and_boxes_keep_no_trajectory_off_people():
    gray = np.repeat(_moving_square(frames=1)[0], 12, axis=0)  # nothing moves
    info, desc = dense_trajectories(gray, _flow(gray), TrackSpec(step=4, length=8))
    assert len(info) == 0 and desc.shape == (0, TrackSpec(step=4, length=8).dim)
    gray, _ = _moving_square()
    far = {t: np.array([[80.0, 60.0, 95.0, 71.0]]) for t in range(20)}  # a box where the square never is
    assert len(dense_trajectories(gray, _flow(gray), TrackSpec(step=4, length=8), boxes=far)[0]) == 0


def test_fisher_vector_matches_a_hand_computation():
    """K=2 components in 1-D, two descriptors, no normalisation: the gradients by hand."""
    w, mu, var = np.array([0.5, 0.5]), np.array([[0.0], [2.0]]), np.array([[1.0], [1.0]])
    x = np.array([[0.0], [2.0]])
    # posteriors: N(0|0,1) vs N(0|2,1): ratio exp(-2)
    g0 = np.array([1 / (1 + math.exp(-2)), math.exp(-2) / (1 + math.exp(-2))])  # of x=0
    g1 = g0[::-1]  # of x=2, by symmetry
    gamma = np.stack([g0, g1])
    z = x - mu.T  # (N, K): (x - mu_k) / sigma_k with sigma 1
    g_mu = (gamma * z).sum(0) / (2 * np.sqrt(w))
    g_sigma = (gamma * (z**2 - 1)).sum(0) / (2 * np.sqrt(2 * w))
    got = fisher_vector(x, w, mu, var, power=0, l2=False)
    np.testing.assert_allclose(got, np.concatenate([g_mu, g_sigma]), rtol=1e-5)
    normed = fisher_vector(x, w, mu, var)
    raw = np.concatenate([g_mu, g_sigma])
    expected = np.sign(raw) * np.sqrt(np.abs(raw))
    np.testing.assert_allclose(normed, expected / np.linalg.norm(expected), rtol=1e-5)
    assert not fisher_vector(np.zeros((0, 1)), w, mu, var).any()


def test_fisher_model_refuses_descriptors_of_another_spec(tmp_path):
    rng = np.random.default_rng(0)
    spec = TrackSpec(length=8).descriptor_spec()
    model = fit_fisher_model(rng.normal(size=(200, 12)), spec, components=4, keep=6)
    model.save(tmp_path / "fisher.npz")
    loaded = type(model).load(tmp_path / "fisher.npz")
    x = rng.normal(size=(30, 12))
    np.testing.assert_allclose(loaded.encode(x, spec), model.encode(x, spec))
    assert loaded.encode(x, spec).shape == (2 * 4 * 6,)
    with pytest.raises(DataError) as err:
        loaded.encode(x, TrackSpec(length=15).descriptor_spec(), source="video_007 descriptors")
    assert "video_007 descriptors" in str(err.value) and "length" in str(err.value)
    with pytest.raises(DataError, match="cannot fit a GMM of 256"):
        fit_fisher_model(rng.normal(size=(50, 12)), spec, components=256)


def test_cluster_table_survives_a_removed_video_without_shifting_labels():
    from actionops.pipelines.trajectory_clustering.clusters import cluster_table, table_scores

    rng = np.random.default_rng(3)
    centres = rng.normal(size=(3, 16)) * 5
    ids = [f"v{i:02d}" for i in range(12)]
    truth = {v: f"class{i % 3}" for i, v in enumerate(ids)}
    vectors = np.stack([centres[i % 3] + rng.normal(size=16) * 0.3 for i in range(12)])
    shuffled = rng.permutation(12)  # the input order does not matter either
    full = cluster_table([ids[i] for i in shuffled], vectors[shuffled], 3, seed=0)
    assert list(full.columns) == ["video_id", "cluster"] and list(full["video_id"]) == sorted(ids)
    assert table_scores(full, truth) == {"videos": 12, "unlabelled": 0, "purity": 1.0, "nmi": pytest.approx(1.0)}
    gone = "v04"  # say it failed to decode: the others keep their clusters
    keep = [i for i in range(12) if ids[i] != gone]
    fewer = cluster_table([ids[i] for i in keep], vectors[keep], 3, seed=0)
    before = dict(zip(full["video_id"], full["cluster"]))
    assert all(before[v] == c for v, c in zip(fewer["video_id"], fewer["cluster"]))
    with pytest.raises(DataError, match="2 videos cannot make 3 clusters"):
        cluster_table(ids[:2], vectors[:2], 3)


def test_per_part_fisher_vectors_round_trip_and_check_the_spec(tmp_path):
    from actionops.pipelines.trajectory_clustering.fisher import PartsFisher, fit_parts

    spec = TrackSpec(length=4, nt=1).descriptor_spec()
    dim = sum(spec["parts"].values())
    rng = np.random.default_rng(1)
    model = fit_parts(rng.normal(size=(300, dim)), spec, components=2, keep=0.5)
    assert list(model.parts) == ["shape", "hof", "mbhx", "mbhy"]
    x = rng.normal(size=(20, dim))
    fv = model.encode(x, spec)
    expected = 2 * 2 * sum(max(1, s // 2) for s in spec["parts"].values())
    assert fv.shape == (expected,) and np.linalg.norm(fv) == pytest.approx(1.0, abs=1e-5)
    model.save(tmp_path / "fisher")
    np.testing.assert_allclose(PartsFisher.load(tmp_path / "fisher").encode(x, spec), fv, rtol=1e-5)
    with pytest.raises(DataError, match="another descriptor spec"):
        model.encode(x, TrackSpec(length=4, nt=2).descriptor_spec())
    only = fit_parts(rng.normal(size=(300, dim)), spec, parts=("mbhx", "mbhy"), components=2)
    assert list(only.parts) == ["mbhx", "mbhy"]
    # D dimensions per part, or a variance fraction: on data with one dominant direction per part, one
    # dimension explains 90%
    fixed = fit_parts(rng.normal(size=(300, dim)), spec, components=2, dims=3)
    assert {n: m.pca_components.shape[0] for n, m in fixed.parts.items()} == {n: min(3, s) for n, s in spec["parts"].items()}
    dominant = rng.normal(size=(300, 1)) * 10 * np.ones((1, dim)) + rng.normal(size=(300, dim)) * 0.1
    by_variance = fit_parts(dominant, spec, components=2, variance=0.9)
    assert all(m.pca_components.shape[0] == 1 for m in by_variance.parts.values())


def test_extraction_on_ray_writes_parquet_per_video_resumes_and_reports_bad_videos(ray_local, tmp_path):
    from actionops.pipelines.trajectory_clustering.extract import extract_trajectories, parquet_name, read_descriptors
    from actionops.platform.synth import generate_clips

    generate_clips(tmp_path / "clips", videos=4, frames=20, width=64, height=48, seed=1)
    generate_clips(tmp_path / "short", videos=1, frames=6, width=64, height=48, seed=2)
    (tmp_path / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(200))
    rows = [{"video_id": p.parent.name + "/" + p.stem, "path": str(p)} for p in sorted((tmp_path / "clips").rglob("*.mp4"))]
    rows += [{"video_id": "short", "path": str(next((tmp_path / "short").rglob("*.mp4")))},
             {"video_id": "broken", "path": str(tmp_path / "broken.mp4")}]
    spec = TrackSpec(step=4, length=8)
    report = extract_trajectories(rows, tmp_path / "traj", spec)
    status = {r["video_id"]: r for r in report["videos"]}
    assert report["counts"] == {"done": 4, "up to date": 0, "skipped": 1, "failed": 1}, report["videos"]
    assert "too short" in status["short"]["reason"] and status["broken"]["reason"]
    first = rows[0]["video_id"]
    vid, desc = read_descriptors(tmp_path / "traj" / parquet_name(first))
    assert vid == first and desc.shape == (status[first]["trajectories"], spec.dim) and len(desc) > 0
    plain = extract_trajectories(rows[:1], tmp_path / "plain", spec, use_ray=False)  # the same without Ray
    np.testing.assert_array_equal(read_descriptors(tmp_path / "plain" / parquet_name(first))[1], desc)
    assert plain["counts"]["done"] == 1
    again = extract_trajectories(rows, tmp_path / "traj", spec)  # resumes: nothing recomputed
    assert again["counts"]["up to date"] == 4 and again["counts"]["done"] == 0
    other = extract_trajectories(rows[:1], tmp_path / "traj", TrackSpec(step=4, length=6))
    assert other["counts"]["done"] == 1 and len(list((tmp_path / "traj").glob("*.parquet"))) == 1  # old spec's files gone


@pytest.mark.parametrize("axis, expected_bin", [(1, 0), (0, 2)])
def test_hog_part_bins_the_frame_gradient_orientation(axis, expected_bin):
    """A brightness ramp along x (axis 1) has gradients at angle 0 -> HOG bin 0; along y -> pi/2, bin 2.
    The HOG part sits after the shape, before HOF, and every cell holds only its bin."""
    from actionops.pipelines.trajectory_clustering.tracks import tube_descriptors

    spec = TrackSpec(length=4, nxy=2, nt=2, tube=16, hog=True)
    assert list(spec.descriptor_spec()["parts"]) == ["shape", "hog", "hof", "mbhx", "mbhy"]
    ramp = np.add.outer(np.zeros(48), np.arange(48) * 4.0) if axis == 1 else np.add.outer(np.arange(48) * 4.0, np.zeros(48))
    gray = np.repeat(ramp[None].astype(np.uint8), spec.length + 1, axis=0)
    flow = np.zeros((spec.length, 48, 48, 2), np.float32)
    trajs = [{"start": 0, "points": np.tile(np.float32([24, 24]), (spec.length + 1, 1))}]
    desc = tube_descriptors(flow, trajs, spec, 1.0, gray)
    cells = spec.nxy * spec.nxy * spec.nt
    assert desc.shape == (1, spec.dim - 2 * spec.length)
    hog = desc[0, :cells * 8].reshape(spec.nt, spec.nxy, spec.nxy, 8)
    assert np.allclose(hog[..., expected_bin], 1.0) and np.allclose(np.delete(hog, expected_bin, -1), 0.0)
    with pytest.raises(ValueError, match="grayscale"):
        tube_descriptors(flow, trajs, spec)


def _clip_rows(root, frames, seed=3):
    from actionops.platform.data import index_dataset
    from actionops.platform.synth import generate_clips

    generate_clips(root / "clips", videos=1, frames=frames, width=64, height=48, seed=seed)
    index_dataset(root / "clips", out=root / "manifest.parquet", flow_dir=root / "flow")
    from actionops.platform.data import load_manifest

    return load_manifest(root / "clips", root / "manifest.parquet")[1]


def test_long_video_splits_into_frame_ranges_that_resume_after_a_crash(tmp_path, monkeypatch):
    """A 48-frame video in 16-frame ranges: three range tasks, one parquet, no part left, starts
    spread over the whole video, about as many trajectories as one whole run. A range that crashes
    fails its video (with the reason); the rerun computes that range only and gives the same table."""
    from actionops.pipelines.trajectory_clustering import extract

    rows = _clip_rows(tmp_path, 48)
    spec = TrackSpec(step=4, length=8)
    whole = extract.extract_trajectories(rows, tmp_path / "whole", spec, chunk_frames=None, use_ray=False)
    chunked = extract.extract_trajectories(rows, tmp_path / "chunked", spec, chunk_frames=16, use_ray=False)
    assert (whole["ranges"], chunked["ranges"]) == (1, 3) and chunked["counts"]["done"] == 1
    vid = str(rows[0]["video_id"])
    assert [p.name for p in (tmp_path / "chunked").glob("*.parquet")] == [extract.parquet_name(vid)]
    info, desc = extract._read_table(tmp_path / "chunked" / extract.parquet_name(vid))
    assert info[:, 0].min() < 16 <= 32 <= info[:, 0].max() <= 48 - spec.length - 1
    assert abs(len(info) - whole["trajectories"]) <= 0.25 * whole["trajectories"] and desc.shape[1] == spec.dim

    real = extract.video_trajectories

    def crash_in_the_middle(*args, **kw):
        if kw.get("start") == 16:
            raise RuntimeError("worker lost")
        return real(*args, **kw)

    monkeypatch.setattr(extract, "video_trajectories", crash_in_the_middle)
    crashed = extract.extract_trajectories(rows, tmp_path / "resumed", spec, chunk_frames=16, use_ray=False)
    assert crashed["counts"]["failed"] == 1 and "worker lost" in crashed["videos"][0]["reason"]
    assert len(list((tmp_path / "resumed").glob("*.part-*.parquet"))) == 2  # the finished ranges are kept
    monkeypatch.setattr(extract, "video_trajectories", real)
    resumed = extract.extract_trajectories(rows, tmp_path / "resumed", spec, chunk_frames=16, use_ray=False)
    assert resumed["ranges"] == 1 and resumed["counts"]["done"] == 1
    again_info, again_desc = extract._read_table(tmp_path / "resumed" / extract.parquet_name(vid))
    np.testing.assert_array_equal(again_info, info)
    np.testing.assert_array_equal(again_desc, desc)


def test_trajectories_read_the_flow_stage_files(ray_local, tmp_path):
    """After `flow compute` (the platform's flow stage), extraction reads its flow instead of computing
    it, with the same descriptors, on Ray Data, in frame ranges too; flow of another size is not used."""
    from actionops.pipelines.trajectory_clustering import extract
    from actionops.platform.data import compute_flow

    rows = _clip_rows(tmp_path, 40)
    spec = TrackSpec(step=4, length=8)
    computed = extract.extract_trajectories(rows, tmp_path / "computed", spec, chunk_frames=None)
    assert computed["flow"] == {"cache": 0, "computed": 1}
    compute_flow(rows)
    cached = extract.extract_trajectories(rows, tmp_path / "cached", spec, chunk_frames=None)
    assert cached["flow"] == {"cache": 1, "computed": 0}
    name = extract.parquet_name(str(rows[0]["video_id"]))
    np.testing.assert_allclose(extract._read_table(tmp_path / "cached" / name)[1],
                               extract._read_table(tmp_path / "computed" / name)[1], atol=1e-6)
    ranged = extract.extract_trajectories(rows, tmp_path / "ranged", spec, chunk_frames=16)
    assert ranged["ranges"] == 3 and ranged["flow"] == {"cache": 1, "computed": 0}
    resized = extract.extract_trajectories(rows, tmp_path / "resized", spec, chunk_frames=None, size=(48, 36))
    assert resized["flow"] == {"cache": 0, "computed": 1} and resized["counts"]["done"] == 1
    assert extract._read_table(tmp_path / "resized" / name)[0][:, 2].max() < 48  # x in the resized frames


@pytest.mark.parametrize("hog", [False, True])
def test_integral_histograms_sum_the_bin_maps_over_any_box(hog):
    """`_integral` (bin maps written into the integral's array, summed in place) gives, for a box,
    the sum of each bin map over that box: HOF (with its still bin), MBHx, MBHy [after HOG]."""
    import cv2

    from actionops.pipelines.trajectory_clustering.tracks import _binned, _integral

    rng = np.random.default_rng(0)
    flow = (rng.standard_normal((20, 30, 2)) * 2).astype(np.float32)
    gray = rng.integers(0, 255, (20, 30)).astype(np.uint8)
    integral = _integral(flow, 1.0, gray if hog else None)
    fx, fy = np.ascontiguousarray(flow[..., 0]), np.ascontiguousarray(flow[..., 1])

    def grad(a):
        return cv2.Sobel(a, cv2.CV_32F, 1, 0, ksize=1), cv2.Sobel(a, cv2.CV_32F, 0, 1, ksize=1)

    maps = ([_binned(*grad(gray.astype(np.float32)), 8, None)] if hog else []) + \
        [_binned(fx, fy, 8, 0.1), _binned(*grad(fx), 8, None), _binned(*grad(fy), 8, None)]
    maps = np.concatenate(maps, axis=2)
    assert integral.shape == (21, 31, maps.shape[2])
    for y0, y1, x0, x1 in ((0, 20, 0, 30), (3, 11, 5, 17), (7, 8, 29, 30)):
        box = integral[y1, x1] - integral[y0, x1] - integral[y1, x0] + integral[y0, x0]
        assert np.allclose(box, maps[y0:y1, x0:x1].sum(axis=(0, 1)))

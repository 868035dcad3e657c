from __future__ import annotations

import pytest

from actionops.errors import ConfigError
from actionops.pipelines import load_config
from actionops.platform.config import parse_override


def test_defaults_without_params_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = load_config()
    assert cfg.source == "<defaults>"
    assert cfg.synth.videos == 6 and cfg.ray.address is None


def test_repo_params_yaml_is_valid():
    from pathlib import Path

    from actionops.pipelines.method import list_methods
    from actionops.platform.tune import parse_space

    cfg = load_config(Path(__file__).resolve().parents[1] / "params.yaml")
    known = {k for k in cfg.flat() if not k.startswith("tune.")}
    for method in list_methods():  # every method's sections, registered name and search spaces resolve
        assert all(section in cfg.sections for section in method.sections)
        assert method.registered_model(cfg)
        assert parse_space(cfg.tune.space.get(method.id) or dict(method.tune.space), known)
    assert set(cfg.tune.space) <= {m.id for m in list_methods()}  # spaces are keyed by method id


def test_unknown_key_names_key_and_close_match(tmp_path):
    params = tmp_path / "p.yaml"
    params.write_text("synth:\n  vidoes: 3\n")
    with pytest.raises(ConfigError) as err:
        load_config(params)
    text = str(err.value)
    assert "synth.vidoes" in text and "synth.videos" in text
    assert "\n" not in text


def test_unknown_section_suggests(tmp_path):
    params = tmp_path / "p.yaml"
    params.write_text("synthh:\n  videos: 3\n")
    with pytest.raises(ConfigError, match="did you mean synth"):
        load_config(params)


def test_wrong_type_names_expected_type(tmp_path):
    params = tmp_path / "p.yaml"
    params.write_text("synth:\n  videos: many\n")
    with pytest.raises(ConfigError, match=r"synth\.videos expects int, got str 'many'"):
        load_config(params)


def test_bool_is_not_int_and_int_is_float(tmp_path):
    with pytest.raises(ConfigError, match="synth.videos"):
        load_config(None, ["synth.videos=true"])
    cfg = load_config(None, ["synth.noise=3"])
    assert cfg.synth.noise == 3.0 and isinstance(cfg.synth.noise, float)


def test_literal_choices(tmp_path):
    with pytest.raises(ConfigError, match="or-scene"):
        load_config(None, ["synth.kind=clip"])


def test_dotted_overrides_apply_in_order(tmp_path):
    params = tmp_path / "p.yaml"
    params.write_text("synth:\n  videos: 3\n  seed: 1\n")
    cfg = load_config(params, ["synth.videos=9", "ray.num_cpus=2"])
    assert (cfg.synth.videos, cfg.synth.seed, cfg.ray.num_cpus) == (9, 1, 2)
    assert cfg.with_overrides({"synth.seed": 5}).synth.seed == 5


def test_bad_override_syntax():
    with pytest.raises(ConfigError, match="section.key=value"):
        parse_override("videos")


def test_flat_dict_for_mlflow():
    cfg = load_config(None, ["synth.seed=3"])
    flat = cfg.flat()
    assert flat["synth.seed"] == 3 and flat["ray.address"] is None
    assert all("." in key for key in flat)


def test_config_is_frozen():
    cfg = load_config(None)
    with pytest.raises(Exception):
        cfg.synth.videos = 3  # type: ignore[misc]


def test_missing_params_file():
    with pytest.raises(ConfigError, match="not found"):
        load_config("no/such/params.yaml")


@pytest.mark.parametrize("override, key, rule", [
    ("train.num_workers=0", "train.num_workers", ">= 1"),  # was a ZeroDivisionError deep in the runner
    ("classifier.num_frames=0", "classifier.num_frames", ">= 1"),
    ("classifier.batch_size=0", "classifier.batch_size", ">= 1"),
    ("autoencoder.epochs=-2", "autoencoder.epochs", ">= 1"),
    ("classifier.val_fraction=1.0", "classifier.val_fraction", ">= 0 and < 1"),
    ("anomaly.target_fpr=0", "anomaly.target_fpr", "> 0 and < 1"),
    ("optim.lr_cm=0", "optim.lr_cm", "> 0"),
    ("anomaly.hidden=[64, 0]", "anomaly.hidden", ">= 1"),
    ("clustering.n_clusters=1", "clustering.n_clusters", ">= 2"),
])
def test_values_out_of_range_name_the_key_and_the_range(override, key, rule, tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config(None, [override])
    text = str(err.value)
    assert f"{key} must be {rule}, got" in text and "\n" not in text
    key_name, _, value = override.partition("=")  # the same value from a params file names the file
    section, field = key_name.split(".")
    params = tmp_path / "p.yaml"
    params.write_text(f"{section}:\n  {field}: {value}\n")
    with pytest.raises(ConfigError, match=f"{params}: {key} must be"):
        load_config(params)


def test_values_at_the_edge_of_their_range_load():
    cfg = load_config(None, ["classifier.val_fraction=0.0", "classifier.early_stopping=0", "classifier.window_frames=0",
                             "train.max_failures=-1", "ray.num_gpus=0"])
    assert cfg.classifier.val_fraction == 0.0 and cfg.train.max_failures == -1 and cfg.ray.num_gpus == 0


def test_demo_sets_its_own_sizes_and_a_set_still_wins():
    """`actionops demo` runs small sizes over the shipped params (chosen on real video), and the user's
    --set overrides the demo's."""
    from actionops.pipelines import load_config
    from actionops.pipelines.demo import DEMO_SETS, demo_config

    shipped, demo = load_config(None), demo_config(None, None)
    assert demo.autoencoder.seq_len == 8 and demo.clustering.epochs == 6
    assert demo.clustering.add_motion_feature == shipped.clustering.add_motion_feature  # method choices stay
    assert {s.split("=")[0] for s in DEMO_SETS} <= {"autoencoder.seq_len", "autoencoder.stride", "autoencoder.epochs",
                                                   "clustering.epochs"}
    assert demo_config(None, ["autoencoder.seq_len=4"]).autoencoder.seq_len == 4
    assert demo_config(None, None, synth__videos=3).synth.videos == 3

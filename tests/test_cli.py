from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from actionops.cli.main import app

GROUPS = ["data", "flow", "train", "tune", "predict", "evaluate", "registry", "pipeline", "demo"]
runner = CliRunner()


@pytest.mark.parametrize("group", GROUPS)
def test_help_of_every_group(group):
    result = runner.invoke(app, [group, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example" in result.output and "Traceback" not in result.output


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == "actionops 0.1.0"


def test_help_imports_no_heavy_module():
    code = (
        "import sys\n"
        "sys.argv = ['actionops', '--help']\n"
        "from actionops.cli.main import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'ray', 'mlflow', 'cv2', 'av', 'sklearn') if m in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("HEAVY="), out


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "actionops.cli.main", *args],
                          capture_output=True, text=True, cwd=cwd)


def test_wrong_params_key_is_one_line_no_traceback(tmp_path):
    result = _cli("data", "synth", str(tmp_path / "x"), "--set", "synth.vidoes=2")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "synth.vidoes" in lines[0] and "synth.videos" in lines[0]


def test_debug_env_shows_traceback(tmp_path):
    import os

    env = {**os.environ, "ACTIONOPS_DEBUG": "1"}
    result = subprocess.run([sys.executable, "-m", "actionops.cli.main", "data", "synth", str(tmp_path / "x"),
                             "--set", "synth.videos=x"], capture_output=True, text=True, env=env)
    assert result.returncode == 1 and "Traceback" in result.stderr and "ConfigError" in result.stderr


def test_every_method_has_a_campaign_and_registry_commands():
    from actionops.pipelines.method import list_methods

    tune = _cli("tune", "--help")
    assert tune.returncode == 0
    for method in list_methods():
        assert method.id in tune.stdout and all(word in tune.stdout for word in method.words)
    registry = _cli("registry", "--help")
    for command in ("list", "show", "promote", "rollback", "compare"):
        assert command in registry.stdout


def test_synth_command_writes_dataset(tmp_path):
    out = tmp_path / "clips"
    result = runner.invoke(app, ["data", "synth", str(out), "--kind", "clips", "--videos", "8",
                                 "--frames", "6", "--width", "64", "--height", "48", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["kind"] == "clips" and sum(summary["splits"].values()) == 8
    assert len(list(out.rglob("*.mp4"))) == 8
    # a second run finds the same parameters and skips
    again = runner.invoke(app, ["data", "synth", str(out), "--kind", "clips", "--videos", "8",
                                "--frames", "6", "--width", "64", "--height", "48"])
    assert again.exit_code == 0 and "up to date" in again.output

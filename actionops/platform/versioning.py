"""DVC: versioned datasets (`actionops data add|versions|checkout`) and the data version a run saw.

A dataset is a folder tracked by DVC as one directory output (`<folder>.dvc`); its version is
the DVC hash of the folder (`<md5>.dir`). Every `data add` appends a version to `datasets.yaml`
at the DVC repository root (commit it with the `.dvc` file), keeping the `.dvc` entry so that
`data checkout NAME@vN` can put the folder back exactly, from the cache or the remote.

Folders holding many small image files (extracted frames) are packed into one uncompressed,
deterministic `<folder>.tar` before DVC sees them: thousands of tiny files make DVC slow. The
folder itself stays usable in the workspace; the repository's `.dvcignore` hides it from DVC, and
`data checkout` unpacks the tar of the version it restores.

DVC runs as a subprocess (`python -m dvc`, its documented CLI) with analytics off; nothing
reaches the network unless the configured remote is a network one.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from actionops.errors import ActionopsError

REGISTRY_NAME = "datasets.yaml"
PACK_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".npy"}
ENV_REMOTE = "ACTIONOPS_DVC_REMOTE"
ENV_REMOTE_NAME = "actionops-env"
DEFAULT_REMOTE = ("local", ".dvc/storage")


class VersioningError(ActionopsError):
    """A DVC operation failed or a dataset/version is unknown."""


# ----------------------------------------------------------------------------- DVC plumbing
def repo_root(start: str | Path) -> Path | None:
    """The DVC repository holding `start` (the nearest parent with a `.dvc` folder), or None."""
    path = Path(start).resolve()
    for candidate in (path, *path.parents):
        if (candidate / ".dvc").is_dir():
            return candidate
    return None


def require_repo(start: str | Path) -> Path:
    root = repo_root(start)
    if root is None:
        raise VersioningError(f"{start} is not inside a DVC repository",
                              "run `git init && dvc init` at your project root (actionops' own repo already has one)")
    return root


def run_dvc(args: list[str], root: Path, *, check: bool = True) -> subprocess.CompletedProcess:
    """Run `dvc ARGS` in `root` with analytics and update checks off."""
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "DVC_NO_UPDATER": "1"}
    proc = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=root, env=env, capture_output=True, text=True)
    if check and proc.returncode != 0:
        lines = [ln for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
        detail = next((ln for ln in lines if ln.startswith("ERROR")), lines[-1] if lines else "no output")
        raise VersioningError(f"`dvc {' '.join(args)}` failed: {detail.removeprefix('ERROR: ')}",
                              "run the same dvc command in the repository to see the whole message")
    return proc


def remote_for_push(root: Path) -> str:
    """The remote `data add` pushes to (and `data checkout` pulls from): $ACTIONOPS_DVC_REMOTE (any DVC URL, set as a local-only
    remote), else the repository's default remote, else a new default `local` -> .dvc/storage."""
    url = os.environ.get(ENV_REMOTE)
    if url:
        run_dvc(["remote", "add", "--local", "--force", ENV_REMOTE_NAME, url], root)
        return ENV_REMOTE_NAME
    default = run_dvc(["config", "core.remote"], root, check=False).stdout.strip()
    if default:
        return default
    name, url = DEFAULT_REMOTE
    run_dvc(["remote", "add", "--default", name, url], root)
    gitignore = root / ".dvc" / ".gitignore"  # the local remote's objects stay out of git
    ignored = gitignore.read_text().splitlines() if gitignore.is_file() else []
    if "/storage" not in ignored:
        with gitignore.open("a") as fh:
            fh.write("/storage\n")
    return name


def _dvc_entry(dvc_file: Path) -> dict[str, Any]:
    import yaml

    outs = (yaml.safe_load(dvc_file.read_text()) or {}).get("outs") or []
    if not outs:
        raise VersioningError(f"{dvc_file} has no outs", "re-run `actionops data add` on the folder")
    return dict(outs[0])


# ----------------------------------------------------------------------------- the version a run saw
def dataset_version(dataset: str | Path) -> str | None:
    """The DVC hash of a dataset folder: from `<folder>.dvc` (data add) or, for a folder some
    stage of dvc.yaml produces, from dvc.lock. None when DVC does not track it.

    This is the hash DVC recorded; a folder edited since without `data add` / `dvc repro`
    reads as the recorded version (`data versions` shows such folders as modified)."""
    dataset = Path(dataset).resolve()
    dvc_file = dataset.with_name(dataset.name + ".dvc")
    if dvc_file.is_file():
        md5 = _dvc_entry(dvc_file).get("md5")
        return str(md5) if md5 else None
    root = repo_root(dataset)
    lock = root / "dvc.lock" if root else None
    if lock is None or not lock.is_file():
        return None
    import yaml

    rel = os.path.relpath(dataset, root)
    stages = (yaml.safe_load(lock.read_text()) or {}).get("stages") or {}
    for stage in stages.values():
        for out in stage.get("outs") or []:
            if os.path.normpath(out.get("path", "")) == rel and out.get("md5"):
                return str(out["md5"])
    return None


# ----------------------------------------------------------------------------- packing frame folders
def frame_folders(folder: Path, threshold: int) -> list[Path]:
    """Sub-folders of `folder` holding at least `threshold` image/array files directly."""
    found = []
    for sub in sorted(p for p in folder.rglob("*") if p.is_dir()):
        if any(part.startswith(".") for part in sub.relative_to(folder).parts):
            continue
        count = sum(1 for f in sub.iterdir() if f.is_file() and f.suffix.lower() in PACK_SUFFIXES)
        if count >= threshold:
            found.append(sub)
    return [f for f in found if not any(parent in found for parent in f.parents)]


def _write_tar(sub: Path, fileobj: Any) -> None:
    with tarfile.open(fileobj=fileobj, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(p for p in sub.rglob("*") if p.is_file()):
            info = tarfile.TarInfo(str(path.relative_to(sub)))
            info.size, info.mtime, info.mode = path.stat().st_size, 0, 0o644
            with path.open("rb") as fh:
                tar.addfile(info, fh)


def pack_folder(sub: Path) -> Path:
    """Write `<sub>.tar`: files in sorted order, fixed mtime/owner, so the same frames give the
    same bytes (and the same DVC hash)."""
    target = sub.with_name(sub.name + ".tar")
    tmp = target.with_name(f".{target.name}.tmp")
    with tmp.open("wb") as fh:
        _write_tar(sub, fh)
    tmp.replace(target)
    return target


class _HashSink:
    """A write-only file object that only hashes what it is given."""

    def __init__(self) -> None:
        import hashlib

        self.hash = hashlib.md5()

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        return len(data)

    def tell(self) -> int:  # tarfile asks; nothing needs a real position
        return 0


def packed_digest(sub: Path) -> str:
    """md5 of the tar `pack_folder(sub)` would write, without writing it."""
    sink = _HashSink()
    _write_tar(sub, sink)
    return sink.hash.hexdigest()




def unpack_folder(tar_path: Path) -> Path:
    """Replace the folder beside `tar_path` by the tar's content (members checked to stay inside)."""
    folder = tar_path.with_suffix("")
    tmp = folder.with_name(f".{folder.name}.unpack")
    shutil.rmtree(tmp, ignore_errors=True)
    with tarfile.open(tar_path) as tar:
        tar.extractall(tmp, filter="data")
    shutil.rmtree(folder, ignore_errors=True)
    tmp.replace(folder)
    return folder


def _ignore_packed(root: Path, packed: list[Path]) -> None:
    """Hide packed folders from DVC in the repository's .dvcignore (their tar is what DVC tracks;
    DVC refuses a .dvcignore inside a tracked folder)."""
    path = root / ".dvcignore"
    lines = path.read_text().splitlines() if path.is_file() else []
    wanted = ["/" + p.relative_to(root).as_posix() + "/" for p in packed]
    missing = [line for line in wanted if line not in lines]
    if missing:
        with path.open("a") as fh:
            fh.write("# packed by `actionops data add`: DVC tracks the .tar beside each folder\n"
                     + "".join(f"{line}\n" for line in missing))


# ----------------------------------------------------------------------------- the dataset registry
def _load_registry(root: Path) -> dict[str, Any]:
    import yaml

    path = root / REGISTRY_NAME
    return (yaml.safe_load(path.read_text()) or {}) if path.is_file() else {}


def _save_registry(root: Path, registry: dict[str, Any]) -> None:
    import yaml

    path = root / REGISTRY_NAME
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("# Dataset versions written by `actionops data add` (commit this file with the .dvc files)\n"
                   + yaml.safe_dump(registry, sort_keys=False))
    tmp.replace(path)


@dataclass(frozen=True)
class DatasetVersion:
    name: str
    version: str
    md5: str
    path: str
    files: int
    size: int
    new: bool
    remote: str | None
    packed: list[str]


def add_dataset(path: str | Path, *, name: str | None = None, push: bool = True, pack_threshold: int = 1000,
                note: str = "", say: Callable[[str], None] | None = None) -> DatasetVersion:
    """Track `path` with DVC, record its version in datasets.yaml and push it to the remote."""
    folder = Path(path).resolve()
    if not folder.is_dir():
        raise VersioningError(f"{path} is not a folder", "give the dataset's folder (DVC tracks it as one directory)")
    root = require_repo(folder)
    if folder == root:
        raise VersioningError(f"{path} is the repository root", "track a dataset folder inside the repository")
    rel = os.path.relpath(folder, root)
    name = name or folder.name
    registry = _load_registry(root)
    if name in registry and registry[name]["path"] != rel:
        raise VersioningError(f"dataset name {name!r} already names {registry[name]['path']}",
                              "pick another --name")
    packed = frame_folders(folder, pack_threshold) if pack_threshold > 0 else []
    # a folder packed in an earlier version stays packed (DVC ignores it; its tar must follow it)
    earlier = {sub for v in registry.get(name, {}).get("versions", []) for sub in v.get("packed", [])}
    packed = sorted({*packed, *(folder / sub for sub in earlier if (folder / sub).is_dir())})
    for sub in packed:
        if say:
            say(f"packing {sub.relative_to(folder)} ({sum(1 for _ in sub.iterdir())} files) into {sub.name}.tar")
        pack_folder(sub)
    _ignore_packed(root, packed)
    run_dvc(["add", rel], root)
    entry = _dvc_entry(root / f"{rel}.dvc")
    versions = registry.setdefault(name, {"path": rel, "versions": []})["versions"]
    same = [v for v in versions if v["md5"] == entry["md5"]]
    remote = remote_for_push(root) if push else None
    if remote:
        run_dvc(["push", "-r", remote, f"{rel}.dvc"], root)
    if same:
        version, new = same[-1], False
    else:
        version, new = {"version": f"v{len(versions) + 1}", "md5": entry["md5"], "files": int(entry.get("nfiles", 0)),
                        "size": int(entry.get("size", 0)), "added": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                        "by": getpass.getuser(), "note": note, "remote": remote,
                        "packed": [str(p.relative_to(folder)) for p in packed], "dvc": entry}, True
        versions.append(version)
        _save_registry(root, registry)
    return DatasetVersion(name, version["version"], entry["md5"], rel, int(entry.get("nfiles", 0)),
                          int(entry.get("size", 0)), new, remote, version.get("packed", []))


def _dataset(root: Path, name: str) -> dict[str, Any]:
    registry = _load_registry(root)
    if name not in registry:
        known = ", ".join(registry) or "none yet"
        raise VersioningError(f"unknown dataset {name!r} (known: {known})", "track it first: actionops data add PATH --name NAME")
    return registry[name]


def list_versions(name: str, start: str | Path = ".") -> dict[str, Any]:
    """Versions of dataset `name`, which one the workspace holds, and whether it was edited since
    (`modified`: true, false, or "unknown" when DVC cannot tell; `edits` says what)."""
    root = require_repo(start)
    dataset = _dataset(root, name)
    dvc_file = root / f"{dataset['path']}.dvc"
    current = _dvc_entry(dvc_file).get("md5") if dvc_file.is_file() else None
    try:
        edits = unsaved_edits(root, dataset)
        modified: bool | str = bool(edits)
    except VersioningError as exc:
        edits, modified = [exc.message], "unknown"
    rows = [{k: v for k, v in version.items() if k != "dvc"} | {"current": version["md5"] == current}
            for version in dataset["versions"]]
    return {"name": name, "path": dataset["path"], "versions": rows, "modified": modified, "edits": edits}


def unsaved_edits(root: Path, dataset: dict[str, Any]) -> list[str]:
    """What the dataset's folder holds that is in no recorded version: files DVC sees changed
    (`dvc status` of its .dvc file) and packed frame folders whose content no longer matches their
    tar (DVC sees only the tar). Fails closed: raises VersioningError when DVC cannot tell."""
    from actionops.platform.data import file_md5

    rel = dataset["path"]
    edits = []
    if not (root / rel).exists():  # nothing there to lose (a fresh clone that has not pulled it yet)
        return edits
    if (root / f"{rel}.dvc").is_file():
        status = run_dvc(["status", "--json", f"{rel}.dvc"], root, check=False)
        lines = [ln for ln in (status.stderr + status.stdout).splitlines() if ln.strip()]
        try:
            changed = json.loads(status.stdout or "{}") if status.returncode == 0 else None
        except ValueError:
            changed = None
        if changed is None:
            detail = next((ln for ln in lines if ln.startswith("ERROR")), lines[-1] if lines else "no output")
            raise VersioningError(f"cannot tell whether {rel} has edits in no version: `dvc status` failed "
                                  f"({detail.removeprefix('ERROR: ')})",
                                  "fix what DVC reports (run `dvc status` there), or pass --force to discard the folder's "
                                  "current content")
        if changed:
            edits.append(f"{rel}: files changed since the last `actionops data add`")
    folder = root / rel
    for sub in sorted({sub for v in dataset.get("versions", []) for sub in v.get("packed", [])}):
        frames, tar = folder / sub, folder / f"{sub}.tar"
        if frames.is_dir() and (not tar.is_file() or packed_digest(frames) != file_md5(tar)):
            edits.append(f"{rel}/{sub}/: edited since it was packed into {sub}.tar")
    return edits


def find_version(dataset: dict[str, Any], spec: str) -> dict[str, Any]:
    """A version by `vN` or by a prefix (>= 6 characters) of its hash."""
    for version in dataset["versions"]:
        if version["version"] == spec or (len(spec) >= 6 and version["md5"].startswith(spec)):
            return version
    known = ", ".join(f"{v['version']} ({v['md5'][:8]})" for v in dataset["versions"])
    raise VersioningError(f"no version {spec!r} of {dataset['path']} (known: {known})",
                          "list them with `actionops data versions NAME`")


def checkout_dataset(ref: str, start: str | Path = ".", *, force: bool = False) -> dict[str, Any]:
    """Put the folder of `NAME@VERSION` back as it was at that version (from the DVC cache,
    else from the remote). Refuses to overwrite edits that are in no version unless `force`."""
    if "@" not in ref:
        raise VersioningError(f"{ref!r} names no version", "write NAME@VERSION, e.g. demo@v1 (see `actionops data versions demo`)")
    name, spec = ref.rsplit("@", 1)
    root = require_repo(start)
    dataset = _dataset(root, name)
    version = find_version(dataset, spec)
    rel = dataset["path"]
    dvc_file = root / f"{rel}.dvc"
    if not force:  # nothing is removed before we know the folder holds nothing unrecorded
        edits = unsaved_edits(root, dataset)
        if edits:
            raise VersioningError(f"{rel} has changes that are in no recorded version: {'; '.join(edits)}",
                                  f"record them first (actionops data add {rel}) or pass --force to discard them")
    import yaml

    dvc_file.write_text(yaml.safe_dump({"outs": [version["dvc"]]}, sort_keys=False))
    done = run_dvc(["checkout", "--force", f"{rel}.dvc"], root, check=False)
    source = "cache"
    if done.returncode != 0:
        run_dvc(["pull", "--force", "-r", remote_for_push(root), f"{rel}.dvc"], root)
        source = "remote"
    folder = root / rel
    for sub in version.get("packed", []):
        unpack_folder(folder / f"{sub}.tar")
    return {"name": name, "version": version["version"], "md5": version["md5"], "path": rel, "source": source,
            "unpacked": version.get("packed", [])}

"""The model store: manifests under `manifests/<host>/<ns>/<model>/<tag>` plus content blobs.

Byte-compatible with Ollama's `~/.ollama/models`: either program can use a store the other wrote.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from modelstore import temps
from modelstore.blobs import BlobStore, InvalidDigest, fsync_directory, is_temp_name, is_valid_digest
from modelstore.derived import DerivedStore
from modelstore.gojson import local_time_from_timestamp
from modelstore.manifest import Manifest, ManifestError
from modelstore.names import Name, name_from_filepath_parts

log = logging.getLogger(__name__)

PRUNE_GRACE_SECONDS = 3600.0
# Manifest temp files sit at the top of manifests/, one level deep, where listing never looks.
_MANIFEST_TEMP_PREFIX = ".tmp-manifest-"


def prune_empty_directories(path: Path) -> None:
    """Go's manifest.PruneDirectory: remove empty directories bottom-up, `path` itself included."""
    if path.is_symlink() or not path.is_dir():
        return
    for child in path.iterdir():
        prune_empty_directories(child)
    if not any(path.iterdir()):
        path.rmdir()


def _write_atomically(target: Path, data: bytes, temp_dir: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    temp_dir.mkdir(parents=True, exist_ok=True)
    temp = temp_dir / f"{_MANIFEST_TEMP_PREFIX}{random.randrange(1 << 32)}"
    try:
        with temps.owned_file(temp) as fd:  # held until renamed: a live writer's temp survives a start-up
            with open(fd, "wb", closefd=False) as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(temp, 0o644)
            os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    fsync_directory(target.parent)


class ModelStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.blobs = BlobStore(self.root)
        self.manifests_dir = self.root / "manifests"
        self.derived = DerivedStore(self.root, self.blobs.directory)

    # --- names and paths -------------------------------------------------------------------

    def manifest_path(self, name: Name) -> Path:
        return self.manifests_dir.joinpath(*name.filepath_parts())

    def _manifest_files(self) -> list[tuple[Path, Name | None]]:
        """Every file exactly four levels down, with its name (None when the name is invalid)."""
        if not self.manifests_dir.is_dir():
            return []
        found = []
        for path in sorted(self.manifests_dir.glob("*/*/*/*")):
            if path.is_dir():
                continue
            parts = path.relative_to(self.manifests_dir).parts
            found.append((path, name_from_filepath_parts(parts)))
        return found

    def manifest_names(self) -> list[Name]:
        """Valid names that have a manifest file, without reading the files."""
        return [name for _, name in self._manifest_files() if name is not None]

    def canonical_name(self, name: Name) -> Name:
        """Replace each part by the spelling an existing manifest uses for it, ignoring case.

        Ollama matches each part on its own against all manifests (`getExistingName`). Where
        several spellings exist it takes whichever its map iteration meets last; here an exact
        match wins, else the first in sorted order, so the choice is stable.
        """
        existing = self.manifest_names()
        parts = list(name.parts())
        for index, part in enumerate(parts):
            spellings = [other.parts()[index] for other in existing
                         if other.parts()[index].lower() == part.lower()]
            if spellings and part not in spellings:
                parts[index] = spellings[0]
        return Name(*parts)

    # --- single manifests ------------------------------------------------------------------

    def read_manifest(self, name: Name) -> Manifest | None:
        """The manifest, or None when there is none. Corrupt files raise ManifestError."""
        try:
            raw = self.manifest_path(name).read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        return Manifest.parse(raw)

    def manifest_mtime_ns(self, name: Name) -> int | None:
        try:
            return self.manifest_path(name).stat().st_mtime_ns
        except FileNotFoundError:
            return None

    def manifest_mtime(self, name: Name) -> datetime | None:
        """The manifest file's mtime in the local zone: Ollama's `modified_at`."""
        mtime_ns = self.manifest_mtime_ns(name)
        return None if mtime_ns is None else local_time_from_timestamp(mtime_ns / 1e9)

    def write_manifest(self, name: Name, manifest: Manifest) -> None:
        """Write `manifest.file_bytes()` atomically (raw registry bytes are kept as they are)."""
        _write_atomically(self.manifest_path(name), manifest.file_bytes(), self.manifests_dir)

    def delete_manifest(self, name: Name) -> Manifest | None:
        """Remove a manifest and the directories left empty; returns what was removed.

        The blobs stay: pass `manifest.digests()` to `remove_unreferenced` afterwards.
        """
        manifest = self.read_manifest(name)
        if manifest is None:
            return None
        self.manifest_path(name).unlink()
        prune_empty_directories(self.manifests_dir)
        return manifest

    def copy_manifest(self, source: Name, destination: Name) -> None:
        """Copy the manifest bytes verbatim (same digest, new mtime); FileNotFoundError if no source.

        Copying a name onto its own path does nothing, even when it does not exist (as in Ollama).
        """
        source_path, destination_path = self.manifest_path(source), self.manifest_path(destination)
        if source_path == destination_path:
            return
        _write_atomically(destination_path, source_path.read_bytes(), self.manifests_dir)

    # --- all manifests and garbage collection -----------------------------------------------

    def manifests(self, *, strict: bool = False) -> dict[Name, Manifest]:
        """All manifests exactly four levels deep, by name.

        Files with an invalid name or unreadable content are skipped, or with strict raise
        ManifestError (the startup prune treats any of them as a reason to do nothing).
        """
        found: dict[Name, Manifest] = {}
        for path, name in self._manifest_files():
            try:
                if name is None:
                    raise ManifestError(f"{path.relative_to(self.manifests_dir)}: bad manifest name")
                found[name] = Manifest.parse(path.read_bytes())
            except (ManifestError, OSError) as exc:
                if strict:
                    raise ManifestError(f"{path}: {exc}") from exc
                log.warning("skipping bad manifest %s: %s", path, exc)
        return found

    def referenced_digests(self) -> set[str]:
        """Digests (layers and configs) of every readable manifest."""
        return {digest for manifest in self.manifests().values() for digest in manifest.digests()}

    def remove_unreferenced(self, digests: Iterable[str]) -> list[str]:
        """Delete those blobs that no manifest references any more; returns the deleted digests."""
        referenced = self.referenced_digests()
        removed = []
        for digest in dict.fromkeys(digests):
            if digest in referenced:
                continue
            try:
                if self.blobs.remove(digest):
                    removed.append(digest)
            except InvalidDigest:
                log.info("couldn't get file path for %r: invalid digest format", digest)
        if removed:
            self.derived.sweep()
        return removed

    def fix_blob_names(self) -> None:
        """Rename `sha256:<hex>` files (old builds, Windows) to `sha256-<hex>` (Go fixBlobs)."""
        for directory, _, files in os.walk(self.blobs.directory):
            for filename in files:
                kind, sep, rest = filename.partition(":")
                if sep and kind == "sha256":
                    os.rename(os.path.join(directory, filename), os.path.join(directory, f"sha256-{rest}"))

    def prune(self, grace_seconds: float = PRUNE_GRACE_SECONDS) -> list[str]:
        """Startup housekeeping; returns the names of the deleted blob files.

        Fixes blob names; then, unless some manifest is corrupt or invalidly named, deletes blob
        files at least `grace_seconds` old whose name is not a digest (temp and partial files)
        or that no manifest references, and finally removes empty manifest directories.
        """
        self.fix_blob_names()
        try:
            manifests = self.manifests(strict=True)
        except ManifestError as exc:
            log.warning("corrupt manifests detected, skipping prune operation: %s", exc)
            return []
        referenced = {digest for manifest in manifests.values() for digest in manifest.digests()}
        cutoff = time.time() - grace_seconds
        removed = []
        for entry in os.scandir(self.blobs.directory) if self.blobs.directory.is_dir() else []:
            digest = entry.name.replace("-", ":")
            try:
                if entry.is_dir() or entry.stat().st_mtime > cutoff:
                    continue
                if is_valid_digest(digest) and digest in referenced:
                    continue
                os.unlink(entry.path)
            except OSError as exc:  # a file that vanished or resists deletion: log and go on, as Ollama does
                log.error("couldn't remove blob %s: %s", entry.name, exc)
                continue
            removed.append(entry.name)
        self._remove_stale_manifest_temps(cutoff)
        prune_empty_directories(self.manifests_dir)
        self.derived.sweep()
        return removed

    def remove_abandoned_temporaries(self) -> list[str]:
        """Start-up: remove uploads, conversions and manifest temps that no live process owns (kill -9
        leaves them); returns their names. Partial downloads stay: a later pull resumes them."""
        candidates = []
        if self.blobs.directory.is_dir():
            candidates += [Path(e.path) for e in os.scandir(self.blobs.directory)
                           if is_temp_name(e.name) and e.is_file(follow_symlinks=False)]
        if self.manifests_dir.is_dir():
            candidates += list(self.manifests_dir.glob(_MANIFEST_TEMP_PREFIX + "*"))
        return temps.remove_abandoned(candidates)

    def _remove_stale_manifest_temps(self, cutoff: float) -> None:
        if not self.manifests_dir.is_dir():
            return
        for temp in self.manifests_dir.glob(_MANIFEST_TEMP_PREFIX + "*"):
            if temp.stat().st_mtime <= cutoff:
                temp.unlink(missing_ok=True)

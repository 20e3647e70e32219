"""Find the files under the paths given to `rag ingest` and give each a stable document id."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from index.loaders import SUPPORTED_EXTENSIONS


@dataclass(frozen=True)
class SourceFile:
    path: Path  # absolute
    root: Path  # absolute folder the id is relative to
    doc_id: str  # "<root folder name>/<relative path>": the same whether a folder or a file is given


@dataclass
class Discovery:
    files: list[SourceFile] = field(default_factory=list)
    unsupported: list[Path] = field(default_factory=list)
    roots: list[Path] = field(default_factory=list)  # folders given: the scope of --prune
    conflicts: dict[Path, str] = field(default_factory=dict)  # file -> why it has no usable id


def _hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def _source(path: Path, root: Path) -> SourceFile:
    relative = path.relative_to(root).as_posix()
    return SourceFile(path=path, root=root, doc_id=f"{root.name or 'root'}/{relative}")


def discover(paths: list[Path]) -> Discovery:
    """Walk folders recursively (hidden files and folders are skipped), keep files as given.

    Raises FileNotFoundError for a path that does not exist: that is a usage error.
    """
    found = Discovery()
    claimed: dict[str, Path] = {}
    for given in paths:
        absolute = Path(given).absolute()
        if absolute.is_dir():
            root = absolute.resolve()
            found.roots.append(root)
            candidates = [
                p
                for p in sorted(root.rglob("*"))
                if (p.is_file() or p.is_symlink()) and not _hidden(p.relative_to(root))
            ]
        elif absolute.exists() or absolute.is_symlink():
            root = absolute.parent.resolve()
            candidates = [root / absolute.name]
        else:
            raise FileNotFoundError(f"no such file or folder: {given}")
        for path in candidates:
            if path.suffix.lower() not in SUPPORTED_EXTENSIONS:
                found.unsupported.append(path)
                continue
            source = _source(path, root)
            if source.doc_id not in claimed:
                claimed[source.doc_id] = path
                found.files.append(source)
            elif claimed[source.doc_id] != path:  # same file given twice is fine
                owner = claimed[source.doc_id]
                found.conflicts[path] = f"document id {source.doc_id!r} is already used by {owner}"
    return found

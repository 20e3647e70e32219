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
            if path.suffix.lower() in SUPPORTED_EXTENSIONS:
                found.files.append(_source(path, root))
            else:
                found.unsupported.append(path)
    return found

"""API keys: from `RAG_API_KEYS`, `RAG_API_ADMIN_KEYS` and `RAG_API_KEYS_FILE`."""

from __future__ import annotations

from rag.settings import Settings


def load_keys(settings: Settings) -> dict[str, bool]:
    """key -> is admin. Admin keys are keys too. Raises ValueError naming a bad line."""
    keys = {k.strip(): False for k in settings.api_keys.split(",") if k.strip()}
    keys |= {k.strip(): True for k in settings.api_admin_keys.split(",") if k.strip()}
    if settings.api_keys_file:
        path = settings.api_keys_file
        for number, line in enumerate(path.read_text().splitlines(), 1):
            fields = line.split("#", 1)[0].split()
            if not fields:
                continue
            if len(fields) > 2 or (len(fields) == 2 and fields[1] != "admin"):
                raise ValueError(f"{path}:{number}: expected `KEY` or `KEY admin`")
            keys[fields[0]] = keys.get(fields[0], False) or len(fields) == 2
    return keys

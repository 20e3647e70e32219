"""Who may do what: the API keys, each with a role and the collections it may see.

The keys come from `RAG_API_KEYS`, `RAG_API_ADMIN_KEYS` and the keys file (`RAG_API_KEYS_FILE`),
one key a line: `KEY [reader|editor|admin] [collections=a,b|*] [name=NAME]`.

- `reader` asks, retrieves and lists documents; `editor` also uploads and deletes them; `admin`
  also creates and deletes collections, and sees every collection.
- Without `collections=` a key sees the server's default collection (`RAG_COLLECTION`) only.
- A line without a role keeps its old meaning: `editor` while no admin key exists, else `reader`.
- `name` labels the key in metrics and is the user name it signs in to the UI with; without one,
  the key is named after its role. Keys sharing a name must share their permissions too, since
  the UI knows a signed-in user by name only.

The API (`api.auth`) and the UI (`app.server`) both read permissions from here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, get_args

from rag.records import collection_problem
from rag.settings import Settings

Role = Literal["reader", "editor", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)
KEYS_LINE = "`KEY [reader|editor|admin] [collections=a,b|*] [name=NAME]`"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


class KeysFileError(ValueError):
    """A keys-file line that does not parse: the server refuses to start, naming the line."""


@dataclass(frozen=True)
class Grant:
    """What one key may do. `collections` None: every collection."""

    name: str
    role: Role
    collections: frozenset[str] | None

    def reads(self, collection: str) -> bool:
        return self.collections is None or collection in self.collections

    def writes(self, collection: str) -> bool:
        return self.role in ("editor", "admin") and self.reads(collection)

    @property
    def manages(self) -> bool:
        """May create and delete collections."""
        return self.role == "admin"


# A server without keys answers loopback clients only (`api.auth.LoopbackOnly`): they may do all.
LOCAL = Grant("local", "admin", None)


def load_grants(settings: Settings) -> dict[str, Grant]:
    """key -> its Grant, from every source of keys. Raises KeysFileError naming a bad line."""
    lines: list[tuple[str, list[str]]] = []  # (where, fields)
    for where, source, role in (("RAG_API_KEYS", settings.api_keys, []),
                                ("RAG_API_ADMIN_KEYS", settings.api_admin_keys, ["admin"])):  # fmt: skip
        lines += [
            (where, [key.strip(), *role]) for key in source.get_secret_value().split(",") if key.strip()
        ]
    if settings.api_keys_file:
        path = settings.api_keys_file
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if fields := line.split("#", 1)[0].split():
                lines.append((f"{path}:{number}", fields))
    parsed = [(where, *_parse(where, fields)) for where, fields in lines]
    any_admin = any(role == "admin" for _, _, role, _, _ in parsed)
    grants: dict[str, Grant] = {}
    named: dict[str, tuple[str, Grant]] = {}  # name -> (where first seen, its grant)
    for where, key, role, collections, name in parsed:
        role = role or ("reader" if any_admin else "editor")
        if role == "admin":
            collections = None
        elif collections is None:
            collections = frozenset({settings.collection})
        elif "*" in collections:
            collections = None
        else:  # a misspelt name would silently give access to nothing
            for scoped in sorted(collections - {settings.collection}):
                if problem := collection_problem(scoped):
                    raise KeysFileError(f"{where}: collections=: {problem}")
        grant = Grant(name or role, role, collections)
        if key in grants and grants[key] != grant:
            if grants[key].role == "admin":  # a key listed as admin too is an admin (as before)
                continue
            if grant.role != "admin":
                raise KeysFileError(f"{where}: this key is already given other permissions")
        first = named.setdefault(grant.name, (where, grant))
        if first[1] != grant:
            raise KeysFileError(
                f"{where}: the name {grant.name!r} already belongs to a key with other permissions "
                f"({first[0]}); give one of them its own name=NAME"
            )
        grants[key] = grant
    return grants


def _parse(where: str, fields: list[str]) -> tuple[str, Role | None, frozenset[str] | None, str | None]:
    key, *options = fields
    role: Role | None = None
    collections: frozenset[str] | None = None
    name: str | None = None
    for number, option in enumerate(options):
        field, eq, value = option.partition("=")
        if not eq and field in ROLES and role is None:
            role = field  # type: ignore[assignment]
        elif field == "collections" and eq and collections is None:
            collections = frozenset(v for v in value.split(",") if v)
            if not collections:
                raise KeysFileError(f"{where}: collections= needs at least one name, or *")
        elif field == "name" and eq and name is None:
            if not NAME.match(value):
                raise KeysFileError(f"{where}: name {value!r} must be 1-64 letters, digits or _.@-")
            name = value
        else:
            # Quote a word, never what could be a key (two keys on one line): the message is logged.
            shown = repr(option) if re.fullmatch(r"[A-Za-z]{1,16}=?", option) else f"field {number + 2}"
            raise KeysFileError(f"{where}: {shown} is not understood; expected {KEYS_LINE}")
    return key, role, collections, name


def ui_login(grants: dict[str, Grant]):
    """The UI's sign-in check, or None (no keys, no sign-in): the key is the password, and the
    user name is the key's name, so the UI knows the signed-in user's permissions by name."""
    if not grants:
        return None

    def login(user: str, password: str) -> bool:
        grant = grants.get(password)
        return grant is not None and grant.name == user

    return login


def grant_of_user(grants: dict[str, Grant], user: str | None) -> Grant | None:
    """The permissions of a UI user signed in as `user` (None without keys: `LOCAL`)."""
    if not grants:
        return LOCAL
    return next((g for g in grants.values() if g.name == user), None)

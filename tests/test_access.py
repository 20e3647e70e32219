"""The keys file: roles, collections and names, today's lines keeping their meaning, and a line
that does not parse refusing the whole file with its line number."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.access import LOCAL, Grant, KeysFileError, grant_of_user, load_grants, ui_login
from rag.settings import Settings


def grants(tmp_path: Path, text: str, **settings) -> dict[str, Grant]:
    keys = tmp_path / "keys.txt"
    keys.write_text(text)
    return load_grants(Settings(_env_file=None, collection="docs", api_keys_file=keys, **settings))


def test_roles_collections_and_names(tmp_path: Path):
    got = grants(tmp_path, """\
        # team keys
        k1 reader collections=alpha,beta name=research   # two teams' documents
        k2 editor collections=alpha
        k3 editor collections=*  name=librarians
        k4 admin collections=alpha
        k5 reader
    """.replace("        ", ""))  # fmt: skip
    assert got["k1"] == Grant("research", "reader", frozenset({"alpha", "beta"}))
    assert got["k2"] == Grant("editor", "editor", frozenset({"alpha"}))
    assert got["k3"] == Grant("librarians", "editor", None)
    assert got["k4"] == Grant("admin", "admin", None), "an admin sees every collection"
    assert got["k5"] == Grant("reader", "reader", frozenset({"docs"})), "no collections=: the default only"
    assert got["k1"].reads("beta") and not got["k1"].writes("beta") and not got["k1"].reads("docs")
    assert got["k2"].writes("alpha") and not got["k2"].writes("docs") and not got["k2"].manages
    assert got["k4"].manages and got["k4"].writes("anything")


def test_todays_lines_keep_their_meaning(tmp_path: Path):
    # Without any admin key every key may change documents, as before; with one, only admins may.
    assert grants(tmp_path, "alpha\nbeta\n")["alpha"] == Grant("editor", "editor", frozenset({"docs"}))
    mixed = grants(tmp_path, "alpha\nbeta admin\n")
    assert mixed["alpha"] == Grant("reader", "reader", frozenset({"docs"}))
    assert mixed["beta"].role == "admin"
    from_env = load_grants(Settings(_env_file=None, api_keys="r1,both", api_admin_keys="both,a1"))
    assert from_env["r1"].role == "reader" and from_env["both"].role == "admin" == from_env["a1"].role


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("k9 superuser", "'superuser' is not understood"),
        ("k9 reader collections=", "collections= needs at least one name"),
        ("k9 reader reader", "'reader' is not understood"),
        ("k9 name=bad/name", "name 'bad/name'"),
        ("k9 reader name=research", "already belongs to a key with other permissions"),
        ("k1 editor", "already given other permissions"),
        ("k9 reader collections=Team-A", "'Team-A' is not a collection name"),
        ("k9 reader k10-second-key", "field 3 is not understood"),  # a key is never quoted
    ],
)
def test_a_line_that_does_not_parse_names_its_line_and_loads_nothing(tmp_path: Path, line: str, says: str):
    text = "k1 reader collections=alpha name=research\nk2 admin\n# comment\n" + line + "\n"
    with pytest.raises(KeysFileError) as failed:
        grants(tmp_path, text)
    assert "keys.txt:4: " in str(failed.value) and says in str(failed.value)
    assert "k10-second-key" not in str(failed.value)


def test_the_ui_user_name_is_the_keys_name(tmp_path: Path):
    got = grants(tmp_path, "k1 reader collections=alpha name=research\nk2 admin\nk3\n")
    login = ui_login(got)
    assert login("research", "k1") and login("admin", "k2") and login("reader", "k3")
    assert not login("admin", "k1") and not login("research", "k2") and not login("research", "nope")
    assert grant_of_user(got, "research") == got["k1"] and grant_of_user(got, "nobody") is None
    assert ui_login({}) is None and grant_of_user({}, None) is LOCAL, "no keys: no sign-in, all local"

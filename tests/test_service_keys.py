"""Caller keys (router/service/keys.py) and `unhardcoded keys …` (router/cli/keys.py): a key made
by the CLI authenticates and nothing else does; a key's policies limit what it may use; every
malformed keys file is refused with each problem and its pointer; the file stays 0600; a key or
its hash is never printed after `new`. The CLI runs through `router.cli.main.main`, real files."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from router.cli import main as cli_main
from router.cli.keys import add_parsers
from router.common.problems import Problem
from router.service.keys import (
    ANONYMOUS,
    MAX_KEYS,
    MAX_KEYS_FILE_BYTES,
    Caller,
    CallerKeys,
    KeyEntry,
    KeysError,
    key_hash,
    new_key,
    read_keys_file,
)

Cli = Callable[..., tuple[int, str, str]]
SHA = "a" * 64


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    """`main.main(argv)` -> (exit status, stdout, stderr). Until main.py registers `keys`
    itself, its parser is given the `keys` command through `add_parsers`."""
    original = cli_main.parser

    def with_keys() -> argparse.ArgumentParser:
        p = original()
        sub = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
        if "keys" not in sub.choices:
            add_parsers(sub)
        return p

    monkeypatch.setattr(cli_main, "parser", with_keys)

    def run(*argv: str) -> tuple[int, str, str]:
        code = cli_main.main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def _new(cli: Cli, path: Path, key_id: str, *extra: str) -> str:
    code, out, err = cli("keys", "new", "--file", str(path), "--id", key_id, *extra)
    assert code == 0, err
    assert "not stored" in err
    (key,) = out.split()
    return key


def _write(path: Path, doc: Any, mode: int = 0o600) -> Path:
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc), encoding="utf-8")
    path.chmod(mode)
    return path


def _refused(path: Path) -> list[Problem]:
    with pytest.raises(KeysError) as info:
        CallerKeys.load(path)
    assert info.value.what == "keys"
    return list(info.value.problems)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --------------------------------------------------------------------------- authenticate


def test_new_then_load_then_authenticate(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    key = _new(cli, path, "support-1", "--team", "support", "--policy", "support-tickets",
               "--label", "pii", "--label", "eu")
    other = _new(cli, path, "ops")
    assert key.startswith("uh_") and len(key) == 46 and key != other
    stored = path.read_text("utf-8")
    assert key not in stored and key_hash(key) in stored
    assert key_hash(key) == hashlib.sha256(key.encode()).hexdigest()

    keys = CallerKeys.load(path)
    assert len(keys) == 2
    caller = keys.authenticate(f"Bearer {key}")
    assert caller == Caller("support-1", "support", ("eu", "pii"),
                            frozenset({"support-tickets"}))
    assert keys.authenticate(f"bearer {key}") == caller  # the scheme in any case (RFC 7235)
    assert keys.authenticate(f"  Bearer   {key}  ") == caller
    assert keys.authenticate(f"Bearer {other}") == Caller("ops", None, (), None)


@pytest.mark.parametrize("header", [
    None,
    "",
    "Basic x",
    "Basic dXNlcjpwYXNz",
    "Bearer",
    "Bearer ",
    "Bearer    ",
    "Bearer uh_" + "A" * 43,  # the right shape, not a key in the file
    "Bearer " + "k" * 10 * 1024,  # 10 KB: refused before it is hashed
    "Bearer two words",
    "Bearer \x00",
    "Token uh_x",
])
def test_anything_but_a_known_bearer_key_is_refused(cli: Cli, tmp_path: Path,
                                                    header: str | None) -> None:
    path = tmp_path / "keys.json"
    key = _new(cli, path, "k1")
    keys = CallerKeys.load(path)
    assert keys.authenticate(f"Bearer {key}") is not None
    assert keys.authenticate(header) is None


def test_the_wrong_key_and_a_near_miss_are_refused(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    key = _new(cli, path, "k1")
    keys = CallerKeys.load(path)
    assert keys.authenticate(f"Bearer {key[:-1]}") is None
    assert keys.authenticate(f"Bearer {key}x") is None
    assert keys.authenticate(f"Bearer {key.upper()}") is None
    assert keys.authenticate(f"Bearer {key_hash(key)}") is None  # the hash is not the key
    assert keys.authenticate(f"Bearer {key}") is not None


def test_a_hash_written_by_hand_authenticates(tmp_path: Path) -> None:
    """The file format is the interface: any tool that writes `sha256(key)` adds a key."""
    key = new_key()
    path = _write(tmp_path / "keys.json", {"schema": 1, "keys": [
        {"id": "hand", "sha256": key_hash(key), "created": "2026-12-02T07:00:00Z"}]})
    caller = CallerKeys.load(path).authenticate(f"Bearer {key}")
    assert caller is not None and caller.key_id == "hand"


def test_an_empty_keys_file_admits_nobody(tmp_path: Path) -> None:
    keys = CallerKeys.load(_write(tmp_path / "keys.json", {"schema": 1, "keys": []}))
    assert len(keys) == 0
    assert keys.authenticate(f"Bearer {new_key()}") is None


# --------------------------------------------------------------------------- the caller


def test_policies_limit_what_a_key_may_use() -> None:
    limited = Caller("k", "t", (), frozenset({"support-tickets", "triage"}))
    assert limited.allows("support-tickets") and limited.allows("triage")
    assert not limited.allows("other")
    assert not limited.allows(None)  # inline policy or plain model
    assert not limited.allows("support-tickets ")
    unlimited = Caller("k", None, (), None)
    assert unlimited.allows("anything") and unlimited.allows(None)
    assert ANONYMOUS.allows(None) and ANONYMOUS.allows("support-tickets")


def test_the_record_shows_id_team_and_labels_never_the_key(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    key = _new(cli, path, "support-1", "--team", "support", "--label", "pii",
               "--policy", "p1")
    caller = CallerKeys.load(path).authenticate(f"Bearer {key}")
    assert caller is not None
    record = caller.to_json()
    assert record == {"key_id": "support-1", "team": "support", "labels": ["pii"]}
    text = json.dumps(record)
    assert key not in text and key_hash(key) not in text
    assert ANONYMOUS.to_json() == {"key_id": None, "team": None, "labels": []}


# --------------------------------------------------------------------------- bad files


def _entry(**fields: Any) -> dict[str, Any]:
    return {"id": "k1", "sha256": SHA} | fields


@pytest.mark.parametrize(("doc", "code", "pointer"), [
    ({"schema": 1, "keys": [_entry(), _entry(sha256="b" * 64)]}, "keys.duplicate_id",
     "/keys/1/id"),
    ({"schema": 1, "keys": [_entry(), _entry(id="k2")]}, "keys.duplicate_key",
     "/keys/1/sha256"),
    ({"schema": 1, "keys": [_entry(sha256="xyz")]}, "keys.invalid_sha256", "/keys/0/sha256"),
    ({"schema": 1, "keys": [_entry(sha256="A" * 64)]}, "keys.invalid_sha256",
     "/keys/0/sha256"),
    ({"schema": 1, "keys": [_entry(sha256=12)]}, "keys.invalid_sha256", "/keys/0/sha256"),
    ({"schema": 1, "keys": [{"id": "k1"}]}, "keys.missing_field", "/keys/0/sha256"),
    ({"schema": 1, "keys": [_entry(labels=["ok", "bad label"])]}, "keys.invalid_label",
     "/keys/0/labels/1"),
    ({"schema": 1, "keys": [_entry(labels="pii")]}, "keys.invalid_label", "/keys/0/labels"),
    ({"schema": 1, "keys": [_entry(policies=[])]}, "keys.invalid_policy", "/keys/0/policies"),
    ({"schema": 1, "keys": [_entry(policies=["a/b"])]}, "keys.invalid_policy",
     "/keys/0/policies/0"),
    ({"schema": 1, "keys": [_entry(id="has space")]}, "keys.invalid_id", "/keys/0/id"),
    ({"schema": 1, "keys": [_entry(id="x" * 65)]}, "keys.invalid_id", "/keys/0/id"),
    # `$` alone would let a trailing newline through
    ({"schema": 1, "keys": [_entry(id="k1\n")]}, "keys.invalid_id", "/keys/0/id"),
    ({"schema": 1, "keys": [_entry(sha256=SHA + "\n")]}, "keys.invalid_sha256",
     "/keys/0/sha256"),
    ({"schema": 1, "keys": [_entry(labels=["pii\n"])]}, "keys.invalid_label",
     "/keys/0/labels/0"),
    ({"schema": 1, "keys": [_entry(team="t" * 65)]}, "keys.invalid_team", "/keys/0/team"),
    ({"schema": 1, "keys": [_entry(team="a\nb")]}, "keys.invalid_team", "/keys/0/team"),
    ({"schema": 1, "keys": [_entry(created="yesterday")]}, "keys.invalid_created",
     "/keys/0/created"),
    ({"schema": 1, "keys": [_entry(polices=["p"])]}, "keys.unknown_field", "/keys/0/polices"),
    ({"schema": 1, "keys": ["k1"]}, "keys.invalid", "/keys/0"),
    ({"schema": 2, "keys": []}, "keys.schema", "/schema"),
    ({"keys": []}, "keys.schema", "/schema"),
    ({"schema": True, "keys": []}, "keys.schema", "/schema"),
    ({"schema": 1.0, "keys": []}, "keys.schema", "/schema"),
    ({"schema": 1, "keys": {}}, "keys.invalid", "/keys"),
    ({"schema": 1, "keys": [], "extra": 1}, "keys.unknown_field", "/extra"),
    ([], "keys.invalid", ""),
    ('{"schema": 1, "keys": [', "keys.invalid_json", ""),
    ("not json at all", "keys.invalid_json", ""),
    ('{"schema": 1, "schema": 1, "keys": []}', "keys.invalid_json", ""),
    ('{"schema": 1, "keys": [{"id": "a", "id": "b", "sha256": "' + SHA + '"}]}',
     "keys.invalid_json", ""),
    ('{"schema": NaN, "keys": []}', "keys.invalid_json", ""),
    (b"\xff\xfe", "keys.invalid_json", ""),
    ({"schema": 1, "keys": [_entry(id=f"k{i}", sha256=f"{i:064x}") for i in range(MAX_KEYS + 1)]},
     "keys.too_many", "/keys"),
])
def test_a_bad_file_is_refused_at_its_pointer(tmp_path: Path, doc: Any, code: str,
                                             pointer: str) -> None:
    path = tmp_path / "keys.json"
    if isinstance(doc, bytes):
        path.write_bytes(doc)
        path.chmod(0o600)
    else:
        _write(path, doc)
    problems = _refused(path)
    assert (code, pointer) in [(p.code, p.pointer) for p in problems], problems
    assert all(p.code.startswith("keys.") and p.message for p in problems)


def test_every_problem_is_reported_at_once_in_pointer_order(tmp_path: Path) -> None:
    path = _write(tmp_path / "keys.json", {"schema": 1, "keys": [
        _entry(labels=["bad label"]), _entry(id="k2", sha256="nope"),
        _entry(sha256="c" * 64), _entry(id="k3", sha256="d" * 64, team="")]})
    found = [(p.code, p.pointer) for p in _refused(path)]
    assert found == [("keys.invalid_label", "/keys/0/labels/0"),
                     ("keys.invalid_sha256", "/keys/1/sha256"),
                     ("keys.duplicate_id", "/keys/2/id"),
                     ("keys.invalid_team", "/keys/3/team")]


def test_problems_carry_hints(tmp_path: Path) -> None:
    path = _write(tmp_path / "keys.json", {"schema": 1, "keys": [
        _entry(), _entry(polices=["p"], sha256="b" * 64)]})
    by_code = {p.code: p for p in _refused(path)}
    assert by_code["keys.unknown_field"].hint == "did you mean `policies`?"
    assert by_code["keys.duplicate_id"].hint == "first at /keys/0"


def test_a_file_over_the_size_limit_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path / "keys.json", " " * MAX_KEYS_FILE_BYTES + '{"schema": 1, "keys": []}')
    assert [(p.code, p.pointer) for p in _refused(path)] == [("keys.too_large", "")]


def test_a_missing_file_and_one_others_may_write_are_refused(tmp_path: Path) -> None:
    assert [p.code for p in _refused(tmp_path / "none.json")] == ["keys.not_found"]
    path = _write(tmp_path / "keys.json", {"schema": 1, "keys": [_entry()]}, mode=0o666)
    problems = _refused(path)
    assert [p.code for p in problems] == ["keys.insecure_file"]
    assert problems[0].hint == f"chmod 600 {path}"
    path.chmod(0o644)  # readable by others is fine: the file holds only hashes
    assert len(CallerKeys.load(path)) == 1


# --------------------------------------------------------------------------- the CLI


def test_the_file_is_created_and_kept_0600(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    old = os.umask(0)
    try:
        _new(cli, path, "k1")
        assert _mode(path) == 0o600
        path.chmod(0o640)
        _new(cli, path, "k2")
        assert _mode(path) == 0o600
        assert cli("keys", "revoke", "--file", str(path), "--id", "k1")[0] == 0
        assert _mode(path) == 0o600
    finally:
        os.umask(old)
    assert [p.name for p in tmp_path.iterdir()] == ["keys.json"]  # no temporary file left


def test_revoke_removes_exactly_that_key(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    first = _new(cli, path, "support-1")
    second = _new(cli, path, "support-2")
    code, out, _ = cli("keys", "revoke", "--file", str(path), "--id", "support-1")
    assert code == 0 and "revoked key `support-1`; 1 key left" in out
    keys = CallerKeys.load(path)
    assert keys.authenticate(f"Bearer {first}") is None
    caller = keys.authenticate(f"Bearer {second}")
    assert caller is not None and caller.key_id == "support-2"

    code, out, err = cli("keys", "revoke", "--file", str(path), "--id", "support-1")
    assert code == 2 and out == ""
    problem = json.loads(err)["problems"][0]
    assert problem["code"] == "keys.unknown_id"
    assert problem["hint"] == "did you mean `support-2`?"


def test_list_never_prints_a_key_or_its_hash(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    key = _new(cli, path, "support-1", "--team", "support", "--policy", "support-tickets",
               "--label", "pii")
    other = _new(cli, path, "ops")
    code, out, err = cli("keys", "list", "--file", str(path))
    assert code == 0 and "(2 keys)" in err
    lines = out.splitlines()
    assert lines[0].split() == ["id", "team", "policies", "labels", "created"]
    support = lines[1].split()
    assert support[:4] == ["support-1", "support", "support-tickets", "pii"]
    assert support[4].endswith("Z")
    assert lines[2].split()[:4] == ["ops", "-", "(any)", "-"]
    for secret in (key, key_hash(key), other, key_hash(other)):
        assert secret not in out and secret not in err
        assert secret[:16] not in out  # not even a prefix


def test_new_refuses_a_duplicate_id_and_prints_no_key(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    _new(cli, path, "k1")
    before = path.read_bytes()
    code, out, err = cli("keys", "new", "--file", str(path), "--id", "k1")
    assert code == 2 and out == ""
    body = json.loads(err)
    assert body["refused"] == "keys"
    assert [(p["code"], p["pointer"]) for p in body["problems"]] == [
        ("keys.duplicate_id", "/id")]
    assert path.read_bytes() == before


def test_new_refuses_bad_options_with_every_problem(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    code, out, err = cli("keys", "new", "--file", str(path), "--id", "bad id",
                         "--label", "ok", "--label", "no good", "--policy", "a b",
                         "--team", "x" * 65)
    assert code == 2 and out == ""
    found = [(p["code"], p["pointer"]) for p in json.loads(err)["problems"]]
    assert found == [("keys.invalid_id", "/id"), ("keys.invalid_label", "/labels/1"),
                     ("keys.invalid_policy", "/policies/0"), ("keys.invalid_team", "/team")]
    assert not path.exists()


def test_new_does_not_overwrite_a_bad_file(cli: Cli, tmp_path: Path) -> None:
    path = _write(tmp_path / "keys.json", '{"schema": 1, "keys": [}')
    code, out, err = cli("keys", "new", "--file", str(path), "--id", "k1")
    assert code == 2 and out == ""
    assert json.loads(err)["problems"][0]["code"] == "keys.invalid_json"
    assert path.read_text("utf-8") == '{"schema": 1, "keys": [}'


def test_list_and_revoke_of_a_missing_file_are_refused(cli: Cli, tmp_path: Path) -> None:
    missing = str(tmp_path / "none.json")
    for argv in (("keys", "list", "--file", missing),
                 ("keys", "revoke", "--file", missing, "--id", "k1")):
        code, out, err = cli(*argv)
        assert code == 2 and out == ""
        assert json.loads(err)["problems"][0]["code"] == "keys.not_found"


def test_new_into_a_missing_directory_is_refused(cli: Cli, tmp_path: Path) -> None:
    code, out, err = cli("keys", "new", "--file", str(tmp_path / "no" / "keys.json"),
                         "--id", "k1")
    assert code == 2 and out == ""
    assert json.loads(err)["problems"][0]["code"] == "keys.unwritable"


def test_a_written_file_reads_back_entry_for_entry(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    key = _new(cli, path, "support-1", "--team", "Support EU", "--policy", "b",
               "--policy", "a", "--policy", "a", "--label", "pii")
    (entry,) = read_keys_file(path)
    assert entry == KeyEntry(id="support-1", sha256=key_hash(key), team="Support EU",
                             policies=("a", "b"), labels=("pii",), created=entry.created)
    doc = json.loads(path.read_text("utf-8"))
    assert doc["schema"] == 1 and set(doc["keys"][0]) == {
        "id", "sha256", "team", "policies", "labels", "created"}

"""Signed checkpoints and their keys: what an auditor keeps, and every way it is refused."""

from __future__ import annotations

import base64
import os
import stat
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventlog.checkpoint import (
    Checkpoint,
    format_time,
    open_checkpoint,
    parse_checkpoint_text,
    parse_time,
    sign_checkpoint,
)
from eventlog.errors import AuditUnavailableError, CheckpointError, SigningKeyError
from eventlog.merkle import leaf_hash
from eventlog.signing import KeyFileSigner, Signer, Verifier, generate_key, key_id, write_key_files

ROOT = leaf_hash(b"a root")
CP = Checkpoint("example.org/jobs/job-42", 1024, ROOT, 1_765_086_060_123_456_789)


@pytest.fixture(scope="module")
def key() -> KeyFileSigner:
    return generate_key("audit.example.org")


def one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    text = str(exc.value)
    assert "\n" not in text and text
    return text


# -- interoperability: the C2SP signed-note key and signature forms ------------------------------------
def test_signed_note_test_vector_of_the_go_reference() -> None:
    """Key, key id and signature from the Go signed-note implementation's tests
    (``golang.org/x/mod/sumdb/note``, ``note_test.go``): Ed25519 is deterministic, so
    the same key over the same text must give the same signature line."""
    signer = KeyFileSigner.from_string("PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz")
    assert signer.verifier.to_string() == "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
    text = b"If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
    line = base64.b64encode(signer.key_id + signer.sign(text)).decode()
    assert line == ("x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6Ryy"
                    "BwJnAM=")


def test_a_checkpoint_reads_like_the_c2sp_layout(key: KeyFileSigner) -> None:
    note = sign_checkpoint(CP, key)
    lines = note.split("\n")
    assert lines[:4] == ["example.org/jobs/job-42", "1024", base64.b64encode(ROOT).decode(),
                         "time 2025-12-07T05:41:00.123456789Z"]
    assert lines[4] == "" and lines[5].startswith("\u2014 audit.example.org ") and lines[6] == ""
    assert open_checkpoint(note, key.verifier) == CP
    assert open_checkpoint(note.encode(), key.verifier.to_string()) == CP


def test_extension_lines_and_cosignatures(key: KeyFileSigner) -> None:
    witness = generate_key("witness.example")
    cp = Checkpoint("log", 7, ROOT, 0, ("chain 00ff", "note: nightly"))
    note = sign_checkpoint(cp, [key, witness])
    assert open_checkpoint(note, key.verifier) == cp
    assert open_checkpoint(note, witness.verifier) == cp


# -- refusals, each with a one-line reason -----------------------------------------------------------
def test_signed_by_another_key_of_the_same_name_is_refused(key: KeyFileSigner) -> None:
    impostor = generate_key(key.name)
    with pytest.raises(CheckpointError) as exc:
        open_checkpoint(sign_checkpoint(CP, impostor), key.verifier)
    assert one_line(exc).startswith("wrong key: the checkpoint is signed by another key named")


def test_unknown_key_name_is_refused(key: KeyFileSigner) -> None:
    with pytest.raises(CheckpointError) as exc:
        open_checkpoint(sign_checkpoint(CP, generate_key("someone.else")), key.verifier)
    assert one_line(exc).startswith("unknown key name:") and "'someone.else'" in one_line(exc)


@pytest.mark.parametrize("line, new", [(0, "example.org/jobs/job-43"), (1, "1025"),
                                       (2, base64.b64encode(leaf_hash(b"other")).decode()),
                                       (3, "time 2025-12-07T05:41:00.123456788Z")])
def test_a_tampered_body_is_refused(key: KeyFileSigner, line: int, new: str) -> None:
    lines = sign_checkpoint(CP, key).split("\n")
    lines[line] = new
    with pytest.raises(CheckpointError) as exc:
        open_checkpoint("\n".join(lines), key.verifier)
    assert one_line(exc).startswith("bad signature: the signature by 'audit.example.org' does not verify")


def test_an_added_line_is_refused(key: KeyFileSigner) -> None:
    note = sign_checkpoint(CP, key)
    with pytest.raises(CheckpointError, match="bad signature"):
        open_checkpoint(note.replace("\n\n", "\nextra\n\n", 1), key.verifier)


@pytest.mark.parametrize("mangle, reason", [
    (lambda n: n.replace("\n\n", "\n"), "no blank line"),
    (lambda n: n.rstrip("\n"), "does not end with a newline"),
    (lambda n: n.replace("\n", "\r\n"), "carriage returns"),
    (lambda n: n.replace("\u2014 ", "- "), "does not start with an em dash"),
    (lambda n: n[: n.rindex(" ") + 1] + "!!!\n", "not base64"),
    (lambda n: n[: n.index("\n\n") + 2], "no signature lines"),
    (lambda n: n + "x" * 70000, "larger than"),
    (lambda n: n.encode("utf-16"), "not UTF-8"),
])
def test_malformed_notes_are_refused(key: KeyFileSigner, mangle: object, reason: str) -> None:
    assert callable(mangle)
    with pytest.raises(CheckpointError) as exc:
        open_checkpoint(mangle(sign_checkpoint(CP, key)), key.verifier)
    assert one_line(exc).startswith("malformed checkpoint:") and reason in one_line(exc)


@pytest.mark.parametrize("body, reason", [
    ("log\n12\n", "needs an origin"),
    ("log\n012\n{root}\ntime 2025-01-01T00:00:00.000000000Z\n", "not a decimal number"),
    ("log\n12\nnot base64!\ntime 2025-01-01T00:00:00.000000000Z\n", "root line is not base64"),
    ("log\n12\nAAAA\ntime 2025-01-01T00:00:00.000000000Z\n", "the root is 3 bytes"),
    ("log\n12\n{root}\nwhen 2025\n", "not 'time <UTC time>'"),
    ("log\n12\n{root}\ntime 2025-02-30T00:00:00.000000000Z\n", "not a valid UTC time"),
    ("log\n12\n{root}\ntime 2025-01-01T00:00:00Z\n", "is not YYYY"),
    ("log\n12\n{root}\ntime 2025-01-01T00:00:00.000000000Z\n\n", "extension line"),
])
def test_a_signed_but_malformed_body_is_refused(key: KeyFileSigner, body: str, reason: str) -> None:
    """Even a good signature does not make a malformed checkpoint acceptable."""
    body = body.format(root=base64.b64encode(ROOT).decode())
    sig = base64.b64encode(key.key_id + key.sign(body.encode())).decode()
    with pytest.raises(CheckpointError) as exc:
        open_checkpoint(body + "\n\u2014 " + key.name + " " + sig + "\n", key.verifier)
    assert reason in one_line(exc)


def test_checkpoint_fields_are_checked_when_made() -> None:
    for bad in [dict(origin="two\nlines"), dict(origin=" padded"), dict(size=-1), dict(root=b"short"),
                dict(time_ns=-5), dict(extensions=("time 1",))]:
        fields = dict(origin="log", size=1, root=ROOT, time_ns=0, extensions=())
        fields.update(bad)
        with pytest.raises(ValueError):
            Checkpoint(**fields)  # type: ignore[arg-type]


@given(st.integers(0, 2**63 - 1))
def test_time_lines_round_trip_to_the_nanosecond(ts: int) -> None:
    assert parse_time(format_time(ts)) == ts


def test_parse_checkpoint_text_reads_back_a_body() -> None:
    assert parse_checkpoint_text(CP.body()) == CP


# -- keys --------------------------------------------------------------------------------------------
def test_key_files_private_0600_public_shareable(tmp_path: Path) -> None:
    signer = generate_key("ops")
    priv, pub = str(tmp_path / "ops.key"), str(tmp_path / "ops.pub")
    write_key_files(signer, priv, pub)
    assert stat.S_IMODE(os.stat(priv).st_mode) == 0o600
    assert KeyFileSigner.from_file(priv).key_id == signer.key_id
    verifier = Verifier.from_file(pub)
    assert verifier.to_string() == signer.verifier.to_string()
    assert verifier.key_id == key_id("ops", verifier.public_key)
    with pytest.raises(SigningKeyError, match="refusing to overwrite"):
        write_key_files(generate_key("ops"), priv, str(tmp_path / "other.pub"))
    assert not (tmp_path / "other.pub").exists()
    os.chmod(priv, 0o644)
    with pytest.raises(SigningKeyError, match="chmod 600"):
        KeyFileSigner.from_file(priv)
    with pytest.raises(SigningKeyError, match="PRIVATE key"):
        Verifier.from_string(signer.to_string())
    with pytest.raises(SigningKeyError, match="public key given"):
        KeyFileSigner.from_string(signer.verifier.to_string())


def test_a_failed_key_write_leaves_nothing(tmp_path: Path) -> None:
    (tmp_path / "ro").mkdir()
    with pytest.raises(SigningKeyError):
        write_key_files(generate_key("ops"), str(tmp_path / "ops.key"), str(tmp_path / "missing" / "ops.pub"))
    assert not (tmp_path / "ops.key").exists()


@pytest.mark.parametrize("text, reason", [
    ("ops+0000000+AQ==", "8 hex digits"),
    ("ops+zzzzzzzz+AQ==", "not 8 hex digits"),
    ("ops+00000000+not-base64", "not valid base64"),
    ("ops+00000000+" + base64.b64encode(b"\x02" + bytes(32)).decode(), "not an Ed25519 key"),
    ("ops+00000000+" + base64.b64encode(b"\x01" + bytes(32)).decode(), "does not match"),
    ("o ps+00000000+" + base64.b64encode(b"\x01" + bytes(32)).decode(), "may not contain"),
])
def test_malformed_verifier_keys_are_refused(text: str, reason: str) -> None:
    with pytest.raises(SigningKeyError, match=reason):
        Verifier.from_string(text)


def test_any_signer_can_stand_in_for_a_key_file() -> None:
    """An HSM or KMS implements three members; nothing else is asked of it."""
    inner = generate_key("hsm-key")

    class RemoteSigner:
        name = "hsm-key"
        key_id = inner.key_id
        calls = 0

        def sign(self, message: bytes) -> bytes:
            RemoteSigner.calls += 1
            return inner.sign(message)

    remote = RemoteSigner()
    assert isinstance(remote, Signer)
    note = sign_checkpoint(CP, remote)
    assert RemoteSigner.calls == 1
    assert open_checkpoint(note, inner.verifier) == CP


def test_without_cryptography_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch,
                                                            key: KeyFileSigner) -> None:
    note = sign_checkpoint(CP, key)
    monkeypatch.setitem(sys.modules, "cryptography.hazmat.primitives.asymmetric.ed25519", None)
    monkeypatch.setitem(sys.modules, "cryptography.hazmat.primitives.asymmetric", None)
    with pytest.raises(AuditUnavailableError, match=r"pip install 'routilux-es\[audit\]'"):
        open_checkpoint(note, key.verifier)

"""Personal values: sealed into a vault apart from the log, revealed on request, never silently lost."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import eventlog
from eventlog import Erased, EventEncodingError, Personal, Unavailable
from eventlog.encoding import decode_event, encode, encode_event, encode_state
from eventlog.personal import PersonalValueSealedError, SealedValue, commitment_of
from eventlog.vault import FileVault

FIXTURE_OK = settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
                      max_examples=20)
values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20) | st.binary(max_size=20),
                      lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=5), c, max_size=4),
                      max_leaves=10)


# -- the codec ----------------------------------------------------------------------------------
@given(values)
def test_an_event_stores_a_salted_commitment_never_the_value(value: Any) -> None:
    """The bytes hold a 32-byte commitment of the value with a fresh salt; the secrets go to the list."""
    sealed: list[SealedValue] = []
    event = encode_event("k", {"who": Personal(value), "n": 1}, sealed=sealed)
    assert len(sealed) == 1 and sealed[0].matches()
    assert sealed[0].value == encode(value) and sealed[0].commitment == commitment_of(sealed[0].salt, encode(value))
    if len(encode(value)) >= 4:
        assert encode(value) not in event
    kind, data = decode_event(event)
    assert data["who"] == Personal.sealed(sealed[0].commitment) and data["n"] == 1
    assert encode_event(kind, data) == event  # a sealed value is stored again as its commitment
    again: list[SealedValue] = []
    assert encode_event("k", {"who": Personal(value), "n": 1}, sealed=again) != event  # a fresh salt each time
    assert again[0].commitment != sealed[0].commitment


def test_an_unsealed_personal_value_outside_an_append_is_refused_with_its_path() -> None:
    """Where no vault takes it (no sealed list, a snapshot, a nested Personal), the error names the path."""
    with pytest.raises(EventEncodingError, match=r"data\['a'\]\[1\]: a personal value can only be stored"):
        encode_event("k", {"a": [0, Personal("x")]})
    with pytest.raises(EventEncodingError, match=r"state\['p'\]: a personal value"):
        encode_state({"p": Personal("x")})
    with pytest.raises(EventEncodingError, match="personal value"):
        encode_event("k", {"a": Personal({"inner": Personal(1)})}, sealed=[])
    with pytest.raises(TypeError):
        Personal(Personal(1))
    # Lenient encoding (an in-memory job) never turns a personal value into a placeholder either.
    with pytest.raises(EventEncodingError, match="personal value"):
        encode_event("k", {"a": Personal("x")}, lenient=True)


def test_a_personal_value_never_prints_its_value() -> None:
    """repr/str hide it; a sealed one says how to reveal it; it cannot be pickled."""
    import pickle

    live = Personal("ada@example.org")
    assert "ada" not in repr(live) and "ada" not in str(live) and "ada" not in repr({"k": live})
    sealed = Personal.sealed(b"\x01" * 32)
    with pytest.raises(PersonalValueSealedError, match="reveal"):
        _ = sealed.value
    with pytest.raises(TypeError):
        pickle.dumps(live)


# -- the backends --------------------------------------------------------------------------------------
def test_every_backend_keeps_and_reveals_personal_values(make_log: Any) -> None:
    """Appended singly, in a batch or pre-encoded: read back sealed, revealed from the vault."""
    log = make_log()
    rec = log.append("k", {"email": Personal("ada@example.org"), "tier": "gold"})
    recs = log.append_batch([("k", {"x": Personal([1, 2])}), ("k", {"y": {"z": Personal(None)}})])
    sealed: list[SealedValue] = []
    seq, _ts = log.append_encoded(encode_event("k", {"w": Personal(b"\x00raw")}, sealed=sealed), personal=sealed)
    assert rec.data["email"].is_sealed
    got = log.reveal([r.data for r in log.read()])
    assert got == [{"email": "ada@example.org", "tier": "gold"}, {"x": [1, 2]}, {"y": {"z": None}}, {"w": b"\x00raw"}]
    assert log.reveal(recs[0].data) == {"x": [1, 2]}
    assert log.reveal({"not": "personal"}) == {"not": "personal"}
    assert seq == 4 and log.has_personal_values()
    # A commitment this log never stored is unavailable, not an error.
    assert log.reveal(Personal.sealed(b"\x07" * 32)) == Unavailable(b"\x07" * 32)


def test_a_copy_without_the_vault_keeps_values_sealed(tmp_path: Path) -> None:
    """A saved file (bundle) carries commitments only: its values stay sealed, and that is no damage."""
    log = eventlog.open_log(tmp_path / "log")
    log.append("k", {"email": Personal("ada@example.org")})
    eventlog.write_bundle(str(tmp_path / "job.bundle"), log)
    log.close()
    assert b"ada@example.org" not in (tmp_path / "job.bundle").read_bytes()
    copy, _snap = eventlog.read_bundle(str(tmp_path / "job.bundle"))
    assert not copy.holds_personal_values
    value = copy.reveal(copy.get(1).data)["email"]
    assert isinstance(value, Personal) and value.is_sealed  # nothing to reveal from: it stays sealed


def test_a_reader_sees_values_the_writer_stored_after_it_opened(tmp_path: Path) -> None:
    """A read-only handle looks in the vault again for a commitment it did not know."""
    writer = eventlog.open_log(tmp_path / "log")
    writer.append("k", {"a": Personal(1)})
    reader = eventlog.open_log(tmp_path / "log", readonly=True)
    assert reader.reveal(reader.get(1).data) == {"a": 1}
    writer.append("k", {"b": Personal(2)})
    assert reader.reveal(reader.get(2).data) == {"b": 2}
    reader.close()
    writer.close()


def test_a_failed_append_takes_its_values_back(tmp_path: Path) -> None:
    """An append refused after its values were stored (a stale expected seq) leaves no value behind."""
    log = eventlog.open_log(tmp_path / "log")
    log.append("k", {"a": 1})
    vault = tmp_path / "log" / "personal"
    with pytest.raises(eventlog.ConcurrencyError):
        log.append("k", {"secret": Personal("s3cr3t-value")}, expected_seq=0)
    assert not log.has_personal_values()
    log.close()
    assert all(b"s3cr3t-value" not in p.read_bytes() for p in vault.glob("*")) if vault.exists() else True


# -- the vault files ---------------------------------------------------------------------------------
def _fill(path: Path, n: int) -> list[Any]:
    log = eventlog.open_log(path)
    recs = [log.append("k", {"i": i, "p": Personal(f"value-{i}")}) for i in range(n)]
    log.close()
    return recs


def test_a_torn_vault_tail_is_cut_and_damage_is_reported(tmp_path: Path) -> None:
    """A crash mid-write leaves a torn last entry: cut at open. A damaged entry is reported by verify."""
    recs = _fill(tmp_path / "log", 5)
    vault_file = next((tmp_path / "log" / "personal").glob("vault-*.pv"))
    with open(vault_file, "ab") as f:
        f.write(b"\x50\x00\x00\x00\x01\x02")  # the start of an entry that never finished
    log = eventlog.open_log(tmp_path / "log")
    assert log.reveal(recs[4].data)["p"] == "value-4"
    log.close()
    assert eventlog.verify(tmp_path / "log").ok
    data = bytearray(vault_file.read_bytes())
    spot = data.index(b"value-2")
    data[spot] ^= 0xFF  # a flipped bit inside the third entry
    vault_file.write_bytes(bytes(data))
    report = eventlog.verify(tmp_path / "log")
    assert not report.ok and any(p.kind == "personal" for p in report.problems)
    log = eventlog.open_log(tmp_path / "log")
    assert log.reveal(recs[0].data)["p"] == "value-0"
    assert isinstance(log.reveal(recs[3].data)["p"], Unavailable)  # after the damage: never guessed
    log.append("k", {"later": Personal("after-damage")})  # a new file: nothing written after damage
    assert log.reveal(log.get(6).data) == {"later": "after-damage"}
    log.close()
    assert len(list((tmp_path / "log" / "personal").glob("vault-*.pv"))) == 2


def test_a_vault_entry_that_does_not_match_its_commitment_is_never_shown(tmp_path: Path) -> None:
    """Someone swaps a value in the vault (framing and CRC redone): reveal refuses it, verify reports it."""
    import struct
    import zlib

    recs = _fill(tmp_path / "log", 2)
    vault_file = next((tmp_path / "log" / "personal").glob("vault-*.pv"))
    data = vault_file.read_bytes()
    old = encode("value-1")
    new = encode("VALUE-X")
    body_at = data.index(old) - 32 - 32 - 1  # tag, commitment, salt before the value
    length = struct.unpack_from("<I", data, body_at - 8)[0]
    body = data[body_at : body_at + length].replace(old, new)
    forged = data[: body_at - 8] + struct.pack("<II", len(body), zlib.crc32(body)) + body + data[body_at + length :]
    vault_file.write_bytes(forged)
    log = eventlog.open_log(tmp_path / "log", readonly=True)
    shown = log.reveal(recs[1].data)["p"]
    assert isinstance(shown, Unavailable) and "does not match" in shown.why
    log.close()
    report = eventlog.verify(tmp_path / "log")
    assert any(p.kind == "personal" and "does not hash" in p.message for p in report.problems)


def test_an_orphan_value_is_reported(tmp_path: Path) -> None:
    """A value whose event never made it into the log (a crash between the two) is found by verify."""
    from eventlog.personal import seal

    _fill(tmp_path / "log", 1)
    vault = FileVault(str(tmp_path / "log" / "personal"))
    vault.put([seal(encode("orphaned"))])
    vault.close()
    report = eventlog.verify(tmp_path / "log")
    assert any("no event refers to" in p.message for p in report.problems)


def test_erased_values_read_as_erased(make_log: Any) -> None:
    """After an erasure the value reads as Erased (seq, reason, key), on every backend."""
    from eventlog.erasure import erase, find_personal
    from eventlog.signing import generate_key

    key = generate_key("dpo.example")
    log = make_log()
    log.append("k", {"email": Personal("ada@example.org"), "keep": Personal("stays")})
    refs = find_personal(log, seq=1, path="data['email']")
    record = erase(log, refs, "request 7", key)
    shown = log.reveal(log.get(1).data)
    assert shown["keep"] == "stays"
    assert shown["email"] == Erased(refs[0].commitment, record.seq, "request 7", "dpo.example")

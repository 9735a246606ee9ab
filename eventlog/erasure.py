"""Erasing personal values while every proof stays valid (issue 14, ``eventlog/MERKLE.md`` "Erasure").

An event holds only commitments of its personal values (:mod:`eventlog.personal`); the
values and their salts sit in the log's vault. :func:`erase` deletes them from the vault
and appends a signed *erasure event* (kind :data:`ERASURE_KIND`) saying which values,
where they were, why and who erased them, so the erasure is itself in the log, under its
hash chain and in every later checkpoint. No stored event, chain link or tree node
changes: every inclusion and consistency proof made before still verifies. Readers then
see :class:`~eventlog.personal.Erased` for those values.

The erasure event's data::

    {"commitments": [<32 bytes>, ...],          the values erased
     "refs": [[seq, "data['customer']['email']"], ...],   where they were (informative)
     "reason": "GDPR art. 17 request #4411",
     "key": "<verifier key text, or name+key id>",
     "signature": <64 bytes>}                   Ed25519 over encode_event(kind, data without it)

:func:`erasures` lists the erasure events of a log and checks their signatures;
:func:`find_personal` locates personal values to erase (by seq, by path).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import attrs

from .base import EventLog
from .encoding import decode_event, encode_event, event_kind
from .errors import EventLogError, SigningKeyError
from .personal import COMMITMENT_SIZE, EXT_PERSONAL, Personal
from .signing import Signer, Verifier

__all__ = [
    "ERASURE_KIND",
    "ErasureRecord",
    "PersonalRef",
    "commitment_marker",
    "erase",
    "erasure_record",
    "erasures",
    "find_personal",
    "personal_refs",
]

#: The kind of an erasure event. A reader of job state treats it as a no-op for the state.
ERASURE_KIND = "eventlog.erasure"


def commitment_marker() -> bytes:
    """The bytes every stored commitment starts with (msgpack ext 8, 32 bytes, type 15): a cheap pre-filter."""
    return bytes((0xC7, COMMITMENT_SIZE, EXT_PERSONAL))


_MARKER = commitment_marker()


@attrs.frozen
class PersonalRef:
    """One personal value in a log: the event, where in its data, and its commitment."""

    seq: int
    path: str
    commitment: bytes

    def __str__(self) -> str:
        return f"seq {self.seq} {self.path}"


def _walk(value: Any, path: str) -> Iterator[tuple[str, Personal]]:
    if isinstance(value, Personal):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _walk(v, f"{path}[{k!r}]")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from _walk(v, f"{path}[{i}]")
    elif isinstance(value, (set, frozenset)):
        for v in value:
            yield from _walk(v, f"{path}<item>")


def personal_refs(seq: int, event_bytes: bytes) -> list[PersonalRef]:
    """The sealed personal values of one stored event, with their paths (``data['email']``)."""
    if _MARKER not in event_bytes:
        return []
    _kind, data = decode_event(event_bytes, seq=seq)
    return [PersonalRef(seq, path, p.commitment) for path, p in _walk(data, "data") if p.commitment is not None]


def find_personal(log: EventLog, *, seq: int | None = None, path: str | None = None) -> list[PersonalRef]:
    """The personal values of ``log`` (of event ``seq``, at ``path``, when given), in log order.

    ``path`` is written as ``data['customer']['email']``; a prefix selects everything
    under it. Erasure events are not searched (they hold commitments as plain bytes).
    """
    start, stop = (seq, seq) if seq is not None else (1, None)
    out = []
    for s, _ts, event_bytes in log.read_raw(start, stop):
        for ref in personal_refs(s, event_bytes):
            if path is None or ref.path == path or ref.path.startswith(path + "[") or ref.path.startswith(path + "<"):
                out.append(ref)
    return out


@attrs.frozen
class ErasureRecord:
    """One erasure event, read back (see the module docstring).

    Attributes:
        seq, ts: the erasure event's.
        commitments: the values it erased.
        refs: where they were, ``(seq, path)`` as the eraser recorded it.
        reason: why.
        key: the signing key, as recorded (``name+id+key`` or ``name+id``).
        signature_ok: True/False when the signature could be checked, None when not
            (no public key recorded nor given, or no ``cryptography`` package).
    """

    seq: int
    ts: int
    commitments: tuple[bytes, ...]
    refs: tuple[tuple[int, str], ...]
    reason: str
    key: str
    signature_ok: bool | None

    @property
    def key_name(self) -> str:
        """The signing key's name."""
        return self.key.split("+", 1)[0]

    def describe(self) -> str:
        """One line for people: what was erased, when, why, by whom."""
        where = ", ".join(f"{path} of seq {seq}" for seq, path in self.refs) or \
            f"{len(self.commitments)} value(s)"
        sig = {True: "signature ok", False: "BAD SIGNATURE", None: "signature not checked"}[self.signature_ok]
        return f"seq {self.seq} erased {where}: {self.reason!r}, signed by {self.key_name} ({sig})"


def _unsigned(data: dict[str, Any]) -> bytes:
    return encode_event(ERASURE_KIND, {k: v for k, v in data.items() if k != "signature"})


def erasure_record(seq: int, ts: int, data: dict[str, Any], verifier: Verifier | None = None) -> ErasureRecord:
    """Read an erasure event's data and check its signature.

    With ``verifier`` (the key an auditor trusts) the signature must be that key's; else
    the public key recorded in the event is used, if there is one.

    Raises:
        ValueError: the data is not an erasure event's.
    """
    commitments = data.get("commitments")
    refs = data.get("refs", [])
    if (type(commitments) is not list or not all(type(c) is bytes and len(c) == COMMITMENT_SIZE for c in commitments)
            or type(refs) is not list or type(data.get("reason")) is not str or type(data.get("key")) is not str
            or type(data.get("signature")) is not bytes):
        msg = f"the erasure event at seq {seq} is malformed"
        raise ValueError(msg)
    key = data["key"]
    ok: bool | None = None
    try:
        check = verifier
        if check is None and key.count("+") >= 2:
            check = Verifier.from_string(key)
        if check is not None:
            ok = (key.split("+", 2)[:2] == [check.name, check.key_id.hex()]
                  and check.verify(_unsigned(data), data["signature"]))
    except (SigningKeyError, EventLogError, ImportError):
        ok = None if verifier is None else False
    pairs = tuple((int(r[0]), str(r[1])) for r in refs if isinstance(r, (list, tuple)) and len(r) == 2)
    return ErasureRecord(seq, ts, tuple(commitments), pairs, data["reason"], key, ok)


def erasures(log: EventLog, verifier: Verifier | None = None) -> list[ErasureRecord]:
    """Every erasure event of ``log``, in order, with its signature checked (O(n) read, decoded only when one)."""
    out = []
    for seq, ts, event_bytes in log.read_raw():
        if event_kind(event_bytes) == ERASURE_KIND:
            _kind, data = decode_event(event_bytes, seq=seq)
            out.append(erasure_record(seq, ts, data, verifier))
    return out


def erase(log: EventLog, selection: Iterable[PersonalRef | bytes], reason: str, signer: Signer, *,
          expected_seq: int | None = None) -> ErasureRecord:
    """Erase personal values: delete them (and their salts) from the vault, append a signed erasure event.

    Args:
        selection: the values, as :class:`PersonalRef` (from :func:`find_personal`) or
            commitments. Values already erased are left out; at least one must remain.
        reason: why (kept in the log): a request number, a legal basis.
        signer: the key that signs the erasure (whoever holds it answers for it).
        expected_seq: the head the caller believes the log has (a JobState passes its version).

    Raises:
        ValueError: nothing to erase (no value selected, or all already erased), or no reason.
        EventLogError: the log keeps no vault.
        ConcurrencyError: ``expected_seq`` is not the head; nothing was erased.
    """
    if type(reason) is not str or not reason.strip():
        msg = "an erasure needs a reason (it is kept in the log)"
        raise ValueError(msg)
    picked: dict[bytes, list[tuple[int, str]]] = {}
    for item in selection:
        if isinstance(item, PersonalRef):
            picked.setdefault(item.commitment, []).append((item.seq, item.path))
        elif type(item) is bytes and len(item) == COMMITMENT_SIZE:
            picked.setdefault(item, [])
        else:
            msg = f"not a personal value to erase: {item!r}"
            raise ValueError(msg)
    live = [c for c in picked if (entry := log.personal_entry(c)) is not None and entry.sealed is not None]
    if not live:
        msg = ("nothing to erase: no personal value selected" if not picked
               else "nothing to erase: the selected personal values are already erased or not in this log's vault")
        raise ValueError(msg)
    verifier = getattr(signer, "verifier", None)
    key = verifier.to_string() if isinstance(verifier, Verifier) else f"{signer.name}+{signer.key_id.hex()}"
    data: dict[str, Any] = {"commitments": live,
                            "refs": [[seq, path] for c in live for seq, path in picked[c]],
                            "reason": reason, "key": key}
    data["signature"] = signer.sign(_unsigned(data))
    event_bytes = encode_event(ERASURE_KIND, data)
    seq, ts = log.erase_personal(event_bytes, live, expected_seq=expected_seq)
    return erasure_record(seq, ts, data, verifier if isinstance(verifier, Verifier) else None)


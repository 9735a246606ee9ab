"""Personal values: stored apart from the log, so they can be erased without breaking a proof.

A caller marks a value personal by wrapping it: ``{"email": Personal("ada@example.org")}``.
The log never stores the value itself. Its event holds a *commitment* instead, a
32-byte msgpack extension value (type :data:`EXT_PERSONAL`)::

    commitment = SHA-256(0x02 || salt || canonical msgpack of the value)

with a fresh random 32-byte ``salt`` per value. The value and its salt go to the log's
*vault*, beside the log (:mod:`eventlog.vault`). The hash chain, the Merkle leaf and
every proof cover the commitment, so deleting the value and its salt later (erasure,
:mod:`eventlog.erasure`) changes no byte of the log: every proof made before still
verifies. Without the salt a commitment to a small value (a birth year) cannot be
brute-forced: destroying the salts is crypto-shredding. ``0x02`` keeps a commitment
apart from the tree's leaf (``0x00``) and node (``0x01``) hashes.

Reading an event gives back a *sealed* :class:`Personal`: its commitment, not its value
(so no state, snapshot, export or saved copy built from events ever holds the value).
``log.reveal(value)`` swaps every sealed value for the one in the vault, checked
against its commitment, or for an :class:`Erased` / :class:`Unavailable` marker.
Printing a :class:`Personal` never shows its value.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import attrs

__all__ = [
    "COMMITMENT_SIZE",
    "EXT_PERSONAL",
    "SALT_SIZE",
    "Erased",
    "Personal",
    "PersonalValueSealedError",
    "SealedValue",
    "Unavailable",
    "commitment_of",
    "seal",
]

#: The msgpack extension type of a commitment in stored events (see :mod:`eventlog.encoding`).
EXT_PERSONAL = 15
#: Bytes of a commitment (SHA-256) and of a salt.
COMMITMENT_SIZE = 32
SALT_SIZE = 32
_DOMAIN = b"\x02"


def commitment_of(salt: bytes, value_bytes: bytes) -> bytes:
    """``SHA-256(0x02 || salt || value_bytes)``: what an event stores for a personal value."""
    return hashlib.sha256(_DOMAIN + salt + value_bytes).digest()


@attrs.frozen(repr=False)
class SealedValue:
    """A personal value as the vault keeps it: its commitment, salt and canonical bytes.

    ``value`` is the msgpack of the value (:func:`eventlog.encoding.encode`). Made by
    :func:`seal` when an event is encoded; the log stores it with the event.
    """

    commitment: bytes
    salt: bytes
    value: bytes

    def matches(self) -> bool:
        """True if the salt and value hash to the commitment."""
        return len(self.salt) == SALT_SIZE and commitment_of(self.salt, self.value) == self.commitment

    def __repr__(self) -> str:
        return f"SealedValue(<{self.commitment[:4].hex()}>)"


def seal(value_bytes: bytes) -> SealedValue:
    """Commit to an encoded value with a fresh random salt (``os.urandom``)."""
    salt = os.urandom(SALT_SIZE)
    return SealedValue(commitment_of(salt, value_bytes), salt, value_bytes)


class PersonalValueSealedError(LookupError):
    """The value of a sealed :class:`Personal` is not in the object: reveal it through its log."""


class Personal:
    """A value marked personal (see the module docstring).

    ``Personal(value)`` is what a caller stores; reading it back from a log gives a
    *sealed* one, which knows only its commitment. Two sealed values are equal when
    their commitments are; two unsealed ones when their values are. ``repr`` and ``str``
    never show the value.
    """

    __slots__ = ("_commitment", "_value")

    def __init__(self, value: Any) -> None:
        """Mark ``value`` personal (it must itself be storable, and not contain a Personal)."""
        if isinstance(value, Personal):
            msg = "a Personal value cannot hold another Personal value"
            raise TypeError(msg)
        self._value = value
        self._commitment: bytes | None = None

    @classmethod
    def sealed(cls, commitment: bytes) -> Personal:
        """The stand-in a stored event holds: the commitment of a value kept in a vault."""
        if type(commitment) is not bytes or len(commitment) != COMMITMENT_SIZE:
            msg = f"a commitment is {COMMITMENT_SIZE} bytes"
            raise ValueError(msg)
        obj = cls.__new__(cls)
        obj._value = None
        obj._commitment = commitment
        return obj

    @property
    def is_sealed(self) -> bool:
        """True for a value read back from a log (only its commitment is known)."""
        return self._commitment is not None

    @property
    def commitment(self) -> bytes | None:
        """The 32-byte commitment of a sealed value (``None`` before it was stored)."""
        return self._commitment

    @property
    def value(self) -> Any:
        """The value (unsealed only).

        Raises:
            PersonalValueSealedError: a sealed value: use ``log.reveal(...)`` (or
                ``job_state.reveal(...)``) to read it from the vault.
        """
        if self._commitment is not None:
            msg = (f"this personal value is sealed (commitment {self._commitment[:4].hex()}...): read it with "
                   "log.reveal(value) or job_state.reveal(value)")
            raise PersonalValueSealedError(msg)
        return self._value

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Personal):
            return NotImplemented
        if self._commitment is not None or other._commitment is not None:
            return self._commitment == other._commitment
        return bool(self._value == other._value)

    def __hash__(self) -> int:
        if self._commitment is not None:
            return hash(self._commitment)
        return hash(("Personal", self._value))

    def __repr__(self) -> str:
        if self._commitment is not None:
            return f"Personal(<sealed {self._commitment[:4].hex()}>)"
        return "Personal(<value hidden>)"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        msg = "a Personal value is not pickled (that would copy it outside its vault)"
        raise TypeError(msg)


@attrs.frozen
class Erased:
    """What :meth:`EventLog.reveal` shows for an erased personal value.

    Attributes:
        commitment: the value's commitment (still in the log).
        seq: the erasure event's seq.
        reason: why it was erased (from the erasure event).
        key: the name of the key that signed the erasure.
    """

    commitment: bytes
    seq: int
    reason: str = ""
    key: str = ""

    def to_json(self) -> dict[str, Any]:
        """``{"$erased": {"seq", "reason", "key", "commitment"}}``: how exports and replay show it."""
        return {"$erased": {"seq": self.seq, "reason": self.reason, "key": self.key,
                            "commitment": self.commitment.hex()}}

    serialize = to_json  # the hook JSON writers (the CLI's) call on objects they do not know

    def __str__(self) -> str:
        return f"<erased at seq {self.seq}: {self.reason}>"


@attrs.frozen
class Unavailable:
    """What :meth:`EventLog.reveal` shows for a personal value this copy of the log does not hold.

    A saved file or an export carries commitments only; a vault entry whose bytes do not
    hash to their commitment is never shown either.

    Attributes:
        commitment: the value's commitment.
        why: what is missing.
    """

    commitment: bytes
    why: str = "no value in this log's vault"

    def to_json(self) -> dict[str, Any]:
        """``{"$personal": {"commitment", "unavailable"}}``."""
        return {"$personal": {"commitment": self.commitment.hex(), "unavailable": self.why}}

    serialize = to_json

    def __str__(self) -> str:
        return f"<personal value {self.commitment[:4].hex()}: {self.why}>"

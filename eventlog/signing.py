"""Ed25519 keys for signing checkpoints: generation, key files, signers and verifiers.

Key names, key ids and the text forms of keys follow the C2SP signed-note
specification, so a checkpoint signed here can be checked by other signed-note tools:

* key id: the first 4 bytes of ``SHA-256(name || "\\n" || 0x01 || public key)``
  (``0x01`` says "Ed25519");
* verifier key (public, shareable): ``<name>+<key id, 8 hex digits>+<base64(0x01 || public key)>``;
* private key: ``PRIVATE+KEY+<name>+<key id>+<base64(0x01 || 32-byte seed)>``.

Anything that signs bytes can stand in for a key file: implement :class:`Signer`
(``name``, ``key_id``, ``sign``) around an HSM or a KMS and pass it where a signer is
expected. The signature itself is computed by the ``cryptography`` package (the optional
``audit`` extra); this module never implements cryptography itself.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import stat
from typing import Any, Protocol, runtime_checkable

from . import _fs
from .errors import AuditUnavailableError, SigningKeyError

__all__ = [
    "ED25519",
    "KeyFileSigner",
    "Signer",
    "Verifier",
    "check_key_name",
    "generate_key",
    "key_id",
    "write_key_files",
]

#: The signed-note signature type byte of Ed25519.
ED25519 = 0x01
_PRIVATE_PREFIX = "PRIVATE+KEY+"
#: Longest key file this module reads (a key is one short line).
_MAX_KEY_FILE = 4096


def _ed25519() -> Any:
    """The ``cryptography`` Ed25519 module, or a clear error when the extra is missing."""
    try:
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:
        raise AuditUnavailableError() from None
    return ed25519


def check_key_name(name: str) -> None:
    """Refuse a key name signed notes cannot carry: empty, or with whitespace or ``+``.

    Raises:
        SigningKeyError: naming what is wrong.
    """
    if type(name) is not str or not name:
        msg = "a key name must be a non-empty string"
        raise SigningKeyError(msg)
    if "+" in name or any(c.isspace() or not c.isprintable() for c in name):
        msg = f"key name {name!r} may not contain '+', spaces or control characters"
        raise SigningKeyError(msg)


def key_id(name: str, public_key: bytes) -> bytes:
    """Return the 4-byte signed-note key id of an Ed25519 public key called ``name``."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([ED25519]) + public_key).digest()[:4]


def _b64decode(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        msg = f"{what} is not valid base64"
        raise SigningKeyError(msg) from None


@runtime_checkable
class Signer(Protocol):
    """Something that signs checkpoints: a key file, an HSM, a KMS.

    ``sign`` must return a 64-byte Ed25519 signature of ``message`` made with the key
    whose verifier has this ``name`` and ``key_id``.
    """

    @property
    def name(self) -> str:
        """The key's name (what a signature line names)."""
        ...

    @property
    def key_id(self) -> bytes:
        """The key's 4-byte id (:func:`key_id` of its name and public key)."""
        ...

    def sign(self, message: bytes) -> bytes:
        """Return the Ed25519 signature of ``message``."""
        ...


class Verifier:
    """An Ed25519 public key with its name: checks signatures, never makes them."""

    def __init__(self, name: str, public_key: bytes) -> None:
        """Build a verifier; ``public_key`` is the raw 32-byte Ed25519 key."""
        check_key_name(name)
        if len(public_key) != 32:
            msg = f"an Ed25519 public key is 32 bytes, got {len(public_key)}"
            raise SigningKeyError(msg)
        self.name = name
        self.public_key = bytes(public_key)
        self.key_id = key_id(name, self.public_key)

    @classmethod
    def from_string(cls, text: str) -> Verifier:
        """Parse a verifier key ``<name>+<hex id>+<base64 key>`` (see the module docstring).

        Raises:
            SigningKeyError: malformed, not Ed25519, or its id does not match its key.
        """
        text = text.strip()
        if text.startswith(_PRIVATE_PREFIX):
            msg = "this is a PRIVATE key; give the public verifier key (the .pub file) instead"
            raise SigningKeyError(msg)
        parts = text.split("+", 2)  # base64 may itself contain "+"
        if len(parts) != 3 or len(parts[1]) != 8:
            msg = "a verifier key has the form <name>+<8 hex digits>+<base64 key>"
            raise SigningKeyError(msg)
        name, hex_id, b64 = parts
        try:
            claimed = bytes.fromhex(hex_id)
        except ValueError:
            msg = f"the key id {hex_id!r} is not 8 hex digits"
            raise SigningKeyError(msg) from None
        raw = _b64decode(b64, "the verifier key")
        if len(raw) != 33 or raw[0] != ED25519:
            msg = "the verifier key is not an Ed25519 key (type 0x01, 32 bytes)"
            raise SigningKeyError(msg)
        verifier = cls(name, raw[1:])
        if verifier.key_id != claimed:
            msg = f"the verifier key's id {hex_id} does not match its name and key (damaged?)"
            raise SigningKeyError(msg)
        return verifier

    @classmethod
    def from_file(cls, path: str) -> Verifier:
        """Read a verifier key from a file (one line)."""
        return cls.from_string(_read_key_text(path, "verifier key file"))

    def to_string(self) -> str:
        """The verifier key as text: ``<name>+<hex id>+<base64(0x01 || key)>``."""
        b64 = base64.b64encode(bytes([ED25519]) + self.public_key).decode()
        return f"{self.name}+{self.key_id.hex()}+{b64}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        """True when ``signature`` is this key's Ed25519 signature of ``message``."""
        ed25519 = _ed25519()
        from cryptography.exceptions import InvalidSignature

        try:
            ed25519.Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except InvalidSignature:
            return False
        return True

    def __repr__(self) -> str:
        return f"Verifier({self.to_string()!r})"


class KeyFileSigner:
    """A :class:`Signer` whose private key is held in memory, read from a key file."""

    def __init__(self, name: str, seed: bytes) -> None:
        """Build a signer from a key name and a 32-byte Ed25519 private seed."""
        check_key_name(name)
        if len(seed) != 32:
            msg = f"an Ed25519 private key is 32 bytes, got {len(seed)}"
            raise SigningKeyError(msg)
        self._key = _ed25519().Ed25519PrivateKey.from_private_bytes(seed)
        self._name = name
        self._verifier = Verifier(name, _public_bytes(self._key))

    @classmethod
    def from_string(cls, text: str) -> KeyFileSigner:
        """Parse ``PRIVATE+KEY+<name>+<hex id>+<base64(0x01 || seed)>``.

        Raises:
            SigningKeyError: malformed, not Ed25519, or the id does not match the key.
        """
        text = text.strip()
        if not text.startswith(_PRIVATE_PREFIX):
            msg = "a private key starts with PRIVATE+KEY+ (was a public key given?)"
            raise SigningKeyError(msg)
        parts = text[len(_PRIVATE_PREFIX) :].split("+", 2)
        if len(parts) != 3 or len(parts[1]) != 8:
            msg = "a private key has the form PRIVATE+KEY+<name>+<8 hex digits>+<base64 key>"
            raise SigningKeyError(msg)
        name, hex_id, b64 = parts
        raw = _b64decode(b64, "the private key")
        if len(raw) != 33 or raw[0] != ED25519:
            msg = "the private key is not an Ed25519 key (type 0x01, 32 bytes)"
            raise SigningKeyError(msg)
        signer = cls(name, raw[1:])
        if signer.key_id.hex() != hex_id.lower():
            msg = f"the private key's id {hex_id} does not match its name and key (damaged?)"
            raise SigningKeyError(msg)
        return signer

    @classmethod
    def from_file(cls, path: str) -> KeyFileSigner:
        """Read a private key file; refuse one that others can read (like ssh does).

        Raises:
            SigningKeyError: unreadable, readable by group or others, or malformed.
        """
        try:
            mode = os.stat(path).st_mode
        except OSError as err:
            msg = f"cannot read private key file {path}: {err.strerror}"
            raise SigningKeyError(msg) from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            msg = (f"private key file {path} is open to other users (mode {stat.S_IMODE(mode):04o}); "
                   f"run: chmod 600 {path}")
            raise SigningKeyError(msg)
        return cls.from_string(_read_key_text(path, "private key file"))

    def to_string(self) -> str:
        """The private key as text (keep it secret)."""
        from cryptography.hazmat.primitives import serialization

        seed = self._key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                       serialization.NoEncryption())
        b64 = base64.b64encode(bytes([ED25519]) + seed).decode()
        return f"{_PRIVATE_PREFIX}{self._name}+{self.key_id.hex()}+{b64}"

    @property
    def name(self) -> str:
        """The key's name."""
        return self._name

    @property
    def key_id(self) -> bytes:
        """The key's 4-byte id."""
        return self._verifier.key_id

    @property
    def verifier(self) -> Verifier:
        """The matching public verifier."""
        return self._verifier

    def sign(self, message: bytes) -> bytes:
        """Return the Ed25519 signature of ``message``."""
        return bytes(self._key.sign(message))

    def __repr__(self) -> str:
        return f"KeyFileSigner(name={self._name!r}, key_id={self.key_id.hex()!r})"


def _public_bytes(private_key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return bytes(private_key.public_key().public_bytes(serialization.Encoding.Raw,
                                                       serialization.PublicFormat.Raw))


def _read_key_text(path: str, what: str) -> str:
    try:
        with open(path, "rb") as f:
            data = f.read(_MAX_KEY_FILE + 1)
    except OSError as err:
        msg = f"cannot read {what} {path}: {err.strerror}"
        raise SigningKeyError(msg) from None
    if len(data) > _MAX_KEY_FILE:
        msg = f"{what} {path} is too large to be a key"
        raise SigningKeyError(msg)
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        msg = f"{what} {path} is not a text key"
        raise SigningKeyError(msg) from None
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) != 1:
        msg = f"{what} {path} must hold exactly one key line"
        raise SigningKeyError(msg)
    return lines[0]


def generate_key(name: str) -> KeyFileSigner:
    """Generate a new Ed25519 key called ``name`` (from the operating system's randomness)."""
    check_key_name(name)
    seed = os.urandom(32)
    return KeyFileSigner(name, seed)


def write_key_files(signer: KeyFileSigner, private_path: str, public_path: str) -> None:
    """Write the private key (mode 0600) and the public verifier key (0644) to new files.

    Neither file may exist yet (a key is never overwritten). Both are fsynced. If the
    second write fails, the first file is removed, so a failure leaves nothing behind.

    Raises:
        SigningKeyError: a file exists already, or could not be written.
    """
    for path in (private_path, public_path):
        if os.path.lexists(path):
            msg = f"{path} already exists; refusing to overwrite a key (choose another name or remove it)"
            raise SigningKeyError(msg)
    written: list[str] = []
    try:
        for path, text, mode in ((private_path, signer.to_string(), 0o600),
                                 (public_path, signer.verifier.to_string(), 0o644)):
            # O_EXCL: never follow a link or replace a file that appeared meanwhile; the
            # mode is set at creation, so the private key is never readable by others.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
            written.append(path)
            try:
                os.write(fd, (text + "\n").encode())
                os.fsync(fd)
            finally:
                os.close(fd)
        # The new names must survive a power cut too, not only the bytes.
        for folder in {os.path.dirname(os.path.abspath(p)) for p in written}:
            _fs.fsync_dir(folder)
    except OSError as err:
        for path in written:
            try:
                os.unlink(path)
            except OSError:
                pass
        msg = f"cannot write key file {err.filename or ''}: {err.strerror}"
        raise SigningKeyError(msg) from None

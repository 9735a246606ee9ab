"""A PostgreSQL backend for :class:`~eventlog.base.EventLog` (psycopg 3).

Many hosts can share one database: any of them can append to a job's log (appends with
an expected seq turn a lost race into :class:`~eventlog.errors.ConcurrencyError`)
and follow it through ``LISTEN``/``NOTIFY``; reading it back (``read_raw()`` from seq 1)
checks every CRC and the whole hash chain. The records are the same as in the file and
in-memory logs: the canonical msgpack ``event_bytes`` of ``[kind, data]``, their CRC32,
the timestamp and the BLAKE2b hash-chain link of every event, so the same events with
the same timestamps give the same head hash on every backend.

Opening::

    log = open_pg_log("postgresql://user@db-host:5432/flows", "job-42")
    log = open_pg_log("postgresql://user@db-host:5432/flows#job-42")   # one-string form

The one-string form puts the job id in the URL *fragment* (after ``#``, percent-encoded
if it holds reserved characters). The fragment is stripped before the URL reaches
libpq, so every libpq URL parameter (``?sslmode=require`` ...) still works.

Tables (created on first use; ``eventlog_schema_version`` holds :data:`SCHEMA_VERSION`
and a database written by a newer version is refused with
:class:`~eventlog.errors.UnsupportedFormatError`):

``eventlog_logs``
    one row per log: ``log_id`` (internal bigint), ``name`` (the job id), the *head
    row* ``head_seq, head_ts, head_link``, and ``key_check`` (8 bytes derived from the
    chain key, zeros when unkeyed, so a wrong key is refused at open).
``eventlog_events``
    ``(log_id, seq)`` primary key, ``ts``, ``body`` (the event bytes), ``crc``
    (CRC32 of ``body``), ``link`` (the chain link after this event).
``eventlog_snapshots``
    ``(log_id, seq)`` primary key, ``ts``, ``link``, ``schema_version``, ``body``
    (msgpack of the state), ``checksum``: the first 8 bytes of the snapshot's tag
    (keyed BLAKE2b over all of them, as in the file format), as a signed bigint. Rows
    written before tags existed hold a CRC32 there; an unkeyed log still accepts them,
    a keyed one does not (they cannot be authenticated).
``eventlog_merkle_nodes``
    ``(log_id, level, idx)`` primary key, ``hash``: the Merkle tree of audit proofs
    (:mod:`eventlog.merkle_pg`), written by the same statement or transaction as the
    events it covers; ``eventlog_logs.tree_size`` says how many events it covers.
``eventlog_personal``
    ``(log_id, commitment)`` primary key, ``salt``, ``value``, ``erased_seq``: the vault
    of personal values (:mod:`eventlog.personal`), written with their events; erasing
    sets ``salt`` and ``value`` to NULL and ``erased_seq`` in the erasure event's
    transaction. (PostgreSQL keeps old row versions until VACUUM, which erasure runs,
    and in its WAL and backups until they are recycled.)
``eventlog_checkpoints``
    ``(log_id, size)`` primary key, ``note``: signed checkpoints (:mod:`eventlog.audit`).

Schema version 2 added the Merkle tree (the nodes table and ``tree_size``), the vault
and the checkpoints; a version 1 database is upgraded when a writer first opens it, and
each log's tree is built by the first writer that opens that log.

Concurrency: every append locks the log's head row (``SELECT ... FOR NO KEY UPDATE``),
compares ``head_seq`` with the expected seq, inserts the events and moves the head in
the same transaction. Writers of one log are therefore serialised by the row lock and
commit in seq order, so readers only ever see a gap-free prefix; writers of different
logs never wait for each other. The ``(log_id, seq)`` primary key is a second guard.

Durability: PostgreSQL makes a commit durable before it acknowledges it (with the
server's defaults ``fsync=on`` and ``synchronous_commit`` not ``off``), so this log
reports ``durability == "always"`` and ``durable_seq == head_seq``. Both settings are
read when the log is opened; if either is off, commits may be lost in a crash and the
log reports ``durability == "none"`` instead.
"""

from __future__ import annotations

import contextlib
import hashlib
import struct
import threading
import time
import warnings
import zlib
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urldefrag, urlsplit, urlunsplit

from .base import DURABILITY_MODES, EventLog, check_event_sizes, check_schema_version, next_ts
from .chain import GENESIS, LINK_SIZE, Chain
from .encoding import decode_event, decode_state, encode_event, encode_state
from .errors import (
    ConcurrencyError,
    CorruptionError,
    EventLogError,
    LogClosedError,
    LogNotFoundError,
    LogReadOnlyError,
    PostgresError,
    UnsupportedFormatError,
    WrongKeyError,
)
from .merkle import CompactRange
from .merkle_pg import INSERT_NODES, NODES_DDL, NODES_TABLE, PgNodeStore, grow, read_frontier
from .merkle_tree import MerkleTree
from .personal import SealedValue
from .prefix_filter import PrefixFilter
from .record import Record, Snapshot
from .snapshot import snapshot_tag
from .vault import VaultEntry

if TYPE_CHECKING:  # pragma: no cover - psycopg is an optional dependency
    import psycopg

__all__ = [
    "CHECKPOINTS_TABLE",
    "EVENTS_TABLE",
    "LOGS_TABLE",
    "LOG_TABLES",
    "NODES_TABLE",
    "PERSONAL_TABLE",
    "SCHEMA_VERSION",
    "SNAPSHOTS_TABLE",
    "VERSION_TABLE",
    "LogNotFoundError",
    "PostgresError",
    "PostgresEventLog",
    "check_job_id",
    "is_pg_location",
    "open_pg_log",
    "parse_pg_location",
    "redact_url",
]

#: Version of the table layout below. Bump it (and add a migration) on any change.
#: 1: logs, events, snapshots. 2: the Merkle tree (nodes table, ``tree_size``).
SCHEMA_VERSION = 2
VERSION_TABLE = "eventlog_schema_version"
LOGS_TABLE = "eventlog_logs"
EVENTS_TABLE = "eventlog_events"
SNAPSHOTS_TABLE = "eventlog_snapshots"
PERSONAL_TABLE = "eventlog_personal"
CHECKPOINTS_TABLE = "eventlog_checkpoints"
#: Every table with rows of one log (by ``log_id``): deleting a log deletes its rows in all
#: of them, the logs table last.
LOG_TABLES = (EVENTS_TABLE, SNAPSHOTS_TABLE, NODES_TABLE, PERSONAL_TABLE, CHECKPOINTS_TABLE, LOGS_TABLE)
#: Events read, hashed and their nodes inserted per transaction while a log's tree is built.
TREE_BUILD_CHUNK = 1 << 15

#: Rows fetched per query by ``read``/``follow``: reads never load a whole log at once.
READ_PAGE = 2000
#: Longest a follower sleeps without re-reading: a safety net for a lost notification
#: and how quickly a follower notices that its log was closed. Not a poll: followers are
#: woken by NOTIFY as soon as a writer commits.
FOLLOW_FALLBACK_WAIT = 0.5

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_INT32_MIN = -(2**31)
_INT32_MAX = 2**31 - 1
# Serialises schema creation between processes: CREATE TABLE IF NOT EXISTS is not safe
# against a concurrent CREATE of the same table. The value spells "eventlog".
_SCHEMA_LOCK = 0x6576656E746C6F67
_SNAP_HEADER = struct.Struct("<qqq")
# Characters left as they are in the job id of a location's fragment (RFC 3986).
_FRAGMENT_SAFE = "-._~!$&'()*+,;=:@/?"


def _key_check(key: bytes) -> bytes:
    """8 bytes stored with a log that tell a wrong key from the right one (zeros: unkeyed)."""
    if not key:
        return bytes(8)
    return hashlib.blake2b(b"eventlog postgres key check", digest_size=8, key=key).digest()


_DDL = (
    f"""CREATE TABLE IF NOT EXISTS {LOGS_TABLE} (
        log_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        name text NOT NULL UNIQUE,
        head_seq bigint NOT NULL DEFAULT 0 CHECK (head_seq >= 0),
        head_ts bigint NOT NULL DEFAULT 0,
        head_link bytea NOT NULL,
        key_check bytea NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        tree_size bigint NOT NULL DEFAULT 0)""",
    # No foreign key to the logs table: every insert already holds the log's head row
    # lock, and a per-row FK check would cost a lookup per event on large batches.
    f"""CREATE TABLE IF NOT EXISTS {EVENTS_TABLE} (
        log_id bigint NOT NULL,
        seq bigint NOT NULL CHECK (seq >= 1),
        ts bigint NOT NULL,
        body bytea NOT NULL,
        crc bigint NOT NULL,
        link bytea NOT NULL,
        PRIMARY KEY (log_id, seq))""",
    # seq_at_time: the highest seq with ts <= T is one descent of this index (timestamps
    # never decrease along seqs, so ordering by (ts, seq) is ordering by seq).
    f"CREATE INDEX IF NOT EXISTS {EVENTS_TABLE}_ts ON {EVENTS_TABLE} (log_id, ts, seq)",
    f"""CREATE TABLE IF NOT EXISTS {SNAPSHOTS_TABLE} (
        log_id bigint NOT NULL,
        seq bigint NOT NULL CHECK (seq >= 0),
        ts bigint NOT NULL,
        link bytea NOT NULL,
        schema_version integer NOT NULL,
        body bytea NOT NULL,
        checksum bigint NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (log_id, seq))""",
    NODES_DDL,
    f"""CREATE TABLE IF NOT EXISTS {PERSONAL_TABLE} (
        log_id bigint NOT NULL,
        commitment bytea NOT NULL,
        salt bytea,
        value bytea,
        erased_seq bigint,
        PRIMARY KEY (log_id, commitment))""",
    f"""CREATE TABLE IF NOT EXISTS {CHECKPOINTS_TABLE} (
        log_id bigint NOT NULL,
        size bigint NOT NULL,
        note text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (log_id, size))""",
)
#: From schema version 1 to 2 (run under the schema lock, in one transaction).
_MIGRATE_1_TO_2 = (
    f"ALTER TABLE {LOGS_TABLE} ADD COLUMN IF NOT EXISTS tree_size bigint NOT NULL DEFAULT 0",
    *_DDL[4:],
)
_INSERT_PERSONAL = f"""
INSERT INTO {PERSONAL_TABLE} (log_id, commitment, salt, value)
SELECT %(log)s, p.c, p.s, p.v FROM unnest(%(pcs)s::bytea[], %(pss)s::bytea[], %(pvs)s::bytea[]) AS p(c, s, v)
"""
_ERASE_PERSONAL = (f"UPDATE {PERSONAL_TABLE} SET salt = NULL, value = NULL, erased_seq = %s "
                   "WHERE log_id = %s AND commitment = ANY(%s)")

# One statement inserts the whole batch and moves the head row; the data-modifying CTE
# always runs to completion, and the NOTIFY is delivered only when the transaction
# commits (and not at all if it rolls back), so followers never hear of uncommitted rows.
_INSERT = f"""
INSERT INTO {EVENTS_TABLE} (log_id, seq, ts, body, crc, link)
SELECT %(log)s, %(base)s + u.i, u.ts, u.body, u.crc, u.link
FROM unnest(%(tss)s::bigint[], %(bodies)s::bytea[], %(crcs)s::bigint[], %(links)s::bytea[])
    WITH ORDINALITY AS u(ts, body, crc, link, i)
"""
_INSERT_AND_ADVANCE = f"""
WITH ins AS ({_INSERT}), nodes AS ({INSERT_NODES})
UPDATE {LOGS_TABLE} SET head_seq = %(head)s, head_ts = %(ts)s, head_link = %(link)s, tree_size = %(head)s
WHERE log_id = %(log)s
RETURNING pg_notify(%(channel)s, %(head)s::text)
"""
# The one-statement append used when the handle's cached head is current (the common
# case of one writer per job): the UPDATE moves the head only if it is still where this
# handle last saw it (a concurrent writer's UPDATE is waited for, then re-checked), and
# the INSERT runs only if the UPDATE did. In autocommit mode the statement is its own
# transaction: one round trip and one durable commit. No row back = the cache was stale;
# the caller then takes the locking path.
_APPEND_IF_HEAD = f"""
WITH upd AS (
    UPDATE {LOGS_TABLE} SET head_seq = %(head)s, head_ts = %(ts)s, head_link = %(link)s, tree_size = %(head)s
    WHERE log_id = %(log)s AND head_seq = %(base)s AND head_link = %(prev)s AND tree_size = %(base)s
    RETURNING 1
), ins AS (
    INSERT INTO {EVENTS_TABLE} (log_id, seq, ts, body, crc, link)
    SELECT %(log)s, %(base)s + u.i, u.ts, u.body, u.crc, u.link
    FROM unnest(%(tss)s::bigint[], %(bodies)s::bytea[], %(crcs)s::bigint[], %(links)s::bytea[])
        WITH ORDINALITY AS u(ts, body, crc, link, i)
    WHERE EXISTS (SELECT 1 FROM upd)
    RETURNING 1
), nodes AS (
    INSERT INTO {NODES_TABLE} (log_id, level, idx, hash)
    SELECT %(log)s, n.level, n.idx, n.hash
    FROM unnest(%(nlevels)s::smallint[], %(nidxs)s::bigint[], %(nhashes)s::bytea[]) AS n(level, idx, hash)
    WHERE EXISTS (SELECT 1 FROM upd)
), pers AS (
    INSERT INTO {PERSONAL_TABLE} (log_id, commitment, salt, value)
    SELECT %(log)s, p.c, p.s, p.v FROM unnest(%(pcs)s::bytea[], %(pss)s::bytea[], %(pvs)s::bytea[]) AS p(c, s, v)
    WHERE EXISTS (SELECT 1 FROM upd)
)
SELECT pg_notify(%(channel)s, %(head)s::text), (SELECT count(*) FROM ins) FROM upd
"""

#: Most event bytes sent in one INSERT: a parameter must stay far below PostgreSQL's
#: 1 GB field limit, so larger batches are sent as several INSERTs (one transaction).
INSERT_CHUNK_BYTES = 32 * 1024 * 1024


def _chunks(encoded: Sequence[bytes]) -> Iterator[tuple[int, int]]:
    """Split a batch into ``[start, end)`` index ranges of at most INSERT_CHUNK_BYTES."""
    start = size = 0
    for i, body in enumerate(encoded):
        if size and size + len(body) > INSERT_CHUNK_BYTES:
            yield start, i
            start, size = i, 0
        size += len(body)
    yield start, len(encoded)


_SELECT_ROWS = (
    f"SELECT seq, ts, body, crc, link FROM {EVENTS_TABLE} "
    "WHERE log_id = %s AND seq >= %s AND seq <= %s ORDER BY seq LIMIT %s"
)


def _personal_params(log_id: int, personal: Sequence[SealedValue]) -> dict[str, Any]:
    """The parameters of the vault insert: commitments, salts and values as three arrays."""
    return {"log": log_id, "pcs": [p.commitment for p in personal], "pss": [p.salt for p in personal],
            "pvs": [p.value for p in personal]}


def _vault_entry(commitment: bytes, row: Sequence[Any]) -> VaultEntry:
    salt, value, erased = row
    if salt is None or value is None:
        return VaultEntry(commitment, None, None if erased is None else int(erased))
    return VaultEntry(commitment, SealedValue(commitment, bytes(salt), bytes(value)),
                      None if erased is None else int(erased))


# -- locations --------------------------------------------------------------------------
def is_pg_location(location: object) -> bool:
    """True if ``location`` is a ``postgresql://`` (or ``postgres://``) URL string."""
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


def parse_pg_location(location: str) -> tuple[str, str | None]:
    """Split ``postgresql://...#job`` into ``(conninfo_url, job_id)``.

    The job id is the percent-decoded fragment, or ``None`` when there is none.
    """
    if not is_pg_location(location):
        msg = f"not a PostgreSQL URL (expected postgresql://...): {location!r}"
        raise ValueError(msg)
    url, fragment = urldefrag(location)
    return url, (unquote(fragment) if fragment else None)


def redact_url(url: str) -> str:
    """The URL with any password (in the authority or ``?password=``) replaced by ``***``."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        if ":" in userinfo:
            netloc = f"{userinfo.split(':', 1)[0]}:***@{host}"
    query = "&".join(
        f"{name}=***" if name == "password" else item
        for item in parts.query.split("&") if item
        for name in [item.split("=", 1)[0]]
    )
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def _location(conninfo: str, job_id: str) -> str:
    """``url#job`` as :func:`open_pg_log` accepts it (password hidden), for messages."""
    return f"{redact_url(conninfo)}#{quote(job_id, safe=_FRAGMENT_SAFE)}"


def check_job_id(job_id: object) -> None:
    """Refuse a log name that is not a non-empty string of printable characters.

    A job id ends up in locations (``url#job``), messages, file names of exports and
    directory names of a store: a newline, NUL or escape sequence in it would make one
    name look like another (issue 13, hole 8). Spaces are allowed; control characters
    and other invisible separators are not.

    Raises:
        ValueError: the id is empty, not a string, or holds such a character.
    """
    if not isinstance(job_id, str) or not job_id:
        msg = f"a job id must be a non-empty string, got {job_id!r}"
        raise ValueError(msg)
    if not job_id.isprintable():
        msg = (f"job id {job_id!r} contains a control character or another invisible character; "
               "use printable characters")
        raise ValueError(msg)


def _psycopg() -> Any:
    """Import psycopg on first use, so eventlog works without it."""
    try:
        import psycopg
    except ImportError as exc:
        msg = ("the PostgreSQL backend needs psycopg 3: pip install 'routilux-es[postgres]' "
               "(or pip install 'psycopg[binary]>=3.2')")
        raise ImportError(msg) from exc
    return psycopg


def open_pg_log(url: str, job_id: str | None = None, *, key: bytes | None = None,
                create: bool = True, readonly: bool = False) -> PostgresEventLog:
    """Open (and by default create) the log of one job in a PostgreSQL database.

    Args:
        url: a libpq URL, ``postgresql://user:password@host:port/database``; the job
            id may be given as its fragment instead of ``job_id`` (``...#job-42``).
        job_id: the log's name; any non-empty string.
        key: optional secret key of the hash chain (as for the other backends).
        create: create the tables and the log if missing; otherwise a missing log
            raises :class:`LogNotFoundError`.
        readonly: open for reading only: nothing is created and writes raise
            :class:`~eventlog.errors.LogReadOnlyError`.

    Raises:
        LogNotFoundError: the log does not exist and ``create`` is false (or ``readonly``).
        UnsupportedFormatError: the tables were made by a newer schema version.
        WrongKeyError: ``key`` is missing, superfluous or not the log's key.
        CorruptionError: the log's last event or head row was altered.
        PostgresError: the database cannot be reached or failed.
    """
    conninfo, url_job = parse_pg_location(url)
    if job_id is None:
        job_id = url_job
    elif url_job is not None and url_job != job_id:
        msg = f"job id given twice and different: {job_id!r} and {url_job!r} (in the URL)"
        raise ValueError(msg)
    if not job_id or not isinstance(job_id, str):
        msg = f"a job id is required: pass job_id= or end the URL with #<job id> ({redact_url(conninfo)})"
        raise ValueError(msg)
    return PostgresEventLog(conninfo, job_id, key=key, create=create, readonly=readonly)


# -- the log ----------------------------------------------------------------------------
class PostgresEventLog(EventLog):
    """The log of one job, stored in PostgreSQL. Thread-safe; use :func:`open_pg_log`.

    Every property and call asks the database, so a handle always sees appends made
    by other handles, processes and hosts. ``follow`` uses a connection of its own.
    After a lost connection the handle reconnects on its next call.
    """

    def __init__(self, conninfo: str, job_id: str, *, key: bytes | None = None,
                 create: bool = True, readonly: bool = False) -> None:
        self._key = bytes(key or b"")
        if len(self._key) > 64:
            msg = "hash-chain key must be at most 64 bytes"
            raise ValueError(msg)
        check_job_id(job_id)
        self._chain = Chain(self._key)
        self._pg = _psycopg()
        self._conninfo = conninfo
        self._job_id = job_id
        self._readonly = readonly
        self._location = _location(conninfo, job_id)
        self._lock = threading.RLock()
        self._closed = False
        self._conn: psycopg.Connection[Any] | None = None
        self._last_head: tuple[int, int, bytes] = (0, 0, GENESIS)
        self._check_chain = True
        self._warned_keyless = False  # see _unauthenticated
        self._durability = DURABILITY_MODES[0]
        self._schema = SCHEMA_VERSION
        # The Merkle tree's compact range at the head this handle last wrote or read
        # (seq, link), so the next append computes its nodes without reading any.
        self._frontier = CompactRange()
        self._frontier_for: tuple[int, bytes] = (0, GENESIS)
        with self._lock:
            conn = self._connection("opening the log")
            try:
                self._log_id = self._open_log(conn, create=create and not readonly)
            except BaseException:
                self._drop_connection()
                raise
        self._where = f"table {EVENTS_TABLE} (log {job_id!r}, log id {self._log_id})"
        self._channel = f"eventlog_{self._log_id}"
        try:
            self._check_head()
            if not readonly:
                self._build_tree()
        except BaseException:
            self.close()
            raise

    # -- connection management ------------------------------------------------------------
    def _connect(self, operation: str) -> psycopg.Connection[Any]:
        pg = self._pg
        kwargs: dict[str, Any] = {"autocommit": True}
        try:
            if "application_name" not in pg.conninfo.conninfo_to_dict(self._conninfo):
                # Lets an operator (and the tests) find this log's sessions in pg_stat_activity.
                kwargs["application_name"] = f"eventlog {self._job_id}"[:63]
            conn: psycopg.Connection[Any] = pg.connect(self._conninfo, **kwargs)
            return conn
        except pg.Error as exc:
            raise PostgresError(self._location, operation, exc,
                                note="check the URL and that the server is running") from exc

    def _connection(self, operation: str) -> psycopg.Connection[Any]:
        if self._closed:
            msg = f"the PostgreSQL log {self._location} is closed"
            raise LogClosedError(msg)
        conn = self._conn
        if conn is None or conn.closed or conn.broken:
            self._drop_connection()
            conn = self._conn = self._connect(operation)
        return conn

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - closing a dead connection may fail; it is gone either way
                pass

    def _failure(self, exc: BaseException, operation: str) -> PostgresError:
        """Turn a psycopg error into :class:`PostgresError`, dropping a dead connection."""
        if self._conn is not None and (self._conn.closed or self._conn.broken):
            self._drop_connection()
        return PostgresError(self._location, operation, exc)

    # -- opening ------------------------------------------------------------------------------
    def _open_log(self, conn: psycopg.Connection[Any], *, create: bool) -> int:
        pg = self._pg
        try:
            version = self._schema_version(conn)
            if version is None and create:
                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                    conn.execute(f"CREATE TABLE IF NOT EXISTS {VERSION_TABLE} ("
                                 "singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton), "
                                 "version integer NOT NULL)")
                    version = self._schema_version(conn)
                    if version is None:
                        for ddl in _DDL:
                            conn.execute(ddl)
                        conn.execute(f"INSERT INTO {VERSION_TABLE} (version) VALUES (%s)", (SCHEMA_VERSION,))
                        version = SCHEMA_VERSION
            if version is None:
                msg = (f"no eventlog tables in the database of {self._location} "
                       "(open it with create=True to create them)")
                raise LogNotFoundError(msg)
            if version > SCHEMA_VERSION:
                msg = (f"the eventlog tables in the database of {self._location} have schema version "
                       f"{version}, newer than this library's {SCHEMA_VERSION}: upgrade eventlog")
                raise UnsupportedFormatError(msg)
            if version < SCHEMA_VERSION and not self._readonly:
                version = self._migrate(conn)
            self._schema = version
            find = f"SELECT log_id, key_check FROM {LOGS_TABLE} WHERE name = %s"
            row = conn.execute(find, (self._job_id,)).fetchone()
            if row is None and create:
                conn.execute(f"INSERT INTO {LOGS_TABLE} (name, head_link, key_check) VALUES (%s, %s, %s) "
                             "ON CONFLICT (name) DO NOTHING", (self._job_id, GENESIS, _key_check(self._key)))
                row = conn.execute(find, (self._job_id,)).fetchone()
            if row is None:
                msg = (f"no log named {self._job_id!r} in {redact_url(self._conninfo)} "
                       "(open it with create=True to create it)")
                raise LogNotFoundError(msg)
            settings = conn.execute(
                "SELECT current_setting('fsync'), current_setting('synchronous_commit')").fetchone()
            if settings is None or "off" in settings:
                # A commit is acknowledged before it is on disk: be honest about it.
                self._durability = DURABILITY_MODES[2]
        except pg.Error as exc:
            raise self._failure(exc, "opening the log") from exc
        self._check_key(bytes(row[1]))
        return int(row[0])

    def _migrate(self, conn: psycopg.Connection[Any]) -> int:
        """Upgrade older tables to :data:`SCHEMA_VERSION` (one transaction, under the schema lock)."""
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            version = self._schema_version(conn)
            assert version is not None
            if version == 1:
                for ddl in _MIGRATE_1_TO_2:
                    conn.execute(ddl)
                conn.execute(f"UPDATE {VERSION_TABLE} SET version = 2")
                version = 2
        return version

    def _check_key(self, stored: bytes) -> None:
        """Refuse a missing, superfluous or wrong key before anything is written with it."""
        keyed = stored != bytes(8)
        if keyed and not self._key:
            if self._readonly:
                # Like the file log, reading needs no key: CRCs are still checked, the
                # (keyed) chain cannot be.
                self._check_chain = False
                return
            msg = f"the log {self._location} has a keyed hash chain: open it with key=..."
            raise WrongKeyError(msg)
        if not keyed and self._key:
            msg = f"the log {self._location} has an unkeyed hash chain, but a key was given"
            raise WrongKeyError(msg)
        if keyed and stored != _key_check(self._key):
            msg = f"the key does not match the one the log {self._location} was written with"
            raise WrongKeyError(msg)

    def _schema_version(self, conn: psycopg.Connection[Any]) -> int | None:
        row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (VERSION_TABLE,)).fetchone()
        if not row or not row[0]:
            return None
        row = conn.execute(f"SELECT version FROM {VERSION_TABLE}").fetchone()
        return None if row is None else int(row[0])

    def _check_head(self) -> None:
        """Check the last event (CRC, chain) and that the head row agrees with it.

        Appending after an altered last event would extend a chain nobody can verify,
        so a mismatch is refused at open rather than discovered on a later read.
        """
        head_seq, _, head_link = self._head()
        if head_seq == 0:
            return
        ts, link = self._row_at(head_seq)
        del ts
        if link != head_link:
            raise CorruptionError(self._where, None, head_seq,
                                  "the head row's hash does not match the last event's link")

    # -- state ----------------------------------------------------------------------------------
    def _head(self) -> tuple[int, int, bytes]:
        with self._lock:
            if self._closed:
                return self._last_head
            conn = self._connection("reading the head")
            try:
                row = conn.execute(f"SELECT head_seq, head_ts, head_link FROM {LOGS_TABLE} WHERE log_id = %s",
                                   (self._log_id,)).fetchone()
            except self._pg.Error as exc:
                raise self._failure(exc, "reading the head") from exc
            if row is None:
                raise CorruptionError(f"table {LOGS_TABLE}", None, None,
                                      f"the row of log {self._job_id!r} (log id {self._log_id}) is gone")
            self._last_head = (int(row[0]), int(row[1]), bytes(row[2]))
            return self._last_head

    @property
    def head_seq(self) -> int:
        return self._head()[0]

    @property
    def head_ts(self) -> int:
        return self._head()[1]

    @property
    def head_hash(self) -> bytes:
        return self._head()[2]

    @property
    def durable_seq(self) -> int:
        # A commit is acknowledged only once PostgreSQL has flushed its WAL, so every
        # record this log shows is durable.
        return self._head()[0]

    @property
    def durability(self) -> str:
        return self._durability

    @property
    def location(self) -> str:
        return self._location

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def readonly(self) -> bool:
        """True when opened with ``readonly=True``."""
        return self._readonly

    @property
    def job_id(self) -> str:
        """The log's name (the job id)."""
        return self._job_id

    @property
    def log_id(self) -> int:
        """The log's internal id in the tables (the ``log_id`` column)."""
        return self._log_id

    @property
    def keyed(self) -> bool:
        """True when the hash chain uses a secret key."""
        return bool(self._key)

    def __repr__(self) -> str:
        return f"<PostgresEventLog {self._location}{' closed' if self._closed else ''}>"

    # -- writing --------------------------------------------------------------------------------
    def append_encoded(self, event_bytes: bytes, *, expected_seq: int | None = None,
                       ts: int | None = None, personal: Sequence[SealedValue] | None = None) -> tuple[int, int]:
        check_event_sizes([event_bytes])
        first, times = self._append([event_bytes], expected_seq, ts, personal=personal)
        return first, times[0]

    def append_batch_encoded(self, events: Sequence[bytes], *, expected_seq: int | None = None,
                             ts: int | None = None, personal: Sequence[SealedValue] | None = None
                             ) -> tuple[int, int]:
        events = list(events)
        check_event_sizes(events)
        first, times = self._append(events, expected_seq, ts, personal=personal)
        return first, times[0]

    def append_timed(self, events: Sequence[tuple[int, str, Mapping[str, Any]]], *,
                     expected_seq: int | None = None) -> list[Record]:
        """Append ``(ts, kind, data)`` events, each with its own timestamp, in one transaction.

        For copying a history with its original times (``routilux-replay copy``): one
        commit for the lot, where :meth:`append_batch` (one timestamp per batch) would
        need one per distinct timestamp. Timestamps must not decrease, and the first must
        not be earlier than the log's last. Same atomicity, expected-seq and error
        behaviour as :meth:`append_batch`.

        Raises:
            TypeError: a timestamp is not an int.
            ValueError: ``events`` is empty, or a timestamp decreases or does not fit in
                a signed 64-bit integer.
        """
        events = list(events)  # a generator is read once
        tss = [ts for ts, _, _ in events]
        for i, ts in enumerate(tss):
            if type(ts) is not int:
                msg = f"ts must be an int (nanoseconds since the epoch), got {type(ts).__name__} at index {i}"
                raise TypeError(msg)
            if i and ts < tss[i - 1]:
                msg = f"timestamps must not decrease: index {i} has {ts}, before it {tss[i - 1]}"
                raise ValueError(msg)
        # Encode everything before touching the database: a bad value raises
        # EventEncodingError naming its path and nothing is written.
        encoded = [encode_event(kind, data) for _, kind, data in events]
        check_event_sizes(encoded)
        first, times = self._append(encoded, expected_seq, tss[0] if tss else None, tss)
        out = []
        for i, event_bytes in enumerate(encoded):
            kind, data = decode_event(event_bytes, where=self._where, seq=first + i)
            out.append(Record(first + i, times[i], kind, data))
        return out

    def _append(self, encoded: list[bytes], expected_seq: int | None, ts: int | None,
                tss: list[int] | None = None, *, personal: Sequence[SealedValue] | None = None,
                erase: Sequence[bytes] | None = None) -> tuple[int, list[int]]:
        """Append encoded events atomically, all at ``ts`` or each at its ``tss`` entry.

        ``personal``: sealed values stored in the vault table in the same transaction;
        ``erase``: commitments whose values the same transaction deletes (the appended
        event is their erasure). Returns the first seq and every event's timestamp.
        """
        for t in (tss if tss is not None else (ts,)):
            if t is not None and type(t) is int and not _INT64_MIN <= t <= _INT64_MAX:
                msg = f"ts {t} does not fit in a signed 64-bit integer (nanoseconds since the epoch)"
                raise ValueError(msg)
        pg = self._pg
        n = len(encoded)
        with self._lock:
            if self._readonly:
                msg = f"the PostgreSQL log {self._location} was opened read-only"
                raise LogReadOnlyError(msg)
            conn = self._connection(f"appending {n} event(s)")
            cached = self._last_head
            if erase is None and (expected_seq is None or expected_seq == cached[0]):
                done = self._append_if_head(conn, encoded, cached, ts, tss, personal)
                if done is not None:
                    return cached[0] + 1, done
            operation = f"appending {n} event(s)"
            committing = False
            try:
                # Four round trips (BEGIN, lock the head, insert, COMMIT). psycopg's pipeline
                # mode could merge them into two but measured no faster here (2026-11-28).
                with conn.transaction():
                    # The head row lock serialises the writers of this log (in any process
                    # or host) until we commit; FOR NO KEY UPDATE is enough because the key
                    # never changes, and it does not block readers.
                    row = conn.execute(f"SELECT head_seq, head_ts, head_link, tree_size FROM {LOGS_TABLE} "
                                       "WHERE log_id = %s FOR NO KEY UPDATE", (self._log_id,)).fetchone()
                    if row is None:
                        raise CorruptionError(f"table {LOGS_TABLE}", None, None,
                                              f"the row of log {self._job_id!r} (log id {self._log_id}) is gone")
                    head_seq, head_ts, link = int(row[0]), int(row[1]), bytes(row[2])
                    self._last_head = (head_seq, head_ts, link)  # so the next append can be fast
                    if expected_seq is not None and expected_seq != head_seq:
                        # Raised inside the transaction: it rolls back and releases the lock.
                        raise ConcurrencyError(expected_seq, head_seq, self._location)
                    ts = next_ts(head_ts, ts)
                    times = [ts] * n if tss is None else tss
                    # The tree's frontier at the head, read under the row lock (so every
                    # writer computes its nodes from the same tree), unless this handle has it.
                    rng = self._frontier_at(conn, head_seq, link, int(row[3]))
                    grown, nodes = grow(rng, head_seq + 1, times, encoded)
                    first = head_seq + 1
                    operation = f"appending {n} event(s) (seq {first}..{head_seq + n})"
                    step = self._chain.next
                    base = head_seq
                    for chunk_start, chunk_end in _chunks(encoded):
                        bodies: list[bytes] = []
                        crcs: list[int] = []
                        links: list[bytes] = []
                        for i in range(chunk_start, chunk_end):
                            body = encoded[i]
                            link = step(link, first + i, times[i], body)
                            bodies.append(body)
                            crcs.append(zlib.crc32(body))
                            links.append(link)
                        params = {"log": self._log_id, "base": base, "ts": times[-1], "bodies": bodies,
                                  "crcs": crcs, "links": links, "tss": times[chunk_start:chunk_end]}
                        if chunk_end < n:
                            conn.execute(_INSERT, params)
                        else:  # the last chunk also moves the head, adds the tree's nodes and notifies
                            conn.execute(_INSERT_AND_ADVANCE, {**params, "head": head_seq + n, "link": link,
                                                               "channel": self._channel,
                                                               **nodes.params(self._log_id)})
                        base += chunk_end - chunk_start
                    if personal:
                        conn.execute(_INSERT_PERSONAL, _personal_params(self._log_id, personal))
                    if erase is not None:
                        conn.execute(_ERASE_PERSONAL, (head_seq + 1, self._log_id, list(erase)))
                    # From here on only COMMIT can fail; _write_failure then finds out
                    # whether it happened.
                    committing = True
                # Leaving the block committed the transaction (PostgreSQL flushed it).
            except pg.Error as exc:
                raise self._write_failure(exc, operation, committing,
                                          None if not committing else (head_seq + n, link)) from exc
            self._last_head = (head_seq + n, times[-1], link)
            self._frontier, self._frontier_for = grown, (head_seq + n, link)
        return first, times

    # -- signed checkpoints ------------------------------------------------------------------------
    def store_checkpoint(self, size: int, note: str) -> None:
        if self._readonly:
            msg = f"the PostgreSQL log {self._location} was opened read-only"
            raise LogReadOnlyError(msg)
        with self._lock:
            self._execute(f"INSERT INTO {CHECKPOINTS_TABLE} (log_id, size, note) VALUES (%s, %s, %s) "
                          "ON CONFLICT (log_id, size) DO UPDATE SET note = EXCLUDED.note, created_at = now()",
                          (self._log_id, size, note))

    def checkpoint_notes(self) -> list[str]:
        if self._schema < 2:
            return []
        with self._lock:
            rows = self._execute(f"SELECT note FROM {CHECKPOINTS_TABLE} WHERE log_id = %s ORDER BY size",
                                 (self._log_id,)).fetchall()
        return [str(r[0]) for r in rows]

    # -- personal values -------------------------------------------------------------------------
    def personal_entry(self, commitment: bytes) -> VaultEntry | None:
        if self._schema < 2:
            return None
        with self._lock:
            row = self._execute(f"SELECT salt, value, erased_seq FROM {PERSONAL_TABLE} "
                                "WHERE log_id = %s AND commitment = %s", (self._log_id, commitment)).fetchone()
        return None if row is None else _vault_entry(commitment, row)

    def personal_entries(self) -> Iterator[VaultEntry]:
        if self._schema < 2:
            return iter(())
        with self._lock:
            rows = self._execute(f"SELECT commitment, salt, value, erased_seq FROM {PERSONAL_TABLE} "
                                 "WHERE log_id = %s ORDER BY commitment", (self._log_id,)).fetchall()
        return iter([_vault_entry(bytes(r[0]), r[1:]) for r in rows])

    def has_personal_values(self) -> bool:
        if self._schema < 2:
            return False
        with self._lock:
            row = self._execute(f"SELECT EXISTS (SELECT 1 FROM {PERSONAL_TABLE} WHERE log_id = %s)",
                                (self._log_id,)).fetchone()
        return bool(row and row[0])

    def erase_personal(self, event_bytes: bytes, commitments: Sequence[bytes], *,
                       expected_seq: int | None = None) -> tuple[int, int]:
        """Append the erasure event and NULL the values and salts in one transaction, then VACUUM.

        VACUUM removes the old row versions that still hold the values from the table's
        pages (best effort: it needs the table's owner and no older transaction open);
        PostgreSQL's WAL and backups keep them until they are recycled.
        """
        check_event_sizes([event_bytes])
        first, times = self._append([event_bytes], expected_seq, None, erase=list(commitments))
        with contextlib.suppress(EventLogError, self._pg.Error), self._lock:
            self._connection("vacuuming the vault").execute(f"VACUUM {PERSONAL_TABLE}")
        return first, times[0]

    # -- the Merkle tree (eventlog/merkle_pg.py) ----------------------------------------------------
    def _execute(self, query: str, params: Any = None) -> Any:
        """Run one statement on the handle's connection (caller holds ``_lock``)."""
        conn = self._connection("reading the Merkle tree")
        try:
            return conn.execute(query, params)
        except self._pg.Error as exc:
            raise self._failure(exc, "reading the Merkle tree") from exc

    def _frontier_at(self, conn: psycopg.Connection[Any], head_seq: int, link: bytes, tree_size: int) -> CompactRange:
        """The tree's compact range at ``head_seq`` (head row locked by the caller's transaction).

        The handle's own if it is for this head; else read from the node rows; a tree
        that does not reach the head yet (a log older than the tree) is built first.
        """
        if self._frontier_for == (head_seq, link):
            return self._frontier
        if tree_size < head_seq:
            return self._grow_tree(conn, tree_size, head_seq)
        return read_frontier(conn.execute, self._log_id, head_seq, self._where)

    def _grow_tree(self, conn: psycopg.Connection[Any], tree_size: int, upto: int) -> CompactRange:
        """Add the nodes of events ``tree_size + 1 .. upto`` (read and verified) in the caller's transaction."""
        rng = read_frontier(conn.execute, self._log_id, tree_size, self._where) if tree_size else CompactRange()
        for first in range(tree_size + 1, upto + 1, TREE_BUILD_CHUNK):
            last = min(first + TREE_BUILD_CHUNK - 1, upto)
            rows = list(self._rows(first, last))
            rng, nodes = grow(rng, first, [r[1] for r in rows], [r[2] for r in rows])
            conn.execute(INSERT_NODES, nodes.params(self._log_id))
        conn.execute(f"UPDATE {LOGS_TABLE} SET tree_size = %s WHERE log_id = %s", (upto, self._log_id))
        return rng

    def _build_tree(self) -> None:
        """Build the nodes a log written before the tree lacks (a writer, at open): one chunk per transaction."""
        operation = "building the Merkle tree"
        while True:
            with self._lock:
                conn = self._connection(operation)
                try:
                    with conn.transaction():
                        row = conn.execute(f"SELECT head_seq, tree_size FROM {LOGS_TABLE} WHERE log_id = %s "
                                           "FOR NO KEY UPDATE", (self._log_id,)).fetchone()
                        if row is None or int(row[1]) >= int(row[0]):
                            return
                        self._grow_tree(conn, int(row[1]), min(int(row[0]), int(row[1]) + TREE_BUILD_CHUNK))
                except self._pg.Error as exc:
                    raise self._failure(exc, operation) from exc

    def check_merkle(self) -> bool:
        """Re-hash the node rows against the events (False: the tree is not built yet)."""
        if self._schema < 2:
            return False
        with self._lock:
            row = self._execute(f"SELECT head_seq, tree_size FROM {LOGS_TABLE} WHERE log_id = %s",
                                (self._log_id,)).fetchone()
        if row is None or int(row[1]) < int(row[0]):
            return False
        return super().check_merkle()

    @contextlib.contextmanager
    def _tree(self) -> Iterator[MerkleTree]:
        """The tree of the node rows at the current head (read on demand), under the handle's lock.

        A log whose tree is not built yet (a read-only handle of a log older than the
        tree) gets the generic in-memory build (O(n)).
        """
        with self._lock:
            row = None
            if self._schema >= 2:
                row = self._execute(f"SELECT head_seq, tree_size FROM {LOGS_TABLE} WHERE log_id = %s",
                                    (self._log_id,)).fetchone()
            if row is None or int(row[1]) < int(row[0]):
                with super()._tree() as tree:
                    yield tree
                return
            yield MerkleTree(PgNodeStore(self._execute, self._log_id, int(row[0])))

    def _append_if_head(self, conn: psycopg.Connection[Any], encoded: list[bytes],
                        cached: tuple[int, int, bytes], ts: int | None,
                        tss: list[int] | None, personal: Sequence[SealedValue] | None) -> list[int] | None:
        """Append in one statement if the head is still ``cached``; return the timestamps, or None.

        ``None`` means the head moved (another writer) or the batch is too large for one
        statement: nothing was written and the caller takes the locking path.
        """
        n = len(encoded)
        if sum(len(body) for body in encoded) > INSERT_CHUNK_BYTES:
            return None
        head_seq, head_ts, prev = cached
        if self._frontier_for != (head_seq, prev):
            return None  # the locking path reads the tree's frontier at the real head
        try:
            ts = next_ts(head_ts, ts)
        except (TypeError, ValueError):
            return None  # the locking path raises it, after checking expected_seq against the real head
        times = [ts] * n if tss is None else tss
        grown, nodes = grow(self._frontier, head_seq + 1, times, encoded)
        link = prev
        bodies: list[bytes] = []
        crcs: list[int] = []
        links: list[bytes] = []
        step = self._chain.next
        for i, body in enumerate(encoded):
            link = step(link, head_seq + 1 + i, times[i], body)
            bodies.append(body)
            crcs.append(zlib.crc32(body))
            links.append(link)
        operation = f"appending {n} event(s) (seq {head_seq + 1}..{head_seq + n})"
        try:
            row = conn.execute(_APPEND_IF_HEAD, {
                "log": self._log_id, "base": head_seq, "prev": prev, "ts": times[-1], "tss": times,
                "bodies": bodies, "crcs": crcs, "links": links, "head": head_seq + n, "link": link,
                "channel": self._channel, **nodes.params(self._log_id),
                **_personal_params(self._log_id, personal or ()),
            }).fetchone()
        except self._pg.Error as exc:
            # The statement was its own transaction: if the connection died, it may have
            # committed, so the outcome is checked like a failed COMMIT.
            raise self._write_failure(exc, operation, True, (head_seq + n, link)) from exc
        if row is None:
            return None
        if int(row[1]) != n:  # pragma: no cover - the UPDATE matched, so the INSERT ran
            raise CorruptionError(self._where, None, head_seq + 1, f"inserted {row[1]} of {n} events")
        self._last_head = (head_seq + n, times[-1], link)
        self._frontier, self._frontier_for = grown, (head_seq + n, link)
        return times

    def _write_failure(self, exc: BaseException, operation: str, committing: bool,
                       expect: tuple[int, bytes] | None) -> PostgresError:
        """Build the error for a failed write, finding out whether it committed."""
        if self._conn is not None and (self._conn.closed or self._conn.broken):
            self._drop_connection()
        pg = self._pg
        if not committing or not isinstance(exc, pg.OperationalError):
            # Failed before COMMIT was sent (or the server refused the COMMIT): the
            # transaction was rolled back, so nothing of it is in the log.
            note = "nothing was written (the transaction was rolled back)"
            if self._conn is None:
                note += "; the next call reconnects"
            return PostgresError(self._location, operation, exc, committed=False, note=note)
        # The connection died after the insert was sent, possibly while COMMIT was in
        # flight: the server may or may not have committed. Ask a fresh connection
        # whether our last link is in the log.
        assert expect is not None
        seq, link = expect
        committed: bool | None
        try:
            with self._connect(operation) as conn:
                row = conn.execute(f"SELECT link FROM {EVENTS_TABLE} WHERE log_id = %s AND seq = %s",
                                   (self._log_id, seq)).fetchone()
            committed = row is not None and bytes(row[0]) == link
        except (PostgresError, pg.Error):
            committed = None
        if committed is None:
            note = ("the connection was lost before the commit was confirmed and it is unknown whether "
                    "the events were written; re-read the log")
        elif committed:
            note = ("the connection was lost before the commit was confirmed, but the events were "
                    "committed (checked after reconnecting)")
        else:
            note = ("the connection was lost before the commit was confirmed; nothing was written "
                    "(checked after reconnecting)")
        return PostgresError(self._location, operation, exc, committed=committed, note=note)

    def sync(self) -> int:
        return self.durable_seq

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            try:
                if self._conn is not None and not self._conn.closed and not self._conn.broken:
                    self._head()
            except (EventLogError, self._pg.Error):
                pass  # keep the last known head for the properties
            self._closed = True
            self._drop_connection()

    # -- reading ----------------------------------------------------------------------------------
    def _fetch(self, conn: psycopg.Connection[Any] | None, start: int, stop: int,
               limit: int = READ_PAGE) -> list[tuple[int, int, bytes, int, bytes]]:
        """One page of raw rows; on ``conn`` (a follower's) or on the handle's own."""
        operation = f"reading seq {start}..{stop}"
        if conn is not None:
            try:
                rows = conn.execute(_SELECT_ROWS, (self._log_id, start, stop, limit)).fetchall()
            except self._pg.Error as exc:
                raise PostgresError(self._location, operation, exc) from exc
        else:
            with self._lock:
                own = self._connection(operation)
                try:
                    rows = own.execute(_SELECT_ROWS, (self._log_id, start, stop, limit)).fetchall()
                except self._pg.Error as exc:
                    raise self._failure(exc, operation) from exc
        return [(int(s), int(t), bytes(b), int(c), bytes(k)) for s, t, b, c, k in rows]

    def _link_before(self, seq: int, conn: psycopg.Connection[Any] | None = None) -> tuple[int, bytes]:
        """``(ts, link)`` stored for ``seq - 1`` (``(0, GENESIS)`` before seq 1)."""
        if seq <= 1:
            return 0, GENESIS
        rows = self._fetch(conn, seq - 1, seq - 1, 1)
        if not rows:
            raise CorruptionError(self._where, None, seq - 1, "the event is missing")
        _, ts, _, _, link = rows[0]
        return ts, link

    def _verify(self, row: tuple[int, int, bytes, int, bytes], expect_seq: int, prev_ts: int,
                prev_link: bytes) -> None:
        """Check one stored row against its CRC, its position and the chain."""
        seq, ts, body, crc, link = row
        if seq != expect_seq:
            raise CorruptionError(self._where, None, expect_seq, f"the event is missing (next stored seq is {seq})")
        if zlib.crc32(body) != crc:
            raise CorruptionError(self._where, None, seq,
                                  f"checksum mismatch: stored 0x{crc:08x}, computed 0x{zlib.crc32(body):08x}")
        if ts < prev_ts:
            raise CorruptionError(self._where, None, seq, f"timestamp {ts} is earlier than the previous {prev_ts}")
        if len(link) != LINK_SIZE or (self._check_chain and self._chain.next(prev_link, seq, ts, body) != link):
            raise CorruptionError(self._where, None, seq,
                                  "hash chain mismatch (wrong key, or the history was altered)")

    def _rows(self, start: int, stop: int | None,
              conn: psycopg.Connection[Any] | None = None) -> Iterator[tuple[int, int, bytes]]:
        """Verified ``(seq, ts, body)`` for ``start..stop`` (``None``: to the head now)."""
        start = max(start, 1)
        # Read up to the head as it is now (later appends are follow's business), and
        # never past it: everything up to the head must be present.
        head = self._head()[0]
        end = head if stop is None else min(stop, head)
        if start > end:
            return
        prev_ts, prev_link = self._link_before(start, conn)
        seq = start
        while seq <= end:
            page = self._fetch(conn, seq, end)
            for row in page:
                self._verify(row, seq, prev_ts, prev_link)
                prev_ts, prev_link = row[1], row[4]
                yield row[0], row[1], row[2]
                seq += 1
            if len(page) < READ_PAGE:
                break
        if seq <= end:
            raise CorruptionError(self._where, None, seq,
                                  f"the event is missing (the head row says the log reaches seq {head})")

    def read(self, start: int = 1, stop: int | None = None) -> Iterator[Record]:
        where = self._where
        for seq, ts, body in self._rows(start, stop):
            kind, data = decode_event(body, where=where, seq=seq)
            yield Record(seq, ts, kind, data)

    def read_raw(self, start: int = 1, stop: int | None = None,
                 select: PrefixFilter | None = None) -> Iterator[tuple[int, int, bytes]]:
        """Yield ``(seq, ts, event_bytes)``, checked (CRC and chain) but not decoded."""
        rows = self._rows(start, stop)
        if select is None:
            return rows
        # Every row is still fetched and verified (the chain needs each one); only the
        # yield is filtered.
        return (row for row in rows if select.passes(row[2]))

    def _row_at(self, seq: int) -> tuple[int, bytes]:
        """``(ts, link)`` of ``seq``, verified against its CRC and the previous link."""
        if seq == 0:
            return 0, GENESIS
        prev_ts, prev_link = self._link_before(seq)
        rows = self._fetch(None, seq, seq, 1)
        if not rows:
            raise KeyError(f"seq {seq} is not in the log (head is {self.head_seq})")
        self._verify(rows[0], seq, prev_ts, prev_link)
        return rows[0][1], rows[0][4]

    def link_at(self, seq: int) -> bytes:
        head = self.head_seq
        if not 0 <= seq <= head:
            msg = f"seq {seq} is not in the log (head is {head})"
            raise KeyError(msg)
        return self._row_at(seq)[1]

    def seq_at_time(self, ts: int) -> int:
        if isinstance(ts, float):
            ts = int(ts // 1)  # ts <= 1.5 includes a record at 1
        ts = max(_INT64_MIN, min(_INT64_MAX, int(ts)))
        with self._lock:
            conn = self._connection("finding a seq by time")
            try:
                row = conn.execute(f"SELECT seq FROM {EVENTS_TABLE} WHERE log_id = %s AND ts <= %s "
                                   "ORDER BY ts DESC, seq DESC LIMIT 1", (self._log_id, ts)).fetchone()
            except self._pg.Error as exc:
                raise self._failure(exc, "finding a seq by time") from exc
        return 0 if row is None else int(row[0])

    def follow(self, start: int = 1, *, timeout: float | None = None,
               poll_interval: float = 0.05) -> Iterator[Record]:
        """Yield records from ``start`` on, woken by ``NOTIFY`` when writers commit.

        Uses a connection of its own (``LISTEN`` ties up a connection). Every wake-up
        re-reads by seq from the last one yielded, so a missed or merged notification
        can delay a record by at most :data:`FOLLOW_FALLBACK_WAIT` but never skip or
        repeat one. Stops after ``timeout`` seconds without a new record, or (with
        ``timeout=None``) once this handle is closed. ``poll_interval`` is unused.
        """
        del poll_interval
        if self._closed:
            return
        conn = self._connect("following the log")
        try:
            try:
                # LISTEN before the first read, so a commit after the read is notified.
                # psycopg 3.3 queues notifications that arrive during our SELECTs for the
                # next notifies(); should one be lost anyway, FOLLOW_FALLBACK_WAIT re-reads.
                conn.execute(f"LISTEN {self._channel}")
            except self._pg.Error as exc:
                raise PostgresError(self._location, "following the log", exc) from exc
            seq = max(start, 1)
            # The link before ``start`` is fetched once records reach it: a follower may
            # start beyond the head and wait for it.
            prev: tuple[int, bytes] | None = None
            where = self._where
            deadline = None if timeout is None else time.monotonic() + timeout
            while True:
                page = self._fetch(conn, seq, _INT64_MAX)
                if page and prev is None:
                    prev = self._link_before(seq, conn)
                for row in page:
                    assert prev is not None
                    self._verify(row, seq, prev[0], prev[1])
                    prev = (row[1], row[4])
                    kind, data = decode_event(row[2], where=where, seq=seq)
                    yield Record(seq, row[1], kind, data)
                    seq += 1
                if page:
                    deadline = None if timeout is None else time.monotonic() + timeout
                    continue
                if self._closed:
                    return
                wait = FOLLOW_FALLBACK_WAIT
                if deadline is not None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return
                    wait = min(wait, remaining)
                try:
                    for _ in conn.notifies(timeout=wait, stop_after=1):
                        pass
                except self._pg.Error as exc:
                    raise PostgresError(self._location, "waiting for new events", exc) from exc
        finally:
            conn.close()

    # -- snapshots --------------------------------------------------------------------------------
    def _seal_key(self) -> bytes:
        return self._key

    def _snapshot_checksum(self, seq: int, ts: int, schema_version: int, link: bytes, body: bytes) -> int:
        """The ``checksum`` column of a snapshot row: the first 8 bytes of its tag, as a signed bigint.

        The tag (:func:`eventlog.snapshot.snapshot_tag`) is keyed with the chain key, so in
        a keyed log nobody without the key can write a snapshot row that a reader accepts
        (issue 13, hole 1). 64 bits are plenty for a tag that can only be tried online.
        """
        tag = snapshot_tag(self._key, seq, ts, link, schema_version, body)
        return int.from_bytes(tag[:8], "little", signed=True)

    @staticmethod
    def _legacy_checksum(seq: int, ts: int, schema_version: int, link: bytes, body: bytes) -> int:
        """The CRC32 that rows written before snapshot tags hold (accepted in unkeyed logs only)."""
        return zlib.crc32(body, zlib.crc32(link, zlib.crc32(_SNAP_HEADER.pack(seq, ts, schema_version))))

    def save_snapshot(self, state: Any, *, schema_version: int, seq: int | None = None) -> Snapshot:
        check_schema_version(schema_version)  # the same TypeError/ValueError as the other backends
        if not _INT32_MIN <= schema_version <= _INT32_MAX:
            msg = f"schema_version must be an int that fits in 32 bits, got {schema_version!r}"
            raise ValueError(msg)
        body = encode_state(state)
        with self._lock:
            if self._readonly:
                msg = f"the PostgreSQL log {self._location} was opened read-only"
                raise LogReadOnlyError(msg)
            head = self._head()[0]
            seq = head if seq is None else seq
            if not 0 <= seq <= head:
                msg = f"cannot snapshot seq {seq}: the log's head is {head}"
                raise ValueError(msg)
            ts, link = self._row_at(seq)
            checksum = self._snapshot_checksum(seq, ts, schema_version, link, body)
            conn = self._connection("saving a snapshot")
            try:
                # One statement, so the snapshot is replaced atomically or not at all.
                conn.execute(
                    f"INSERT INTO {SNAPSHOTS_TABLE} (log_id, seq, ts, link, schema_version, body, checksum) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (log_id, seq) DO UPDATE SET "
                    "ts = EXCLUDED.ts, link = EXCLUDED.link, schema_version = EXCLUDED.schema_version, "
                    "body = EXCLUDED.body, checksum = EXCLUDED.checksum, created_at = now()",
                    (self._log_id, seq, ts, link, schema_version, body, checksum))
            except self._pg.Error as exc:
                raise self._failure(exc, f"saving a snapshot at seq {seq}") from exc
        return Snapshot(seq, ts, link, schema_version, decode_state(body, where=self._snapshot_name(seq)),
                        self._snapshot_name(seq))

    def _snapshot_name(self, seq: int) -> str:
        return f"{SNAPSHOTS_TABLE} (log {self._job_id!r}, log id {self._log_id}, seq {seq})"

    def _snapshot_seqs(self, max_seq: int | None, schema_version: int | None) -> list[int]:
        query = f"SELECT seq FROM {SNAPSHOTS_TABLE} WHERE log_id = %s"
        params: list[Any] = [self._log_id]
        if max_seq is not None:
            query += " AND seq <= %s"
            params.append(max(-1, min(_INT64_MAX, max_seq)))
        if schema_version is not None:
            if not _INT32_MIN <= schema_version <= _INT32_MAX:
                return []
            query += " AND schema_version = %s"
            params.append(schema_version)
        with self._lock:
            conn = self._connection("listing snapshots")
            try:
                return [int(r[0]) for r in conn.execute(query + " ORDER BY seq", params).fetchall()]
            except self._pg.Error as exc:
                raise self._failure(exc, "listing snapshots") from exc

    def _load_snapshot(self, seq: int) -> Snapshot | None:
        """The snapshot at ``seq`` if it passes every check; else warn and return None."""
        name = self._snapshot_name(seq)
        with self._lock:
            conn = self._connection("reading a snapshot")
            try:
                row = conn.execute(f"SELECT ts, link, schema_version, body, checksum FROM {SNAPSHOTS_TABLE} "
                                   "WHERE log_id = %s AND seq = %s", (self._log_id, seq)).fetchone()
            except self._pg.Error as exc:
                raise self._failure(exc, f"reading the snapshot at seq {seq}") from exc
        if row is None:  # deleted since it was listed
            return None
        ts, link, version, body, checksum = int(row[0]), bytes(row[1]), int(row[2]), bytes(row[3]), int(row[4])
        problem = None
        if self._snapshot_checksum(seq, ts, version, link, body) != checksum:
            if self._key:
                problem = "authentication tag mismatch (forged or altered, or written with another key)"
            elif self._legacy_checksum(seq, ts, version, link, body) != checksum:
                problem = "checksum mismatch"
        if problem is None:
            head = self.head_seq
            if seq > head:
                problem = f"it is beyond the log's head (seq {head})"
            else:
                try:
                    log_ts, log_link = self._row_at(seq)
                except CorruptionError as exc:
                    problem = f"the log at its seq cannot be checked ({exc})"
                else:
                    if log_link != link or log_ts != ts:
                        problem = "its hash-chain link does not match the log (it was made from another history)"
        state = None
        if problem is None:
            try:
                state = decode_state(body, where=name)
            except CorruptionError as exc:
                problem = f"undecodable state ({exc.reason})"
        if problem is not None:
            warnings.warn(f"ignoring snapshot {name}: {problem}; an older snapshot or a replay is used",
                          stacklevel=3)
            return None
        return Snapshot(seq, ts, link, version, state, name)

    def _unauthenticated(self) -> bool:
        """True (after one warning per handle) for a keyed log read without its key.

        No snapshot tag can be checked then, so none is used: states are replayed.
        """
        if self._check_chain:
            return False
        if not self._warned_keyless:
            self._warned_keyless = True
            warnings.warn(f"the log {self._location} has a keyed chain and was opened without the key, so its "
                          "snapshots cannot be authenticated and are not used (states are replayed from the "
                          "log); open it with key=... to use them", RuntimeWarning, stacklevel=4)
        return True

    def latest_snapshot(self, *, max_seq: int | None = None,
                        schema_version: int | None = None) -> Snapshot | None:
        if self._unauthenticated():
            return None
        for seq in reversed(self._snapshot_seqs(max_seq, schema_version)):
            snap = self._load_snapshot(seq)
            if snap is not None:
                return snap
        return None

    def snapshot_seqs(self) -> list[int]:
        return self._snapshot_seqs(None, None)

    def snapshots(self) -> list[Snapshot]:
        if self._unauthenticated():
            return []
        found = (self._load_snapshot(seq) for seq in self._snapshot_seqs(None, None))
        return [snap for snap in found if snap is not None]

"""Demo: append events to an in-memory log and show its head hash.

(Later replaced by the durable flow demo, ``routilux-replay demo``.)
"""

from __future__ import annotations

import eventlog


def main() -> None:
    """Append a few events, read them back and print the chain head."""
    log = eventlog.InMemoryEventLog()
    log.append("job_created", {"flow_id": "demo"})
    log.append_batch([("status_set", {"status": "running"}), ("shared_data_set", {"key": "n", "value": 1})])
    for rec in log.read():
        print(rec.seq, rec.kind, rec.data)
    print("head hash:", log.head_hash_hex)


if __name__ == "__main__":
    main()

"""Appends that cross the writer's mapped windows land whole, in order, and verify.

The file log copies frames into a shared map of a window of the active segment
(``filelog.MAP_WINDOW``, 512 KiB). Most tests write far less than a window, so here the
window is shrunk to one page: nearly every frame then starts a new window, and some frames
are larger than a window (the window grows to hold them).
"""

from __future__ import annotations

import eventlog
from eventlog import _fs, filelog
from eventlog.encoding import encode_event


def _event(i: int) -> bytes:
    big = "w" * 9000 if i % 13 == 0 else ""  # now and then a frame larger than two pages
    return encode_event("item", {"id": i, "pad": "p" * (i * 37 % 301) + big})


def test_frames_across_windows_are_read_back_live_and_after_reopen(tmp_path, monkeypatch):
    monkeypatch.setattr(filelog, "MAP_WINDOW", 4096)
    maps = []
    real_map_file = _fs.map_file

    def counting_map_file(fd, length, offset):
        maps.append(length)
        return real_map_file(fd, length, offset)

    monkeypatch.setattr(_fs, "map_file", counting_map_file)
    path = tmp_path / "log"
    events = [_event(i) for i in range(600)]
    log = eventlog.open_log(path, durability="batch")
    try:
        for event_bytes in events:
            log.append_encoded(event_bytes)
        # A reader in the page cache sees every acknowledged frame before any fsync or close.
        with eventlog.open_log(path, readonly=True) as reader:
            assert [e for _seq, _ts, e in reader.read_raw()] == events
    finally:
        log.close()
    assert len(maps) > 100 and max(maps) > 8192  # many windows, some grown past a page for a big frame
    with eventlog.open_log(path, readonly=True) as reopened:
        assert [(seq, e) for seq, _ts, e in reopened.read_raw()] == list(enumerate(events, start=1))
    report = eventlog.verify(path)
    assert report.ok, report

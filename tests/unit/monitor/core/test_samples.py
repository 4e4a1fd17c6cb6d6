"""The bounded sample store: per-channel quota, size cap and retention, least recently used
first, and what it holds survives a restart."""

from __future__ import annotations

from pathlib import Path

from monitor.core.samples import SampleLimits, SampleMeta, SampleStore


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        self.now += 1.0  # every call a second later: stored and used times are all distinct
        return self.now


def meta(channel: str, seq: int) -> SampleMeta:
    return SampleMeta(
        channel_id=channel, seq=seq, media_start=seq * 2.0, media_end=seq * 2.0 + 2.0,
        detectors=["black"],
    )  # fmt: skip


def kept(store: SampleStore) -> list[tuple[str, int]]:
    return [m.key for m in store.all()]


def test_a_channel_over_its_quota_loses_its_least_recently_used_sample(tmp_path: Path) -> None:
    evicted: list[tuple[str, tuple[str, int]]] = []
    store = SampleStore(
        tmp_path, SampleLimits(per_channel=2), clock=Clock(),
        on_evict=lambda reason, m: evicted.append((reason, m.key)),
    )  # fmt: skip
    store.put(meta("news", 0), b"a" * 10)
    store.put(meta("news", 1), b"b" * 10)
    store.put(meta("sport", 0), b"c" * 10)
    assert [m.seq for m in store.overlapping("news", 0.0, 1.0)] == [0]  # seq 0 used again
    store.put(meta("news", 2), b"d" * 10)
    assert kept(store) == [("news", 0), ("news", 2), ("sport", 0)]
    assert evicted == [("quota", ("news", 1))]
    assert not list(tmp_path.glob("news-*/1.*"))  # its files went with it


def test_the_size_cap_drops_the_least_recently_used_samples_of_any_channel(tmp_path: Path) -> None:
    store = SampleStore(tmp_path, SampleLimits(max_bytes=250), clock=Clock())
    for i, channel in enumerate(("a", "b", "c")):
        store.put(meta(channel, i), bytes(100))
    assert kept(store) == [("b", 1), ("c", 2)]
    assert store.total_bytes == 200
    assert sum(p.stat().st_size for p in tmp_path.glob("*/*.bin")) == 200


def test_samples_older_than_the_retention_go(tmp_path: Path) -> None:
    clock = Clock()
    store = SampleStore(tmp_path, SampleLimits(retention=3600.0), clock=clock)
    store.put(meta("news", 0), b"x")
    clock.now += 1800
    store.put(meta("news", 1), b"y")
    clock.now += 1801
    store.evict()
    assert kept(store) == [("news", 1)]


def test_what_it_holds_survives_a_restart_and_a_damaged_entry_is_removed(tmp_path: Path) -> None:
    store = SampleStore(tmp_path, clock=Clock())
    store.put(meta("news", 3), b"segment bytes")
    store.put(meta("news", 4), b"more")
    [damaged] = tmp_path.glob("news-*/4.json")
    damaged.write_text("{broken")
    again = SampleStore(tmp_path)
    [sample] = again.all()
    assert sample.key == ("news", 3) and sample.size == len(b"segment bytes")
    assert again.payload(sample) == b"segment bytes"
    assert not list(tmp_path.glob("news-*/4.*"))


def test_overlapping_finds_the_samples_under_a_span_of_one_channel(tmp_path: Path) -> None:
    store = SampleStore(tmp_path, clock=Clock())
    for seq in range(4):
        store.put(meta("news", seq), b"x")
    store.put(meta("sport", 1), b"x")
    assert [m.seq for m in store.overlapping("news", 2.5, 5.0)] == [1, 2]
    assert store.overlapping("news", 100.0, 102.0) == []


def test_a_reader_sees_samples_another_process_kept_and_evicted_after_it_opened(
    tmp_path: Path,
) -> None:
    reader = SampleStore(tmp_path)  # opened first, over an empty directory
    writer = SampleStore(tmp_path, SampleLimits(per_channel=1), clock=Clock())
    writer.put(meta("news", 4), b"frame four")
    found = reader.read("news", 4)
    assert found is not None and found[0].key == ("news", 4) and found[1] == b"frame four"
    assert reader.read("news", 5) is None and reader.read("sport", 4) is None
    writer.put(meta("news", 5), b"frame five")  # the quota evicts seq 4
    assert reader.read("news", 4) is None
    assert reader.read("news", 5) == (writer.all()[0], b"frame five")
    assert reader.all() == []  # reading left the reader's index (and the files) alone

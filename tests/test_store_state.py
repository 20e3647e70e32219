"""The ingest lease and the change stamp (`rag.store_state`) over a real on-disk Chroma collection,
with an injected clock. The same against a Chroma server, with real processes and threads
racing, is in tests/integration/test_ingest_lease.py."""

from __future__ import annotations

import subprocess
from pathlib import Path

import chromadb
import pytest
from chromadb.config import Settings as ChromaSettings

from rag import records
from rag.retrieval import Retriever
from rag.store_state import LeaseHeld, LeaseLost, LeaseRecord, StoreState


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def collection(tmp_path: Path):
    client = chromadb.PersistentClient(
        path=str(tmp_path / "chroma"), settings=ChromaSettings(anonymized_telemetry=False)
    )
    return client.get_or_create_collection("test__state", embedding_function=None)


def _machine(collection, clock: Clock, name: str) -> StoreState:
    """A process on a machine of its own: its PID space differs, so only expiry frees its lease."""
    return StoreState(collection, lease_seconds=60, clock=clock, space=f"machine-{name}")


def test_a_lease_refuses_others_naming_its_holder_until_it_expires(collection):
    clock = Clock()
    first, second = _machine(collection, clock, "a"), _machine(collection, clock, "b")
    held = first.take()
    clock.now += 30
    with pytest.raises(LeaseHeld, match=r"held by pid \d+ on .+ until 1970-01-12T13:47:40\+00:00") as refused:
        second.take()
    assert refused.value.record.owner == held.record.owner

    clock.now += 10  # 40 s in: renewed, it lasts 60 s from now
    held.renew()
    clock.now += 40  # 80 s in: past the first expiry, within the renewed one
    with pytest.raises(LeaseHeld):
        second.take()

    clock.now += 21  # its holder was killed: nobody renewed it
    taken = second.take()
    assert taken.record.generation == held.record.generation + 1
    with pytest.raises(LeaseLost):
        held.before_write()  # the killed holder, had it only been paused, must not write now
    with pytest.raises(LeaseHeld):
        first.take()


def test_a_released_lease_is_taken_at_once_and_generations_count_on(collection):
    clock = Clock()
    first, second = _machine(collection, clock, "a"), _machine(collection, clock, "b")
    with first.take().kept():
        pass
    lease = second.take()
    assert lease.record.generation == 2
    kinds = collection.get(include=["metadatas"])["metadatas"]
    assert [m["generation"] for m in kinds if m["kind"] == "lease"] == [2], "older generations are removed"


def test_a_holder_counts_its_lease_lost_before_a_taker_may_take_it(collection):
    clock = Clock()
    first, second = _machine(collection, clock, "a"), _machine(collection, clock, "b")
    held = first.take()
    clock.now += 46  # within the last quarter: a taker with a clock 15 s fast would take it
    with pytest.raises(LeaseHeld):
        second.take()
    with pytest.raises(LeaseLost, match="ran out"):
        held.before_write()
    with pytest.raises(LeaseLost):
        held.renew()


def _stale_first_read(state: StoreState, stale: LeaseRecord | None) -> None:
    """Make `state`'s first read of the lease see `stale`: the state before another taker's add."""
    real, reads = state._newest, [stale]
    state._newest = lambda: reads.pop() if reads else real()


def test_two_takers_of_one_generation_get_one_lease(collection):
    clock = Clock()
    first, second = _machine(collection, clock, "a"), _machine(collection, clock, "b")
    _stale_first_read(second, None)  # both read an empty state, then both add generation 1
    held = first.take()
    with pytest.raises(LeaseHeld) as refused:
        second.take()
    assert refused.value.record.owner == held.record.owner
    owners = [m["owner"] for m in collection.get(include=["metadatas"])["metadatas"]]
    assert owners == [held.record.owner]


def test_a_taker_that_read_an_older_state_withdraws(collection):
    clock = Clock()
    first, second = _machine(collection, clock, "a"), _machine(collection, clock, "b")
    with first.take().kept():
        pass
    held = first.take()  # generation 2; generation 1 is gone
    _stale_first_read(second, None)  # it read the store before either: it adds generation 1
    with pytest.raises(LeaseHeld) as refused:
        second.take()
    assert refused.value.record.owner == held.record.owner
    left = collection.get(include=["metadatas"])["metadatas"]
    assert [(m["generation"], m["owner"]) for m in left] == [(2, held.record.owner)]


def test_a_holder_whose_process_is_gone_is_dead_at_once_on_its_machine(collection):
    here = StoreState(collection, lease_seconds=600)
    assert here.space, "this machine tells its PID namespace (Linux)"
    killed = subprocess.Popen(["true"])
    killed.wait()  # a PID that ended (and was reaped), like an ingest after kill -9
    record = LeaseRecord(generation=1, owner="killed", holder="a killed ingest", expires=here.clock() + 600,
                         released=False, space=here.space, pid=killed.pid)  # fmt: skip
    here._write(record, add=True)
    assert here.take().record.generation == 2, "a rerun after kill -9 need not wait out the lease"
    elsewhere = StoreState(collection, lease_seconds=600, space="another-machine")
    with pytest.raises(LeaseHeld):
        elsewhere.take()  # another machine cannot judge this process by its PID: it waits for expiry


# -- the change stamp ----------------------------------------------------------------------


def test_the_stamp_is_quiet_only_while_no_live_writer_writes(collection):
    clock = Clock()
    writer, reader = _machine(collection, clock, "a"), _machine(collection, clock, "b")
    assert reader.quiet_stamp() is None, "never stamped: readers read the whole store"
    with writer.take().kept():
        pass
    assert reader.quiet_stamp() is None, "a lease taken and released without a write leaves no stamp"

    with writer.take().kept() as lease:
        lease.before_write()
        assert reader.quiet_stamp() is None, "a writer is writing"
    settled = reader.quiet_stamp()
    assert settled is not None
    assert reader.quiet_stamp() == settled, "nothing written since"

    killed = writer.take()
    killed.before_write()  # then kill -9: no settled stamp follows
    assert reader.quiet_stamp() is None
    clock.now += 61  # its lease died: nothing can write under it any more
    after_crash = reader.quiet_stamp()
    assert after_crash not in (None, settled)


# -- what a reader (every server worker) does with it ---------------------------------------


def test_warm_up_reads_every_chunk_id_only_when_the_store_changed(make_ingestor, corpus: Path, tmp_path: Path,
                                                                  monkeypatch):  # fmt: skip
    import rag.retrieval

    full_reads = []
    real = rag.retrieval.index_version
    monkeypatch.setattr(rag.retrieval, "index_version", lambda store: full_reads.append(1) or real(store))
    ingestor = make_ingestor()
    ingestor.ingest([corpus])
    retriever = Retriever(ingestor.store, ingestor.embedder, tmp_path / "bm25")

    def polls() -> int:
        before = len(full_reads)
        retriever.warm_up()
        return len(full_reads) - before

    assert polls() == 1 and polls() == 0 and polls() == 0, "a quiet store costs one small read"
    first = retriever.version

    ingestor.ingest([corpus])  # nothing changed: nothing written, nothing to read
    assert polls() == 0

    (corpus / "sodium.md").write_text("# Sodium\n\nSodium-ion cells need no lithium refining at all.")
    ingestor.ingest([corpus])
    assert polls() == 1 and retriever.version != first
    assert "Sodium-ion" in retriever.retrieve("sodium-ion cells", "bm25", top_k=1)[0][0].chunk.text

    doc_id = next(h.chunk.doc_id for h in retriever.retrieve("sodium-ion cells", "bm25", top_k=1)[0])
    assert ingestor.remove(doc_id) > 0
    assert polls() == 1 and retriever.version == first

    # An ingest killed mid-write (another process): its chunks are there, no settled stamp follows.
    lease = ingestor.store.state.take()
    lease.before_write()
    got = ingestor.store.client.get(limit=1, include=["documents", "metadatas", "embeddings"])
    leftover = records.chunk_id(got["metadatas"][0][records.DOC_ID], "killed0000000000", 1)
    ingestor.store.client.add(ids=[leftover], documents=got["documents"], metadatas=got["metadatas"],
                              embeddings=got["embeddings"])  # fmt: skip
    assert polls() == 1 and polls() == 1, "while a live writer writes, every poll reads it all"
    changed = retriever.version
    assert changed != first
    monkeypatch.setattr(ingestor.store.state, "clock", lambda: lease.record.expires + 1)  # its lease died
    assert polls() == 1 and polls() == 0, "read once more after the writer died, then quiet again"
    assert retriever.version == changed

"""What every process sharing a store must see through the store itself, whatever machine it runs
on: the ingest lease and the change stamp, records of a small collection beside the data one.

**The ingest lease** lets one ingest at a time write a collection. Chroma has no compare-and-set,
but it has what a lease needs: an `add` of an id that exists is ignored (the first add wins), and
a read sees every write that returned before it. A lease is a record `lease:<generation>`. A taker
reads the newest record; if that one is released or expired, it adds the next generation under an
owner token of its own and reads back: it holds the lease if the newest record is now its own.
Of two takers of one generation, the first add wins and the other reads the winner's token; a
taker that read an older state adds a lower generation, sees the newer record above it and
withdraws. A thread renews the lease every quarter of its length, and the holder itself counts
it lost a quarter before it expires: its next write raises LeaseLost instead of writing beside the
next holder, and it never renews a lease it counts lost. So at most one holder writes at a time,
provided that the clocks of holder and taker (a taker judges expiry by its own clock) differ by
less than a quarter of the lease, and a taker's read-to-add takes less than that. Not covered: a
write already in flight when the holder counts its lease lost (Chroma has no fencing token). A
killed holder's lease expires; on the same machine and PID namespace a holder whose process is
gone is seen to be dead at once, so a rerun after `kill -9` need not wait.

**The change stamp** tells readers (every server worker) cheaply whether the store changed. A
writer sets it to a new `writing` token before its first write and to a new settled token after
its last. A reader that reads a settled token, and later the same one, knows nothing was written
in between; it reads the whole store only when the token moved, or while a live writer is
writing. A writer killed mid-ingest leaves `writing` behind: once its lease is dead, nothing can
write under it any more, so that stamp counts as settled too.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger("rag.store")

STATE_SUFFIX = "__state"  # the state collection of collection NAME is NAME__state
STAMP_ID = "stamp"
_VECTOR = [0.0]  # Chroma keeps a vector per record; state records need none
_TAKE_ATTEMPTS = 3  # a lost race re-reads; only a holder that releases at once can make it lose again
_MARGIN = 0.25  # of the lease: renewed this often, and counted lost this long before it expires


@dataclass(frozen=True)
class LeaseRecord:
    generation: int
    owner: str  # a token of one take
    holder: str  # who, for people: "pid 123 on host"
    expires: float  # epoch seconds, by the holder's clock
    released: bool
    space: str  # the holder's kernel boot and PID namespace ("" when unknown), see process_space
    pid: int

    @property
    def id(self) -> str:
        return f"lease:{self.generation}"

    def until(self) -> str:
        return datetime.fromtimestamp(self.expires, UTC).isoformat(timespec="seconds")


class LeaseHeld(RuntimeError):
    """Another process holds the collection's ingest lease."""

    def __init__(self, record: LeaseRecord) -> None:
        super().__init__(f"held by {record.holder} until {record.until()} (renewed while it runs)")
        self.record = record


class LeaseLost(RuntimeError):
    """The lease expired before its holder could renew it: another ingest may hold it now."""


def process_space() -> str:
    """This kernel boot and PID namespace: processes with the same value can check each other's PIDs.
    Empty where unknown (not Linux): then only expiry frees a dead holder's lease."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        return f"{boot}:{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:
        return ""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


class StoreState:
    """The ingest lease and the change stamp of one collection, over its state collection."""

    def __init__(
        self,
        collection,
        lease_seconds: float,
        clock: Callable[[], float] = time.time,
        space: str | None = None,
    ) -> None:
        self.collection = collection  # a chromadb Collection
        self.lease_seconds = lease_seconds
        self.clock = clock
        self.space = process_space() if space is None else space
        self.own_tokens: set[str] = set()  # stamps this process wrote: two per ingest, kept for its life

    # -- the lease ---------------------------------------------------------------------------

    def take(self) -> Lease:
        """Take the ingest lease, or raise LeaseHeld naming its live holder."""
        newest = self._newest()
        for _ in range(_TAKE_ATTEMPTS):
            if newest is not None and self.live(newest):
                raise LeaseHeld(newest)
            mine = LeaseRecord(
                generation=newest.generation + 1 if newest else 1,
                owner=uuid.uuid4().hex,
                holder=f"pid {os.getpid()} on {socket.gethostname()}",
                expires=self.clock() + self.lease_seconds,
                released=False,
                space=self.space,
                pid=os.getpid(),
            )
            self._write(mine, add=True)  # ignored when another taker added this generation first
            newest = self._newest()
            if newest is not None and newest.owner == mine.owner:
                self.collection.delete(
                    where={"$and": [{"kind": "lease"}, {"generation": {"$lt": mine.generation}}]}
                )
                return Lease(self, mine)
            # Lost: withdraw our record if it went in below a newer one (a no-op when it was ignored).
            self.collection.delete(ids=[mine.id], where={"owner": mine.owner})
        raise LeaseHeld(newest or mine)  # three races lost to holders that released at once

    def live(self, record: LeaseRecord) -> bool:
        if record.released or record.expires <= self.clock():
            return False
        return not (record.space and record.space == self.space and not _pid_alive(record.pid))

    def _newest(self) -> LeaseRecord | None:
        got = self.collection.get(where={"kind": "lease"}, include=["metadatas"])["metadatas"]
        records = [LeaseRecord(**{k: v for k, v in m.items() if k != "kind"}) for m in got]
        return max(records, key=lambda r: r.generation, default=None)

    def _write(self, record: LeaseRecord, add: bool = False) -> None:
        write = self.collection.add if add else self.collection.update
        write(ids=[record.id], embeddings=[_VECTOR], metadatas=[{"kind": "lease", **asdict(record)}])

    # -- the change stamp --------------------------------------------------------------------

    def quiet_stamp(self) -> str | None:
        """The change stamp when no live writer is writing, else None; None too for a store never
        stamped (written before stamps, or by another tool), which readers must read in full."""
        stamp = self._stamp_record()
        if stamp is None:
            return None
        if stamp["writing"]:
            writer = self._newest()
            if writer is not None and writer.owner == stamp["owner"] and self.live(writer):
                return None
        return stamp["token"]

    def stamp_token(self) -> str | None:
        """The change stamp as it is, writing or not (None: never stamped)."""
        stamp = self._stamp_record()
        return stamp["token"] if stamp else None

    def _stamp_record(self) -> dict | None:
        got = self.collection.get(ids=[STAMP_ID], include=["metadatas"])["metadatas"]
        return got[0] if got else None

    def _stamp(self, writing: bool, owner: str) -> None:
        meta = {"kind": "stamp", "token": uuid.uuid4().hex, "writing": writing, "owner": owner}
        self.collection.upsert(ids=[STAMP_ID], embeddings=[_VECTOR], metadatas=[meta])
        self.own_tokens.add(meta["token"])


class Lease:
    """A held ingest lease. `kept()` renews it while the ingest runs, then settles the change stamp
    and releases it; `before_write()` goes before every write to the data collection."""

    def __init__(self, state: StoreState, record: LeaseRecord) -> None:
        self.state = state
        self.record = record
        self._lost: str | None = None
        self._writing = False

    def before_write(self) -> None:
        """Raise LeaseLost if the lease is gone; the first time, mark the stamp `writing`."""
        self._check()
        if not self._writing:
            self.state._stamp(writing=True, owner=self.record.owner)
            self._writing = True

    def renew(self) -> None:
        """Extend the lease by its length from now; LeaseLost if it is no longer ours."""
        self._check()
        newest = self.state._newest()
        if newest is None or newest.owner != self.record.owner:
            self._lost = f"the ingest lease was taken over (by {newest.holder if newest else 'nobody'})"
            raise LeaseLost(self._lost)
        renewed = LeaseRecord(
            **{**asdict(self.record), "expires": self.state.clock() + self.state.lease_seconds}
        )
        self.state._write(renewed)
        self.record = renewed

    def release(self) -> None:
        """Settle the stamp (if anything was written) and free the lease for the next taker. Its
        record stays, released, so the next generation counts on from it. A lost lease is left
        alone: its stamp could overwrite the next holder's."""
        try:
            self._check()
        except LeaseLost:
            return
        if self._writing:
            self.state._stamp(writing=False, owner=self.record.owner)
        self.state._write(replace(self.record, released=True))

    def _check(self) -> None:
        """LeaseLost once the lease is within its margin of expiring: a taker may be about to take it."""
        margin = _MARGIN * self.state.lease_seconds
        if self._lost is None and self.state.clock() >= self.record.expires - margin:
            self._lost = f"the ingest lease ran out (until {self.record.until()}) before it could be renewed"
        if self._lost is not None:
            raise LeaseLost(self._lost)

    @contextmanager
    def kept(self) -> Iterator[Lease]:
        stop = threading.Event()
        renewer = threading.Thread(target=self._renew_until, args=(stop,), name="ingest-lease", daemon=True)
        renewer.start()
        try:
            yield self
        finally:
            stop.set()
            renewer.join()
            try:
                self.release()
            except Exception:  # the store is unreachable: the lease expires, the stamp then counts as settled
                log.warning("could not release the ingest lease %s", self.record.id, exc_info=True)

    def _renew_until(self, stop: threading.Event) -> None:
        while not stop.wait(_MARGIN * self.state.lease_seconds):
            try:
                self.renew()
            except LeaseLost:
                log.error("%s; this ingest stops before its next write", self._lost)
                return
            except Exception:  # a store hiccup: try again while the lease has time left
                log.warning("could not renew the ingest lease %s", self.record.id, exc_info=True)

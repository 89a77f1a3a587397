"""Crash-safety suite: kill the server with SIGKILL while clients append.

Worker threads append to their own streams (append, append_batch, and cas on
a counter, each acknowledged when its transaction commits) while the main
thread kills the postmaster and all its children with SIGKILL after a random
delay. The cluster is then restarted (crash recovery) and checked against
the commits the clients saw acknowledged:

  sync         synchronous_commit = on: every acknowledged event is present
               with its payload, and every acknowledged value survives.
  flush-busy   synchronous_commit = off and wal_writer_delay = 10s:
               every event and value acknowledged before
               haematite.flush() was called in another session survives,
               although the workers go on committing until the kill and
               those later commits may be lost.
  flush-quiet  the same, but the workers stop before flush() and the kill
               follows it at once, so the last commits are in a partly
               filled WAL page that only flush() writes.
  no-flush     flush-quiet without the flush(): prints how many
               acknowledged events were lost, which shows that the
               flush-quiet check can fail. A loss of 0 is reported but is
               not a failure.

In every round each stream must hold exactly the events 0 .. next_seq - 1,
none at or above next_seq, with next_seq at a transaction boundary (a batch
is all or nothing), and a value must be one that a client set. After each
check every stream takes a new append at its next_seq, and a stale
expected_seq gets SE001.

The kill delays and payloads come from a seed, printed at the start; set
HAEMATITE_CRASH_SEED to reuse one. Thread scheduling still varies between
runs, so a seed does not repeat a run exactly.
"""

import hashlib
import os
import random
import sys
import threading
import time

import psycopg2

import harness

DATABASE = "haematite_crash"
WORKERS = 3
STREAMS_PER_WORKER = 4
ROUNDS = {"sync": 6, "flush-busy": 2, "flush-quiet": 3, "no-flush": 3}

# Settings that keep commits made with synchronous_commit = off in the WAL
# buffers as long as possible: the WAL writer flushes every 10 s (the
# maximum) or after 1 GB, the background writer writes no pages (writing a
# page flushes the WAL up to that page), and no checkpoint starts.
CLUSTER_SETTINGS = {
    "wal_writer_delay": "10s",
    "wal_writer_flush_after": "1GB",
    "bgwriter_lru_maxpages": "0",
    "checkpoint_timeout": "1h",
    "max_wal_size": "4GB",
}


def digest(payload):
    """Return the SHA-256 digest of a payload, as SQL's sha256() does."""
    return hashlib.sha256(payload).digest()


class StreamState:
    """The acknowledged state of one stream, as the clients recorded it."""

    def __init__(self):
        self.acked = []             # digest per seq, for acknowledged events
        self.boundaries = [0]       # next_seq after each acknowledged commit


class ValueState:
    """The acknowledged values of one CAS counter, as the clients recorded
    them."""

    def __init__(self):
        self.history = [None]       # every acknowledged value, oldest first


class Model:
    """The acknowledged state of every stream and value, shared by threads.

    A worker registers its transaction's effects as pending before it sends
    it, and moves them into the acknowledged state when the commit returns.
    A pending transaction may or may not have committed when the server
    died.
    """

    def __init__(self, stream_keys, value_keys):
        self.lock = threading.Lock()
        self.streams = {key: StreamState() for key in stream_keys}
        self.values = {key: ValueState() for key in value_keys}
        self.pending = {}           # worker -> (events, values) in flight

    def next_seq(self, key):
        with self.lock:
            return len(self.streams[key].acked)

    def value(self, key):
        with self.lock:
            return self.values[key].history[-1]

    def set_pending(self, worker, events, values):
        """Record a transaction about to be sent.

        events maps a stream key to the digests appended after its current
        next_seq; values maps a counter key to its new value.
        """
        with self.lock:
            self.pending[worker] = (events, values)

    def acknowledge(self, worker):
        """Move a worker's pending transaction into the acknowledged state."""
        with self.lock:
            events, values = self.pending.pop(worker)
            for key, digests in events.items():
                state = self.streams[key]
                state.acked.extend(digests)
                state.boundaries.append(len(state.acked))
            for key, value in values.items():
                self.values[key].history.append(value)

    def snapshot(self):
        """Return the acknowledged next_seq and history length per key."""
        with self.lock:
            return ({key: len(state.acked)
                     for key, state in self.streams.items()},
                    {key: len(state.history)
                     for key, state in self.values.items()})

    def pending_events(self, key):
        """Return the digests a pending transaction appends to key."""
        for events, _ in self.pending.values():
            if key in events:
                return events[key]
        return []

    def pending_value(self, key):
        """Return the value a pending transaction sets key to, or None."""
        for _, values in self.pending.values():
            if key in values:
                return values[key]
        return None


class Worker(threading.Thread):
    """Appends to its own streams and bumps its own counter until the
    connection breaks or stop is set."""

    def __init__(self, number, dsn, model, seed, async_commit, stop):
        super().__init__(name=f"worker-{number}", daemon=True)
        self.number = number
        self.dsn = dsn
        self.model = model
        self.rng = random.Random(seed)
        self.async_commit = async_commit
        self.stop = stop
        self.streams = [stream_key(number, j)
                        for j in range(STREAMS_PER_WORKER)]
        self.counter = counter_key(number)
        self.commits = 0
        self.unexpected_error = None

    def payload(self):
        """Return a random payload: mostly small, some empty, some TOASTed."""
        roll = self.rng.random()
        if roll < 0.08:
            size = 0
        elif roll < 0.78:
            size = self.rng.randrange(1, 200)
        elif roll < 0.98:
            size = self.rng.randrange(200, 8000)
        else:
            size = self.rng.randrange(100_000, 600_000)
        return self.rng.randbytes(size)

    def run(self):
        try:
            connection = harness.connect(self.dsn, DATABASE)
        except psycopg2.OperationalError:
            return
        try:
            with connection.cursor() as cursor:
                if self.async_commit:
                    cursor.execute("SET synchronous_commit = off")
                while not self.stop.is_set():
                    self.run_one(connection, cursor)
        except psycopg2.Error as error:
            # A closed connection means the server was killed, and the
            # transaction in flight stays pending. psycopg2 raises
            # OperationalError for some server errors too, hence the flag.
            if not connection.closed:
                self.unexpected_error = f"{error.pgcode}: {error.pgerror}"
        finally:
            connection.close()

    def run_one(self, connection, cursor):
        """Send one transaction and acknowledge it when it commits."""
        roll = self.rng.random()
        stream = self.rng.choice(self.streams)
        expected = self.model.next_seq(stream)

        if roll < 0.55:
            payload = self.payload()
            self.model.set_pending(self.number, {stream: [digest(payload)]}, {})
            cursor.execute("SELECT haematite.append(%s, %s, %s)",
                           (stream, payload, expected))
        elif roll < 0.80:
            count = (self.rng.randrange(1, 50) if self.rng.random() < 0.9
                     else self.rng.randrange(200, 600))
            payloads = [self.rng.randbytes(self.rng.randrange(0, 300))
                        for _ in range(count)]
            self.model.set_pending(
                self.number, {stream: [digest(p) for p in payloads]}, {})
            cursor.execute(
                "SELECT haematite.append_batch(%s, %s::bytea[], %s)",
                (stream, payloads, expected))
        elif roll < 0.92:
            current = self.model.value(self.counter)
            new_value = (current or 0) + self.rng.randrange(1, 6)
            self.model.set_pending(self.number, {},
                                   {self.counter: new_value})
            cursor.execute("SELECT haematite.cas(%s, %s, %s)",
                           (self.counter, current, new_value))
        else:
            # An append and a cas committed together, as a consumer that
            # records its progress would.
            payload = self.payload()
            current = self.model.value(self.counter)
            new_value = (current or 0) + 1
            self.model.set_pending(self.number, {stream: [digest(payload)]},
                                   {self.counter: new_value})
            connection.autocommit = False
            cursor.execute("SELECT haematite.append(%s, %s, %s)",
                           (stream, payload, expected))
            cursor.execute("SELECT haematite.cas(%s, %s, %s)",
                           (self.counter, current, new_value))
            connection.commit()
            connection.autocommit = True

        self.model.acknowledge(self.number)
        self.commits += 1


def stream_key(worker, index):
    return f"crash/worker{worker}/stream{index}".encode()


def counter_key(worker):
    return f"crash/worker{worker}/counter".encode()


class CrashSuite:
    """Runs the rounds and checks the store after every restart."""

    def __init__(self, seed):
        self.seed = seed
        self.rng = random.Random(seed)
        self.checks = harness.Checks("reliability_crash")
        self.cluster = harness.ThrowawayCluster(settings=CLUSTER_SETTINGS)
        stream_keys = [stream_key(w, j) for w in range(WORKERS)
                       for j in range(STREAMS_PER_WORKER)]
        value_keys = [counter_key(w) for w in range(WORKERS)]
        self.model = Model(stream_keys, value_keys)
        self.event_rows_compared = 0
        self.must_survive = 0
        self.values_checked = 0
        self.rounds_run = 0
        self.lost_without_flush = []

    def run(self):
        self.cluster.create()
        try:
            harness.create_database(self.cluster.dsn(), DATABASE)
            round_number = 0
            for mode, count in ROUNDS.items():
                for _ in range(count):
                    round_number += 1
                    self.run_round(round_number, mode)
        finally:
            self.cluster.stop()

        print(f"{self.rounds_run} crash rounds; {self.must_survive} checks "
              f"of an acknowledged event that had to survive a kill (an "
              f"event is checked again in every later round); "
              f"{self.event_rows_compared} event rows and "
              f"{self.values_checked} values compared with the clients' "
              f"record; acknowledged events lost without flush() per round: "
              f"{self.lost_without_flush}")
        return self.checks.summary()

    def run_round(self, number, mode):
        """Run workers, kill the server, restart it and check the store."""
        stop = threading.Event()
        async_commit = mode != "sync"
        workers = [Worker(w, self.cluster.dsn(), self.model,
                          self.rng.randrange(2 ** 32), async_commit, stop)
                   for w in range(WORKERS)]
        flusher = harness.connect(self.cluster.dsn(), DATABASE)

        for worker in workers:
            worker.start()
        time.sleep(self.rng.uniform(0.5, 2.5))

        # In the quiet modes the workers finish their transactions first, so
        # that the last commits sit in a partly filled WAL page that nothing
        # but flush() writes out before the kill.
        if mode in ("flush-quiet", "no-flush"):
            stop.set()
            for worker in workers:
                worker.join(timeout=60)

        flushed_lsn = None
        if mode in ("flush-busy", "flush-quiet"):
            floor = self.model.snapshot()
            with flusher.cursor() as cursor:
                cursor.execute("SELECT haematite.flush()")
                flushed_lsn = cursor.fetchone()[0]
            if mode == "flush-busy":
                time.sleep(self.rng.uniform(0.0, 0.3))
        self.cluster.kill_all()
        for worker in workers:
            worker.join(timeout=60)
        flusher.close()

        if mode == "sync":
            # Every acknowledged commit must survive. The floor is taken
            # after the workers stopped, so it includes a commit whose
            # acknowledgement arrived just before the kill.
            floor = self.model.snapshot()
        elif mode == "no-flush":
            # Nothing has to survive; the check still demands a consistent
            # store and counts what was lost.
            streams, values = self.model.snapshot()
            floor = ({key: 0 for key in streams}, {key: 1 for key in values})

        commits = sum(worker.commits for worker in workers)
        for worker in workers:
            self.checks.check(worker.unexpected_error is None,
                              f"round {number}: {worker.name} got an error "
                              f"before the kill: {worker.unexpected_error}")

        self.cluster.start()
        connection = harness.connect(self.cluster.dsn(), DATABASE)
        try:
            lost = self.check_store(number, connection, floor)
            self.check_appends_continue(number, connection)
        finally:
            connection.close()
        self.rounds_run += 1

        detail = (f"round {number} ({mode}): {commits} commits acknowledged "
                  f"in this round; the streams held "
                  f"{sum(floor[0].values())} events that had to survive")
        if flushed_lsn is not None:
            detail += f" (acknowledged before flush() returned {flushed_lsn})"
        detail += f"; {lost} acknowledged events lost"
        if mode == "no-flush":
            self.lost_without_flush.append(lost)
        print(detail, flush=True)

    def check_store(self, number, connection, floor):
        """Compare the restarted store with the model; return the number of
        acknowledged events that did not survive.

        floor holds, per key, how much of the acknowledged state must have
        survived. Afterwards the model contains what survived.
        """
        stream_floor, value_floor = floor
        lost = 0
        with connection.cursor() as cursor:
            for key, state in self.model.streams.items():
                lost += self.check_stream(number, cursor, key, state,
                                          stream_floor[key])
            for key, state in self.model.values.items():
                self.check_value(number, cursor, key, state, value_floor[key])

            # Nothing outside the model, and no event at or above next_seq.
            cursor.execute(
                "SELECT count(*) FROM haematite.stream_heads "
                "WHERE stream_key <> ALL (%s::bytea[])",
                (list(self.model.streams),))
            self.checks.equal(cursor.fetchone()[0], 0,
                              f"round {number}: stream heads no client wrote")
            cursor.execute(
                "SELECT count(*) FROM haematite.events e "
                "LEFT JOIN haematite.stream_heads h USING (stream_key) "
                "WHERE h.stream_key IS NULL OR e.seq >= h.next_seq")
            self.checks.equal(cursor.fetchone()[0], 0,
                              f"round {number}: events without a head row "
                              f"or at or above next_seq")
        self.model.pending.clear()
        return lost

    def check_stream(self, number, cursor, key, state, floor):
        """Check one stream after a restart; return its lost event count."""
        name = key.decode()
        pending = self.model.pending_events(key)
        cursor.execute(
            "SELECT next_seq FROM haematite.stream_heads "
            "WHERE stream_key = %s", (key,))
        row = cursor.fetchone()
        next_seq = row[0] if row else 0

        # next_seq is at a commit boundary at or above the floor, or just
        # after the transaction that was in flight.
        allowed = [b for b in state.boundaries if b >= floor]
        if pending:
            allowed.append(len(state.acked) + len(pending))
        self.checks.check(
            next_seq in allowed,
            f"round {number}: stream {name} has next_seq {next_seq}; "
            f"acknowledged {len(state.acked)}, must keep {floor}, "
            f"{len(pending)} in flight, allowed values {allowed[-5:]}")

        cursor.execute(
            "SELECT seq, sha256(payload) FROM haematite.events "
            "WHERE stream_key = %s ORDER BY seq", (key,))
        rows = [(seq, bytes(stored)) for seq, stored in cursor.fetchall()]
        seqs = [seq for seq, _ in rows]
        self.checks.check(
            seqs == list(range(next_seq)),
            f"round {number}: stream {name} with next_seq {next_seq} holds "
            f"{len(seqs)} events, first missing or extra seq "
            f"{first_difference(seqs, list(range(next_seq)))}")

        expected = (state.acked + pending)[:next_seq]
        wrong = [seq for (seq, stored), want in zip(rows, expected)
                 if stored != want]
        self.checks.check(not wrong,
                          f"round {number}: stream {name} has wrong payloads "
                          f"at seqs {wrong[:10]}")
        self.event_rows_compared += len(rows)
        self.must_survive += floor

        # From here on the model contains what the store contains, so that
        # a failed check does not cascade into the following rounds.
        lost = max(0, len(state.acked) - next_seq)
        state.acked = [stored for _, stored in rows]
        state.boundaries = [b for b in state.boundaries
                            if b <= len(state.acked)]
        if state.boundaries[-1] != len(state.acked):
            state.boundaries.append(len(state.acked))
        return lost

    def check_value(self, number, cursor, key, state, floor):
        """Check one CAS counter after a restart."""
        name = key.decode()
        cursor.execute(
            "SELECT value FROM haematite.scalar_values WHERE key = %s", (key,))
        row = cursor.fetchone()
        value = row[0] if row else None

        allowed = state.history[floor - 1:]
        in_flight = self.model.pending_value(key)
        if in_flight is not None:
            allowed = allowed + [in_flight]
        if self.checks.check(
                value in allowed,
                f"round {number}: counter {name} is {value}; acknowledged "
                f"values since the last that must survive: {allowed[-5:]}"):
            self.values_checked += 1
            if value != state.history[-1]:
                if value in state.history:
                    del state.history[state.history.index(value) + 1:]
                else:
                    state.history.append(value)

    def check_appends_continue(self, number, connection):
        """Append to every stream at its next_seq; a stale one gets SE001."""
        with connection.cursor() as cursor:
            for key, state in self.model.streams.items():
                name = key.decode()
                next_seq = len(state.acked)
                if next_seq > 0:
                    try:
                        cursor.execute("SELECT haematite.append(%s, %s, %s)",
                                       (key, b"stale", next_seq - 1))
                        self.checks.check(False,
                                          f"round {number}: stale append to "
                                          f"{name} at {next_seq - 1} succeeded")
                    except psycopg2.Error as error:
                        self.checks.equal(error.pgcode, "SE001",
                                          f"round {number}: stale append to "
                                          f"{name}")
                payload = f"after crash round {number}".encode()
                try:
                    cursor.execute("SELECT haematite.append(%s, %s, %s)",
                                   (key, payload, next_seq))
                    self.checks.equal(cursor.fetchone()[0], next_seq + 1,
                                      f"round {number}: append to {name} at "
                                      f"next_seq {next_seq}")
                except psycopg2.Error as error:
                    self.checks.check(False, f"round {number}: append to "
                                      f"{name} at {next_seq} raised "
                                      f"{error.pgcode}: {error.pgerror}")
                    continue
                state.acked.append(digest(payload))
                state.boundaries.append(next_seq + 1)


def first_difference(actual, expected):
    """Return the first position where two lists differ, or None."""
    for position, (a, b) in enumerate(zip(actual, expected)):
        if a != b:
            return position
    if len(actual) != len(expected):
        return min(len(actual), len(expected))
    return None


def main():
    seed = int(os.environ.get("HAEMATITE_CRASH_SEED",
                              random.randrange(1, 2 ** 31)))
    print(f"reliability_crash: seed {seed} "
          f"(HAEMATITE_CRASH_SEED={seed} reuses it)", flush=True)
    started = time.monotonic()
    status = CrashSuite(seed).run()
    print(f"reliability_crash took {time.monotonic() - started:.0f} s")
    return status


if __name__ == "__main__":
    sys.exit(main())

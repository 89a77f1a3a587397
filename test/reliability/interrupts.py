"""Interrupt suite: cancels, timeouts, terminations and errors mid-call.

A large append_batch (100,000 payloads) or a sweep of many expired events
is stopped part-way by statement_timeout, pg_cancel_backend or
pg_terminate_backend. Each must leave no partial batch, no head row ahead of
its events, no expired event deleted by the interrupted sweep, and no lock.
To catch a leftover lock, another session then appends to the same stream
(and sweeps) with lock_timeout set, which fails instead of waiting.

To stop a call part-way without relying on timing, a second session makes
it wait at a known point:
  - append_batch: that session inserts, without committing, an event row at
    the seq the batch reaches half-way, so the batch waits on the unique
    index with 50,000 events already inserted;
  - sweep: a test trigger on haematite.events makes the 10,000th deletion
    wait for an advisory lock that session holds.
The interrupt is sent once pg_stat_activity shows the call waiting.

Further cases:
  - calls interrupted at a random moment, after which either everything or
    nothing is written;
  - reads consumed a few rows at a time or stopped half-way, after which the
    session reads the stream in full;
  - an error raised half-way through a batch (SE004, from an event row
    written around haematite);
  - failed or rolled-back calls inside savepoints and PL/pgSQL exception
    blocks, which must leave the stream exactly as before the savepoint.

The suite uses the server that PGHOST and PGPORT name, in a database of its
own, or starts its own throwaway cluster when they are not set. Random
moments come from a seed, printed at the start; set HAEMATITE_INTERRUPT_SEED
to reuse one.
"""

import os
import random
import sys
import threading
import time

import psycopg2

import harness

DATABASE = "haematite_interrupts"
BATCH_SIZE = 100_000
SWEEP_EVENTS = 20_000
ADVISORY_KEY = 4_201_337

# statement_timeout for the sweeps this suite runs to check or clean up.
# Deleting 100,000 expired events takes well under a second. With stale
# statistics a sweep has been seen to rescan the event table once per
# expired row, and the bound turns that into a failed check instead of a
# run of many minutes.
SWEEP_TIMEOUT = "60s"

# statement_timeout for calls that wait at a known point. It must be longer
# than the work done before that point, which takes well under a second.
# With a shorter one the check that the call was waiting fails.
TIMEOUT = "3s"

# SQL for a batch of BATCH_SIZE distinct payloads, built on the server so
# that the client does not send megabytes of array literal.
BATCH_PAYLOADS = (
    "ARRAY(SELECT convert_to('interrupted batch ' || i, 'UTF8') "
    f"FROM generate_series(1, {BATCH_SIZE}) AS i)")

# A trigger that makes a sweep wait, after deleting rows, until the advisory
# lock ADVISORY_KEY is free. It counts deletions in a transaction-local
# setting, so the wait happens at the same deletion however the rows are
# ordered.
HOLD_SWEEP_SQL = f"""
CREATE FUNCTION public.hold_sweep() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    deleted integer := coalesce(
        nullif(current_setting('reliability.deleted', true), ''), '0')::integer
        + 1;
BEGIN
    PERFORM set_config('reliability.deleted', deleted::text, true);
    IF deleted = {SWEEP_EVENTS // 2} THEN
        PERFORM pg_advisory_xact_lock_shared({ADVISORY_KEY});
    END IF;
    RETURN OLD;
END $$;
CREATE TRIGGER hold_sweep BEFORE DELETE ON haematite.events
    FOR EACH ROW EXECUTE FUNCTION public.hold_sweep();
"""


class CallInThread(threading.Thread):
    """Runs statements on a connection in a thread and keeps the outcome
    of the last one."""

    def __init__(self, connection, statements):
        super().__init__(daemon=True)
        self.connection = connection
        self.statements = statements
        self.error = None
        self.result = None

    def run(self):
        try:
            with self.connection.cursor() as cursor:
                for sql, args in self.statements:
                    cursor.execute(sql, args)
                self.result = cursor.fetchone()
        except psycopg2.Error as error:
            self.error = error


class InterruptSuite:
    """The cases; each one starts from streams of its own."""

    def __init__(self, dsn, seed):
        self.dsn = dsn
        self.rng = random.Random(seed)
        self.checks = harness.Checks("reliability_interrupts")
        self.admin = harness.connect(dsn, DATABASE)
        self.case_number = 0

    def connect(self):
        return harness.connect(self.dsn, DATABASE)

    # Helpers that read the tables directly, as superuser.

    def stream_rows(self, key):
        """Return (head next_seq or None, [(seq, payload), ...])."""
        with self.admin.cursor() as cursor:
            cursor.execute("SELECT next_seq FROM haematite.stream_heads "
                           "WHERE stream_key = %s", (key,))
            row = cursor.fetchone()
            cursor.execute("SELECT seq, payload FROM haematite.events "
                           "WHERE stream_key = %s ORDER BY seq", (key,))
            events = [(seq, bytes(payload)) for seq, payload in cursor]
        return (row[0] if row else None), events

    def sql(self, statement, args=None):
        """Run one statement as superuser; return its first row, if any."""
        with self.admin.cursor() as cursor:
            cursor.execute(statement, args)
            return cursor.fetchone() if cursor.description else None

    def new_stream(self, name, count):
        """Create a stream of count small events; return its key."""
        self.case_number += 1
        key = f"interrupts/{self.case_number}/{name}".encode()
        if count:
            self.sql("SELECT haematite.append_batch(%s, %s::bytea[], 0)",
                     (key, [f"event {i}".encode() for i in range(count)]))
        return key

    def wait_until_waiting(self, pid, wait_event_type, call):
        """Poll pg_stat_activity until backend pid waits for a lock; return
        False if the call ends first."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and call.is_alive():
            row = self.sql("SELECT wait_event_type, wait_event "
                           "FROM pg_stat_activity WHERE pid = %s", (pid,))
            if row and row[0] == wait_event_type:
                return True
            time.sleep(0.005)
        return False

    def check_unchanged(self, label, key, before):
        """Check that a stream's head and events equal before."""
        after = self.stream_rows(key)
        self.checks.equal(after[0], before[0], f"{label}: head next_seq")
        self.checks.equal(len(after[1]), len(before[1]),
                          f"{label}: number of events")
        self.checks.check(after[1] == before[1],
                          f"{label}: events differ from before the call")

    def check_append_without_waiting(self, label, key, expected_next):
        """Append at expected_next from a new session with lock_timeout set;
        a lock left behind raises 55P03 instead of waiting."""
        connection = self.connect()
        try:
            with connection.cursor() as cursor:
                cursor.execute("SET lock_timeout = '200ms'")
                cursor.execute("SELECT haematite.append(%s, %s, %s)",
                               (key, b"after the interrupt", expected_next))
                self.checks.equal(cursor.fetchone()[0], expected_next + 1,
                                  f"{label}: append after the interrupt")
        except psycopg2.Error as error:
            self.checks.check(False, f"{label}: append after the interrupt "
                              f"failed with {error.pgcode}: {error.pgerror}")
        finally:
            connection.close()

    def check_no_waiting_locks(self, label):
        """Check that no session of this suite's database waits for a lock."""
        row = self.sql("SELECT count(*) FROM pg_locks l "
                       "JOIN pg_stat_activity a USING (pid) "
                       "WHERE NOT l.granted AND a.datname = current_database()")
        self.checks.equal(row[0], 0, f"{label}: lock requests still waiting")

    def interrupt(self, method, victim_pid):
        """Send pg_cancel_backend or pg_terminate_backend to victim_pid."""
        function = {"cancel": "pg_cancel_backend",
                    "terminate": "pg_terminate_backend"}[method]
        row = self.sql(f"SELECT {function}(%s)", (victim_pid,))
        self.checks.check(row[0], f"{function}({victim_pid}) returned false")

    def check_interrupted(self, label, method, call, victim):
        """Check the interrupted call's error."""
        expected = "57P01" if method == "terminate" else "57014"
        pgcode = call.error.pgcode if call.error is not None else None
        if method == "terminate" and call.error is not None and pgcode is None:
            # libpq may report the closed connection without the server's
            # FATAL message; the connection must be closed either way.
            pgcode = "57P01"
        self.checks.equal(pgcode, expected, f"{label}: SQLSTATE of the call")
        if method == "terminate":
            self.checks.check(victim.closed != 0,
                              f"{label}: connection still open after "
                              f"pg_terminate_backend")

    # Cases.

    def batch_interrupted_halfway(self, method, in_transaction):
        """A 100,000-payload batch stopped while waiting half-way."""
        label = (f"append_batch stopped half-way by {method}"
                 f"{' in a transaction' if in_transaction else ''}")
        key = self.new_stream("batch", 3)
        other = self.new_stream("other", 2)
        before = self.stream_rows(key)
        other_before = self.stream_rows(other)

        # The blocker's uncommitted row at the seq the batch reaches half-way.
        blocker = self.connect()
        blocker.autocommit = False
        with blocker.cursor() as cursor:
            cursor.execute(
                "INSERT INTO haematite.events (stream_key, seq, payload, "
                "appended_at) VALUES (%s, %s, 'blocker', now())",
                (key, 3 + BATCH_SIZE // 2))

        victim = self.connect()
        statements = []
        if method == "statement_timeout":
            statements.append((f"SET statement_timeout = '{TIMEOUT}'", None))
        if in_transaction:
            victim.autocommit = False
            statements.append(("SELECT haematite.append(%s, 'in the same "
                               "transaction', 2)", (other,)))
        statements.append(("SELECT haematite.append_batch(%s, "
                           f"{BATCH_PAYLOADS}, 3)", (key,)))
        call = CallInThread(victim, statements)
        pid = victim.get_backend_pid()
        call.start()

        reached = self.wait_until_waiting(pid, "Lock", call)
        self.checks.check(reached, f"{label}: batch never waited for the "
                          f"blocker's row")
        if method != "statement_timeout":
            self.interrupt(method, pid)
        call.join(timeout=60)
        self.checks.check(not call.is_alive(), f"{label}: call did not end")
        self.check_interrupted(label, method, call, victim)

        # The victim's transaction, still open but aborted, holds no lock.
        blocker.rollback()
        blocker.close()
        self.check_unchanged(label, key, before)
        self.check_no_waiting_locks(label)
        self.check_append_without_waiting(label, key, 3)
        if in_transaction:
            self.check_append_without_waiting(f"{label} (other stream)",
                                              other, 2)
        if not victim.closed:
            victim.rollback()
            victim.close()
        after_other = self.stream_rows(other)
        self.checks.equal(len(after_other[1]),
                          len(other_before[1]) + (1 if in_transaction else 0),
                          f"{label}: events of the other stream")

    def batch_interrupted_at_random(self, method):
        """A 100,000-payload batch stopped at a random moment: all or
        nothing."""
        label = f"append_batch stopped at a random moment by {method}"
        key = self.new_stream("random", 1)
        before = self.stream_rows(key)
        victim = self.connect()
        delay_ms = self.rng.randrange(5, 1500)
        statements = []
        if method == "statement_timeout":
            statements.append((f"SET statement_timeout = '{delay_ms}ms'", None))
        statements.append(("SELECT haematite.append_batch(%s, "
                           f"{BATCH_PAYLOADS}, 1)", (key,)))
        call = CallInThread(victim, statements)
        pid = victim.get_backend_pid()
        call.start()
        if method != "statement_timeout":
            time.sleep(delay_ms / 1000)
            self.interrupt(method, pid)
        call.join(timeout=60)
        victim.close()

        after = self.stream_rows(key)
        if call.error is None:
            outcome = "completed"
            self.checks.equal(after[0], 1 + BATCH_SIZE,
                              f"{label}: next_seq after a completed batch")
            self.checks.equal([seq for seq, _ in after[1]],
                              list(range(1 + BATCH_SIZE)),
                              f"{label}: seqs after a completed batch")
        else:
            outcome = f"raised {call.error.pgcode}"
            self.checks.check(call.error.pgcode in ("57014", "57P01", None),
                              f"{label}: unexpected error "
                              f"{call.error.pgcode}: {call.error.pgerror}")
            self.check_unchanged(label, key, before)
        self.check_append_without_waiting(label, key, after[0])
        return f"{method} after {delay_ms} ms: {outcome}"

    def fill_expired(self, count):
        """Create a stream of count events that have already expired."""
        key = self.new_stream("expired", 0)
        self.sql("SELECT haematite.append_batch(%s, ARRAY(SELECT "
                 "convert_to('expired ' || i, 'UTF8') FROM "
                 "generate_series(1, %s) AS i), 0, '0 seconds')",
                 (key, count))
        return key

    def expired_count(self):
        return self.sql("SELECT count(*) FROM haematite.events "
                        "WHERE expires_at <= now()")[0]

    def sweep_interrupted_halfway(self, method):
        """A sweep stopped while waiting after deleting half of its rows."""
        label = f"sweep stopped half-way by {method}"
        key = self.fill_expired(SWEEP_EVENTS)
        before_expired = self.expired_count()
        before = self.stream_rows(key)

        holder = self.connect()
        with holder.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_KEY,))
        self.sql(HOLD_SWEEP_SQL)

        victim = self.connect()
        statements = []
        if method == "statement_timeout":
            statements.append((f"SET statement_timeout = '{TIMEOUT}'", None))
        statements.append(("SELECT haematite.sweep()", None))
        call = CallInThread(victim, statements)
        pid = victim.get_backend_pid()
        call.start()
        reached = self.wait_until_waiting(pid, "Lock", call)
        self.checks.check(reached, f"{label}: sweep never waited half-way")
        if method != "statement_timeout":
            self.interrupt(method, pid)
        call.join(timeout=60)
        self.check_interrupted(label, method, call, victim)
        victim.close()

        holder.close()
        self.sql("DROP TRIGGER hold_sweep ON haematite.events; "
                 "DROP FUNCTION public.hold_sweep()")
        self.check_unchanged(label, key, before)
        self.checks.equal(self.expired_count(), before_expired,
                          f"{label}: expired events left")
        self.check_no_waiting_locks(label)

        # A new sweep deletes every expired event: a row lock left behind
        # would make it skip that row (it uses SKIP LOCKED).
        connection = self.connect()
        try:
            with connection.cursor() as cursor:
                cursor.execute("SET lock_timeout = '200ms'")
                cursor.execute(f"SET statement_timeout = '{SWEEP_TIMEOUT}'")
                cursor.execute("SELECT haematite.sweep()")
                self.checks.equal(cursor.fetchone()[0], before_expired,
                                  f"{label}: events deleted by the next sweep")
        except psycopg2.Error as error:
            self.checks.check(False, f"{label}: the next sweep raised "
                              f"{error.pgcode}: {error.pgerror.strip()}")
        finally:
            connection.close()
        self.check_append_without_waiting(label, key, before[0])

    def sweep_all(self, label):
        """Sweep every expired event, within SWEEP_TIMEOUT."""
        connection = self.connect()
        try:
            with connection.cursor() as cursor:
                cursor.execute(f"SET statement_timeout = '{SWEEP_TIMEOUT}'")
                cursor.execute("SELECT haematite.sweep()")
        except psycopg2.Error as error:
            self.checks.check(False, f"{label}: cleaning sweep raised "
                              f"{error.pgcode}: {error.pgerror.strip()}")
        finally:
            connection.close()

    def sweep_interrupted_at_random(self):
        """A sweep stopped by statement_timeout at a random moment."""
        label = "sweep stopped at a random moment by statement_timeout"
        self.fill_expired(SWEEP_EVENTS * 5)
        before_expired = self.expired_count()
        delay_ms = self.rng.randrange(5, 1500)
        victim = self.connect()
        call = CallInThread(victim, [
            (f"SET statement_timeout = '{delay_ms}ms'", None),
            ("SELECT haematite.sweep()", None)])
        call.start()
        call.join(timeout=60)
        victim.close()
        left = self.expired_count()
        if call.error is None:
            outcome = "completed"
            self.checks.equal(call.result[0], before_expired,
                              f"{label}: count returned by sweep")
            self.checks.equal(left, 0, f"{label}: expired events left")
        else:
            outcome = f"raised {call.error.pgcode}"
            self.checks.equal(call.error.pgcode, "57014",
                              f"{label}: SQLSTATE")
            self.checks.equal(left, before_expired,
                              f"{label}: expired events left")
            self.sweep_all(label)
        return f"statement_timeout of {delay_ms} ms on sweep: {outcome}"

    def batch_failing_halfway(self):
        """A batch that raises SE004 half-way, at top level and in a
        savepoint, writes nothing."""
        label = "append_batch raising SE004 half-way"
        key = self.new_stream("collision", 4)
        # An event row written around haematite, 500 seqs ahead of the head.
        self.sql("INSERT INTO haematite.events (stream_key, seq, payload, "
                 "appended_at) VALUES (%s, 504, 'written around', now())",
                 (key,))
        before = self.stream_rows(key)
        payloads = [f"batch {i}".encode() for i in range(1000)]

        connection = self.connect()
        with connection.cursor() as cursor:
            try:
                cursor.execute("SELECT haematite.append_batch(%s, "
                               "%s::bytea[], 4)", (key, payloads))
                self.checks.check(False, f"{label}: batch succeeded")
            except psycopg2.Error as error:
                self.checks.equal(error.pgcode, "SE004", f"{label}: SQLSTATE")
            self.check_unchanged(f"{label} at top level", key, before)

            connection.autocommit = False
            cursor.execute("SELECT haematite.append(%s, 'kept', 4)", (key,))
            cursor.execute("SAVEPOINT before_batch")
            try:
                cursor.execute("SELECT haematite.append_batch(%s, "
                               "%s::bytea[], 5)", (key, payloads))
                self.checks.check(False, f"{label}: batch succeeded")
            except psycopg2.Error as error:
                self.checks.equal(error.pgcode, "SE004",
                                  f"{label} in a savepoint: SQLSTATE")
            cursor.execute("ROLLBACK TO SAVEPOINT before_batch")
            cursor.execute("SELECT haematite.next_seq(%s)", (key,))
            self.checks.equal(cursor.fetchone()[0], 5,
                              f"{label}: next_seq after ROLLBACK TO SAVEPOINT")
            connection.commit()
        connection.close()

        after = self.stream_rows(key)
        self.checks.equal(after[0], 5, f"{label}: next_seq after commit")
        self.checks.equal([seq for seq, _ in after[1]], [0, 1, 2, 3, 4, 504],
                          f"{label}: seqs after commit")
        self.sql("DELETE FROM haematite.events WHERE stream_key = %s "
                 "AND seq = 504", (key,))

    def savepoint_rolled_back(self):
        """Calls undone by ROLLBACK TO SAVEPOINT leave no trace, and the
        stream continues from where it was before the savepoint."""
        label = "savepoint rolled back"
        key = self.new_stream("savepoint", 2)
        value_key = f"interrupts/{self.case_number}/value".encode()
        self.sql("SELECT haematite.cas(%s, NULL, 7)", (value_key,))
        before = self.stream_rows(key)

        connection = self.connect()
        connection.autocommit = False
        with connection.cursor() as cursor:
            cursor.execute("SELECT haematite.append(%s, 'first', 2)", (key,))
            cursor.execute("SAVEPOINT s")
            cursor.execute("SELECT haematite.append(%s, 'undone', 3)", (key,))
            cursor.execute("SELECT haematite.append_batch(%s, "
                           "ARRAY['undone 1', 'undone 2']::bytea[], 4)",
                           (key,))
            cursor.execute("SELECT haematite.cas(%s, 7, 8)", (value_key,))
            cursor.execute("ROLLBACK TO SAVEPOINT s")

            cursor.execute("SELECT haematite.next_seq(%s)", (key,))
            self.checks.equal(cursor.fetchone()[0], 3,
                              f"{label}: next_seq inside the transaction")
            cursor.execute("SELECT haematite.read_value(%s)", (value_key,))
            self.checks.equal(cursor.fetchone()[0], 7,
                              f"{label}: value inside the transaction")
            cursor.execute("SELECT count(*) FROM haematite.read(%s)", (key,))
            self.checks.equal(cursor.fetchone()[0], 3,
                              f"{label}: events read inside the transaction")

            # A failing call in a savepoint: the same.
            cursor.execute("SAVEPOINT t")
            cursor.execute("SELECT haematite.append(%s, 'undone', 3)", (key,))
            try:
                cursor.execute("SELECT haematite.append(%s, 'stale', 3)",
                               (key,))
                self.checks.check(False, f"{label}: stale append succeeded")
            except psycopg2.Error as error:
                self.checks.equal(error.pgcode, "SE001",
                                  f"{label}: stale append")
            cursor.execute("ROLLBACK TO SAVEPOINT t")
            cursor.execute("SELECT haematite.append(%s, 'second', 3)", (key,))
            self.checks.equal(cursor.fetchone()[0], 4,
                              f"{label}: append after the rollbacks")
            connection.commit()
        connection.close()

        after = self.stream_rows(key)
        self.checks.equal(after[0], 4, f"{label}: next_seq after commit")
        self.checks.equal(after[1], before[1] + [(2, b"first"), (3, b"second")],
                          f"{label}: events after commit")
        self.checks.equal(self.sql("SELECT value FROM haematite.scalar_values "
                                   "WHERE key = %s", (value_key,))[0], 7,
                          f"{label}: value after commit")

    def plpgsql_exception_caught(self):
        """Errors caught in PL/pgSQL exception blocks undo the block's
        calls, and the function carries on from the state before it."""
        label = "PL/pgSQL exception caught"
        key = self.new_stream("plpgsql", 1)
        value_key = f"interrupts/{self.case_number}/value".encode()
        blocked_key = self.new_stream("plpgsql-blocked", 1)

        # A row at seq 1 + 500 makes the batch in the third block wait
        # until the statement_timeout set for the call cancels it, which
        # can only happen there: the function does nothing else that waits.
        blocker = self.connect()
        blocker.autocommit = False
        with blocker.cursor() as cursor:
            cursor.execute(
                "INSERT INTO haematite.events (stream_key, seq, payload, "
                "appended_at) VALUES (%s, 501, 'blocker', now())",
                (blocked_key,))

        caught = []
        connection = self.connect()
        connection.notices = caught
        with connection.cursor() as cursor:
            cursor.execute("""
CREATE FUNCTION pg_temp.exercise(k bytea, v bytea, b bytea) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM haematite.append(k, 'a', 1);
    PERFORM haematite.cas(v, NULL, 1);

    BEGIN
        PERFORM haematite.append(k, 'undone', 2);
        PERFORM haematite.append_batch(k, ARRAY['undone', 'undone']::bytea[], 3);
        PERFORM haematite.cas(v, 1, 2);
        PERFORM haematite.append(k, 'stale', 2);
    EXCEPTION WHEN SQLSTATE 'SE001' THEN
        RAISE NOTICE 'caught %', SQLSTATE;
    END;
    IF haematite.next_seq(k) <> 2 OR haematite.read_value(v) <> 1 THEN
        RETURN 'state after SE001: next_seq ' || haematite.next_seq(k)
            || ', value ' || haematite.read_value(v);
    END IF;

    BEGIN
        PERFORM haematite.cas(v, 1, 5);
        PERFORM haematite.cas(v, 1, 6);
    EXCEPTION WHEN SQLSTATE 'SE002' THEN
        RAISE NOTICE 'caught %', SQLSTATE;
    END;
    IF haematite.read_value(v) <> 1 THEN
        RETURN 'value after SE002: ' || haematite.read_value(v);
    END IF;

    BEGIN
        PERFORM haematite.append(k, 'undone', 2);
        PERFORM haematite.append_batch(b,
            ARRAY(SELECT convert_to('x' || i, 'UTF8')
                  FROM generate_series(1, 1000) AS i), 1);
    EXCEPTION WHEN query_canceled THEN
        RAISE NOTICE 'caught %', SQLSTATE;
    END;
    IF haematite.next_seq(k) <> 2 OR haematite.next_seq(b) <> 1 THEN
        RETURN 'state after 57014: next_seq ' || haematite.next_seq(k)
            || ' and ' || haematite.next_seq(b);
    END IF;

    BEGIN
        PERFORM haematite.append(k, NULL, 2);
    EXCEPTION WHEN null_value_not_allowed THEN
        RAISE NOTICE 'caught %', SQLSTATE;
    END;

    PERFORM haematite.append(k, 'b', 2);
    RETURN 'done';
END $$""")
            cursor.execute(f"SET statement_timeout = '{TIMEOUT}'")
            try:
                cursor.execute("SELECT pg_temp.exercise(%s, %s, %s)",
                               (key, value_key, blocked_key))
                outcome = cursor.fetchone()[0]
            except psycopg2.Error as error:
                outcome = f"{error.pgcode}: {error.pgerror}"
        connection.close()
        blocker.rollback()
        blocker.close()

        self.checks.equal(outcome, "done", f"{label}: function result")
        self.checks.equal([line.strip() for line in caught],
                          ["NOTICE:  caught SE001", "NOTICE:  caught SE002",
                           "NOTICE:  caught 57014", "NOTICE:  caught 22004"],
                          f"{label}: errors caught")
        after = self.stream_rows(key)
        self.checks.equal(after[0], 3, f"{label}: next_seq after the call")
        self.checks.equal([payload for _, payload in after[1]],
                          [b"event 0", b"a", b"b"],
                          f"{label}: events after the call")
        self.checks.equal(self.sql("SELECT value FROM haematite.scalar_values "
                                   "WHERE key = %s", (value_key,))[0], 1,
                          f"{label}: value after the call")
        self.checks.equal(self.stream_rows(blocked_key)[0], 1,
                          f"{label}: next_seq of the stream whose batch "
                          f"timed out")

    def read_stopped_halfway(self):
        """Check reads consumed across the 1,000-row batches of haematite's
        cursor, and reads stopped half-way.

        A read consumed a few rows at a time returns every event. A read
        stopped by an error caught in PL/pgSQL, by LIMIT or by
        statement_timeout leaves the session able to read the stream again.
        """
        label = "read stopped half-way"
        events = 2500
        key = self.new_stream("read", 0)
        self.sql("SELECT haematite.append_batch(%s, ARRAY(SELECT "
                 "convert_to('read ' || i, 'UTF8') FROM "
                 "generate_series(1, %s) AS i), 0)", (key, events))

        # read() in the select list returns one row per call, so the
        # PL/pgSQL loop and the SQL cursor below consume it between fetches
        # of its cursor, and the error stops it in its second batch.
        function_sql = """
CREATE FUNCTION pg_temp.read_partly(k bytea, stop_at integer) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    r record;
    n integer := 0;
    total bigint;
BEGIN
    BEGIN
        FOR r IN SELECT haematite.read(k) AS event LOOP
            n := n + 1;
            IF n = stop_at THEN
                RAISE EXCEPTION 'stop reading';
            END IF;
        END LOOP;
    EXCEPTION WHEN raise_exception THEN
        NULL;
    END;
    SELECT count(*) INTO total FROM haematite.read(k);
    RETURN n || ' then ' || total;
END $$"""
        cases = [
            ("a PL/pgSQL loop over read()",
             ["SELECT pg_temp.read_partly(%s, 0)"],
             f"{events} then {events}"),
            ("an error caught in PL/pgSQL in the second batch",
             ["SELECT pg_temp.read_partly(%s, 1500)"],
             f"1500 then {events}"),
            ("a cursor fetched across the batch boundary",
             ["DECLARE c CURSOR FOR SELECT (haematite.read(%s)).seq",
              "MOVE 999 FROM c", "SELECT 1", "FETCH 2 FROM c"],
             [(999,), (1000,)]),
            ("LIMIT",
             ["SELECT count(*) FROM (SELECT haematite.read(%s) LIMIT 10) "
              "AS first_rows"],
             [(10,)]),
        ]
        connection = self.connect()
        with connection.cursor() as cursor:
            cursor.execute(function_sql)
        for name, statements, expected in cases:
            connection.autocommit = False
            try:
                with connection.cursor() as cursor:
                    for statement in statements:
                        args = (key,) if "%s" in statement else None
                        cursor.execute(statement, args)
                    result = cursor.fetchall()
                    if isinstance(expected, str):
                        result = result[0][0]
                    self.checks.equal(result, expected,
                                      f"{label} by {name}: rows read")
            except psycopg2.Error as error:
                self.checks.check(False, f"{label} by {name}: raised "
                                  f"{error.pgcode}: {error.pgerror.strip()}")
            connection.rollback()
        connection.autocommit = True

        delay_ms = self.rng.randrange(1, 60)
        with connection.cursor() as cursor:
            cursor.execute(f"SET statement_timeout = '{delay_ms}ms'")
            try:
                cursor.execute("SELECT count(*) FROM haematite.read(%s)",
                               (key,))
                outcome = "completed"
            except psycopg2.Error as error:
                outcome = f"raised {error.pgcode}"
                self.checks.equal(error.pgcode, "57014",
                                  f"{label} by statement_timeout: SQLSTATE")
            cursor.execute("RESET statement_timeout")
            cursor.execute("SELECT count(*), min(seq), max(seq) "
                           "FROM haematite.read(%s)", (key,))
            self.checks.equal(cursor.fetchone(), (events, 0, events - 1),
                              f"{label}: full read afterwards")
        connection.close()
        return f"statement_timeout of {delay_ms} ms on a read: {outcome}"

    def run(self):
        outcomes = []
        for method in ("statement_timeout", "cancel", "terminate"):
            for in_transaction in (False, True):
                self.batch_interrupted_halfway(method, in_transaction)
            self.sweep_interrupted_halfway(method)
        for method in ("statement_timeout", "cancel", "terminate",
                       "statement_timeout", "cancel"):
            outcomes.append(self.batch_interrupted_at_random(method))
        outcomes.append(self.sweep_interrupted_at_random())
        outcomes.append(self.sweep_interrupted_at_random())
        outcomes.append(self.read_stopped_halfway())
        self.batch_failing_halfway()
        self.savepoint_rolled_back()
        self.plpgsql_exception_caught()
        self.check_store_invariants()
        for outcome in outcomes:
            print(f"random interrupt: {outcome}")
        return self.checks.summary()

    def check_store_invariants(self):
        """Check every stream: no event at or above next_seq, and every seq
        below it present in the streams that were given no TTL."""
        row = self.sql(
            "SELECT count(*) FROM haematite.events e "
            "LEFT JOIN haematite.stream_heads h USING (stream_key) "
            "WHERE h.stream_key IS NULL OR e.seq >= h.next_seq")
        self.checks.equal(row[0], 0, "events without a head or at or above "
                          "next_seq")
        # Only the streams made by fill_expired (keys ending in "/expired")
        # were given a TTL.
        row = self.sql(
            "SELECT count(*) FROM haematite.stream_heads h "
            "WHERE h.stream_key NOT LIKE '%/expired'::bytea AND h.next_seq <> "
            "(SELECT count(*) FROM haematite.events e "
            " WHERE e.stream_key = h.stream_key)")
        self.checks.equal(row[0], 0, "streams without TTL whose event count "
                          "differs from next_seq")


def main():
    seed = int(os.environ.get("HAEMATITE_INTERRUPT_SEED",
                              random.randrange(1, 2 ** 31)))
    print(f"reliability_interrupts: seed {seed} "
          f"(HAEMATITE_INTERRUPT_SEED={seed} reuses it)", flush=True)
    started = time.monotonic()
    cluster = None
    dsn = harness.server_dsn_from_environment()
    if dsn is None:
        cluster = harness.ThrowawayCluster()
        cluster.create()
        dsn = cluster.dsn().rsplit(" dbname=", 1)[0]
    try:
        harness.create_database(dsn, DATABASE)
        suite = InterruptSuite(dsn, seed)
        try:
            status = suite.run()
        finally:
            suite.admin.close()
        harness.drop_database(dsn, DATABASE)
    finally:
        if cluster is not None:
            cluster.stop()
    print(f"reliability_interrupts took {time.monotonic() - started:.0f} s")
    return status


if __name__ == "__main__":
    sys.exit(main())

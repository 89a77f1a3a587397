#!/usr/bin/env python3
"""Append events to a haematite stream with optimistic concurrency.

Usage: producer.py STREAM --producer-id ID --count N

Appends N events to STREAM. Each payload is a small JSON document naming the
producer and a counter from 1 to N. Any number of producers may append to the
same stream at once: an append that loses the race fails with SQLSTATE SE001
(sequence conflict), and this producer then re-reads the stream's next
sequence and tries again. At the end it prints how many events it appended and
how many conflicts it retried.

The connection settings come from the standard libpq environment variables
(PGHOST, PGPORT, PGUSER, PGDATABASE, PGPASSWORD, ...).
"""

import argparse
import json
import random
import sys
import time

import psycopg

# haematite's SQLSTATE for "expected_seq is not the stream's next sequence".
SEQUENCE_CONFLICT = "SE001"

# Give up on one event after this many conflicts in a row. Every conflict
# means another producer appended, so the stream as a whole keeps moving, but
# one unlucky producer could otherwise retry for a very long time.
MAX_CONFLICTS_PER_EVENT = 100

# After a conflict, wait a random time before retrying, up to a limit that
# doubles with each conflict in a row (exponential backoff with jitter).
# Without it the producer that just lost needs two round trips, next_seq and
# then append, while the winner needs one, so the same producer can lose
# again and again.
BACKOFF_FIRST_SECONDS = 0.001
BACKOFF_MAX_SECONDS = 0.1

# Every haematite function has a text-key and a bytea-key overload. The casts
# choose the text overload explicitly instead of leaving the choice to
# PostgreSQL's overload resolution.
APPEND_SQL = "SELECT haematite.append(%s::text, %s::bytea, %s::bigint)"
NEXT_SEQ_SQL = "SELECT haematite.next_seq(%s::text)"


def non_negative_integer(text):
    """Parse a command-line count, rejecting negative numbers."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative")
    return value


def append_with_retry(conn, stream, payload, expected_seq):
    """Append one event, retrying on sequence conflicts.

    Returns the stream's new next sequence and the number of conflicts that
    were retried. Any other error is raised to the caller.
    """
    conflicts = 0
    while True:
        try:
            row = conn.execute(APPEND_SQL, (stream, payload, expected_seq)).fetchone()
            return row[0], conflicts
        except psycopg.Error as error:
            if error.sqlstate != SEQUENCE_CONFLICT:
                raise
            conflicts += 1
            if conflicts >= MAX_CONFLICTS_PER_EVENT:
                raise
            backoff_limit = min(BACKOFF_MAX_SECONDS, BACKOFF_FIRST_SECONDS * 2 ** (conflicts - 1))
            time.sleep(random.uniform(0, backoff_limit))

        # Another producer appended since we last looked. A producer whose
        # event depends on the stream's state (say, "reserve the last seat")
        # would re-read the events it missed and re-check its rule here.
        # These events are independent, so the same payload is simply
        # appended at the new end of the stream.
        expected_seq = conn.execute(NEXT_SEQ_SQL, (stream,)).fetchone()[0]


def main():
    parser = argparse.ArgumentParser(description="Append events to a haematite stream.")
    parser.add_argument("stream", help="stream key, for example orders/42")
    parser.add_argument("--producer-id", required=True, help="name written into every payload")
    parser.add_argument("--count", type=non_negative_integer, required=True, help="number of events to append")
    args = parser.parse_args()

    # An empty conninfo string makes libpq read the PG* environment variables.
    # In autocommit mode each append is its own transaction, so the stream's
    # row lock is released as soon as the append returns.
    with psycopg.connect("", autocommit=True) as conn:
        # Start from the stream's current end (0 for a new stream). Afterwards
        # the value each append returns is the expected sequence of the next
        # one, so the stream is only read again after a conflict.
        expected_seq = conn.execute(NEXT_SEQ_SQL, (args.stream,)).fetchone()[0]
        total_conflicts = 0

        for n in range(1, args.count + 1):
            payload = json.dumps({"producer": args.producer_id, "n": n}).encode()
            expected_seq, conflicts = append_with_retry(conn, args.stream, payload, expected_seq)
            total_conflicts += conflicts

    print(
        f"producer {args.producer_id}: appended {args.count} events, "
        f"retried {total_conflicts} conflicts"
    )
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except psycopg.Error as error:
        # Report the SQLSTATE, which is what a caller matches on, and the
        # DETAIL, which carries the numbers of haematite's errors.
        print(f"producer failed: {error.sqlstate}: {error.diag.message_primary}", file=sys.stderr)
        if error.diag.message_detail:
            print(f"DETAIL: {error.diag.message_detail}", file=sys.stderr)
        sys.exit(1)

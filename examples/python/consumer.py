#!/usr/bin/env python3
"""Read a haematite stream in pages and remember the position with cas.

Usage: consumer.py STREAM --name NAME [--page-size N] [--max-events N]

Prints one line per event, "event SEQ PAYLOAD", in sequence order, and stops
when it has caught up with the stream (or after --max-events events). Its
position, the sequence number of the next event to process, is a haematite
compare-and-swap value under the key "cursors/NAME/STREAM". A consumer that is
stopped and started again carries on from that position, so it neither
repeats nor skips an event.

The connection settings come from the standard libpq environment variables
(PGHOST, PGPORT, PGUSER, PGDATABASE, PGPASSWORD, ...).
"""

import argparse
import sys

import psycopg

READ_VALUE_SQL = "SELECT haematite.read_value(%s::text)"
READ_FROM_SQL = "SELECT seq, payload FROM haematite.read_from(%s::text, %s::bigint, %s::integer)"
CAS_SQL = "SELECT haematite.cas(%s::text, %s::bigint, %s::bigint)"


def integer_at_least(minimum):
    """Return an argparse type that accepts integers of at least minimum."""

    def parse(text):
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is below the minimum of {minimum}")
        return value

    return parse


def handle_event(seq, payload):
    """Process one event. Here that means printing it."""
    print(f"event {seq} {payload.decode()}")


def main():
    parser = argparse.ArgumentParser(description="Consume a haematite stream.")
    parser.add_argument("stream", help="stream key, for example orders/42")
    parser.add_argument("--name", required=True, help="consumer name; each name has its own position")
    parser.add_argument("--page-size", type=integer_at_least(1), default=50, help="events read per transaction")
    parser.add_argument("--max-events", type=integer_at_least(0), help="stop after processing this many events")
    args = parser.parse_args()

    cursor_key = f"cursors/{args.name}/{args.stream}"
    processed = 0

    with psycopg.connect("", autocommit=True) as conn:
        # NULL (None) means this consumer has never checkpointed: start at 0.
        # The value read here is also the "expected" argument of the first
        # cas, which must be NULL for a key that does not exist yet.
        checkpoint = conn.execute(READ_VALUE_SQL, (cursor_key,)).fetchone()[0]
        position = 0 if checkpoint is None else checkpoint

        while args.max_events is None or processed < args.max_events:
            page_size = args.page_size
            if args.max_events is not None:
                page_size = min(page_size, args.max_events - processed)

            # One transaction per page: read it, process it, move the cursor.
            with conn.transaction():
                rows = conn.execute(READ_FROM_SQL, (args.stream, position, page_size)).fetchall()
                if not rows:
                    break
                for seq, payload in rows:
                    handle_event(seq, payload)

                # The output must be written before the cursor moves past it.
                # If the process dies between the two, the next run prints
                # this page again: delivery is at least once. A handler that
                # writes to this database instead would do so inside this
                # transaction, and then the cursor moves if and only if the
                # handler's writes commit, which is exactly once.
                sys.stdout.flush()

                # The next position is one past the last event read. Counting
                # rows instead would go wrong when read_from skipped expired
                # events (those appended with a TTL). cas fails with SE002 if another process running
                # under the same consumer name moved the cursor since it was
                # read. The error rolls this transaction back and ends the
                # program, because two instances must not share one cursor.
                new_position = rows[-1][0] + 1
                conn.execute(CAS_SQL, (cursor_key, checkpoint, new_position))

            checkpoint = position = new_position
            processed += len(rows)

    print(f"consumer {args.name}: processed {processed} events, position {position}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except psycopg.Error as error:
        # Report the SQLSTATE, which is what a caller matches on, and the
        # DETAIL, which carries the numbers of haematite's errors.
        print(f"consumer failed: {error.sqlstate}: {error.diag.message_primary}", file=sys.stderr)
        if error.diag.message_detail:
            print(f"DETAIL: {error.diag.message_detail}", file=sys.stderr)
        sys.exit(1)

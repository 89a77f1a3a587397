"""Randomized suite: many thousands of haematite calls with hostile input.

Each call is drawn from a seeded generator. Keys have every byte value and
lengths 0 to 1100, through both the bytea and the text overloads. Payloads
range from empty to several megabytes. Seqs and values are negative, huge or
next to the bigint maximum, and any argument may be NULL. Arrays are empty,
huge, multi-dimensional or contain NULLs. TTLs are negative, zero, tiny,
huge or out of range. cas, read_from, scan and sweep get random arguments
too. A quarter of the reads run through an SQL cursor fetched a few rows
at a time, and some pick a stream longer than haematite's 1,000-row cursor
batch on purpose.

A model in this client predicts each call's outcome: the result, or the set
of SQLSTATEs the contract allows (SE001-SE004, 22004, 22023, 54000, 22003).
After every call the suite checks the outcome against the prediction, the
fixed DETAIL wording of SE001, SE002 and SE003, and that the message names
the stream or key. After a failed write it checks that the stream or value
did not change.

Every HAEMATITE_FUZZ_CHECK_EVERY calls and at the end the suite reads the
tables directly as superuser and compares them with the model. It checks
the head rows and next_seq, every event without TTL with its payload, and
every event with a TTL, which must be present with its payload or have been
swept after it could have expired. No event may be at or above next_seq,
and every value must match (never negative).

A lost connection (a crashed backend) ends the run. Each violation is
printed with the exact call; HAEMATITE_FUZZ_SEED replays a run, and
HAEMATITE_FUZZ_CALLS sets the number of calls (default 20000).
"""

import bisect
import hashlib
import os
import random
import sys
import time

import psycopg2

import harness

DATABASE = "haematite_fuzz"
INT64_MAX = 2 ** 63 - 1
INT64_MIN = -2 ** 63
INT32_MAX = 2 ** 31 - 1
INT32_MIN = -2 ** 31
MAX_KEY_BYTES = 1024

# SQLSTATEs the contract lets a haematite call raise.
CONTRACT_SQLSTATES = {"SE001", "SE002", "SE003", "SE004", "22004", "22023",
                      "54000", "22003"}

# Slack, in seconds, when comparing this client's clock with the server's
# statement timestamps (both read the same system clock).
CLOCK_SLACK = 0.05

# TTLs in seconds of the "short" kind stay below this, so that some expire
# while the run goes on and some do not.
SHORT_TTL_MAX = 3.0

MICROS_PER_DAY = 86_400_000_000


def md5_hex(data):
    return hashlib.md5(data).hexdigest()


def event_hash(seq, digest):
    """Return the 60-bit hash of one event that the table check sums."""
    return int(md5_hex(f"{seq}:{digest}".encode())[:15], 16)


def format_key(key):
    """Return a key as haematite's messages show it, in the form the
    contract demands: text in double quotes when the bytes are valid UTF-8
    without control characters, hex otherwise. A key holding a double quote
    or a backslash may take either form, since quoting it as text would be
    ambiguous."""
    return key_forms(key)[0]


def key_forms(key):
    """Return the forms a message may show a key in, the preferred first."""
    hex_form = "\\x" + key.hex()
    try:
        text = key.decode("utf-8")
    except UnicodeDecodeError:
        return [hex_form]
    if any(b < 0x20 or b == 0x7f for b in key):
        return [hex_form]
    if b'"' in key or b"\\" in key:
        return [hex_form, f'"{text}"']
    return [f'"{text}"']


class ConnectionLost(Exception):
    """The server closed the fuzzing session's connection."""


class Ttl:
    """A generated TTL: its SQL literal and what the model expects of it.

    kind is one of: none, negative, zero, short (seconds set), long (far
    beyond the run), too_large (expiry outside the timestamp range), odd
    (months mixed with days, whose length depends on the calendar).
    """

    def __init__(self, literal, kind, seconds=None):
        self.literal = literal
        self.kind = kind
        self.seconds = seconds


class Group:
    """The events one successful append or append_batch wrote."""

    def __init__(self, first_seq, digests, ttl, t_lo, t_hi):
        self.first_seq = first_seq
        self.digests = digests
        self.ttl = ttl
        self.t_lo = t_lo            # client clock before the call
        self.t_hi = t_hi            # client clock after it returned
        self.swept = set()          # seqs known to be swept
        self.maybe_swept = False    # a sweep may have deleted some
        self.cached_hash_sum = None

    def hash_sum(self):
        """Return the sum of event_hash over the group's events."""
        if self.cached_hash_sum is None:
            self.cached_hash_sum = sum(
                event_hash(self.first_seq + offset, digest)
                for offset, digest in enumerate(self.digests))
        return self.cached_hash_sum

    def expiry_status(self, a, b):
        """Return live, dead or unknown for a statement that started
        between client times a and b."""
        kind = self.ttl.kind
        if kind in ("none", "long"):
            return "live"
        if kind == "zero":
            return "dead"
        if kind == "short":
            if b < self.t_lo + self.ttl.seconds - CLOCK_SLACK:
                return "live"
            if a > self.t_hi + self.ttl.seconds + CLOCK_SLACK:
                return "dead"
        return "unknown"

    def status(self, seq, a, b):
        """Return visible, invisible or unknown for one event at [a, b]."""
        if seq in self.swept:
            return "invisible"
        expiry = self.expiry_status(a, b)
        if expiry == "dead":
            return "invisible"
        if expiry == "unknown" or self.maybe_swept:
            return "unknown"
        return "visible"


class Stream:
    """The model of one stream. Seqs below base were written and swept
    before the run (the streams next to the bigint maximum)."""

    def __init__(self, key, base=0):
        self.key = key
        self.base = base
        self.next_seq = base
        self.groups = []
        self.firsts = []
        self.any_without_ttl = False

    def add_group(self, group):
        self.groups.append(group)
        self.firsts.append(group.first_seq)
        self.next_seq = group.first_seq + len(group.digests)
        if group.ttl.kind == "none":
            self.any_without_ttl = True

    def group_of(self, seq):
        index = bisect.bisect_right(self.firsts, seq) - 1
        if index < 0:
            return None
        group = self.groups[index]
        if seq >= group.first_seq + len(group.digests):
            return None
        return group

    def events_from(self, from_seq):
        """Yield (seq, digest, group) for every event at or after from_seq."""
        index = max(0, bisect.bisect_right(self.firsts, from_seq) - 1)
        for group in self.groups[index:]:
            start = max(from_seq, group.first_seq) - group.first_seq
            for offset in range(start, len(group.digests)):
                yield group.first_seq + offset, group.digests[offset], group

    def has_event(self, target_status, a, b):
        """Return True when some event has the status (visible or unknown)
        at [a, b]. A group's events share their expiry, and a sweep only
        deletes events that had expired, so the test works per group."""
        for group in self.groups:
            if len(group.swept) == len(group.digests):
                continue
            expiry = group.expiry_status(a, b)
            if expiry == "live" and not group.maybe_swept:
                status = "visible"
            elif expiry == "dead":
                status = "invisible"
            else:
                status = "unknown"
            if status == target_status:
                return True
        return False


class Call:
    """One generated call: SQL, arguments, and how to judge its outcome."""

    def __init__(self, function, sql, args, description):
        self.function = function
        self.sql = sql
        self.args = args
        self.description = description
        self.errors = set()         # argument errors the contract requires
        self.key = None             # stream or value key, when valid
        self.expected_seq = None
        self.count = None
        self.payload_digests = None
        self.ttl = None
        self.fetch_size = None      # rows per FETCH, for reads by cursor


class FuzzSuite:

    def __init__(self, dsn, seed, calls, check_every):
        self.dsn = dsn
        self.seed = seed
        self.rng = random.Random(seed)
        self.calls = calls
        self.check_every = check_every
        self.checks = harness.Checks("reliability_fuzz")
        self.connection = harness.connect(dsn, DATABASE)
        self.admin = harness.connect(dsn, DATABASE)
        self.streams = {}
        self.values = {}
        self.pool = []
        self.violations = 0
        self.outcomes = {}
        self.big_payloads = 0
        self.huge_arrays = 0
        self.big_payload_calls = set(self.rng.sample(range(calls), 4))
        self.huge_array_calls = set(self.rng.sample(range(calls), 3))
        self.call_number = 0
        with self.connection.cursor() as cursor:
            cursor.execute("SET statement_timeout = '120s'")

    # Generators.

    def random_bytes(self, length):
        return self.rng.randbytes(length)

    def random_text(self, max_bytes):
        """Return random text: ASCII, control characters, multi-byte and
        four-byte characters; never NUL, which text cannot hold."""
        pieces = []
        size = 0
        target = self.rng.randrange(1, max_bytes + 1)
        while size < target:
            roll = self.rng.random()
            if roll < 0.5:
                char = chr(self.rng.randrange(0x20, 0x7f))
            elif roll < 0.6:
                char = chr(self.rng.randrange(0x01, 0x20))
            elif roll < 0.85:
                char = chr(self.rng.randrange(0xa0, 0xd800))
            else:
                char = chr(self.rng.randrange(0x10000, 0x110000))
            encoded = len(char.encode())
            if size + encoded > max_bytes:
                break
            pieces.append(char)
            size += encoded
        return "".join(pieces) or "k"

    def seed_pool(self):
        """Fill the key pool with keys that probe edges."""
        special = [b"\x00", b"\xff", b"\xff\xff", b"\xff\x00", b"\x00\xff",
                   b"a%b", b"a_b", b"a\\b", b"a", b"ab", b"abc",
                   "\u00e9t\u00e9".encode(), "\U0001f600".encode(),
                   b"\x7f", b"\x1b[0m", b"\xc3", b"\xed\xa0\x80",
                   b"x" * MAX_KEY_BYTES, b"\xff" * MAX_KEY_BYTES,
                   b"%", b"_", b"\\"]
        for key in special:
            self.pool.append(key)
        for _ in range(60):
            self.pool.append(self.random_bytes(self.rng.randrange(1, 24)))
        for _ in range(30):
            self.pool.append(self.random_text(40).encode())
        # Streams whose next_seq is next to the bigint maximum, as if
        # 2^63 - k events had been appended and swept long ago.
        for distance in (1, 2, 3, 6):
            key = f"fuzz/near-max/{distance}".encode()
            base = INT64_MAX - distance + 1
            with self.admin.cursor() as cursor:
                cursor.execute(
                    "INSERT INTO haematite.stream_heads (stream_key, next_seq,"
                    " last_appended_at, live_until) VALUES "
                    "(%s, %s, '2000-01-01', '2000-01-01')", (key, base))
            self.streams[key] = Stream(key, base)
            self.pool.append(key)

    def gen_key(self, call):
        """Return (SQL fragment, argument) for a key; record its errors."""
        use_text = self.rng.random() < 0.3
        cast = "text" if use_text else "bytea"
        roll = self.rng.random()
        if roll < 0.03:
            call.errors.add("22004")
            return f"%s::{cast}", None
        if roll < 0.05:
            call.errors.add("22023")
            return f"%s::{cast}", "" if use_text else b""
        if roll < 0.08:
            call.errors.add("54000")
            length = self.rng.randrange(MAX_KEY_BYTES + 1, 1101)
            if use_text:
                return "%s::text", self.random_text(length) + "x" * length
            return "%s::bytea", self.random_bytes(length)
        if roll < 0.80:
            key = self.rng.choice(self.pool)
        else:
            length = (self.rng.randrange(1, 32) if self.rng.random() < 0.8
                      else self.rng.randrange(1, MAX_KEY_BYTES + 1))
            key = (self.random_text(length).encode() if use_text
                   else self.random_bytes(length))
            if len(self.pool) < 400 and self.rng.random() < 0.3:
                self.pool.append(key)
        call.key = key
        if use_text:
            try:
                text = key.decode("utf-8")
                if "\x00" not in text:
                    return "%s::text", text
            except UnicodeDecodeError:
                pass
        return "%s::bytea", key

    def gen_payload(self, call):
        roll = self.rng.random()
        if roll < 0.03:
            call.errors.add("22004")
            return None
        if roll < 0.13:
            return b""
        if roll < 0.75:
            return self.random_bytes(self.rng.randrange(1, 100))
        if roll < 0.98:
            return self.random_bytes(self.rng.randrange(100, 10_000))
        return self.random_bytes(self.rng.randrange(100_000, 300_000))

    def gen_seq(self, call, next_seq, required):
        """Return an expected_seq or from_seq and record its errors."""
        roll = self.rng.random()
        if roll < 0.03:
            if required:
                call.errors.add("22004")
            return None
        if roll < 0.06:
            call.errors.add("22023")
            return self.rng.choice([-1, -2, INT64_MIN, -self.rng.randrange(
                1, INT64_MAX)])
        if roll < 0.10:
            return self.rng.choice([INT64_MAX, INT64_MAX - 1, 2 ** 62,
                                    self.rng.randrange(INT64_MAX)])
        if roll < 0.18:
            return min(INT64_MAX,
                       max(0, next_seq + self.rng.choice([-1, 1, 2])))
        if roll < 0.22:
            return 0
        if roll < 0.30:
            return min(INT64_MAX, self.rng.randrange(0, next_seq + 3))
        return next_seq

    def gen_ttl(self, call):
        roll = self.rng.random()
        if roll < 0.65:
            return Ttl(None, "none")
        if roll < 0.70:
            return Ttl(self.rng.choice(["0", "0 seconds", "-0 days",
                                        "00:00:00", "0 mons 0 days"]),
                       "zero")
        if roll < 0.75:
            call.errors.add("22023")
            return Ttl(self.rng.choice(
                ["-1 microsecond", "-5 days", "1 day -25 hours", "-1 mon",
                 "1 mon -31 days", "1 year -365 days", "-178000000 years",
                 "-2147483648 days"]), "negative")
        if roll < 0.85:
            micros = self.rng.randrange(1, int(SHORT_TTL_MAX * 1e6))
            return Ttl(f"{micros} microseconds", "short", micros / 1e6)
        if roll < 0.92:
            return Ttl(self.rng.choice(
                ["1 day", "36 hours", "1 year", "1000 years", "200000 years",
                 "2000000 hours", "1 day -23 hours 59 minutes",
                 "12 mons"]), "long")
        if roll < 0.96:
            call.errors.add("22023")
            return Ttl(self.rng.choice(
                ["300000 years", "178000000 years", "2147483647 days",
                 "2147483647 mons 2147483647 days",
                 "2562047788 hours"]), "too_large")
        return Ttl(self.rng.choice(["1 mon -30 days", "1 mon -29 days",
                                    "-1 mon 31 days", "1 year -360 days",
                                    "1 mon -720 hours"]), "odd")

    # The model.

    def stream(self, key):
        if key not in self.streams:
            self.streams[key] = Stream(key)
        return self.streams[key]

    def next_seq_of(self, key):
        stream = self.streams.get(key)
        return stream.next_seq if stream else 0

    # Calls.

    def make_append(self):
        call = Call("append", None, None, None)
        key_sql, key = self.gen_key(call)
        payload = self.gen_payload(call)
        next_seq = self.next_seq_of(call.key) if call.key else 0
        expected = self.gen_seq(call, next_seq, True)
        ttl = self.gen_ttl(call)
        call.sql = (f"SELECT haematite.append({key_sql}, %s::bytea, "
                    f"(%s)::bigint, %s::interval)")
        call.args = (key, payload, expected, ttl.literal)
        call.expected_seq = expected
        call.count = 1
        call.payload_digests = None if payload is None else [md5_hex(payload)]
        call.ttl = ttl
        return call

    def make_append_batch(self):
        call = Call("append_batch", None, None, None)
        key_sql, key = self.gen_key(call)
        next_seq = self.next_seq_of(call.key) if call.key else 0
        expected = self.gen_seq(call, next_seq, True)
        ttl = self.gen_ttl(call)

        roll = self.rng.random()
        digests = None
        if roll < 0.02:
            call.errors.add("22004")
            payloads = None
        elif roll < 0.10:
            payloads = []
        elif roll < 0.13:
            call.errors.add("22004")
            payloads = [b"a", None, b"c"]
            self.rng.shuffle(payloads)
        elif roll < 0.16:
            call.errors.add("22023")
            width = self.rng.randrange(1, 4)
            payloads = [[self.random_bytes(3) for _ in range(width)]
                        for _ in range(self.rng.randrange(1, 4))]
            if self.rng.random() < 0.3:
                payloads = [payloads]
        elif roll < 0.17:
            # A two-dimensional array holding a NULL: either error applies.
            call.errors.update({"22023", "22004"})
            payloads = [[b"a", None], [b"c", b"d"]]
        elif roll < 0.19:
            # A one-dimensional array whose lower bound is not 1.
            items = [self.random_bytes(self.rng.randrange(0, 6))
                     for _ in range(self.rng.randrange(1, 5))]
            lower = self.rng.choice([-3, 0, 2, 1000])
            literal = "[%d:%d]={%s}" % (
                lower, lower + len(items) - 1,
                ",".join('"\\\\x%s"' % item.hex() for item in items))
            payloads = literal
            digests = [md5_hex(item) for item in items]
        elif roll < 0.30:
            payloads = [self.random_bytes(self.rng.randrange(0, 2000))
                        for _ in range(self.rng.randrange(20, 300))]
        else:
            payloads = [self.random_bytes(self.rng.randrange(0, 60))
                        for _ in range(self.rng.randrange(1, 20))]
        if digests is None and payloads is not None and not call.errors:
            digests = [md5_hex(p) for p in payloads]

        call.sql = (f"SELECT haematite.append_batch({key_sql}, %s::bytea[], "
                    f"(%s)::bigint, %s::interval)")
        call.args = (key, payloads, expected, ttl.literal)
        call.expected_seq = expected
        call.count = None if digests is None else len(digests)
        call.payload_digests = digests
        call.ttl = ttl
        return call

    def gen_value(self, call, current, allow_null_meaning_absent):
        roll = self.rng.random()
        if roll < 0.05:
            if not allow_null_meaning_absent:
                call.errors.add("22004")
            return None
        if roll < 0.10:
            call.errors.add("22023")
            return self.rng.choice([-1, INT64_MIN])
        if roll < 0.55 and current is not None:
            return current
        return self.rng.choice([0, 1, INT64_MAX, self.rng.randrange(INT64_MAX),
                                self.rng.randrange(1000)])

    def make_cas(self):
        call = Call("cas", None, None, None)
        key_sql, key = self.gen_key(call)
        current = self.values.get(call.key) if call.key else None
        if self.rng.random() < 0.15:
            expected = None
        else:
            expected = self.gen_value(call, current, True)
        new_value = self.gen_value(call, current, False)
        if new_value is None:
            call.errors.add("22004")
        call.sql = f"SELECT haematite.cas({key_sql}, (%s)::bigint, (%s)::bigint)"
        call.args = (key, expected, new_value)
        call.expected_value = expected
        call.new_value = new_value
        return call

    def make_key_only(self, function):
        call = Call(function, None, None, None)
        key_sql, key = self.gen_key(call)
        call.sql = f"SELECT haematite.{function}({key_sql})"
        call.args = (key,)
        return call

    def make_read(self, with_from):
        call = Call("read_from" if with_from else "read", None, None, None)
        key_sql, key = self.gen_key(call)
        long_streams = [k for k, stream in self.streams.items()
                        if stream.next_seq - stream.base > 1000]
        if long_streams and self.rng.random() < 0.1:
            # Streams longer than one batch of haematite's cursor are rare
            # in the pool, so reads pick them on purpose.
            call.errors.clear()
            key_sql, key = "%s::bytea", self.rng.choice(long_streams)
            call.key = key
        next_seq = self.next_seq_of(call.key) if call.key else 0

        # A quarter of the reads run in the select list of a cursor that is
        # fetched a few rows at a time, so that haematite's own cursor is
        # read across fetches and across its 1,000-row batches.
        if self.rng.random() < 0.25:
            call.fetch_size = self.rng.randrange(1, 700)
            select = ("SELECT (e).seq, md5((e).payload), (e).appended_at "
                      "FROM (SELECT haematite.{} AS e) AS events")
        else:
            select = "SELECT seq, md5(payload), appended_at FROM haematite.{}"

        if not with_from:
            call.sql = select.format(f"read({key_sql})")
            call.args = (key,)
            call.from_seq = 0
            call.max_count = None
            return call

        from_seq = self.gen_seq(call, next_seq, True)
        roll = self.rng.random()
        if roll < 0.4:
            max_count = None
        elif roll < 0.45:
            max_count = 0
        elif roll < 0.50:
            call.errors.add("22023")
            max_count = self.rng.choice([-1, INT32_MIN])
        elif roll < 0.55:
            max_count = INT32_MAX
        else:
            max_count = self.rng.randrange(1, 20)
        call.sql = select.format(f"read_from({key_sql}, (%s)::bigint, "
                                 f"(%s)::integer)")
        call.args = (key, from_seq, max_count)
        call.from_seq = from_seq
        call.max_count = max_count
        return call

    def make_scan(self):
        call = Call("scan", None, None, None)
        roll = self.rng.random()
        use_text = self.rng.random() < 0.3
        if roll < 0.05:
            call.sql = "SELECT stream_key, next_seq FROM haematite.scan()"
            call.args = ()
            call.prefix = b""
            return call
        if roll < 0.08:
            call.errors.add("22004")
            prefix = None
        elif roll < 0.12:
            prefix = b""
        elif roll < 0.18:
            prefix = self.random_bytes(self.rng.randrange(MAX_KEY_BYTES - 2,
                                                          1100))
        elif roll < 0.25:
            prefix = self.rng.choice([b"%", b"_", b"\\", b"a%", b"a_",
                                      b"\xff", b"\xff\xff", b"\x00"])
        elif roll < 0.80:
            key = self.rng.choice(self.pool)
            prefix = key[:self.rng.randrange(0, len(key) + 1)]
        else:
            prefix = self.random_bytes(self.rng.randrange(1, 4))
        call.prefix = prefix

        argument = prefix
        cast = "bytea"
        if use_text and prefix is not None:
            try:
                text = prefix.decode("utf-8")
                if "\x00" not in text:
                    argument, cast = text, "text"
            except UnicodeDecodeError:
                pass
        elif use_text:
            cast = "text"
        call.sql = ("SELECT stream_key, next_seq FROM "
                    f"haematite.scan(%s::{cast})")
        call.args = (argument,)
        return call

    def make_sweep(self):
        call = Call("sweep", None, None, None)
        roll = self.rng.random()
        if roll < 0.4:
            max_events = None
        elif roll < 0.5:
            call.errors.add("22023")
            max_events = self.rng.choice([-1, INT32_MIN])
        elif roll < 0.6:
            max_events = 0
        elif roll < 0.7:
            max_events = INT32_MAX
        else:
            max_events = self.rng.randrange(1, 500)
        call.sql = "SELECT haematite.sweep((%s)::integer)"
        call.args = (max_events,)
        call.max_events = max_events
        return call

    def make_large_call(self, function):
        """Return a valid append of a payload of several megabytes, or
        append_batch of a huge array, to a stream of the pool."""
        call = Call(function, None, None, None)
        key = self.rng.choice([k for k in self.pool
                               if self.next_seq_of(k) < 2 ** 62])
        expected = self.next_seq_of(key)
        if function == "append":
            payloads = [self.random_bytes(self.rng.randrange(2_000_000,
                                                             8_000_000))]
            argument = payloads[0]
            call.sql = ("SELECT haematite.append(%s::bytea, %s::bytea, "
                        "(%s)::bigint)")
        else:
            payloads = [self.random_bytes(self.rng.randrange(0, 8))
                        for _ in range(self.rng.randrange(20_000, 100_000))]
            argument = payloads
            call.sql = ("SELECT haematite.append_batch(%s::bytea, "
                        "%s::bytea[], (%s)::bigint)")
        call.args = (key, argument, expected)
        call.key = key
        call.expected_seq = expected
        call.count = len(payloads)
        call.payload_digests = [md5_hex(p) for p in payloads]
        call.ttl = Ttl(None, "none")
        return call

    def make_call(self):
        if self.call_number in self.big_payload_calls:
            return self.make_large_call("append")
        if self.call_number in self.huge_array_calls:
            return self.make_large_call("append_batch")
        roll = self.rng.random()
        if roll < 0.30:
            return self.make_append()
        if roll < 0.45:
            return self.make_append_batch()
        if roll < 0.58:
            return self.make_cas()
        if roll < 0.62:
            return self.make_key_only("read_value")
        if roll < 0.67:
            return self.make_key_only("next_seq")
        if roll < 0.72:
            return self.make_read(False)
        if roll < 0.85:
            return self.make_read(True)
        if roll < 0.97:
            return self.make_scan()
        return self.make_sweep()

    # Running and judging.

    def describe(self, call):
        """Return the call as SQL, shortened when it is long."""
        try:
            with self.connection.cursor() as cursor:
                text = cursor.mogrify(call.sql, call.args).decode(
                    "utf-8", "backslashreplace")
        except Exception as error:  # mogrify of a bad argument
            text = f"{call.sql} with {call.args!r:.300} ({error})"
        if len(text) > 600:
            text = f"{text[:300]} ... {text[-200:]} ({len(text)} characters)"
        if call.fetch_size is not None:
            text = (f"BEGIN; DECLARE fuzz_read NO SCROLL CURSOR FOR {text}; "
                    f"then FETCH {call.fetch_size} FROM fuzz_read and "
                    f"SELECT 1, repeated until a FETCH returns fewer rows")
        return text

    def violation(self, call, problem):
        """Report a call whose outcome breaks the contract."""
        self.violations += 1
        self.checks.check(False, f"call {self.call_number} ({call.function}) "
                          f"{problem}\n    call: {self.describe(call)}")

    def run_call(self, call):
        """Run a call; return (rows, error, a, b)."""
        a = time.time()
        try:
            with self.connection.cursor() as cursor:
                if call.fetch_size is None:
                    cursor.execute(call.sql, call.args)
                    rows = cursor.fetchall()
                else:
                    rows = self.fetch_in_pieces(cursor, call)
            error = None
        except psycopg2.Error as raised:
            # psycopg2 raises OperationalError for SQLSTATE classes 54, 55
            # and 57 too, so a lost connection is detected by the closed
            # flag.
            if self.connection.closed:
                self.violation(call, f"lost the connection: {raised}")
                raise ConnectionLost() from raised
            rows = None
            error = raised
        b = time.time()
        return rows, error, a, b

    def fetch_in_pieces(self, cursor, call):
        """Run a read through a cursor, fetch_size rows per FETCH with
        another statement in between; return every row."""
        cursor.execute("BEGIN")
        try:
            cursor.execute("DECLARE fuzz_read NO SCROLL CURSOR FOR "
                           + call.sql, call.args)
            rows = []
            while True:
                cursor.execute(f"FETCH {call.fetch_size} FROM fuzz_read")
                part = cursor.fetchall()
                rows.extend(part)
                cursor.execute("SELECT 1")
                if len(part) < call.fetch_size:
                    break
            cursor.execute("COMMIT")
        except psycopg2.Error:
            if not self.connection.closed:
                cursor.execute("ROLLBACK")
            raise
        return rows

    def count_outcome(self, call, outcome):
        per_function = self.outcomes.setdefault(call.function, {})
        per_function[outcome] = per_function.get(outcome, 0) + 1

    def judge_error(self, call, error, allowed):
        """Check an error against the allowed SQLSTATEs; return True when it
        is one of them."""
        code = error.pgcode
        self.count_outcome(call, code)
        if code not in CONTRACT_SQLSTATES:
            self.violation(call, f"raised {code}, which the contract does "
                           f"not allow: {error.pgerror.strip()}")
            return False
        if code not in allowed:
            self.violation(call, f"raised {code} ({error.diag.message_primary};"
                           f" {error.diag.message_detail}); expected "
                           f"{sorted(allowed) or 'success'}")
            return False
        return True

    def expect_success(self, call, error):
        """Report an error where the model expects success."""
        if error is not None:
            self.judge_error(call, error, set())
            return False
        self.count_outcome(call, "ok")
        return True

    def check_message(self, call, error, detail):
        """Check the message names the key and DETAIL is exact."""
        message = error.diag.message_primary or ""
        forms = key_forms(call.key)
        if not any(form in message for form in forms):
            self.violation(call, f"message {message!r} does not name the "
                           f"key as {' or '.join(forms)}")
        if detail is not None and error.diag.message_detail != detail:
            self.violation(call, f"DETAIL {error.diag.message_detail!r}, "
                           f"expected {detail!r}")

    def judge_append(self, call, rows, error, a, b):
        if call.errors:
            if error is None:
                self.violation(call, f"succeeded, expected an error in "
                               f"{sorted(call.errors)}")
                self.absorb_unexpected_write(call)
            else:
                self.judge_error(call, error, call.errors)
            self.check_unwritten(call)
            return
        stream = self.streams.get(call.key)
        actual = stream.next_seq if stream else 0
        expected = call.expected_seq
        count = call.count

        if expected != actual:
            outcome = "SE001"
        elif count == 0:
            outcome = "empty"
        elif expected > INT64_MAX - count:
            outcome = "22003"
        else:
            outcome = "ok"

        if outcome in ("SE001", "22003"):
            if error is None:
                self.violation(call, f"succeeded with {rows}, expected "
                               f"{outcome} (next_seq {actual})")
                self.absorb_unexpected_write(call)
            elif self.judge_error(call, error, {outcome}):
                if outcome == "SE001":
                    self.check_message(call, error,
                                       f"Expected next sequence {expected}, "
                                       f"actual {actual}.")
                else:
                    self.check_message(call, error, None)
            self.check_unwritten(call)
            return
        if not self.expect_success(call, error):
            self.check_unwritten(call)
            return
        self.checks.equal(rows, [(expected + count,)],
                          f"call {self.call_number} ({call.function}) result")
        if outcome == "ok":
            group = Group(expected, call.payload_digests, call.ttl, a, b)
            self.stream(call.key).add_group(group)
            if self.call_number in self.huge_array_calls:
                self.huge_arrays += 1
            if self.call_number in self.big_payload_calls:
                self.big_payloads += 1

    def absorb_unexpected_write(self, call):
        """Resynchronise the model with a stream after a call that should
        have failed but wrote, so later checks judge later calls."""
        if call.key is None or not (1 <= len(call.key) <= MAX_KEY_BYTES):
            return
        with self.admin.cursor() as cursor:
            cursor.execute("SELECT next_seq FROM haematite.stream_heads "
                           "WHERE stream_key = %s", (call.key,))
            row = cursor.fetchone()
        if row and call.payload_digests and call.ttl is not None:
            stream = self.stream(call.key)
            if row[0] == stream.next_seq + len(call.payload_digests):
                stream.add_group(Group(stream.next_seq, call.payload_digests,
                                       call.ttl, time.time(), time.time()))

    def check_unwritten(self, call):
        """After a failed write, check the stream still matches the model."""
        if call.key is None or not (1 <= len(call.key) <= MAX_KEY_BYTES):
            return
        stream = self.streams.get(call.key)
        next_seq = stream.next_seq if stream else 0
        with self.admin.cursor() as cursor:
            cursor.execute("SELECT next_seq FROM haematite.stream_heads "
                           "WHERE stream_key = %s", (call.key,))
            row = cursor.fetchone()
            cursor.execute("SELECT count(*) FROM haematite.events "
                           "WHERE stream_key = %s AND seq >= %s",
                           (call.key, next_seq))
            beyond = cursor.fetchone()[0]
        head = row[0] if row else 0
        if head != next_seq or beyond != 0:
            self.violation(call, f"failed but changed the stream: next_seq "
                           f"{head} (model {next_seq}), {beyond} events at "
                           f"or above {next_seq}")

    def judge_cas(self, call, rows, error):
        if call.errors:
            if error is None:
                self.violation(call, f"succeeded, expected an error in "
                               f"{sorted(call.errors)}")
            else:
                self.judge_error(call, error, call.errors)
            self.check_value_unchanged(call)
            return
        current = self.values.get(call.key)
        expected = call.expected_value
        if current == expected:
            if self.expect_success(call, error):
                self.values[call.key] = call.new_value
            else:
                self.check_value_unchanged(call)
            return
        if error is None:
            self.violation(call, f"succeeded, expected SE002 (value "
                           f"{current})")
            self.values[call.key] = call.new_value
            return
        if self.judge_error(call, error, {"SE002"}):
            shown_expected = "absent" if expected is None else expected
            shown_actual = "absent" if current is None else current
            self.check_message(call, error,
                               f"Expected value {shown_expected}, actual "
                               f"{shown_actual}.")
        self.check_value_unchanged(call)

    def check_value_unchanged(self, call):
        if call.key is None or not (1 <= len(call.key) <= MAX_KEY_BYTES):
            return
        with self.admin.cursor() as cursor:
            cursor.execute("SELECT value FROM haematite.scalar_values "
                           "WHERE key = %s", (call.key,))
            row = cursor.fetchone()
        value = row[0] if row else None
        if value != self.values.get(call.key):
            self.violation(call, f"failed but changed the value to {value} "
                           f"(model {self.values.get(call.key)})")
            self.values[call.key] = value

    def judge_key_only(self, call, rows, error):
        if call.errors:
            if error is None:
                self.violation(call, f"succeeded with {rows}, expected an "
                               f"error in {sorted(call.errors)}")
            else:
                self.judge_error(call, error, call.errors)
            return
        if not self.expect_success(call, error):
            return
        if call.function == "read_value":
            expected = self.values.get(call.key)
        else:
            expected = self.next_seq_of(call.key)
        self.checks.equal(rows, [(expected,)],
                          f"call {self.call_number} ({call.function}) of "
                          f"{format_key(call.key)}")

    def judge_read(self, call, rows, error, a, b):
        if call.errors:
            if error is None:
                self.violation(call, f"succeeded, expected an error in "
                               f"{sorted(call.errors)}")
            else:
                self.judge_error(call, error, call.errors)
            return
        stream = self.streams.get(call.key)
        next_seq = stream.next_seq if stream else 0
        from_seq = call.from_seq
        max_count = call.max_count
        asks_nothing = max_count == 0 or from_seq >= next_seq

        if error is not None:
            if not self.judge_error(call, error, {"SE003"}):
                return
            if asks_nothing:
                self.violation(call, f"raised SE003 with from_seq {from_seq},"
                               f" next_seq {next_seq}, max_count {max_count}")
                return
            self.check_message(
                call, error, f"Requested from sequence {from_seq}; next "
                f"sequence is {next_seq}; no live event remains in that "
                f"range.")
            for seq, _, group in stream.events_from(from_seq):
                if group.status(seq, a, b) == "visible":
                    self.violation(call, f"raised SE003 although event "
                                   f"{seq} is live")
                    return
            return

        self.count_outcome(call, "ok")
        if not rows:
            if not asks_nothing:
                self.violation(call, f"returned no row without SE003 "
                               f"(from_seq {from_seq}, next_seq {next_seq})")
            return
        if stream is None:
            self.violation(call, f"returned {len(rows)} rows for a stream "
                           f"that does not exist")
            return
        self.check_read_rows(call, stream, rows, a, b)

    def check_read_rows(self, call, stream, rows, a, b):
        """Check returned events against the model of the stream."""
        from_seq = call.from_seq
        max_count = call.max_count
        seqs = [row[0] for row in rows]
        if seqs != sorted(set(seqs)) or seqs[0] < from_seq:
            self.violation(call, f"returned seqs out of order or below "
                           f"from_seq: {seqs[:10]}")
            return
        if max_count is not None and len(rows) > max_count:
            self.violation(call, f"returned {len(rows)} rows, max_count "
                           f"{max_count}")
        times = [row[2] for row in rows]
        if times != sorted(times):
            self.violation(call, "appended_at decreases along the stream")

        returned = {row[0]: row[1] for row in rows}
        last = seqs[-1]
        complete = max_count is None or len(rows) < max_count
        for seq, digest, group in stream.events_from(from_seq):
            if seq > last and not complete:
                break
            status = group.status(seq, a, b)
            if seq in returned:
                if returned.pop(seq) != digest:
                    self.violation(call, f"returned a wrong payload at seq "
                                   f"{seq}")
                    return
                if status == "invisible":
                    self.violation(call, f"returned seq {seq}, which has "
                                   f"expired or been swept")
                    return
            elif status == "visible":
                self.violation(call, f"left out live seq {seq}")
                return
        if returned:
            self.violation(call, f"returned seqs that were never appended: "
                           f"{sorted(returned)[:10]}")

    def judge_scan(self, call, rows, error, a, b):
        if call.errors:
            if error is None:
                self.violation(call, "succeeded, expected 22004")
            else:
                self.judge_error(call, error, call.errors)
            return
        if not self.expect_success(call, error):
            return
        prefix = call.prefix
        keys = [bytes(row[0]) for row in rows]
        if keys != sorted(set(keys)):
            self.violation(call, "returned keys out of order")
            return
        returned = {bytes(key): next_seq for key, next_seq in rows}
        for key, next_seq in returned.items():
            stream = self.streams.get(key)
            if not key.startswith(prefix) or stream is None:
                self.violation(call, f"returned {format_key(key)}, which "
                               f"does not match or does not exist")
                return
            if next_seq != stream.next_seq:
                self.violation(call, f"returned next_seq {next_seq} for "
                               f"{format_key(key)}, model {stream.next_seq}")
            if not (stream.has_event("visible", a, b)
                    or stream.has_event("unknown", a, b)):
                self.violation(call, f"returned {format_key(key)}, which "
                               f"holds no live event")
        for key, stream in self.streams.items():
            if (key.startswith(prefix) and key not in returned
                    and stream.has_event("visible", a, b)):
                self.violation(call, f"left out {format_key(key)}, which "
                               f"holds a live event")
                return

    def judge_sweep(self, call, rows, error, a, b):
        if call.errors:
            if error is None:
                self.violation(call, "succeeded, expected 22023")
            else:
                self.judge_error(call, error, call.errors)
            return
        if not self.expect_success(call, error):
            return
        deleted = rows[0][0]
        certain = possible = 0
        affected = []
        for stream in self.streams.values():
            for group in stream.groups:
                expiry = group.expiry_status(a, b)
                if expiry == "live":
                    continue
                present = len(group.digests) - len(group.swept)
                if present == 0:
                    continue
                possible += present
                if expiry == "dead" and not group.maybe_swept:
                    certain += present
                affected.append((group, expiry))
        limit = call.max_events
        low = certain if limit is None else min(limit, certain)
        high = possible if limit is None else min(limit, possible)
        if not low <= deleted <= high:
            self.violation(call, f"deleted {deleted} events; between {low} "
                           f"and {high} had expired")
        for group, expiry in affected:
            if expiry == "dead" and limit is None:
                group.swept.update(range(group.first_seq,
                                        group.first_seq + len(group.digests)))
                group.maybe_swept = False
            else:
                group.maybe_swept = True

    def step(self):
        call = self.make_call()
        rows, error, a, b = self.run_call(call)
        if call.function in ("append", "append_batch"):
            self.judge_append(call, rows, error, a, b)
        elif call.function == "cas":
            self.judge_cas(call, rows, error)
        elif call.function in ("read_value", "next_seq"):
            self.judge_key_only(call, rows, error)
        elif call.function in ("read", "read_from"):
            self.judge_read(call, rows, error, a, b)
        elif call.function == "scan":
            self.judge_scan(call, rows, error, a, b)
        else:
            self.judge_sweep(call, rows, error, a, b)

    # The table check.

    def check_tables(self, label):
        """Compare the tables with the model; resolve what sweeps did."""
        with self.admin.cursor() as cursor:
            cursor.execute("SELECT stream_key, next_seq, "
                           "live_until = 'infinity' FROM haematite.stream_heads")
            heads = {bytes(key): (next_seq, infinite)
                     for key, next_seq, infinite in cursor}
            model_heads = {key: stream for key, stream in self.streams.items()
                           if stream.next_seq > 0}
            self.checks.equal(len(heads), len(model_heads),
                              f"{label}: number of head rows")
            for key, stream in model_heads.items():
                found = heads.get(key)
                if not self.checks.check(
                        found is not None and found[0] == stream.next_seq,
                        f"{label}: head of {format_key(key)} is {found}, "
                        f"model next_seq {stream.next_seq}"):
                    continue
                if stream.any_without_ttl:
                    self.checks.check(found[1], f"{label}: live_until of "
                                      f"{format_key(key)} is not infinity "
                                      f"although an event has no TTL")

            cursor.execute(
                "SELECT count(*) FROM haematite.events e "
                "LEFT JOIN haematite.stream_heads h USING (stream_key) "
                "WHERE h.stream_key IS NULL OR e.seq >= h.next_seq "
                "OR e.seq < 0")
            self.checks.equal(cursor.fetchone()[0], 0,
                              f"{label}: events without a head row or "
                              f"outside 0 .. next_seq - 1")

            # Events without TTL: all present, compared by a sum of hashes.
            cursor.execute(
                "SELECT stream_key, count(*), sum(('x' || substr(md5("
                "seq::text || ':' || md5(payload)), 1, 15))::bit(60)::bigint)"
                " FROM haematite.events WHERE expires_at IS NULL "
                "GROUP BY stream_key")
            stored = {bytes(key): (count, int(total))
                      for key, count, total in cursor}
            for key, stream in self.streams.items():
                count = 0
                total = 0
                for group in stream.groups:
                    if group.ttl.kind != "none":
                        continue
                    count += len(group.digests)
                    total += group.hash_sum()
                if count or key in stored:
                    self.checks.equal(stored.get(key), (count, total),
                                      f"{label}: count and hash of the "
                                      f"events without TTL of "
                                      f"{format_key(key)}")

            # Events with a TTL: each present one is in the model; each
            # absent one was swept after it could have expired.
            cursor.execute(
                "SELECT stream_key, seq, md5(payload), "
                "extract(epoch FROM expires_at - appended_at) "
                "FROM haematite.events WHERE expires_at IS NOT NULL")
            present = {}
            lifetimes = {}
            for key, seq, digest, lifetime in cursor:
                present[(bytes(key), seq)] = digest
                lifetimes[(bytes(key), seq)] = lifetime
            for key, stream in self.streams.items():
                for group in stream.groups:
                    if group.ttl.kind == "none":
                        continue
                    for offset, digest in enumerate(group.digests):
                        seq = group.first_seq + offset
                        stored_digest = present.pop((key, seq), None)
                        lifetime = lifetimes.get((key, seq))
                        if lifetime is not None and group.ttl.kind in (
                                "zero", "short"):
                            want = group.ttl.seconds or 0
                            self.checks.check(
                                abs(float(lifetime) - want) < 1e-6,
                                f"{label}: event {seq} of {format_key(key)}"
                                f" expires {lifetime} s after it was "
                                f"appended; its TTL is {group.ttl.literal}")
                        if stored_digest is None:
                            if not self.checks.check(
                                    group.maybe_swept or seq in group.swept,
                                    f"{label}: event {seq} of "
                                    f"{format_key(key)} (TTL "
                                    f"{group.ttl.literal}) is missing"):
                                continue
                            group.swept.add(seq)
                        else:
                            self.checks.check(
                                seq not in group.swept
                                and stored_digest == digest,
                                f"{label}: event {seq} of {format_key(key)}"
                                f" is wrong or was swept before")
                    group.maybe_swept = False
            self.checks.equal(len(present), 0, f"{label}: events with a TTL "
                              f"that no call appended")

            cursor.execute("SELECT key, value FROM haematite.scalar_values")
            values = {bytes(key): value for key, value in cursor}
            self.checks.equal(values, {key: value for key, value
                                       in self.values.items()
                                       if value is not None},
                              f"{label}: values")
            self.checks.check(all(value >= 0 for value in values.values()),
                              f"{label}: a negative value is stored")

    def run(self):
        self.seed_pool()
        started = time.monotonic()
        for self.call_number in range(self.calls):
            self.step()
            if (self.call_number + 1) % self.check_every == 0:
                self.check_tables(f"after call {self.call_number}")
        self.check_tables("at the end")
        elapsed = time.monotonic() - started
        for function, outcomes in sorted(self.outcomes.items()):
            text = ", ".join(f"{code} {count}" for code, count
                             in sorted(outcomes.items()))
            print(f"  {function}: {text}")
        print(f"{self.calls} calls (seed {self.seed}) in {elapsed:.0f} s on "
              f"{len(self.streams)} streams and {len(self.values)} values, "
              f"{self.big_payloads} payloads of 2 MB or more and "
              f"{self.huge_arrays} arrays of 20,000 or more payloads "
              f"appended; {self.violations} contract violations")
        return self.checks.summary()


def main():
    seed = int(os.environ.get("HAEMATITE_FUZZ_SEED",
                              random.randrange(1, 2 ** 31)))
    calls = int(os.environ.get("HAEMATITE_FUZZ_CALLS", "20000"))
    check_every = int(os.environ.get("HAEMATITE_FUZZ_CHECK_EVERY", "1000"))
    print(f"reliability_fuzz: seed {seed}, {calls} calls "
          f"(HAEMATITE_FUZZ_SEED={seed} replays this run)", flush=True)
    cluster = None
    dsn = harness.server_dsn_from_environment()
    if dsn is None:
        cluster = harness.ThrowawayCluster()
        cluster.create()
        dsn = cluster.dsn().rsplit(" dbname=", 1)[0]
    try:
        harness.create_database(dsn, DATABASE)
        suite = FuzzSuite(dsn, seed, calls, check_every)
        try:
            status = suite.run()
        except ConnectionLost:
            print(f"The connection was lost after call {suite.call_number}; "
                  f"replay with HAEMATITE_FUZZ_SEED={seed}.")
            suite.checks.summary()
            return 1
        finally:
            suite.connection.close()
            suite.admin.close()
        harness.drop_database(dsn, DATABASE)
    finally:
        if cluster is not None:
            cluster.stop()
    return status


if __name__ == "__main__":
    sys.exit(main())

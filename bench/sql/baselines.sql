-- Baselines for the haematite benchmark, created in schema bench.
--
-- floor: the minimum work an append or a read can cost in plain SQL. One
-- table shaped like haematite.events (same columns, same primary key) is
-- written with one prepared INSERT per event. The client supplies the seq and
-- owns its streams, so nothing checks or locks a head row.
--
-- plpgsql (the sql_* objects): the same job as haematite's append,
-- append_batch and read_from, written in PL/pgSQL on tables shaped like
-- haematite's. The head row is advanced only when it still has the expected
-- sequence, then the events are inserted. Only the bytea-key forms exist, and TTL is left out because
-- the benchmark never passes one.
--
-- The try_append_* wrappers turn a sequence conflict (SQLSTATE SE001) into a
-- false result, so that pgbench can count conflicts on a hot stream instead
-- of aborting the client.

CREATE SCHEMA bench;

CREATE TABLE bench.floor_events (
	stream_key bytea NOT NULL,
	seq bigint NOT NULL,
	payload bytea NOT NULL,
	appended_at timestamptz NOT NULL,
	expires_at timestamptz,
	PRIMARY KEY (stream_key, seq)
);

CREATE TABLE bench.sql_heads (
	stream_key bytea PRIMARY KEY
		CHECK (octet_length(stream_key) BETWEEN 1 AND 1024),
	next_seq bigint NOT NULL CHECK (next_seq >= 0),
	last_appended_at timestamptz NOT NULL,
	live_until timestamptz NOT NULL
) WITH (fillfactor = 70);

CREATE TABLE bench.sql_events (
	stream_key bytea NOT NULL,
	seq bigint NOT NULL,
	payload bytea NOT NULL,
	appended_at timestamptz NOT NULL,
	expires_at timestamptz,
	PRIMARY KEY (stream_key, seq)
);

CREATE INDEX sql_events_expires_at_idx ON bench.sql_events (expires_at)
	WHERE expires_at IS NOT NULL;

-- Advance the head of p_key from p_expected to p_expected + p_count with one
-- INSERT ... ON CONFLICT DO UPDATE, which locks the head row until the end of
-- the transaction. Raises SE001 when the head has another sequence, or when
-- the stream is new and p_expected is not 0 (the raise undoes the insert).
-- Returns the appended_at to store with the events.
CREATE FUNCTION bench.sql_advance_head(p_key bytea, p_expected bigint,
									   p_count bigint)
RETURNS timestamptz
LANGUAGE plpgsql AS $$
DECLARE
	v_next bigint;
	v_appended_at timestamptz;
	v_actual bigint := 0;
BEGIN
	INSERT INTO bench.sql_heads AS h
		(stream_key, next_seq, last_appended_at, live_until)
	VALUES (p_key, p_count, clock_timestamp(), 'infinity')
	ON CONFLICT (stream_key) DO UPDATE
		SET next_seq = h.next_seq + p_count,
			last_appended_at = greatest(h.last_appended_at, clock_timestamp()),
			live_until = 'infinity'
		WHERE h.next_seq = p_expected
	RETURNING next_seq, last_appended_at INTO v_next, v_appended_at;

	IF FOUND AND v_next = p_expected + p_count THEN
		RETURN v_appended_at;
	END IF;

	IF NOT FOUND THEN
		SELECT next_seq INTO v_actual
		FROM bench.sql_heads WHERE stream_key = p_key;
	END IF;
	RAISE EXCEPTION 'sequence conflict on stream %', p_key
		USING ERRCODE = 'SE001',
			  DETAIL = format('Expected next sequence %s, actual %s.',
							  p_expected, v_actual);
END
$$;

CREATE FUNCTION bench.sql_append(p_key bytea, p_payload bytea,
								 p_expected bigint)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	v_appended_at timestamptz;
BEGIN
	v_appended_at := bench.sql_advance_head(p_key, p_expected, 1);
	INSERT INTO bench.sql_events (stream_key, seq, payload, appended_at)
	VALUES (p_key, p_expected, p_payload, v_appended_at);
	RETURN p_expected + 1;
END
$$;

CREATE FUNCTION bench.sql_append_batch(p_key bytea, p_payloads bytea[],
									   p_expected bigint)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	v_count bigint := cardinality(p_payloads);
	v_appended_at timestamptz;
BEGIN
	IF v_count = 0 THEN
		RETURN p_expected;
	END IF;
	v_appended_at := bench.sql_advance_head(p_key, p_expected, v_count);
	INSERT INTO bench.sql_events (stream_key, seq, payload, appended_at)
	SELECT p_key, p_expected + u.ordinality - 1, u.payload, v_appended_at
	FROM unnest(p_payloads) WITH ORDINALITY AS u(payload, ordinality);
	RETURN p_expected + v_count;
END
$$;

-- Return the live events of p_key from p_from on, at most p_max of them.
-- Raises SE003 when none is left although the head records some.
CREATE FUNCTION bench.sql_read_from(p_key bytea, p_from bigint,
									p_max integer DEFAULT NULL)
RETURNS TABLE (seq bigint, payload bytea, appended_at timestamptz)
LANGUAGE plpgsql STABLE AS $$
DECLARE
	v_next bigint;
BEGIN
	RETURN QUERY
		SELECT e.seq, e.payload, e.appended_at
		FROM bench.sql_events AS e
		WHERE e.stream_key = p_key AND e.seq >= p_from
		  AND (e.expires_at IS NULL OR e.expires_at > statement_timestamp())
		ORDER BY e.seq
		LIMIT p_max;
	IF FOUND OR p_max = 0 THEN
		RETURN;
	END IF;

	SELECT h.next_seq INTO v_next
	FROM bench.sql_heads AS h WHERE h.stream_key = p_key;
	IF p_from < v_next THEN
		RAISE EXCEPTION 'history compacted on stream %', p_key
			USING ERRCODE = 'SE003',
				  DETAIL = format('Requested from sequence %s; next sequence is %s; no live event remains in that range.',
								  p_from, v_next);
	END IF;
END
$$;

-- Try one append with the expected sequence the client read; returns false
-- instead of raising when another client appended first (SE001).
CREATE FUNCTION bench.try_append_haematite(p_key bytea, p_payload bytea,
										   p_expected bigint)
RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM haematite.append(p_key, p_payload, p_expected);
	RETURN true;
EXCEPTION WHEN SQLSTATE 'SE001' THEN
	RETURN false;
END
$$;

CREATE FUNCTION bench.try_append_sql(p_key bytea, p_payload bytea,
									 p_expected bigint)
RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM bench.sql_append(p_key, p_payload, p_expected);
	RETURN true;
EXCEPTION WHEN SQLSTATE 'SE001' THEN
	RETURN false;
END
$$;

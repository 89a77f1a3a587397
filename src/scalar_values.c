/*-------------------------------------------------------------------------
 *
 * scalar_values.c
 *		Compare-and-swap values: cas and read_value.
 *
 * A value is one row in haematite.scalar_values.  cas changes it with a
 * single UPDATE whose WHERE clause compares the current value, or creates it
 * with INSERT ... ON CONFLICT DO NOTHING when the caller expects it absent.
 * The row lock taken by that statement is held until the caller's
 * transaction ends.  Under READ COMMITTED, a concurrent cas that commits
 * first makes PostgreSQL recheck the WHERE clause against the new row
 * version.  So of two calls from the same expected value exactly one
 * succeeds and the other raises SE002.  Two racing creators behave the same
 * way and never get a unique violation.  Calls on different keys never wait
 * for each other.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"

#include "haematite.h"

PG_FUNCTION_INFO_V1(cas);
PG_FUNCTION_INFO_V1(read_value);

/* Create key $1 with value $2 unless it exists. */
static HaematiteQuery cas_create_query = {
	.sql =
	"INSERT INTO haematite.scalar_values (key, value) VALUES ($1, $2) "
	"ON CONFLICT (key) DO NOTHING",
	.nargs = 2,
	.argtypes = {BYTEAOID, INT8OID},
};

/* Set key $1 to $3 if its value is $2. */
static HaematiteQuery cas_update_query = {
	.sql =
	"UPDATE haematite.scalar_values SET value = $3 "
	"WHERE key OPERATOR(pg_catalog.=) $1 AND value OPERATOR(pg_catalog.=) $2",
	.nargs = 3,
	.argtypes = {BYTEAOID, INT8OID, INT8OID},
};

/* The value of key $1. */
static HaematiteQuery read_value_query = {
	.sql =
	"SELECT value FROM haematite.scalar_values "
	"WHERE key OPERATOR(pg_catalog.=) $1",
	.nargs = 1,
	.argtypes = {BYTEAOID},
};

/*
 * cas(key bytea|text, expected bigint, new_value bigint) RETURNS void
 *
 * Sets the key's value to new_value if its current value equals expected;
 * a NULL expected means the key must be absent, and creates it.  Raises
 * SE002 with the actual value (or "absent") on a mismatch, and writes
 * nothing then.
 */
Datum
cas(PG_FUNCTION_ARGS)
{
	bytea	   *key = check_key_arg(fcinfo, 0);
	bool		expected_isnull = PG_ARGISNULL(1);
	int64		expected = 0;
	int64		new_value = check_nonnegative_int64_arg(fcinfo, 2);
	HaematiteQuery *query;
	Datum		values[3];
	int			rc;

	if (!expected_isnull)
		expected = check_nonnegative_int64_arg(fcinfo, 1);

	values[0] = PointerGetDatum(key);
	if (expected_isnull)
	{
		query = &cas_create_query;
		values[1] = Int64GetDatum(new_value);
	}
	else
	{
		query = &cas_update_query;
		values[1] = Int64GetDatum(expected);
		values[2] = Int64GetDatum(new_value);
	}

	SPI_connect();

	rc = SPI_execute_plan(haematite_plan(query), values, NULL, false, 0);
	if (rc != SPI_OK_INSERT && rc != SPI_OK_UPDATE)
		report_spi_failure(query->sql, rc);

	/* Nothing changed: report the key's current value. */
	if (SPI_processed == 0)
	{
		int64		actual = 0;
		bool		actual_isnull;

		actual_isnull = !haematite_lookup_int64(&read_value_query, values,
												NULL, false, &actual);
		report_value_mismatch(key, expected_isnull, expected, actual_isnull,
							  actual);
	}

	SPI_finish();

	PG_RETURN_VOID();
}

/*
 * read_value(key bytea|text) RETURNS bigint
 *
 * Returns the key's value, or NULL when the key is absent.  Takes no lock.
 */
Datum
read_value(PG_FUNCTION_ARGS)
{
	bytea	   *key = check_key_arg(fcinfo, 0);
	Datum		values[1] = {PointerGetDatum(key)};
	int64		value;
	bool		found;

	SPI_connect();
	found = haematite_lookup_int64(&read_value_query, values, NULL, true,
								   &value);
	SPI_finish();

	if (!found)
		PG_RETURN_NULL();
	PG_RETURN_INT64(value);
}

/*-------------------------------------------------------------------------
 *
 * haematite.h
 *		Declarations shared by haematite's source files.
 *
 * Each SQL-callable function lives in the file of its concept (streams.c,
 * reads.c, scalar_values.c, expiry.c, flush.c).  This header declares the
 * helpers they share: argument checks and error reports (errors.c), the
 * settings and the session cache of prepared SPI plans (haematite.c), and
 * the deletion of expired events that sweep() and the background sweeper
 * (worker.c) both run (expiry.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef HAEMATITE_H
#define HAEMATITE_H

#include "datatype/timestamp.h"
#include "fmgr.h"
#include "executor/spi.h"

/* Keys of streams and scalar values are 1 to this many bytes long. */
#define HAEMATITE_MAX_KEY_BYTES 1024

/* The haematite error class; clients match on these SQLSTATEs. */
#define ERRCODE_HAEMATITE_SEQUENCE_CONFLICT	MAKE_SQLSTATE('S','E','0','0','1')
#define ERRCODE_HAEMATITE_VALUE_MISMATCH	MAKE_SQLSTATE('S','E','0','0','2')
#define ERRCODE_HAEMATITE_HISTORY_COMPACTED	MAKE_SQLSTATE('S','E','0','0','3')
#define ERRCODE_HAEMATITE_CORRUPT_DATA		MAKE_SQLSTATE('S','E','0','0','4')

/*
 * A statement haematite runs through SPI, prepared once per session.  The
 * plan is NULL until the first call needs it.
 */
typedef struct HaematiteQuery
{
	const char *sql;			/* query text, parameters as $1, $2, ... */
	int			nargs;			/* number of parameters */
	Oid			argtypes[8];	/* their types */
	int			cursor_options; /* CURSOR_OPT_* planner options; 0 means
								 * CURSOR_OPT_GENERIC_PLAN */
	SPIPlanPtr	plan;			/* saved plan, or NULL before first use */
} HaematiteQuery;

/* Who ran a sweep, as last_sweep() reports it. */
typedef enum HaematiteSweepSource
{
	HAEMATITE_SWEEP_BY_WORKER,	/* the background sweeper: 'worker' */
	HAEMATITE_SWEEP_BY_HAND		/* a call of sweep(): 'manual' */
} HaematiteSweepSource;

/* haematite.c: settings */
extern int	haematite_max_batch_bytes;
extern int	haematite_sweep_interval;
extern int	haematite_sweep_batch_size;
extern char *haematite_sweep_database;

/* haematite.c: the session cache of prepared plans */
extern SPIPlanPtr haematite_plan(HaematiteQuery *query);
extern bool haematite_lookup_int64(HaematiteQuery *query, Datum *values,
								   const char *nulls, bool read_only,
								   int64 *result);

/* expiry.c */
extern uint64 delete_expired_events(TimestampTz expired_by, int64 max_events);

/* worker.c: the background sweeper and the record of the last sweep */
extern void haematite_worker_init(void);
extern void record_last_sweep(TimestampTz finished_at, int64 deleted,
							  HaematiteSweepSource source);
extern void record_sweep_at_commit(int64 deleted);

/* streams.c */
extern int64 stream_next_seq(bytea *stream_key, bool read_only);

/* errors.c: argument checks, called before any lock is taken */
extern bytea *check_key_arg(FunctionCallInfo fcinfo, int argno);
extern int64 check_nonnegative_int64_arg(FunctionCallInfo fcinfo, int argno);
extern void check_not_null_arg(FunctionCallInfo fcinfo, int argno);
extern void check_ttl_arg(FunctionCallInfo fcinfo, int argno);

/* errors.c: error reports with fixed SQLSTATEs and DETAIL wording */
extern char *format_key(bytea *key);
extern void report_sequence_conflict(bytea *stream_key, int64 expected,
									 int64 actual) pg_attribute_noreturn();
extern void report_value_mismatch(bytea *key, bool expected_isnull,
								  int64 expected, bool actual_isnull,
								  int64 actual) pg_attribute_noreturn();
extern void report_history_compacted(bytea *stream_key, int64 from_seq,
									 int64 next_seq) pg_attribute_noreturn();
extern void report_sequence_overflow(bytea *stream_key, int64 next_seq,
									 int64 count) pg_attribute_noreturn();
extern void report_event_collision(bytea *stream_key, int64 first_seq,
								   int64 count) pg_attribute_noreturn();
extern void report_missing_events(bytea *stream_key, int64 expected_rows,
								  uint64 inserted_rows) pg_attribute_noreturn();
extern void report_spi_failure(const char *sql, int rc) pg_attribute_noreturn();

#endif							/* HAEMATITE_H */

/*-------------------------------------------------------------------------
 *
 * producer.c
 *	  Append events to a haematite stream with optimistic concurrency,
 *	  using libpq.
 *
 * Usage: producer STREAM --producer-id ID --count N
 *
 * Appends N events to STREAM.  Each payload is a small JSON document
 * naming the producer and a counter from 1 to N.  Any number of
 * producers may append to the same stream at once: an append that loses the
 * race fails with SQLSTATE SE001 (sequence conflict), and this producer then
 * re-reads the stream's next sequence and tries again.  At the end it prints
 * how many events it appended and how many conflicts it retried.
 *
 * The connection settings come from the standard libpq environment
 * variables (PGHOST, PGPORT, PGUSER, PGDATABASE, PGPASSWORD, ...).
 *
 * Statements are prepared once and executed many times.  The payload is
 * sent in binary format, so its bytes need no escaping.  Results are
 * requested in binary format too, so a bigint arrives as 8 bytes in network
 * byte order.
 *
 *-------------------------------------------------------------------------
 */
#include <endian.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

/* haematite's SQLSTATE for "expected_seq is not the stream's next sequence" */
#define SEQUENCE_CONFLICT "SE001"

/*
 * Give up on one event after this many conflicts in a row.  Every conflict
 * means another producer appended, so the stream as a whole keeps moving, but
 * one unlucky producer could otherwise retry for a very long time.
 */
#define MAX_CONFLICTS_PER_EVENT 100

/*
 * After a conflict, wait a random time before retrying, up to a limit that
 * doubles with each conflict in a row (exponential backoff with jitter).
 * Without it the producer that just lost needs two round trips, next_seq and
 * then append, while the winner needs one, so the same producer can lose
 * again and again.
 */
#define BACKOFF_FIRST_USEC 1000L
#define BACKOFF_MAX_USEC 100000L

/* Maximum length of a producer ID, so that every payload fits its buffer. */
#define MAX_PRODUCER_ID_LENGTH 64

/* Result format code of PQexecPrepared: 0 is text, 1 is binary. */
#define BINARY_FORMAT 1

/*
 * Every haematite function has a text-key and a bytea-key overload.  The
 * casts choose the text overload explicitly, and they also give each
 * parameter its type, so PQprepare needs no parameter type OIDs.
 */
static const char *const APPEND_SQL =
	"SELECT haematite.append($1::text, $2::bytea, $3::bigint)";
static const char *const NEXT_SEQ_SQL =
	"SELECT haematite.next_seq($1::text)";

/*
 * Print the connection's last error and exit.  Used for failures this
 * program does not handle; the process exit closes the connection.
 */
static void
exit_with_error(PGconn *conn, const char *action)
{
	fprintf(stderr, "producer: %s failed: %s", action, PQerrorMessage(conn));
	PQfinish(conn);
	exit(1);
}

/*
 * Return true if res is a server error with the given SQLSTATE.  Errors
 * raised inside libpq itself (a lost connection, say) have no SQLSTATE.
 */
static int
has_sqlstate(const PGresult *res, const char *sqlstate)
{
	const char *code = PQresultErrorField(res, PG_DIAG_SQLSTATE);

	return code != NULL && strcmp(code, sqlstate) == 0;
}

/* Decode a binary-format bigint column of a one-row result. */
static int64_t
get_int64(const PGresult *res, int column)
{
	uint64_t	network_order;

	memcpy(&network_order, PQgetvalue(res, 0, column), sizeof(network_order));
	return (int64_t) be64toh(network_order);
}

/* Sleep for a random time after the given number of conflicts in a row. */
static void
back_off(long conflicts_in_a_row)
{
	long		limit = BACKOFF_MAX_USEC;
	long		delay;
	struct timespec pause;

	if (conflicts_in_a_row <= 10)
		limit = BACKOFF_FIRST_USEC << (conflicts_in_a_row - 1);
	if (limit > BACKOFF_MAX_USEC)
		limit = BACKOFF_MAX_USEC;
	delay = random() % (limit + 1);
	pause.tv_sec = 0;
	pause.tv_nsec = delay * 1000;
	nanosleep(&pause, NULL);
}

/* Read the stream's next sequence; exits on error. */
static int64_t
read_next_seq(PGconn *conn, const char *stream)
{
	const char *values[1] = {stream};
	PGresult   *res;
	int64_t		next_seq;

	res = PQexecPrepared(conn, "next_seq", 1, values, NULL, NULL, BINARY_FORMAT);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		exit_with_error(conn, "next_seq");
	next_seq = get_int64(res, 0);
	PQclear(res);
	return next_seq;
}

/*
 * Append one event, retrying on sequence conflicts.  Adds the number of
 * conflicts retried to *conflicts and returns the stream's new next
 * sequence.  Exits on any other error.
 */
static int64_t
append_with_retry(PGconn *conn, const char *stream, const char *payload,
				  int64_t expected_seq, long *conflicts)
{
	long		conflicts_in_a_row = 0;

	for (;;)
	{
		char		expected_text[32];
		const char *values[3];
		int			lengths[3];
		int			formats[3];
		PGresult   *res;

		/*
		 * The key and the expected sequence go as text; the lengths of
		 * text-format parameters are ignored.  The payload goes as binary:
		 * its length is given, and it may contain any byte, zero included.
		 */
		snprintf(expected_text, sizeof(expected_text), "%" PRId64, expected_seq);
		values[0] = stream;
		lengths[0] = 0;
		formats[0] = 0;
		values[1] = payload;
		lengths[1] = (int) strlen(payload);
		formats[1] = 1;
		values[2] = expected_text;
		lengths[2] = 0;
		formats[2] = 0;

		res = PQexecPrepared(conn, "append", 3, values, lengths, formats,
							 BINARY_FORMAT);
		if (PQresultStatus(res) == PGRES_TUPLES_OK)
		{
			int64_t		next_seq = get_int64(res, 0);

			PQclear(res);
			return next_seq;
		}
		if (!has_sqlstate(res, SEQUENCE_CONFLICT) ||
			++conflicts_in_a_row >= MAX_CONFLICTS_PER_EVENT)
			exit_with_error(conn, "append");
		PQclear(res);
		(*conflicts)++;
		back_off(conflicts_in_a_row);

		/*
		 * Another producer appended since we last looked.  A producer whose
		 * event depends on the stream's state (say, "reserve the last seat")
		 * would re-read the events it missed and re-check its rule here.
		 * These events are independent, so the same payload is simply
		 * appended at the new end of the stream.
		 */
		expected_seq = read_next_seq(conn, stream);
	}
}

/* Parse a non-negative decimal count; exits with a message if invalid. */
static long
parse_count(const char *text)
{
	char	   *end;
	long		count;

	errno = 0;
	count = strtol(text, &end, 10);
	if (errno != 0 || end == text || *end != '\0' || count < 0)
	{
		fprintf(stderr, "producer: invalid count \"%s\": expected a non-negative integer\n",
				text);
		exit(2);
	}
	return count;
}

int
main(int argc, char **argv)
{
	static const struct option options[] = {
		{"producer-id", required_argument, NULL, 'i'},
		{"count", required_argument, NULL, 'c'},
		{NULL, 0, NULL, 0}
	};
	const char *stream;
	const char *producer_id = NULL;
	long		count = -1;
	int			option;
	PGconn	   *conn;
	PGresult   *res;
	int64_t		expected_seq;
	long		conflicts = 0;

	while ((option = getopt_long(argc, argv, "", options, NULL)) != -1)
	{
		switch (option)
		{
			case 'i':
				producer_id = optarg;
				break;
			case 'c':
				count = parse_count(optarg);
				break;
			default:
				producer_id = NULL; /* getopt_long printed the problem */
				optind = argc;
				break;
		}
	}
	if (producer_id == NULL || count < 0 || optind != argc - 1)
	{
		fprintf(stderr, "usage: %s STREAM --producer-id ID --count N\n", argv[0]);
		return 2;
	}
	stream = argv[optind];

	/*
	 * The producer ID is pasted into a JSON string as it is, so it must be
	 * short and need no escaping.
	 */
	if (strlen(producer_id) > MAX_PRODUCER_ID_LENGTH ||
		strpbrk(producer_id, "\"\\") != NULL)
	{
		fprintf(stderr, "producer: invalid producer ID \"%s\": expected at most %d characters, without \" or \\\n",
				producer_id, MAX_PRODUCER_ID_LENGTH);
		return 2;
	}

	/*
	 * An empty conninfo string makes libpq read the PG* environment
	 * variables.  No transaction block is opened, so each append commits on
	 * its own and the stream's row lock is released as soon as it returns.
	 */
	/* Producers started at the same moment must not back off in step. */
	srandom((unsigned int) getpid() ^ (unsigned int) time(NULL));

	conn = PQconnectdb("");
	if (PQstatus(conn) != CONNECTION_OK)
		exit_with_error(conn, "connection");

	/* Make error messages show the SQLSTATE and the DETAIL text. */
	PQsetErrorVerbosity(conn, PQERRORS_VERBOSE);

	res = PQprepare(conn, "append", APPEND_SQL, 0, NULL);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		exit_with_error(conn, "prepare append");
	PQclear(res);
	res = PQprepare(conn, "next_seq", NEXT_SEQ_SQL, 0, NULL);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		exit_with_error(conn, "prepare next_seq");
	PQclear(res);

	/*
	 * Start from the stream's current end (0 for a new stream).  Afterwards
	 * the value each append returns is the expected sequence of the next
	 * one, so the stream is only read again after a conflict.
	 */
	expected_seq = read_next_seq(conn, stream);

	for (long n = 1; n <= count; n++)
	{
		char		payload[MAX_PRODUCER_ID_LENGTH + 64];

		snprintf(payload, sizeof(payload), "{\"producer\":\"%s\",\"n\":%ld}",
				 producer_id, n);
		expected_seq = append_with_retry(conn, stream, payload, expected_seq,
										 &conflicts);
	}

	printf("producer %s: appended %ld events, retried %ld conflicts\n",
		   producer_id, count, conflicts);
	PQfinish(conn);
	return 0;
}

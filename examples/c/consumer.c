/*-------------------------------------------------------------------------
 *
 * consumer.c
 *	  Read a haematite stream in pages and remember the position with cas,
 *	  using libpq.
 *
 * Usage: consumer STREAM --name NAME [--page-size N] [--max-events N]
 *
 * Prints one line per event, "event SEQ PAYLOAD", in sequence order, and
 * stops when it has caught up with the stream (or after --max-events events).
 * Its position, the sequence number of the next event to process, is a
 * haematite compare-and-swap value under the key "cursors/NAME/STREAM".  A
 * consumer that is stopped and started again carries on from that position,
 * so it neither repeats nor skips an event.  --page-size (default 50) is the
 * number of events read per transaction.
 *
 * The connection settings come from the standard libpq environment
 * variables (PGHOST, PGPORT, PGUSER, PGDATABASE, PGPASSWORD, ...).
 *
 * Results are requested in binary format: the payload arrives as its raw
 * bytes, with no bytea escaping to undo, and a bigint as 8 bytes in network
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

#include <libpq-fe.h>

/* Result format code of PQexecPrepared: 0 is text, 1 is binary. */
#define BINARY_FORMAT 1

#define DEFAULT_PAGE_SIZE 50

/*
 * Every haematite function has a text-key and a bytea-key overload.  The
 * casts choose the text overload explicitly, and they also give each
 * parameter its type, so PQprepare needs no parameter type OIDs.
 */
static const char *const READ_VALUE_SQL =
	"SELECT haematite.read_value($1::text)";
static const char *const READ_FROM_SQL =
	"SELECT seq, payload FROM haematite.read_from($1::text, $2::bigint, $3::integer)";
static const char *const CAS_SQL =
	"SELECT haematite.cas($1::text, $2::bigint, $3::bigint)";

/*
 * Print the connection's last error and exit.  The server rolls back an
 * open transaction when the connection closes, so the cursor stays where
 * the last committed page left it.
 */
static void
exit_with_error(PGconn *conn, const char *action)
{
	fprintf(stderr, "consumer: %s failed: %s", action, PQerrorMessage(conn));
	PQfinish(conn);
	exit(1);
}

/* Decode a binary-format bigint column. */
static int64_t
get_int64(const PGresult *res, int row, int column)
{
	uint64_t	network_order;

	memcpy(&network_order, PQgetvalue(res, row, column), sizeof(network_order));
	return (int64_t) be64toh(network_order);
}

/* Prepare one statement; exits on error. */
static void
prepare(PGconn *conn, const char *name, const char *sql)
{
	PGresult   *res = PQprepare(conn, name, sql, 0, NULL);

	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		exit_with_error(conn, name);
	PQclear(res);
}

/* Run a statement without parameters or result rows; exits on error. */
static void
run_command(PGconn *conn, const char *sql)
{
	PGresult   *res = PQexec(conn, sql);

	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		exit_with_error(conn, sql);
	PQclear(res);
}

/* Process one event.  Here that means printing it. */
static void
handle_event(int64_t seq, const char *payload, int length)
{
	printf("event %" PRId64 " ", seq);
	fwrite(payload, 1, (size_t) length, stdout);
	putchar('\n');
}

/*
 * Parse a decimal argument of at least minimum; exits with a message if
 * invalid.
 */
static long
parse_integer(const char *text, const char *what, long minimum)
{
	char	   *end;
	long		value;

	errno = 0;
	value = strtol(text, &end, 10);
	if (errno != 0 || end == text || *end != '\0' || value < minimum ||
		value > INT32_MAX)
	{
		fprintf(stderr, "consumer: invalid %s \"%s\": expected an integer from %ld to %d\n",
				what, text, minimum, INT32_MAX);
		exit(2);
	}
	return value;
}

int
main(int argc, char **argv)
{
	static const struct option options[] = {
		{"name", required_argument, NULL, 'n'},
		{"page-size", required_argument, NULL, 'p'},
		{"max-events", required_argument, NULL, 'm'},
		{NULL, 0, NULL, 0}
	};
	const char *stream;
	const char *name = NULL;
	int			option;
	long		page_size = DEFAULT_PAGE_SIZE;
	long		max_events = -1;	/* -1: no limit */
	char	   *cursor_key;
	PGconn	   *conn;
	PGresult   *res;
	int			has_checkpoint;
	int64_t		position;
	long		processed = 0;

	while ((option = getopt_long(argc, argv, "", options, NULL)) != -1)
	{
		switch (option)
		{
			case 'n':
				name = optarg;
				break;
			case 'p':
				page_size = parse_integer(optarg, "--page-size", 1);
				break;
			case 'm':
				max_events = parse_integer(optarg, "--max-events", 0);
				break;
			default:
				name = NULL;	/* getopt_long printed the problem */
				optind = argc;
				break;
		}
	}
	if (name == NULL || optind != argc - 1)
	{
		fprintf(stderr, "usage: %s STREAM --name NAME [--page-size N] [--max-events N]\n",
				argv[0]);
		return 2;
	}
	stream = argv[optind];

	cursor_key = malloc(strlen("cursors/") + strlen(name) + 1 + strlen(stream) + 1);
	if (cursor_key == NULL)
	{
		fprintf(stderr, "consumer: out of memory\n");
		return 1;
	}
	sprintf(cursor_key, "cursors/%s/%s", name, stream);

	/* An empty conninfo string makes libpq read the PG* environment variables. */
	conn = PQconnectdb("");
	if (PQstatus(conn) != CONNECTION_OK)
		exit_with_error(conn, "connection");

	/* Make error messages show the SQLSTATE and the DETAIL text. */
	PQsetErrorVerbosity(conn, PQERRORS_VERBOSE);

	prepare(conn, "read_value", READ_VALUE_SQL);
	prepare(conn, "read_from", READ_FROM_SQL);
	prepare(conn, "cas", CAS_SQL);

	/*
	 * NULL means this consumer has never checkpointed: start at 0.  It is
	 * also the "expected" argument of the first cas, which must be NULL for
	 * a key that does not exist yet.
	 */
	{
		const char *values[1] = {cursor_key};

		res = PQexecPrepared(conn, "read_value", 1, values, NULL, NULL,
							 BINARY_FORMAT);
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
			exit_with_error(conn, "read_value");
		has_checkpoint = !PQgetisnull(res, 0, 0);
		position = has_checkpoint ? get_int64(res, 0, 0) : 0;
		PQclear(res);
	}

	while (max_events < 0 || processed < max_events)
	{
		long		limit = page_size;
		char		position_text[32];
		char		limit_text[32];
		char		new_position_text[32];
		const char *read_values[3];
		const char *cas_values[3];
		int			rows;
		int64_t		new_position;

		if (max_events >= 0 && max_events - processed < limit)
			limit = max_events - processed;

		/* One transaction per page: read it, process it, move the cursor. */
		run_command(conn, "BEGIN");

		snprintf(position_text, sizeof(position_text), "%" PRId64, position);
		snprintf(limit_text, sizeof(limit_text), "%ld", limit);
		read_values[0] = stream;
		read_values[1] = position_text;
		read_values[2] = limit_text;
		res = PQexecPrepared(conn, "read_from", 3, read_values, NULL, NULL,
							 BINARY_FORMAT);
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
			exit_with_error(conn, "read_from");
		rows = PQntuples(res);
		if (rows == 0)
		{
			PQclear(res);
			run_command(conn, "COMMIT");
			break;
		}
		for (int i = 0; i < rows; i++)
			handle_event(get_int64(res, i, 0), PQgetvalue(res, i, 1),
						 PQgetlength(res, i, 1));

		/*
		 * The next position is one past the last event read.  Counting rows
		 * instead would go wrong when read_from skipped expired events (those
		 * appended with a TTL).
		 */
		new_position = get_int64(res, rows - 1, 0) + 1;
		PQclear(res);

		/*
		 * The output must be written before the cursor moves past it.  If
		 * the process dies between the two, the next run prints this page
		 * again: delivery is at least once.  A handler that writes to this
		 * database instead would do so inside this transaction, and then
		 * the cursor moves if and only if the handler's writes commit, which
		 * is exactly once.
		 */
		if (fflush(stdout) != 0)
		{
			fprintf(stderr, "consumer: writing the output failed: %s\n",
					strerror(errno));
			PQfinish(conn);
			return 1;
		}

		/*
		 * cas fails with SE002 if another process running under the same
		 * consumer name moved the cursor since it was read.  This program
		 * then exits and the server rolls the transaction back, because two
		 * instances must not share one cursor.  A NULL parameter value is
		 * SQL NULL: "the key must not exist yet".
		 */
		snprintf(new_position_text, sizeof(new_position_text), "%" PRId64,
				 new_position);
		cas_values[0] = cursor_key;
		cas_values[1] = has_checkpoint ? position_text : NULL;
		cas_values[2] = new_position_text;
		res = PQexecPrepared(conn, "cas", 3, cas_values, NULL, NULL,
							 BINARY_FORMAT);
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
			exit_with_error(conn, "cas");
		PQclear(res);
		run_command(conn, "COMMIT");

		has_checkpoint = 1;
		position = new_position;
		processed += rows;
	}

	printf("consumer %s: processed %ld events, position %" PRId64 "\n",
		   name, processed, position);
	PQfinish(conn);
	free(cursor_key);
	return 0;
}

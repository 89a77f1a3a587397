#!/usr/bin/env node
// Read a haematite stream in pages and remember the position with cas.
//
// Usage: node consumer.js STREAM --name NAME [--page-size N] [--max-events N]
//
// Prints one line per event, "event SEQ PAYLOAD", in sequence order, and
// stops when it has caught up with the stream (or after --max-events events).
// Its position, the sequence number of the next event to process, is a
// haematite compare-and-swap value under the key "cursors/NAME/STREAM". A
// consumer that is stopped and started again carries on from that position,
// so it neither repeats nor skips an event.
//
// The connection settings come from the standard libpq environment variables
// (PGHOST, PGPORT, PGUSER, PGDATABASE, PGPASSWORD, ...), which node-postgres
// reads when the Client is given no configuration.
'use strict';

const { parseArgs } = require('node:util');
const { Client } = require('pg');

const READ_VALUE = {
  name: 'read_value',
  text: 'SELECT haematite.read_value($1::text) AS value',
};
const READ_FROM = {
  name: 'read_from',
  text: 'SELECT seq, payload FROM haematite.read_from($1::text, $2::bigint, $3::integer)',
};
const CAS = {
  name: 'cas',
  text: 'SELECT haematite.cas($1::text, $2::bigint, $3::bigint)',
};

// Write a string to standard output and resolve once it has been handed to
// the operating system, so that the cursor never moves past unwritten output.
function writeOutput(text) {
  return new Promise((resolve, reject) => {
    process.stdout.write(text, (error) => (error ? reject(error) : resolve()));
  });
}

// Process one event. Here that means formatting it for output.
function handleEvent(seq, payload) {
  return `event ${seq} ${payload.toString('utf8')}\n`;
}

// Parse an integer option of at least minimum, or return the fallback when
// the option is absent.
function integerOption(value, minimum, fallback) {
  if (value === undefined) {
    return fallback;
  }
  const number = Number(value);
  if (!Number.isInteger(number) || number < minimum) {
    throw new Error(`invalid number: ${value} (expected an integer of at least ${minimum})`);
  }
  return number;
}

async function main() {
  const { values: options, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      name: { type: 'string' },
      'page-size': { type: 'string' },
      'max-events': { type: 'string' },
    },
  });
  if (positionals.length !== 1 || !options.name) {
    console.error('usage: node consumer.js STREAM --name NAME [--page-size N] [--max-events N]');
    return 2;
  }
  const [stream] = positionals;
  const pageSize = integerOption(options['page-size'], 1, 50);
  const maxEvents = integerOption(options['max-events'], 0, Infinity);
  const cursorKey = `cursors/${options.name}/${stream}`;
  let processed = 0;
  let position = 0n;

  const client = new Client();
  await client.connect();
  try {
    // null means this consumer has never checkpointed: start at 0. The value
    // read here is also the "expected" argument of the first cas, which must
    // be NULL for a key that does not exist yet. bigint arrives as a string.
    const { rows: valueRows } = await client.query({ ...READ_VALUE, values: [cursorKey] });
    let checkpoint = valueRows[0].value === null ? null : BigInt(valueRows[0].value);
    position = checkpoint ?? 0n;

    while (processed < maxEvents) {
      const limit = Math.min(pageSize, maxEvents - processed);

      // One transaction per page: read it, process it, move the cursor.
      await client.query('BEGIN');
      let rows;
      let newPosition;
      try {
        ({ rows } = await client.query({ ...READ_FROM, values: [stream, position, limit] }));
        if (rows.length === 0) {
          await client.query('COMMIT');
          break;
        }

        // The output must be written before the cursor moves past it. If the
        // process dies between the two, the next run prints this page again:
        // delivery is at least once. A handler that writes to this database
        // instead would do so inside this transaction, and then the cursor
        // moves if and only if the handler's writes commit, which is exactly
        // once.
        await writeOutput(rows.map((row) => handleEvent(row.seq, row.payload)).join(''));

        // The next position is one past the last event read. Counting rows
        // instead would go wrong when read_from skipped expired events
        // (those appended with a TTL). cas fails with SE002 if another
        // process running under the same consumer name moved the cursor since
        // it was read. The error rolls this transaction back and ends the
        // program, because two instances must not share one cursor.
        newPosition = BigInt(rows[rows.length - 1].seq) + 1n;
        await client.query({ ...CAS, values: [cursorKey, checkpoint, newPosition] });
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK');
        throw error;
      }

      checkpoint = newPosition;
      position = newPosition;
      processed += rows.length;
    }
  } finally {
    await client.end();
  }

  console.log(`consumer ${options.name}: processed ${processed} events, position ${position}`);
  return 0;
}

main().then(
  (status) => {
    process.exitCode = status;
  },
  (error) => {
    console.error(`consumer failed: ${error.code ? `${error.code}: ` : ''}${error.message}`);
    if (error.detail) {
      console.error(`DETAIL: ${error.detail}`);
    }
    process.exitCode = 1;
  },
);

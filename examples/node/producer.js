#!/usr/bin/env node
// Append events to a haematite stream with optimistic concurrency.
//
// Usage: node producer.js STREAM --producer-id ID --count N
//
// Appends N events to STREAM. Each payload is a small JSON document naming
// the producer and a counter from 1 to N. Any number of producers may append
// to the same stream at once: an append that loses the race fails with
// SQLSTATE SE001 (sequence conflict), and this producer then re-reads the
// stream's next sequence and tries again. At the end it prints how many
// events it appended and how many conflicts it retried.
//
// The connection settings come from the standard libpq environment variables
// (PGHOST, PGPORT, PGUSER, PGDATABASE, PGPASSWORD, ...), which node-postgres
// reads when the Client is given no configuration.
'use strict';

const { parseArgs } = require('node:util');
const { Client } = require('pg');

// haematite's SQLSTATE for "expected_seq is not the stream's next sequence".
const SEQUENCE_CONFLICT = 'SE001';

// Give up on one event after this many conflicts in a row. Every conflict
// means another producer appended, so the stream as a whole keeps moving, but
// one unlucky producer could otherwise retry for a very long time.
const MAX_CONFLICTS_PER_EVENT = 100;

// After a conflict, wait a random time before retrying, up to a limit that
// doubles with each conflict in a row (exponential backoff with jitter).
// Without it the producer that just lost needs two round trips, next_seq and
// then append, while the winner needs one, so the same producer can lose
// again and again.
const BACKOFF_FIRST_MS = 1;
const BACKOFF_MAX_MS = 100;

function sleep(milliseconds) {
  return new Promise((resolve) => setTimeout(resolve, milliseconds));
}

// Every haematite function has a text-key and a bytea-key overload. The casts
// choose the text overload explicitly instead of leaving the choice to
// PostgreSQL's overload resolution. Naming a query makes node-postgres
// prepare it once per connection and reuse the plan.
const APPEND = {
  name: 'append',
  text: 'SELECT haematite.append($1::text, $2::bytea, $3::bigint) AS next_seq',
};
const NEXT_SEQ = {
  name: 'next_seq',
  text: 'SELECT haematite.next_seq($1::text) AS next_seq',
};

// node-postgres returns bigint columns as strings, because a JavaScript
// number cannot hold every 64-bit value. Sequence numbers are converted to
// BigInt here, and a BigInt parameter is sent as its decimal text.
async function queryNextSeq(client, query, values) {
  const result = await client.query({ ...query, values });
  return BigInt(result.rows[0].next_seq);
}

// Append one event, retrying on sequence conflicts. Returns the stream's new
// next sequence and the number of conflicts retried; any other error is
// thrown to the caller.
async function appendWithRetry(client, stream, payload, expectedSeq) {
  let conflicts = 0;
  for (;;) {
    try {
      const nextSeq = await queryNextSeq(client, APPEND, [stream, payload, expectedSeq]);
      return { nextSeq, conflicts };
    } catch (error) {
      // The driver puts the server's SQLSTATE in error.code.
      if (error.code !== SEQUENCE_CONFLICT) {
        throw error;
      }
      conflicts += 1;
      if (conflicts >= MAX_CONFLICTS_PER_EVENT) {
        throw error;
      }
    }
    const backoffLimit = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** (conflicts - 1));
    await sleep(Math.random() * backoffLimit);

    // Another producer appended since we last looked. A producer whose event
    // depends on the stream's state (say, "reserve the last seat") would
    // re-read the events it missed and re-check its rule here. These events
    // are independent, so the same payload is simply appended at the new end
    // of the stream.
    expectedSeq = await queryNextSeq(client, NEXT_SEQ, [stream]);
  }
}

async function main() {
  const { values: options, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      'producer-id': { type: 'string' },
      count: { type: 'string' },
    },
  });
  const count = Number(options.count);
  if (positionals.length !== 1 || !options['producer-id'] || !Number.isInteger(count) || count < 0) {
    console.error('usage: node producer.js STREAM --producer-id ID --count N');
    return 2;
  }
  const [stream] = positionals;
  const producerId = options['producer-id'];

  // Without a transaction block every statement commits on its own, so the
  // stream's row lock is released as soon as the append returns.
  const client = new Client();
  await client.connect();
  try {
    // Start from the stream's current end (0 for a new stream). Afterwards
    // the value each append returns is the expected sequence of the next
    // one, so the stream is only read again after a conflict.
    let expectedSeq = await queryNextSeq(client, NEXT_SEQ, [stream]);
    let totalConflicts = 0;

    for (let n = 1; n <= count; n += 1) {
      // A Buffer parameter is sent as binary bytea.
      const payload = Buffer.from(JSON.stringify({ producer: producerId, n }));
      const { nextSeq, conflicts } = await appendWithRetry(client, stream, payload, expectedSeq);
      expectedSeq = nextSeq;
      totalConflicts += conflicts;
    }

    console.log(`producer ${producerId}: appended ${count} events, retried ${totalConflicts} conflicts`);
  } finally {
    await client.end();
  }
  return 0;
}

main().then(
  (status) => {
    process.exitCode = status;
  },
  (error) => {
    console.error(`producer failed: ${error.code ? `${error.code}: ` : ''}${error.message}`);
    if (error.detail) {
      console.error(`DETAIL: ${error.detail}`);
    }
    process.exitCode = 1;
  },
);

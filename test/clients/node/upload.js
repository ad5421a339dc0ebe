#!/usr/bin/env node
// upload.js: upload a CSV file to ingest in chunks with node-postgres, one tenant at a time.
//
// An example to copy. It shows, through a pg.Pool that may sit behind PgBouncer in
// transaction mode:
//   - every call in its own short transaction that first sets the role and the tenant
//     (SET LOCAL ROLE, set_config(..., true)): nothing relies on session state, so any server
//     connection of the pool may run it;
//   - an upload in chunks (ingest.begin_upload, upload_chunk, finish_upload), a chunk that
//     fails on a lost connection sent again (upload_chunk is idempotent), the job id printed;
//   - progress, polled from ingest.upload_jobs;
//   - waiting with LISTEN ingest on a DIRECT connection to the server (--listen-url): LISTEN
//     does not work through PgBouncer in transaction mode, whose server connections change
//     between transactions; without --listen-url it polls through the pool;
//   - the rejected rows (ingest.job_errors, with line numbers), cancel and retry.
//
// Run (Node.js 18.3 or later; `npm ci` in this directory installs pg):
//   export INGEST_URL=postgresql://web@127.0.0.1:6432/app            # PgBouncer
//   node upload.js --tenant acme upload invoices march.csv --options '{"max_errors": 100}'
//   node upload.js --tenant acme --listen-url 'postgresql:///app?host=/run/postgresql&user=web' \
//       upload invoices march.csv
//   node upload.js --tenant acme errors 42
//   node upload.js --tenant acme cancel 42
//   node upload.js --tenant acme retry 42
// It expects ingest.tenant_key = 'app.tenant' and a role (default: authenticated) granted to
// the login role; see README.md, "Tenants that share one role". Exit status: 0 when the job
// succeeded (or a cancel/retry was accepted), 1 when it ended otherwise, 2 on an error.
// test/t/025_clients.pl runs it through PgBouncer.
'use strict';

const fs = require('node:fs/promises');
const { parseArgs } = require('node:util');
const pg = require('pg');

const UNFINISHED = ['uploading', 'queued', 'running'];
const CHUNK_TRIES = 3;

const { values: opt, positionals: argv } = parseArgs({
  allowPositionals: true,
  options: {
    url: { type: 'string', default: process.env.INGEST_URL },
    'listen-url': { type: 'string' },
    role: { type: 'string', default: 'authenticated' },
    tenant: { type: 'string' },
    'chunk-size': { type: 'string', default: String(8 * 1024 * 1024) },
    poll: { type: 'string', default: '1' },
    options: { type: 'string', default: '{}' },
    'no-wait': { type: 'boolean', default: false },
  },
});
const pollMs = Number(opt.poll) * 1000;

// Statements with parameters are sent unnamed (never prepared by name), which PgBouncer in
// transaction mode can pass to any server connection.
const pool = new pg.Pool({ connectionString: opt.url, max: 4 });
pool.on('error', (err) => console.error(`idle connection lost: ${err.message}`));

// Run fn(client) in one transaction acting as the role and the tenant.
async function asTenant(fn) {
  const client = await pool.connect();
  let failure;
  // a connection lost while checked out says so here too (besides failing the query)
  const onError = (err) => { failure = failure || err; };
  client.on('error', onError);
  try {
    await client.query('BEGIN');
    await client.query(`SET LOCAL ROLE ${client.escapeIdentifier(opt.role)}`);
    await client.query("SELECT set_config('app.tenant', $1, true)", [opt.tenant]);
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    failure = err;
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.off('error', onError);
    client.release(failure);   // a connection that failed is closed, not reused
  }
}

async function one(text, params) {
  return asTenant(async (c) => (await c.query(text, params)).rows[0]);
}

// A lost connection (no SQLSTATE, a system error such as ECONNRESET, or class 08 or 57) or a
// transient error (class 40, 53, lock timeout): worth sending the same chunk again. Anything
// else (a chunk over ingest.max_file_size, an upload cancelled meanwhile) would fail again.
function transient(err) {
  return !err.code || /^(08|40|53|57)/.test(err.code) || err.code === '55P03' || /^E[A-Z]/.test(err.code);
}

async function sendChunk(job, seq, data) {
  for (let attempt = 1; ; attempt++) {
    try {
      await one('SELECT ingest.upload_chunk($1, $2, $3)', [job, seq, data]);
      return;
    } catch (err) {
      if (attempt === CHUNK_TRIES || !transient(err)) throw err;
      console.error(`job ${job}: chunk ${seq} failed (${err.message}); sending it again`);
      await new Promise((r) => setTimeout(r, attempt * 1000));
    }
  }
}

async function upload(table, path) {
  const file = await fs.open(path);
  try {
    const { size } = await file.stat();
    const { job } = await one('SELECT ingest.begin_upload($1, $2) AS job', [table, opt.options]);
    console.log(`job ${job}: uploading ${path} (${size} bytes) into ${table}`);
    const chunkSize = Number(opt['chunk-size']);
    const chunks = Math.max(1, Math.ceil(size / chunkSize));
    for (let seq = 0; seq < chunks; seq++) {
      const { buffer, bytesRead } = await file.read(Buffer.alloc(chunkSize), 0, chunkSize, seq * chunkSize);
      await sendChunk(job, seq, buffer.subarray(0, bytesRead));
      console.log(`job ${job}: sent chunk ${seq + 1}/${chunks}`);
    }
    await one('SELECT ingest.finish_upload($1, $2)', [job, size]);
    console.log(`job ${job}: upload complete, queued for loading`);
    return job;
  } finally {
    await file.close();
  }
}

async function status(job) {
  const row = await one(
    `SELECT state, rows_inserted, rows_rejected, bytes_done, bytes_total, last_error
       FROM ingest.upload_jobs WHERE id = $1`, [job]);
  if (!row) throw new Error(`job ${job}: no such job (for tenant ${opt.tenant})`);
  return row;
}

// Print progress until the job ends; returns its final state.
async function wait(job) {
  let listener = null;
  let wake = null;
  const ended = new Set();
  if (opt['listen-url']) {
    // LISTEN before the first look at the job, so that its end cannot fall between. The
    // payload names only the job and its state (any role may LISTEN): the job itself is read
    // through the pool, as the tenant.
    listener = new pg.Client({ connectionString: opt['listen-url'] });
    await listener.connect();
    listener.on('notification', (msg) => {
      const id = String(JSON.parse(msg.payload).job_id);
      ended.add(id);
      if (wake && id === String(job)) wake();
    });
    await listener.query('LISTEN ingest');
  }
  try {
    let last = '';
    for (;;) {
      const s = await status(job);
      const total = Number(s.bytes_total);
      const pct = total > 0 ? Math.floor((100 * Number(s.bytes_done)) / total) : 0;
      const line = `job ${job}: ${s.state}, ${pct}% of ${s.bytes_total} bytes, ${s.rows_inserted} rows loaded`;
      if (line !== last) console.log((last = line));
      if (!UNFINISHED.includes(s.state)) {
        console.log(`job ${job}: ${s.state}: ${s.rows_inserted} rows inserted, ${s.rows_rejected} rejected`
          + (s.last_error ? ` (${s.last_error})` : ''));
        return s.state;
      }
      if (!ended.has(String(job))) {
        // until the next poll, or a NOTIFY about this job
        await new Promise((resolve) => {
          const timer = setTimeout(resolve, pollMs);
          wake = () => { clearTimeout(timer); resolve(); };
        });
        wake = null;
      }
      if (ended.has(String(job))) console.log(`job ${job}: notified`);
    }
  } finally {
    if (listener) await listener.end();
  }
}

async function errors(job, limit = 20) {
  const rows = await asTenant(async (c) => (await c.query(
    `SELECT line_number, sqlstate, message, raw_line FROM ingest.job_errors
      WHERE job_id = $1 ORDER BY line_number LIMIT $2`, [job, limit])).rows);
  for (const r of rows) console.log(`job ${job}: line ${r.line_number}: [${r.sqlstate}] ${r.message}: ${r.raw_line}`);
  return rows;
}

async function main() {
  const [command, ...rest] = argv;
  const usage = 'usage: upload.js --tenant T [--url U] [--listen-url U] upload TABLE FILE | wait|errors|cancel|retry JOB';
  if (!opt.tenant || !opt.url || !command) throw new Error(usage);
  if (command !== 'upload' && !(rest.length === 1 && /^\d+$/.test(rest[0]))) throw new Error(usage);
  let job = rest[0];
  switch (command) {
    case 'cancel': {
      const { ok } = await one('SELECT ingest.cancel($1) AS ok', [job]);
      console.log(`job ${job}: ${ok ? 'cancelled' : 'had already ended'}`);
      return ok ? 0 : 1;
    }
    case 'errors':
      await errors(job);
      return 0;
    case 'upload':
      if (rest.length !== 2) throw new Error(usage);
      job = await upload(rest[0], rest[1]);
      break;
    case 'retry': {
      const { ok } = await one('SELECT ingest.retry($1) AS ok', [job]);
      if (!ok) {
        console.log(`job ${job}: not retried (neither failed nor cancelled)`);
        return 1;
      }
      console.log(`job ${job}: queued again`);
      break;
    }
    case 'wait':
      break;
    default:
      throw new Error(usage);
  }
  if (opt['no-wait']) return 0;
  const state = await wait(job);
  await errors(job);
  return state === 'succeeded' ? 0 : 1;
}

main()
  .then((code) => { process.exitCode = code; })
  .catch((err) => {
    console.error(`error: ${err.message}`);
    process.exitCode = 2;
  })
  .finally(() => pool.end());

// The README's Node.js recipe: stage OTLP/JSON export requests with pg and
// pg-copy-streams. Usage: node stage.js FILE.jsonl (one request per line);
// the connection string comes from OTEL_STORAGE_CONNECTION_STRING.
const fs = require('node:fs');
const { Client } = require('pg');
const { from: copyFrom } = require('pg-copy-streams');
const { Readable } = require('node:stream');
const { pipeline } = require('node:stream/promises');

async function stage(requests) {            // OTLP/JSON export request objects
  const client = new Client({ connectionString: process.env.OTEL_STORAGE_CONNECTION_STRING });
  await client.connect();
  const copy = client.query(copyFrom(
    "copy otel.otlp_staging (payload) from stdin with (format csv, quote e'\\x01', delimiter e'\\x02')"));
  await pipeline(Readable.from(requests.map((r) => `\x01${JSON.stringify(r)}\x01\n`)), copy);
  await client.end();
}

const requests = fs.readFileSync(process.argv[2], 'utf8').split('\n').filter((line) => line.trim() !== '')
  .map((line) => JSON.parse(line));
stage(requests).catch((error) => { console.error(error.message); process.exit(1); });

'use strict'
// Per-call overhead of reading one job: GET /v1/jobs/{id} and parsing the JSON.
//
// Why: a client that polls or lists jobs pays this cost on every call, so this shows what the
// Rust-backed `removebgvideo` Client costs per call (each call crosses to the libuv thread pool
// and back) next to the global `fetch` (as the official Node SDK calls) and undici's `request()`
// with a keep-alive Agent (the fastest plain-JS way).
//
// Each contender reads the same job N times with sequential awaits, after a warm-up of
// min(N, 50) calls. Rounds interleave the contenders so machine noise hits all of them alike;
// each round records the mean microseconds per call, and the median over rounds is reported.
// Every call checks that the answer carries the requested job id, so a broken contender cannot
// look fast. Prints one JSON object on stdout.
//
//   node percall.js --sdk PATH --base-url URL --key KEY --job-id ID --calls N --rounds R

const path = require('node:path')
const { parseArgs } = require('node:util')
const undici = require('undici')

function options() {
  const { values } = parseArgs({
    options: {
      sdk: { type: 'string' },
      'base-url': { type: 'string' },
      key: { type: 'string' },
      'job-id': { type: 'string' },
      calls: { type: 'string', default: '500' },
      rounds: { type: 'string', default: '5' },
    },
  })
  for (const name of ['sdk', 'base-url', 'key', 'job-id']) {
    if (!values[name]) throw new Error(`--${name} is required`)
  }
  const calls = Number(values.calls)
  const rounds = Number(values.rounds)
  if (!(Number.isInteger(calls) && calls >= 1 && Number.isInteger(rounds) && rounds >= 1)) {
    throw new Error('--calls and --rounds must be integers of at least 1')
  }
  return { sdk: values.sdk, baseUrl: values['base-url'], key: values.key, jobId: values['job-id'], calls, rounds }
}

function check(jobId, got) {
  if (got !== jobId) throw new Error(`expected job ${JSON.stringify(jobId)}, got ${JSON.stringify(got)}`)
}

function contenders({ sdk, baseUrl, key, jobId }) {
  const { Client } = require(path.resolve(sdk))
  const client = new Client({ apiKey: key, baseUrl })
  const url = `${baseUrl.replace(/\/+$/, '')}/v1/jobs/${jobId}`
  const headers = { 'X-Api-Key': key, Accept: 'application/json' }
  const agent = new undici.Agent({ keepAliveTimeout: 30_000 })
  const named = [
    ['removebgvideo', async () => check(jobId, (await client.getJob(jobId)).id)],
    ['fetch', async () => {
      const response = await fetch(url, { headers })
      if (!response.ok) throw new Error(`fetch: HTTP ${response.status}`)
      check(jobId, (await response.json()).id)
    }],
    ['undici Agent (keep-alive)', async () => {
      const { statusCode, body } = await undici.request(url, { headers, dispatcher: agent })
      const job = await body.json()
      if (statusCode !== 200) throw new Error(`undici: HTTP ${statusCode}`)
      check(jobId, job.id)
    }],
  ]
  return { named, close: () => agent.close() }
}

async function meanUs(call, calls) {
  const start = process.hrtime.bigint()
  for (let i = 0; i < calls; i++) await call()
  return Number(process.hrtime.bigint() - start) / calls / 1000
}

async function main() {
  const opts = options()
  const { named, close } = contenders(opts)
  for (const [, call] of named) {
    for (let i = 0; i < Math.min(opts.calls, 50); i++) await call()
  }
  const rounds = new Map(named.map(([name]) => [name, []]))
  for (let r = 0; r < opts.rounds; r++) {
    for (const [name, call] of named) rounds.get(name).push(Math.round((await meanUs(call, opts.calls)) * 10) / 10)
  }
  const median = (values) => {
    const sorted = [...values].sort((a, b) => a - b)
    const mid = sorted.length >> 1
    return sorted.length % 2 ? sorted[mid] : Math.round(((sorted[mid - 1] + sorted[mid]) / 2) * 10) / 10
  }
  console.log(JSON.stringify({
    language: 'node',
    calls: opts.calls,
    rounds: opts.rounds,
    contenders: [...rounds].map(([name, values]) => ({ name, median_us: median(values), rounds_us: values })),
  }))
  await close()
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})

// Batches on a shared PostgreSQL ledger (a real server these tests start with
// removebgvideo-testpg): workers in one process or many split one batch, each job made once.
'use strict'

const { test, after } = require('node:test')
const assert = require('node:assert/strict')
const childProcess = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const readline = require('node:readline')
const rbv = require('..')

const FAST_POLL = { initialInterval: 0.02, maxInterval: 0.2, minInterval: 0.01 }
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rbv-node-workers-'))
after(() => fs.rmSync(tmp, { recursive: true, force: true }))

// REMOVEBGVIDEO_TESTPG (set by `cargo xtask ci`), else cargo's debug build.
const TESTPG = process.env.REMOVEBGVIDEO_TESTPG || path.join(__dirname, '..', '..', '..', 'target', 'debug', 'removebgvideo-testpg')

// A fresh server; it stops when its launcher's stdin closes.
async function postgres() {
  const launcher = childProcess.spawn(TESTPG, [], { stdio: ['pipe', 'pipe', 'inherit'] })
  after(() => launcher.stdin.end())
  const lines = readline.createInterface({ input: launcher.stdout })
  for await (const line of lines) return JSON.parse(line).url
  throw new Error(`${TESTPG} started no server`)
}

const rows = (n) => Array.from({ length: n }, (_, i) => ({
  key: `w-${i}`,
  videoUrl: `https://example.com/w/${i}.mp4?duration=2`,
  model: 'light',
}))

test('workers share one batch in a postgresql:// ledger and make each job once', async () => {
  const ledger = await postgres()
  const sandbox = new rbv.Sandbox({ speed: 1000 })
  after(() => sandbox.stop())
  const client = sandbox.client({ pollPolicy: FAST_POLL })
  const batches = [0, 1, 2].map((n) => new rbv.Batch({
    items: rows(45), ledger, batch: 'shared', out: path.join(tmp, `w${n}`), client, maxInFlight: 6, lease: 5,
  }))
  const summaries = await Promise.all(batches.map((batch) => batch.run()))
  for (const summary of summaries) {
    assert.equal(summary.complete, true)
    assert.equal(summary.progress.done, 45)
  }
  // Jobs made, from the sandbox's log: accepted creates that were not replays of a key.
  const made = sandbox.requestLog().filter((r) => r.method === 'POST' && r.path === '/v1/jobs' && r.status === 200 && !r.replayed)
  assert.equal(made.length, 45, 'one job per item')
  assert.equal(new Set(made.map((r) => r.idempotencyKey)).size, 45)
  const events = await batches[0].events('w-0')
  assert.equal(events[0].kind, 'planned')
  assert.ok(events.every((e) => typeof e.worker === 'string' && e.worker.includes(`:${process.pid}:`)))
  await assert.rejects(new rbv.Batch({ items: rows(1), out: path.join(tmp, 'bad'), client, lease: 0.5 }).run(),
    (e) => e instanceof rbv.ValidationError && e.errors[0].path === '/lease')
})

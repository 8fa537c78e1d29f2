'use strict'
// `Batch` against the in-process sandbox: results as they end with `for await`, a resume that
// makes no second job, a stop, the budget, status, events and the report, bad input named by
// field, and the shared manifest vectors.

const { test, after } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const rbv = require('..')

const FAST_POLL = { initialInterval: 0.02, maxInterval: 0.2, minInterval: 0.01 }
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rbv-node-batch-'))
after(() => fs.rmSync(tmp, { recursive: true, force: true }))

function fresh() {
  const sandbox = new rbv.Sandbox({ speed: 1000 })
  after(() => sandbox.stop())
  return { sandbox, client: sandbox.client({ pollPolicy: FAST_POLL }) }
}

function items(prefix, n, failEvery = 0) {
  return Array.from({ length: n }, (_, i) => ({
    key: `${prefix}-${i}`,
    videoUrl: `https://example.com/${prefix}/${i}.mp4?duration=2${failEvery && i % failEvery === failEvery - 1 ? '&scenario=fail' : ''}`,
    model: 'light',
    metadata: { user_id: `u${i}` },
  }))
}

const creates = (sandbox) => new Set(sandbox.requestLog().filter((r) => r.method === 'POST' && r.path === '/v1/jobs').map((r) => r.idempotencyKey)).size

test('for await yields every item once as it ends, and a re-run resumes without a second job', async () => {
  const { sandbox, client } = fresh()
  const out = path.join(tmp, 'first')
  const progress = []
  const batch = new rbv.Batch({ items: items('n', 12, 4), out, client, maxInFlight: 4, onProgress: (p) => progress.push(p) })
  const results = []
  for await (const result of batch) results.push(result)
  assert.deepEqual(results.map((r) => r.key).sort(), items('n', 12).map((i) => i.key).sort())
  const done = results.filter((r) => r.outcome === 'completed')
  const failed = results.filter((r) => r.outcome === 'failed')
  assert.equal(done.length, 9)
  assert.equal(failed.length, 3)
  for (const r of done) {
    assert.equal(fs.statSync(r.output.path).size, r.output.size)
    assert.equal(r.context.metadata.user_id, 'u' + r.key.split('-')[1], 'the caller\'s metadata keeps its keys')
    assert.match(r.jobId, /^job_/)
  }
  for (const r of failed) assert.equal(r.error.code, 'job_failed')
  assert.equal(batch.summary.complete, false)
  assert.deepEqual(progress.at(-1), batch.summary.progress)
  assert.ok(progress.every((p) => p.inFlight <= 4))

  const before = sandbox.requestLog().length
  const again = await client.batch({ items: items('n', 12, 4), out }).run()
  assert.equal(again.progress.done, 9)
  assert.equal(creates(sandbox), 12, 'no job made twice')
  assert.equal(sandbox.requestLog().length, before, 'a finished batch sends nothing')

  const status = await batch.status()
  assert.equal(status.total, 12)
  assert.equal(status.phases.done, 9)
  const kinds = (await batch.events('n-0')).map((e) => e.kind)
  assert.equal(kinds[0], 'planned')
  assert.ok(kinds.includes('created') && kinds.at(-1) === 'output')
  const { report, markdown, html } = await batch.report()
  assert.equal(report.models[0].model, 'light')
  assert.deepEqual(report.usage.differences, [])
  assert.ok(markdown.includes('| light |') && html.includes('<svg'))
})

test('a manifest file runs, and leaving the loop early stops new work and resumes', async () => {
  const { sandbox, client } = fresh()
  const manifest = path.join(tmp, 'videos.jsonl')
  fs.writeFileSync(manifest, items('m', 30).map((i) => JSON.stringify({ key: i.key, video_url: i.videoUrl })).join('\n'))
  const out = path.join(tmp, 'manifest-out')
  const batch = new rbv.Batch({ manifest, out, client, maxInFlight: 3 })
  for await (const result of batch) {
    assert.equal(result.outcome, 'completed')
    break
  }
  assert.equal(batch.summary.cancelled, true)
  assert.ok(batch.summary.progress.done < 30)
  const summary = await new rbv.Batch({ manifest, out, client }).run()
  assert.equal(summary.complete, true)
  assert.equal(creates(sandbox), 30)
  assert.equal(fs.readFileSync(path.join(out, 'results.jsonl'), 'utf8').trim().split('\n').length, 30)
})

test('an AbortSignal stops a batch; a budget holds back what would pass it', async () => {
  const { client } = fresh()
  const stop = new AbortController()
  stop.abort()
  const stopped = await new rbv.Batch({ items: items('a', 5), out: path.join(tmp, 'abort'), client, signal: stop.signal }).run()
  assert.equal(stopped.cancelled, true)
  assert.equal(stopped.progress.done, 0)
  const budgeted = await new rbv.Batch({ items: items('b', 6), out: path.join(tmp, 'budget'), client, budgetCredits: 5 }).run()
  assert.equal(budgeted.progress.done, 2)
  assert.equal(budgeted.progress.held, 4)
  assert.ok(budgeted.progress.creditsCommitted <= 5)
})

test('bad arguments and bad rows are ValidationErrors naming their field', async () => {
  const { client } = fresh()
  await assert.rejects(new rbv.Batch({ items: [{ videoUrl: 'ftp://x' }, { model: 'light' }], out: path.join(tmp, 'bad'), client }).run(), (error) => {
    assert.ok(error instanceof rbv.ValidationError)
    const paths = error.errors.map((p) => p.path)
    assert.ok(paths.includes('/1/videoUrl') || paths.includes('/1/video_url'), JSON.stringify(paths))
    return true
  })
  await assert.rejects(new rbv.Batch({ out: tmp, client, maxInFlight: 0 }).run(), rbv.ValidationError)
  assert.throws(() => new rbv.Batch({ items: 'nope', client }), rbv.ValidationError)
})

test('the shared manifest vectors', () => {
  const file = path.join(__dirname, '..', '..', '..', 'schema', 'vectors', 'manifests.json')
  for (const vector of JSON.parse(fs.readFileSync(file, 'utf8')).vectors) {
    if (vector.problems) {
      assert.throws(() => rbv.checkManifest(vector.text, vector.format), (error) => {
        assert.ok(error instanceof rbv.ValidationError, vector.name)
        const found = error.errors.map((p) => `${p.path} ${p.code}`).sort()
        // Paths come back in JavaScript's spelling of the column (`videoUrl`).
        const wanted = vector.problems.map((p) => `${p.path.replace(/_([a-z0-9])/g, (_, c) => c.toUpperCase())} ${p.code}`).sort()
        assert.deepEqual(found, wanted, vector.name)
        return true
      })
    } else {
      assert.deepEqual(rbv.checkManifest(vector.text, vector.format), vector.keys, vector.name)
    }
  }
})

'use strict'
// Node conventions: every method takes one params object (as openai-node and stripe-node do),
// the positional forms keep working, and a wrong argument is a ValidationError naming the
// argument as the caller wrote it, never the bridge's internals.

const { test, after } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const rbv = require('..')

const VIDEO = 'https://cdn.removebgvideo.com/uploads/your-video.mp4'
const FAST_POLL = { initialInterval: 0.02, maxInterval: 0.2, minInterval: 0.01 }
const sandbox = new rbv.Sandbox({ speed: 1000 })
after(() => sandbox.stop())
const client = sandbox.client({ pollPolicy: FAST_POLL })
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rbv-node-params-'))
after(() => fs.rmSync(tmp, { recursive: true, force: true }))

/** A rejection that is a ValidationError whose first problem is at `path`, without internals. */
function refused(path, message) {
  return (error) => {
    assert.ok(error instanceof rbv.ValidationError, `${error}`)
    assert.equal(error.code, 'validation_error')
    assert.equal(error.errors[0].path, path, JSON.stringify(error.errors))
    if (message) assert.ok(error.errors[0].message.includes(message), error.errors[0].message)
    assert.doesNotMatch(error.message, /line \d+ column \d+|\/arguments|\/options|\/settings|_ms\b/, error.message)
    return true
  }
}

test('every method takes one params object', async () => {
  assert.equal((await client.health({})).status, 'ok')
  const file = path.join(tmp, 'clip.mp4')
  fs.writeFileSync(file, Buffer.alloc(20000))
  const uploaded = await client.upload({ path: file })
  assert.equal(uploaded.size, 20000)
  const accepted = await client.createJob({ videoUrl: uploaded.videoUrl, autoStart: false, background: 'green', metadata: { order_id: 'A-1' } })
  assert.equal(accepted.status, 'created')
  assert.equal((await client.startJob({ jobId: accepted.id, model: 'human' })).status, 'processing')
  const events = []
  const job = await client.wait({ jobId: accepted.id, timeout: 60, pollPolicy: FAST_POLL, onProgress: (e) => events.push(e) })
  assert.equal(job.status, 'completed')
  assert.ok(events.some((e) => e.type === 'status_changed'))
  assert.equal((await client.getJob({ jobId: accepted.id })).model, 'human')
  assert.ok((await client.listJobs({ limit: 100, status: 'completed' })).jobs.some((j) => j.id === accepted.id))
  assert.ok((await client.usageSummary({ days: 1 })).completedJobs >= 1)
  assert.ok((await client.usageEvents({ limit: 1 })).events.length === 1)
  assert.ok((await client.legacyDownload({ jobId: accepted.id })).downloadUrl.startsWith(sandbox.baseUrl))
  const byId = await client.download({ jobId: accepted.id, path: path.join(tmp, 'a.webm') })
  const byJob = await client.download({ job, path: new URL(`file://${path.join(tmp, 'b.webm')}`), overwrite: true })
  assert.equal(byId.bytes, byJob.bytes)
  await assert.rejects(client.download({ jobId: accepted.id, path: path.join(tmp, 'a.webm') }), rbv.DownloadError)
  assert.equal((await client.download({ jobId: accepted.id, path: path.join(tmp, 'a.webm'), overwrite: true })).bytes, byId.bytes)
  const run = await client.run({ videoUrl: `${VIDEO}?duration=1`, output: path.join(tmp, 'run.webm'), timeout: 60, pollPolicy: FAST_POLL })
  assert.equal(run.job.status, 'completed')
})

test('the positional forms still work, with the same results', async () => {
  const accepted = await client.createJob(VIDEO, { model: 'human' })
  const job = await client.wait(accepted.id, { timeout: 60 })
  assert.equal(job.status, 'completed')
  assert.equal((await client.getJob(accepted.id)).id, accepted.id)
  assert.equal((await client.getJob(accepted.id, { maxRetries: 0 })).id, accepted.id)
  const download = await client.download(job, path.join(tmp, 'positional.webm'), { overwrite: true })
  assert.equal(download.job.id, accepted.id)
  assert.equal((await client.download(accepted.id, path.join(tmp, 'positional.webm'), { overwrite: true })).bytes, download.bytes)
})

test('a wrong argument type is a ValidationError naming the JS argument', async () => {
  await assert.rejects(client.createJob(42), refused('/videoUrl', 'videoUrl must be a string'))
  await assert.rejects(client.createJob({ videoUrl: 42 }), refused('/videoUrl', 'videoUrl must be a string'))
  await assert.rejects(client.createJob({}), refused('/videoUrl', 'videoUrl must be a string'))
  await assert.rejects(client.getJob({ jobId: null }), refused('/jobId', 'jobId must be a string'))
  await assert.rejects(client.getJob(), refused('/jobId', 'jobId must be a string'))
  await assert.rejects(client.wait({ jobId: 'job_1', timeout: '5' }), refused('/timeout', 'timeout must be a finite number of seconds'))
  await assert.rejects(client.wait('job_1', { timeout: NaN }), refused('/timeout', 'timeout must be a finite number of seconds'))
  await assert.rejects(client.getJob('job_1', { timeout: Infinity }), refused('/timeout', 'timeout must be a finite number of seconds'))
  await assert.rejects(client.upload({ path: 5 }), refused('/path', 'path must be a string'))
  await assert.rejects(client.download({ jobId: 'job_1' }), refused('/path', 'path must be a string'))
  await assert.rejects(client.createJob(VIDEO, { background: 5 }), refused('/background', 'background must be a string'))
  await assert.rejects(client.wait({ jobId: 'j', pollPolicy: { initialInterval: 'soon' } }), refused('/pollPolicy.initialInterval', 'must be a finite number of seconds'))
  await assert.rejects(client.getJob('job_1', { signal: 'stop' }), refused('/signal', 'signal must be an AbortSignal'))
  await assert.rejects(client.getJob('job_1', { onProgress: 1 }), refused('/onProgress'))
  await assert.rejects(client.createJob({ videoUrl: VIDEO }, { model: 'pro' }), refused('', 'one params object'))
  assert.throws(() => new rbv.Client({ apiKey: 5 }), refused('/apiKey', 'apiKey must be a string'))
  assert.throws(() => rbv.verifyWebhook({}, {}, 'whsec'), refused('/body', 'body must be'))
  assert.throws(() => rbv.verifyWebhook('{}', undefined, 'whsec'), refused('/headers', 'headers must be'))
  assert.throws(() => rbv.verifyWebhook('{}', {}, 5), refused('/secret', 'secret must be a string'))
  assert.throws(() => rbv.estimateCredits('pro', '12'), refused('/durationSeconds', 'durationSeconds must be a number'))
  assert.throws(() => rbv.validateRequest('CreateJobRequest', 'x'), refused('/body', 'body must be an object'))
})

test('the rules of the API come back in JS names too, and a misspelt member is refused by name', async () => {
  // Found by the core, named by its path in the object passed.
  await assert.rejects(client.createJob({ videoUrl: 'ftp://x', textPrompt: ' ', model: 'human' }), (e) => {
    assert.deepEqual(e.errors.filter((p) => p.severity === 'error').map((p) => p.path), ['/videoUrl', '/textPrompt'])
    assert.ok(e.errors[0].message.startsWith('videoUrl '), e.errors[0].message)
    assert.ok(e.message.startsWith('invalid request, 2 problems: videoUrl '), e.message)
    return refused('/videoUrl')(e)
  })
  await assert.rejects(client.createJob({ videoUrl: VIDEO, modle: 'pro' }), refused('/modle', 'modle is not a known field'))
  await assert.rejects(client.createJob({ videoUrl: VIDEO, modle: 'pro' }), (e) => e.errors[0].message.includes('`textPrompt`'))
  await assert.rejects(client.wait({ jobId: 'j', pollPolicy: { factor: 0 } }), refused('/pollPolicy/factor'))
  await assert.rejects(client.getJob({ jobId: '..' }), refused('/jobId'))
  await assert.rejects(client.listJobs({ limit: 1.5 }), refused('/limit'))
  await assert.rejects(client.listJobs({ limit: 'ten' }), refused('/limit'))
  await assert.rejects(client.startJob({ jobId: 'j', composition: { canvas: { width: 'wide', height: 100 } } }), refused('/composition/canvas/width'))
  assert.throws(() => new rbv.Client({ apiKey: 'k', baseUrl: sandbox.baseUrl, retryPolicy: { baseDelay: -1 } }), refused('/retryPolicy/baseDelay'))
  assert.throws(() => new rbv.Client({ apiKey: 'k', baseUrl: sandbox.baseUrl, maxRetrys: 1 }), refused('/maxRetrys', 'is not a known field'))
  assert.throws(() => new rbv.Client({ apiKey: 'k', baseUrl: sandbox.baseUrl, idempotency: 'honored' }), refused('/idempotency'))
})

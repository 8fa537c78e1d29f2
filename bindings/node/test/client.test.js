'use strict'
// The Node package against the in-process sandbox over loopback HTTP (Promise API only: a
// sync call to a server in the same process would deadlock).

const { test, after } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const util = require('node:util')
const rbv = require('..')

const VIDEO = 'https://cdn.removebgvideo.com/uploads/your-video.mp4'
// Durations in seconds, as in Python.
const FAST_POLL = { initialInterval: 0.02, factor: 1.5, maxInterval: 0.2, jitter: 0.2, minInterval: 0.01, maxHint: 2 }
const FAST_RETRY = { maxRetries: 3, baseDelay: 0.01, maxDelay: 0.1, rateLimitBaseDelay: 0.02, rateLimitMaxDelay: 0.2, maxRetryAfter: 5 }

const sandbox = new rbv.Sandbox({ speed: 1000 })
after(() => sandbox.stop())
const client = sandbox.client({ pollPolicy: FAST_POLL, retryPolicy: FAST_RETRY })
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rbv-node-'))
after(() => fs.rmSync(tmp, { recursive: true, force: true }))

test('every method', async () => {
  const file = path.join(tmp, 'clip.mp4')
  fs.writeFileSync(file, Buffer.alloc(40000))
  const events = []
  const uploaded = await client.upload(file, { onProgress: (e) => events.push(e) })
  assert.equal(uploaded.size, 40000)
  assert.ok(uploaded.videoUrl.startsWith(sandbox.baseUrl))
  const accepted = await client.createJob(uploaded.videoUrl, { autoStart: false, background: [0.1, 0.2, 0.3], outputFormat: 'mov', metadata: { order_id: 'A-1' } })
  assert.equal(accepted.status, 'created')
  assert.ok(accepted.requestId)
  const started = await client.startJob(accepted.id, { model: 'pro', textPrompt: 'the person', background: 'white' })
  assert.equal(started.status, 'processing')
  const statuses = []
  const job = await client.wait(accepted.id, { onProgress: (e) => e.type === 'status_changed' && statuses.push(e.to) })
  assert.equal(job.status, 'completed')
  assert.equal(job.model, 'pro')
  assert.equal((await client.getJob(accepted.id)).id, job.id)
  assert.ok((await client.listJobs({ limit: 100 })).jobs.some((j) => j.id === accepted.id))
  assert.ok((await client.usageSummary({ days: 7 })).completedJobs >= 1)
  assert.ok((await client.usageEvents({ limit: 5 })).events.length > 0)
  assert.ok((await client.legacyDownload(accepted.id)).downloadUrl.startsWith(sandbox.baseUrl))
  const target = path.join(tmp, 'out.mov')
  const download = await client.download(accepted.id, target)
  assert.equal(download.bytes, fs.statSync(target).size)
  await assert.rejects(client.download(job, target), rbv.DownloadError)
  const run = await client.run({ videoUrl: `${VIDEO}?duration=2`, output: path.join(tmp, 'run.webm'), model: 'human' })
  assert.equal(run.output.bytes, 400000)
  assert.ok(events.some((e) => e.type === 'upload'))
  await assert.rejects(client.run({}), (e) => e instanceof rbv.ValidationError && e.errors[0].path === '/videoUrl')
  await assert.rejects(client.run({ videoUrl: VIDEO, file }), rbv.ValidationError)
})

test('errors are typed, with stable codes, status and request id', async () => {
  const bad = new rbv.Client({ apiKey: 'rbv_wrong', baseUrl: sandbox.baseUrl })
  await assert.rejects(bad.listJobs(), (e) => e instanceof rbv.AuthenticationError && e.code === 'invalid_api_key' && e.status === 401 && !!e.requestId)
  const poor = sandbox.client({ apiKey: sandbox.noCreditsKey, retryPolicy: FAST_RETRY })
  await assert.rejects(poor.createJob(VIDEO), (e) => e instanceof rbv.InsufficientCreditsError && e.status === 402 && !!e.idempotencyKey)
  await assert.rejects(client.getJob('job_missing'), rbv.NotFoundError)
  await assert.rejects(client.createJob('ftp://example.com/a.mp4', { model: 'ultra', background: [2, 0, 0] }), (e) => {
    assert.ok(e instanceof rbv.ValidationError && e instanceof rbv.RemoveBGVideoError && e instanceof Error)
    assert.deepEqual(e.errors.map((p) => [p.path, p.code]), [['/videoUrl', 'invalid_url'], ['/model', 'unknown_value'], ['/background', 'out_of_range']])
    return true
  })
  // A 429 pauses every call of the client that got it (its rate gate): a client of its own.
  const limited = sandbox.client({ retryPolicy: FAST_RETRY })
  await assert.rejects(limited.listJobs({ headers: { 'X-Sandbox-Fault': 'status=429; id=node-rl' } }), (e) => e instanceof rbv.RateLimitError && e.retryAfter === 1)
  await assert.rejects(client.listJobs({ headers: { 'X-Sandbox-Fault': 'status=503; id=node-5xx' } }), rbv.ServerError)
  await assert.rejects(new rbv.Client({ apiKey: 'k', baseUrl: 'http://127.0.0.1:9', maxRetries: 0 }).listJobs(), rbv.APIConnectionError)
  const failing = await client.createJob(`${VIDEO}?scenario=fail&error=bad%20frames`)
  await assert.rejects(client.wait(failing.id), (e) => e instanceof rbv.JobFailedError && e.job.error === 'bad frames')
  const stuck = await client.createJob(`${VIDEO}?scenario=stuck`)
  const started = Date.now()
  await assert.rejects(client.wait(stuck.id, { timeout: 0.5 }), (e) => e instanceof rbv.WaitTimeoutError && e.job.status === 'processing')
  assert.ok(Date.now() - started < 500 + 250 + 300)
  assert.throws(() => new rbv.Client({ apiKey: 'k', baseUrl: 'http://api.example.com' }), (e) => e instanceof rbv.ValidationError && e.errors[0].path === '/baseUrl')
  const fresh = sandbox.client({ retryPolicy: FAST_RETRY })
  await assert.rejects(fresh.createJob(VIDEO, { headers: { 'X-Sandbox-Fault': 'drop-after; times=1; id=node-unknown' } }),
    (e) => e instanceof rbv.OutcomeUnknownError && !!e.idempotencyKey)
  await client.createJob(VIDEO, { idempotencyKey: 'node-conflict' })
  await assert.rejects(client.createJob(`${VIDEO}?other=1`, { idempotencyKey: 'node-conflict' }), rbv.ConflictError)
  await assert.rejects(client.getJob(stuck.id, { maxRetries: 0, headers: { 'X-Sandbox-Fault': 'malformed; id=node-bad' } }), rbv.UnexpectedResponseError)
  const draft = await client.createJob(VIDEO, { autoStart: false })
  await client.startJob(draft.id)
  await assert.rejects(client.startJob(draft.id), (e) => e instanceof rbv.InvalidRequestError && e.status === 400)
  for (const [kind, name] of require('../native.js').errorClasses()) {
    assert.ok(rbv[name].prototype instanceof rbv.RemoveBGVideoError, kind)
  }
})

test('a setInterval keeps ticking during wait, and an AbortSignal stops it promptly', async () => {
  const stuck = await client.createJob(`${VIDEO}?scenario=stuck`)
  let ticks = 0
  const timer = setInterval(() => ticks++, 5)
  const controller = new AbortController()
  setTimeout(() => controller.abort(), 300)
  const started = Date.now()
  await assert.rejects(client.wait(stuck.id, { signal: controller.signal, pollPolicy: { ...FAST_POLL, initialInterval: 5, maxInterval: 5 } }), (e) => e.name === 'AbortError')
  clearInterval(timer)
  assert.ok(Date.now() - started < 1000, 'stopped promptly')
  assert.ok(ticks > 20, `the event loop kept running (${ticks} ticks)`)
})

test('many concurrent waits with Promise.all', async () => {
  const jobs = await Promise.all(Array.from({ length: 12 }, (_, i) => client.createJob(`${VIDEO}?duration=${1 + (i % 4)}`)))
  const done = await Promise.all(jobs.map((j) => client.wait(j.id)))
  assert.deepEqual(done.map((j) => j.status), Array(12).fill('completed'))
})

/** OS threads of this process now. */
function threads() {
  return Number(fs.readFileSync('/proc/self/status', 'utf8').match(/^Threads:\s+(\d+)/m)[1])
}

test('hundreds of waits at once take no thread each, and asCompleted yields every end', async () => {
  const jobs = await Promise.all(Array.from({ length: 300 }, (_, i) =>
    client.createJob(i % 10 === 0 ? `${VIDEO}?scenario=fail&n=${i}` : `${VIDEO}?duration=${20 + (i % 50)}&n=${i}`)))
  const before = threads()
  let peak = before
  const sampler = setInterval(() => { peak = Math.max(peak, threads()) }, 2)
  const ended = new Map()
  try {
    for await (const { jobId, job, error } of client.asCompleted({ jobIds: jobs.map((j) => j.id) })) {
      assert.ok(job, `${jobId} ended with its job`)
      assert.equal(error === null, job.status === 'completed', `${jobId}: an error exactly when it did not complete`)
      ended.set(jobId, job.status)
    }
  } finally {
    clearInterval(sampler)
  }
  assert.equal(ended.size, 300)
  assert.equal([...ended.values()].filter((s) => s === 'failed').length, 30)
  assert.ok(peak <= before + 1, `300 waits on the engine's threads: ${before} threads before, ${peak} at most`)
})

test('leaving asCompleted early stops the other waits', async () => {
  const fast = await client.createJob(`${VIDEO}?duration=1`)
  const stuck = await client.createJob(`${VIDEO}?scenario=stuck`)
  for await (const { jobId } of client.asCompleted([fast.id, stuck.id])) {
    assert.equal(jobId, fast.id)
    break
  }
  const path = `/v1/jobs/${stuck.id}`
  const polls = () => sandbox.requestLog().filter((r) => r.path === path).length
  // The stuck job's wait ends as cancelled: a window of two poll intervals (at most 0.24 s
  // each with FAST_POLL) passes without a poll of it, within a bounded number of windows.
  let last = -1
  let quiet = false
  for (let i = 0; i < 20 && !quiet; i += 1) {
    last = polls()
    await new Promise((resolve) => setTimeout(resolve, 500))
    quiet = polls() === last
  }
  assert.ok(quiet, 'no more polls of the job left behind')
})

test('the key never shows', () => {
  const shown = util.inspect(client) + JSON.stringify(client)
  assert.ok(!shown.includes(sandbox.demoKey))
  assert.ok(shown.includes('[redacted]'))
})

test('ES module import gives the same API', async () => {
  const esm = await import('../index.mjs')
  assert.equal(esm.Client, rbv.Client)
  assert.equal(esm.default.ValidationError, rbv.ValidationError)
})

test('many waits at once leave the thread pool free: a short call still goes through', async () => {
  const stuck = await client.createJob(`${VIDEO}?scenario=stuck`)
  const controller = new AbortController()
  let settled = 0
  // Eight waits, while libuv has four pool threads: the read below would queue behind them
  // if waits ran on the pool.
  const waits = Array.from({ length: 8 }, () => client.wait(stuck.id, { signal: controller.signal }).finally(() => { settled += 1 }))
  const job = await client.getJob(stuck.id)
  assert.equal(job.status, 'processing')
  assert.equal(settled, 0)
  controller.abort()
  const outcomes = await Promise.allSettled(waits)
  assert.ok(outcomes.every((o) => o.status === 'rejected' && o.reason.name === 'AbortError'))
})

test('a long call delivers every event before it settles', async () => {
  const accepted = await client.createJob(VIDEO)
  const events = []
  const job = await client.wait(accepted.id, { onProgress: (e) => events.push(e) })
  assert.equal(job.status, 'completed')
  const last = events.filter((e) => e.type === 'status_changed').at(-1)
  assert.equal(last.to, 'completed')
})

test('the projection fields of the poll policy are accepted, and following progress can be turned off', async () => {
  const accepted = await client.createJob(VIDEO)
  for (const pollPolicy of [{ ...FAST_POLL, progressEta: false }, { ...FAST_POLL, maxEtaInterval: 0.2, etaMargin: 0.01 }]) {
    assert.equal((await client.wait(accepted.id, { pollPolicy })).status, 'completed')
  }
  await assert.rejects(client.wait(accepted.id, { pollPolicy: { factor: 0 } }), (e) => e.errors.some((p) => p.path === '/pollPolicy/factor'))
  // The new fields reach the core under their own names: a wrong type is refused, and so is a
  // misspelt field (it would otherwise be silently the default).
  await assert.rejects(client.wait(accepted.id, { pollPolicy: { progressEta: 'yes' } }), (e) => e.errors.some((p) => p.path === '/pollPolicy/progressEta'))
  await assert.rejects(client.wait(accepted.id, { pollPolicy: { maxEtaIntervall: 0.1 } }), (e) => e.errors.some((p) => p.path === '/pollPolicy/maxEtaIntervall' && p.message.startsWith('pollPolicy.maxEtaIntervall is not a known field')))
})

test('unusable numbers are ValidationErrors naming their field, and never abort the process', async () => {
  const body = '{"event":"job.completed","data":{"id":"job_1","status":"completed"}}'
  for (const tolerance of [Infinity, NaN, -1, 1e20]) {
    assert.throws(() => rbv.verifyWebhook(body, {}, 'whsec_test', { tolerance }), (error) =>
      error instanceof rbv.ValidationError && error.errors[0].path === '/tolerance')
  }
  assert.throws(() => rbv.verifyWebhook(body, {}, 'whsec_test', { now: new Date(NaN) }), rbv.ValidationError)
  assert.throws(() => rbv.verifyWebhook(body, {}, '', {}), (error) =>
    error instanceof rbv.ValidationError && error.errors[0].path === '/secret')
  assert.throws(() => sandbox.client({ timeout: Infinity }), (error) =>
    error instanceof rbv.ValidationError && error.errors[0].path === '/timeout' && error.errors[0].message === 'timeout must be a finite number of seconds')
  assert.throws(() => sandbox.client({ timeout: 1e20 }), (error) =>
    error instanceof rbv.ValidationError && error.errors[0].path === '/timeout' && error.errors[0].code === 'out_of_range')
  await assert.rejects(client.wait('job_1', { timeout: -5 }), (error) =>
    error instanceof rbv.ValidationError && error.errors[0].path === '/timeout' && error.errors[0].message.includes('(got -5)'))
  await assert.rejects(client.getJob('..'), (error) => error instanceof rbv.ValidationError && error.errors[0].code === 'invalid_job_id')
  assert.ok(rbv.SDKBugError.prototype instanceof rbv.RemoveBGVideoError)
  for (const speed of [0, 1e20, Infinity]) {
    assert.throws(() => new rbv.Sandbox({ speed }), (error) => error instanceof rbv.ValidationError && error.message.includes('speed'))
  }
})

test('durations are seconds; the old millisecond names still work, and both at once are refused', async () => {
  const stuck = await client.createJob(`${VIDEO}?scenario=stuck`)
  for (const options of [{ timeout: 0.3 }, { timeoutMs: 300 }]) {
    const started = Date.now()
    await assert.rejects(client.wait(stuck.id, options), rbv.WaitTimeoutError)
    const took = Date.now() - started
    assert.ok(took >= 250 && took < 2000, `${JSON.stringify(options)} waited ${took} ms`)
  }
  await assert.rejects(client.wait(stuck.id, { timeout: 1, timeoutMs: 1000 }), (e) =>
    e instanceof rbv.ValidationError && e.errors[0].path === '/timeout' && e.message.includes('timeout and timeoutMs'))
  assert.throws(() => sandbox.client({ connectTimeout: 5, connectTimeoutMs: 5000 }), (e) =>
    e instanceof rbv.ValidationError && e.message.includes('connectTimeout and connectTimeoutMs'))
  // A per-call timeout in seconds: 1 ms cannot fetch a job from a server that answers in 0.2 s.
  const slow = (id) => ({ headers: { 'X-Sandbox-Fault': `latency-ms=200; id=${id}` }, maxRetries: 0 })
  await assert.rejects(client.getJob(stuck.id, { ...slow('node-slow-1'), timeout: 0.001 }), rbv.APIConnectionError)
  assert.equal((await client.getJob(stuck.id, { ...slow('node-slow-2'), timeout: 5 })).id, stuck.id)
  const body = '{"event":"job.completed","data":{"id":"job_1","status":"completed"}}'
  assert.throws(() => rbv.verifyWebhook(body, {}, 'whsec_test', { toleranceSeconds: -1 }), (e) => e instanceof rbv.ValidationError && e.errors[0].path === '/tolerance')
  assert.throws(() => rbv.verifyWebhook(body, {}, 'whsec_test', { tolerance: 1, toleranceSeconds: 1 }), (e) => e instanceof rbv.ValidationError && e.message.includes('toleranceSeconds'))
})

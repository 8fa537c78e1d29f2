'use strict'
// Our errors cross napi as JS errors: the stable code is napi's error status (the error's
// `code`), the rest are properties of the error object. No message carries a prefix or JSON.

const { test, after } = require('node:test')
const assert = require('node:assert/strict')
const native = require('../native.js')
const rbv = require('..')

const VIDEO = 'https://cdn.removebgvideo.com/uploads/your-video.mp4'
const sandbox = new rbv.Sandbox({ speed: 1000 })
after(() => sandbox.stop())

function plainNativeError(error, code) {
  assert.ok(error instanceof Error, `${error}`)
  assert.equal(error.code, code)
  assert.equal(typeof error.class, 'string')
  assert.doesNotMatch(error.message, /^removebgvideo:|[{}]/, error.message)
  return true
}

const operation = (name, args) => JSON.stringify({ operation: name, arguments: args })

test('a sync native call throws an error whose code is our code and whose details are properties', () => {
  assert.throws(() => new native.NativeClient(JSON.stringify({ api_key: 'k', base_url: 'ftp://x', timeout_ms: -1 }), () => {}), (error) => {
    plainNativeError(error, 'validation_error')
    assert.equal(error.class, 'ValidationError')
    assert.equal(error.kind, 'validation')
    assert.ok(Array.isArray(error.problems), 'problems are JS values, not JSON text')
    assert.deepEqual(error.problems.map((p) => p.path), ['/timeout', '/baseUrl'])
    return true
  })
  assert.throws(() => native.verifyWebhook(Buffer.from('{}'), JSON.stringify({ secret: 's', headers: [] })), (error) =>
    plainNativeError(error, 'webhook_missing_header') && error.class === 'WebhookVerificationError')
})

/** Submits one operation to the native client; resolves with its messages, ending with the outcome. */
/** A native client whose one message channel hands each call's messages to its listener. */
function nativeClient(settings) {
  const listeners = new Map()
  const client = new native.NativeClient(JSON.stringify(settings), (id, kind, value) => listeners.get(id)?.(kind, value))
  let lastId = 0
  /** Submits one operation; resolves with its messages, ending with the outcome. */
  client.submitted = (operationJson) => new Promise((resolve) => {
    const id = ++lastId
    const messages = []
    listeners.set(id, (kind, value) => {
      messages.push([kind, value])
      if (kind !== 'event') {
        listeners.delete(id)
        if (listeners.size === 0) client.idle()
        resolve(messages)
      }
    })
    if (listeners.size === 1) client.busy()
    client.submit(id, operationJson, '{}', null, true)
  })
  return client
}

test('a short call delivers its native error, status and request id through the message callback', async () => {
  const client = nativeClient({ api_key: sandbox.demoKey, base_url: sandbox.baseUrl })
  const messages = await client.submitted(operation('get_job', { job_id: 'job_missing' }))
  const [kind, error] = messages.at(-1)
  assert.equal(kind, 'error')
  plainNativeError(error, 'not_found')
  assert.equal(error.status, 404)
  assert.equal(typeof error.request_id, 'string')
})

test('a long call delivers its error the same way, after its events', async () => {
  const client = nativeClient({ api_key: sandbox.demoKey, base_url: sandbox.baseUrl, poll_policy: { initial_interval_ms: 20, min_interval_ms: 10, max_interval_ms: 100 } })
  const typed = sandbox.client()
  const failing = await typed.createJob(`${VIDEO}?scenario=fail&error=bad%20frames`)
  const messages = await client.submitted(operation('wait', { job_id: failing.id }))
  const [kind, error] = messages.at(-1)
  assert.equal(kind, 'error')
  assert.ok(messages.slice(0, -1).every(([k]) => k === 'event'), 'every event comes before the outcome')
  plainNativeError(error, 'job_failed')
  assert.equal(error.job.error, 'bad frames')
  // And the package makes it its typed class.
  await assert.rejects(typed.wait(failing.id), (e) => e instanceof rbv.JobFailedError && e.code === 'job_failed' && e.job.error === 'bad frames' && e.message === error.message)
})

test('bad operation JSON is an error through the callback too, never a throw', async () => {
  const client = nativeClient({ api_key: sandbox.demoKey, base_url: sandbox.baseUrl })
  const messages = await client.submitted(JSON.stringify({ operation: 'fly', arguments: {} }))
  const [kind, error] = messages.at(-1)
  assert.equal(kind, 'error')
  plainNativeError(error, 'validation_error')
})

test('a rate limit keeps its retry-after in seconds on the typed error', async () => {
  const client = sandbox.client({ maxRetries: 0 })
  await assert.rejects(client.listJobs({ headers: { 'X-Sandbox-Fault': 'status=429; id=node-native-rl' } }), (e) =>
    e instanceof rbv.RateLimitError && e.code === 'rate_limited' && e.retryAfter === 1 && e.status === 429)
})

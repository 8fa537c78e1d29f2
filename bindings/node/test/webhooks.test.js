'use strict'
// Webhooks in Node: `client.webhookHandler()` behind `http.createServer` and behind an Express
// route with `express.raw()`, and the SDK's own receiver, each fed by the sandbox's real,
// signed deliveries; waits end on them.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const http = require('node:http')
const express = require('express')
const rbv = require('..')

const VIDEO = 'https://example.com/clip.mp4?duration=4'

// Bounded polling: the receiver counts a delivery once its answer is decided, a moment after
// it fed the wait that the test has already seen end.
async function eventually(check, ms = 5000) {
  const end = Date.now() + ms
  while (!check()) {
    if (Date.now() > end) return false
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  return true
}

function listen(server) {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${server.address().port}/webhooks`)))
}

const reads = (sandbox, jobId) => sandbox.requestLog().filter((r) => r.method === 'GET' && r.path === `/v1/jobs/${jobId}`).length

test('an http route ends waits on success and on failure', async () => {
  const sandbox = new rbv.Sandbox({ speed: 10 })
  const client = sandbox.client()
  const taken = []
  const refused = []
  const handler = client.webhookHandler({ onDelivery: (delivery) => taken.push(delivery) })
  const server = http.createServer(async (req, res) => {
    if ((await handler(req, res)) === null) refused.push(res.statusCode)
  })
  try {
    client.useWebhooks({ url: await listen(server), secret: sandbox.webhookSecret })
    const result = await client.run({ videoUrl: VIDEO })
    assert.equal(result.job.status, 'completed')
    const events = taken.filter((d) => d.data.id === result.job.id).map((d) => d.event)
    assert.ok(events.includes('job.completed'), String(events))
    assert.ok(taken.every((d) => typeof d.deliveryId === 'string' && d.duplicate === false))
    assert.ok(reads(sandbox, result.job.id) <= 2, 'ended on the delivery and one confirming read')
    await assert.rejects(client.run({ videoUrl: `${VIDEO}&scenario=fail` }), (error) => {
      assert.ok(error instanceof rbv.JobFailedError)
      assert.equal(error.job.status, 'failed')
      assert.ok(taken.some((d) => d.data.id === error.job.id && d.event === 'job.failed'))
      return true
    })
    assert.deepEqual(refused, [])
  } finally {
    server.close()
    sandbox.stop()
  }
})

test('an Express route with express.raw(), refusing forged, tampered and parsed bodies', async () => {
  const sandbox = new rbv.Sandbox({ speed: 10 })
  const client = sandbox.client()
  const raw = []
  const app = express()
  const handler = client.webhookHandler()
  app.post('/webhooks', express.raw({ type: '*/*' }), async (req, res) => {
    raw.push({ body: req.body, headers: req.headers })
    await handler(req, res)
  })
  app.post('/parsed', express.json(), handler)
  const server = http.createServer(app)
  try {
    const url = await listen(server)
    client.useWebhooks({ url, secret: sandbox.webhookSecret })
    const result = await client.run({ videoUrl: VIDEO })
    assert.equal(result.job.status, 'completed')
    assert.ok(raw.length >= 2)
    const { body, headers } = raw[raw.length - 1]
    const post = (path, payload, extra = {}) => fetch(url.replace('/webhooks', path), {
      method: 'POST',
      body: payload,
      headers: { ...Object.fromEntries(Object.entries(headers).filter(([k]) => k.startsWith('x-'))), 'content-type': 'application/json', ...extra },
    })
    const again = await post('/webhooks', body)
    assert.equal(again.status, 200)
    assert.equal((await again.json()).duplicate, true)
    const tampered = await post('/webhooks', Buffer.from(body.toString().replace('completed', 'completeD')))
    assert.equal(tampered.status, 400)
    const signatureHeader = Object.keys(headers).find((k) => k.includes('signature'))
    const forged = await post('/webhooks', body, { [signatureHeader]: `v1=${'00'.repeat(32)}` })
    assert.equal(forged.status, 400)
    assert.match((await forged.json()).error, /^webhook_/)
    const parsed = await post('/parsed', body)
    assert.equal(parsed.status, 500)
    assert.equal((await parsed.json()).error, 'body_already_parsed')
    const wrongMethod = await fetch(url.replace('/webhooks', '/parsed'), { method: 'GET' })
    assert.equal(wrongMethod.status, 404)
  } finally {
    server.close()
    sandbox.stop()
  }
})

test('handleWebhook takes a delivery from any framework and returns the typed event', async () => {
  const sandbox = new rbv.Sandbox({ speed: 10 })
  const client = sandbox.client()
  const receiver = client.listenForWebhooks({ secret: sandbox.webhookSecret })
  try {
    assert.match(receiver.url, /^http:\/\/127\.0\.0\.1:\d+\//)
    const [a, b] = await Promise.all([client.run({ videoUrl: VIDEO }), client.run({ videoUrl: `${VIDEO}&n=2` })])
    assert.equal(a.job.status, 'completed')
    assert.equal(b.job.status, 'completed')
    assert.ok(reads(sandbox, a.job.id) <= 2 && reads(sandbox, b.job.id) <= 2)
    assert.ok(await eventually(() => receiver.stats().accepted >= 4), JSON.stringify(receiver.stats()))
    assert.throws(() => client.handleWebhook({ body: '{}', headers: {} }), rbv.WebhookVerificationError)
    assert.throws(() => client.handleWebhook({ body: { parsed: true }, headers: {} }), (e) => e instanceof rbv.ValidationError && e.errors[0].path === '/body')
    assert.throws(() => client.useWebhooks({ url: 'not a url', secret: 's' }), (e) => e instanceof rbv.ValidationError && e.errors[0].path === '/url')
    assert.throws(() => client.listenForWebhooks({ secret: 's', hots: '0.0.0.0' }), (e) => e instanceof rbv.ValidationError && e.errors[0].path === '/hots')
  } finally {
    receiver.close()
    sandbox.stop()
  }
})

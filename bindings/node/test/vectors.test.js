'use strict'
// The shared vectors of schema/vectors/: the same codes and paths as Rust's and Python's, and
// the request payloads checked against the committed JSON Schema with ajv.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const Ajv2020 = require('ajv/dist/2020').default
const rbv = require('..')

const ROOT = path.resolve(__dirname, '../../..')
const vectors = (name) => JSON.parse(fs.readFileSync(path.join(ROOT, 'schema/vectors', name), 'utf8')).vectors
const bundle = JSON.parse(fs.readFileSync(path.join(ROOT, 'schema/removebgvideo.schema.json'), 'utf8'))
const ajv = new Ajv2020({ strict: false, allErrors: true })
ajv.addSchema(bundle)
const validator = (type) => ajv.getSchema(`${bundle.$id}#/$defs/${type}`)

for (const vector of vectors('requests.json')) {
  test(`request: ${vector.name}`, () => {
    const problems = rbv.validateRequest(vector.type, vector.body)
    const pick = (severity) => problems.filter((p) => p.severity === severity).map((p) => ({ path: p.path, code: p.code }))
    assert.deepEqual(pick('error'), vector.errors)
    assert.deepEqual(pick('warning'), vector.warnings)
    const schemaValid = validator(vector.type)(vector.body)
    if (vector.schema_disagrees) assert.notEqual(schemaValid, vector.errors.length === 0)
    else assert.equal(schemaValid, vector.errors.length === 0)
  })
}

for (const vector of vectors('webhooks.json')) {
  test(`webhook: ${vector.name}`, () => {
    const call = () => rbv.verifyWebhook(vector.body, vector.headers, vector.secret, { toleranceSeconds: vector.tolerance_s, now: new Date(vector.now_ms) })
    if (vector.expect.ok) {
      const verified = call()
      assert.deepEqual([verified.event, verified.data.id, verified.deliveryId], [vector.expect.ok.event, vector.expect.ok.job_id, vector.expect.ok.delivery_id])
    } else {
      // A delivery that does not verify throws WebhookVerificationError; a refused secret (the
      // caller's mistake) throws ValidationError.
      const expected = vector.expect.error === 'validation_error' ? rbv.ValidationError : rbv.WebhookVerificationError
      assert.throws(call, (e) => e instanceof expected && e.code === vector.expect.error)
    }
  })
}

for (const vector of vectors('credits.json')) {
  test(`credits: ${vector.model} ${vector.duration_seconds}`, () => {
    if ('credits' in vector) assert.equal(rbv.estimateCredits(vector.model, vector.duration_seconds), vector.credits)
    else assert.throws(() => rbv.estimateCredits(vector.model, vector.duration_seconds), (e) => e.code === vector.error)
  })
}

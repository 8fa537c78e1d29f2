'use strict'
// The argument types come from the bridge's Rust types (schema/bridge.schema.json, generated):
// every operation there has its method here, and index.d.ts declares its params.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const rbv = require('..')

const ROOT = path.resolve(__dirname, '../../..')
const bridge = JSON.parse(fs.readFileSync(path.join(ROOT, 'schema/bridge.schema.json'), 'utf8'))
const operations = bridge.$defs.Operation.oneOf.map((variant) => variant.properties.operation.const)
const camel = (snake) => snake.replace(/_([a-z])/g, (_, c) => c.toUpperCase())
const pascal = (snake) => camel(snake).replace(/^./, (c) => c.toUpperCase())

test('every operation of the bridge has a method and declared params', () => {
  const declarations = fs.readFileSync(path.join(__dirname, '../index.d.ts'), 'utf8')
  assert.equal(operations.length, 12)
  for (const operation of operations) {
    assert.equal(typeof rbv.Client.prototype[camel(operation)], 'function', operation)
    assert.ok(declarations.includes(`export interface ${pascal(operation)}Params extends CallOptions {`), operation)
    assert.ok(declarations.includes(`  ${camel(operation)}(`), `index.d.ts declares ${camel(operation)}`)
  }
})

test('every error class of the bridge is declared in index.d.ts and exported by index.mjs', () => {
  const declarations = fs.readFileSync(path.join(__dirname, '../index.d.ts'), 'utf8')
  const esm = fs.readFileSync(path.join(__dirname, '../index.mjs'), 'utf8')
  for (const [kind, name] of require('../native.js').errorClasses()) {
    assert.ok(declarations.includes(`export declare class ${name} extends RemoveBGVideoError {}`), `${kind}: ${name}`)
    assert.match(esm, new RegExp(`\\b${name}\\b`), `${kind}: ${name}`)
  }
})

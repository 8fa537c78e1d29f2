'use strict'
// index.d.ts is exact enough for `tsc --strict` on an example that uses the API.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const { spawnSync } = require('node:child_process')
const path = require('node:path')

test('tsc --noEmit --strict accepts the example', () => {
  const tsc = path.join(__dirname, '..', 'node_modules', 'typescript', 'bin', 'tsc')
  const result = spawnSync(process.execPath, [tsc, '--noEmit', '--strict', '--target', 'es2022', '--module', 'commonjs', '--types', 'node', path.join(__dirname, 'example.ts')], { encoding: 'utf8' })
  assert.equal(result.status, 0, result.stdout + result.stderr)
})

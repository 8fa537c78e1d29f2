'use strict'
// The README's TypeScript example is the file the CI smoke test compiles and runs.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')

test('the README shows examples/quickstart.ts verbatim', () => {
  const readme = fs.readFileSync(path.join(__dirname, '../../../README.md'), 'utf8')
  const example = fs.readFileSync(path.join(__dirname, '../examples/quickstart.ts'), 'utf8')
  assert.ok(readme.includes('```ts\n' + example + '```'), 'README.md and bindings/node/examples/quickstart.ts differ')
})

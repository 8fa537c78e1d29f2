'use strict'
// A batch of jobs end to end: create (draft) -> start -> wait until completed, all at once.
//
// Why: a batch spends most of its time waiting, so what it costs the caller is CPU time and
// memory while it waits, and how many requests it sends. Two flows run the same jobs, all N
// started together with Promise.all:
//
// - `sdk`: one shared removebgvideo Client (createJob, startJob, wait with the SDK's default
//   poll policy, which aims at the completion the job's progress projects). Short calls run on
//   the libuv pool (UV_THREADPOOL_SIZE, 4 by default; reported as `threads`, null in fetch
//   mode), waits on a native thread each, so all N waits run at once.
// - `fetch`: the official Node SDK's way: global fetch, JSON bodies, a GET every 2 s
//   (setTimeout) until the job is completed or failed, 600 s timeout.
//
// Jobs are created with auto_start false so that the explicit start is valid. Every job must end
// `completed`. Measures, from building the client to the last job's end: wall seconds and CPU
// seconds of the process (process.cpuUsage: user + system, all threads). Peak RSS is the
// process's (process.resourceUsage().maxRSS). Prints one JSON object.
//
//   node batch.js --sdk PATH --mode sdk|fetch --base-url URL --key KEY --jobs N --video-url URL

const path = require('node:path')
const { parseArgs } = require('node:util')
const { setTimeout: sleep } = require('node:timers/promises')

const POLL_MS = 2000
const TIMEOUT_MS = 600_000

function options() {
  const { values } = parseArgs({
    options: {
      sdk: { type: 'string' },
      mode: { type: 'string' },
      'base-url': { type: 'string' },
      key: { type: 'string' },
      jobs: { type: 'string', default: '20' },
      'video-url': { type: 'string' },
    },
  })
  for (const name of ['sdk', 'mode', 'base-url', 'key', 'video-url']) {
    if (!values[name]) throw new Error(`--${name} is required`)
  }
  if (!['sdk', 'fetch'].includes(values.mode)) throw new Error('--mode must be sdk or fetch')
  const jobs = Number(values.jobs)
  if (!(Number.isInteger(jobs) && jobs >= 1)) throw new Error('--jobs must be an integer of at least 1')
  return { sdk: values.sdk, mode: values.mode, baseUrl: values['base-url'], key: values.key, jobs, videoUrl: values['video-url'] }
}

function sdkFlow({ sdk, baseUrl, key, videoUrl }) {
  const { Client } = require(path.resolve(sdk))
  const client = new Client({ apiKey: key, baseUrl })
  return async () => {
    const { id } = await client.createJob(videoUrl, { autoStart: false })
    await client.startJob(id)
    return (await client.wait(id)).status
  }
}

function fetchFlow({ baseUrl, key, videoUrl }) {
  const base = baseUrl.replace(/\/+$/, '')
  const headers = { 'X-Api-Key': key, 'Content-Type': 'application/json' }
  const call = async (method, url, body) => {
    const response = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
    if (!response.ok) throw new Error(`${method} ${url}: HTTP ${response.status} ${await response.text()}`)
    return response.json()
  }
  return async () => {
    const { id } = await call('POST', `${base}/v1/jobs`, { video_url: videoUrl, auto_start: false })
    await call('POST', `${base}/v1/jobs/${id}/start`, {})
    const deadline = Date.now() + TIMEOUT_MS
    for (;;) {
      const { status } = await call('GET', `${base}/v1/jobs/${id}`)
      if (status === 'completed' || status === 'failed') return status
      if (Date.now() >= deadline) throw new Error(`job ${id} still ${status} after ${TIMEOUT_MS / 1000} s`)
      await sleep(POLL_MS)
    }
  }
}

async function main() {
  const opts = options()
  const cpuBefore = process.cpuUsage()
  const start = process.hrtime.bigint()
  const one = opts.mode === 'sdk' ? sdkFlow(opts) : fetchFlow(opts)
  const statuses = await Promise.all(Array.from({ length: opts.jobs }, () => one()))
  const wall = Number(process.hrtime.bigint() - start) / 1e9
  const cpu = process.cpuUsage(cpuBefore)

  const completed = statuses.filter((status) => status === 'completed').length
  if (completed !== opts.jobs) throw new Error(`${opts.jobs - completed} of ${opts.jobs} jobs did not complete: ${statuses}`)
  const cpuS = (cpu.user + cpu.system) / 1e6
  const round = (value, digits) => Number(value.toFixed(digits))
  console.log(JSON.stringify({
    language: 'node',
    flow: opts.mode === 'sdk' ? 'removebgvideo' : 'fetch (official SDK style)',
    jobs: opts.jobs,
    threads: opts.mode === 'sdk' ? Number(process.env.UV_THREADPOOL_SIZE) || 4 : null,
    wall_s: round(wall, 3),
    cpu_s: round(cpuS, 3),
    cpu_s_per_job: round(cpuS / opts.jobs, 4),
    peak_rss_mib: round(process.resourceUsage().maxRSS / 1024, 1),
    completed,
  }))
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})

'use strict'
// Many jobs waited at once on one event loop: every job of a `create-jobs` file.
//
// Why: a service with thousands of jobs in flight pays for each one it waits on, in threads,
// memory, CPU and requests, and its event loop must stay responsive meanwhile. Two flows wait
// for the same kind of jobs (each run gets its own, freshly created):
//
// - `sdk`: Promise.all of removebgvideo `client.wait` (the SDK's default poll policy). A failed
//   job rejects with JobFailedError (code `job_failed`), which counts as the job's end `failed`.
// - `fetch`: what a careful user writes without the SDK: global fetch, a read of each job at
//   once and then every 2 s (setTimeout) until it is completed or failed, at most
//   `--concurrency` requests in flight (a counting semaphore), a 429 waited out for its
//   Retry-After.
//
// Each flow is one Promise.all of one promise per job, as its user writes it.
//
// Measured over the waiting only (from building the client to the last job's end): wall seconds
// and the process's CPU seconds (process.cpuUsage: user + system, all threads). `start_ms` is
// how long making the N promises holds the loop, in one go (the caller's own loop, which grows
// with N in any flow). From then on, while the waits run, a 10 ms setInterval probe: its worst
// lateness is the loop's longest stall, and each tick reads `Threads:` of /proc/self/status
// (the kernel keeps no peak of threads). Peak RSS is process.resourceUsage().maxRSS. Prints one JSON object with every job's end in the file's
// order: `completed`, `failed`, `error: ...` for a wait that ended otherwise, `timeout` for one
// not ended in --timeout s.
//
//   node many.js --sdk PATH --mode sdk|fetch --base-url URL --key KEY --jobs-file FILE
//       [--timeout S] [--poll-seconds 2] [--concurrency 100]

const fs = require('node:fs')
const path = require('node:path')
const { parseArgs } = require('node:util')
const { setTimeout: sleep } = require('node:timers/promises')

const PROBE_MS = 10
const TERMINAL = ['completed', 'failed']

function options() {
  const { values } = parseArgs({
    options: {
      sdk: { type: 'string' },
      mode: { type: 'string' },
      'base-url': { type: 'string' },
      key: { type: 'string' },
      'jobs-file': { type: 'string' },
      timeout: { type: 'string', default: '600' },
      'poll-seconds': { type: 'string', default: '2' },
      concurrency: { type: 'string', default: '100' },
    },
  })
  for (const name of ['sdk', 'mode', 'base-url', 'key', 'jobs-file']) {
    if (!values[name]) throw new Error(`--${name} is required`)
  }
  if (!['sdk', 'fetch'].includes(values.mode)) throw new Error('--mode must be sdk or fetch')
  const timeout = Number(values.timeout)
  const pollSeconds = Number(values['poll-seconds'])
  const concurrency = Number(values.concurrency)
  if (!(timeout > 0) || !(pollSeconds > 0)) throw new Error('--timeout and --poll-seconds must be above 0')
  if (!(Number.isInteger(concurrency) && concurrency >= 1)) throw new Error('--concurrency must be an integer of at least 1')
  const jobIds = fs.readFileSync(values['jobs-file'], 'utf8').split('\n').map((line) => line.trim().split(/\s+/)[0]).filter(Boolean)
  if (jobIds.length === 0) throw new Error(`${values['jobs-file']} lists no jobs`)
  return { sdk: values.sdk, mode: values.mode, baseUrl: values['base-url'], key: values.key, jobIds, timeout, pollSeconds, concurrency }
}

function threadsNow() {
  const match = /^Threads:\s+(\d+)/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))
  return match ? Number(match[1]) : 0
}

// The 10 ms timer: the worst lateness, and the most threads seen.
function startProbe() {
  const probe = { worstMs: 0, peakThreads: threadsNow() }
  let last = performance.now()
  let timer = null
  const arm = () => {
    last = performance.now()
    timer = setInterval(() => {
      const now = performance.now()
      probe.worstMs = Math.max(probe.worstMs, now - last - PROBE_MS)
      last = now
      probe.peakThreads = Math.max(probe.peakThreads, threadsNow())
    }, PROBE_MS)
  }
  probe.stop = () => {
    clearInterval(timer)
    probe.peakThreads = Math.max(probe.peakThreads, threadsNow())
  }
  // Measures from now on (the start, held by the caller's own loop, is measured apart).
  probe.restart = () => {
    probe.stop()
    probe.worstMs = 0
    arm()
  }
  arm()
  return probe
}

function sdkFlow({ sdk, baseUrl, key, timeout }) {
  const { Client } = require(path.resolve(sdk))
  const client = new Client({ apiKey: key, baseUrl })
  return (jobId) => client.wait({ jobId, timeout }).then(
    (job) => job.status,
    (error) => (error.code === 'job_failed' ? 'failed' : describe(error)),
  )
}

// At most `limit` holders at once; the others queue in order.
function semaphore(limit) {
  let held = 0
  const queue = []
  return async (work) => {
    if (held >= limit) await new Promise((resolve) => queue.push(resolve))
    else held += 1
    try {
      return await work()
    } finally {
      const next = queue.shift()
      if (next) next()
      else held -= 1
    }
  }
}

function fetchFlow({ baseUrl, key, timeout, pollSeconds, concurrency }) {
  const base = baseUrl.replace(/\/+$/, '')
  const headers = { 'X-Api-Key': key }
  const inFlight = semaphore(concurrency)
  const deadline = Date.now() + timeout * 1000
  const poll = async (jobId) => {
    for (;;) {
      const { status, retryAfter, body } = await inFlight(async () => {
        const response = await fetch(`${base}/v1/jobs/${jobId}`, { headers })
        const text = await response.text()
        return { status: response.status, retryAfter: response.headers.get('retry-after'), body: text }
      })
      if (status === 429) {
        await sleep(Number(retryAfter ?? 1) * 1000)
        continue
      }
      if (status !== 200) throw new Error(`GET job ${jobId}: HTTP ${status} ${body}`)
      const job = JSON.parse(body)
      if (TERMINAL.includes(job.status)) return job.status
      if (Date.now() >= deadline) return 'timeout'
      await sleep(pollSeconds * 1000)
    }
  }
  return (jobId) => poll(jobId).catch(describe)
}

function describe(error) {
  return `error: ${error.code ?? error.name}: ${error.message}`
}

async function main() {
  const opts = options()
  const probe = startProbe()
  const cpuBefore = process.cpuUsage()
  const start = process.hrtime.bigint()
  const one = opts.mode === 'sdk' ? sdkFlow(opts) : fetchFlow(opts)
  // The waits have their own limit; this one catches a flow that overruns it.
  let overrun
  const limit = new Promise((resolve) => {
    overrun = setTimeout(() => resolve(null), (opts.timeout + 30) * 1000)
  })
  const ends = opts.jobIds.map(() => 'timeout')
  let left = opts.jobIds.length
  const making = performance.now()
  const all = Promise.all(opts.jobIds.map((jobId, i) => one(jobId).then((end) => {
    ends[i] = end
    // The probe stops with the last wait (the harness's own tally is not a stall of the waits).
    left -= 1
    if (left === 0) probe.stop()
  })))
  const startMs = performance.now() - making
  probe.restart()
  await Promise.race([all, limit])
  clearTimeout(overrun)
  const wall = Number(process.hrtime.bigint() - start) / 1e9
  const cpu = process.cpuUsage(cpuBefore)
  probe.stop()
  const cpuS = (cpu.user + cpu.system) / 1e6
  const round = (value, digits) => Number(value.toFixed(digits))
  console.log(JSON.stringify({
    language: 'node',
    flow: opts.mode === 'sdk' ? 'removebgvideo client.wait' : `fetch, ${opts.pollSeconds} s polls, ${opts.concurrency} in flight`,
    jobs: opts.jobIds.length,
    wall_s: round(wall, 3),
    cpu_s: round(cpuS, 3),
    cpu_s_per_job: round(cpuS / opts.jobIds.length, 6),
    peak_rss_mib: round(process.resourceUsage().maxRSS / 1024, 1),
    peak_threads: probe.peakThreads,
    start_ms: round(startMs, 1),
    stall_max_ms: round(Math.max(0, probe.worstMs), 1),
    statuses: ends,
  }))
  // Waits still running past the limit must not keep the process alive.
  process.exit(0)
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})

'use strict'
// The `removebgvideo` package: a Promise API over the Rust client. This file only converts:
// params objects (or positional arguments) to the native call's snake_case JSON, seconds to
// the wire's milliseconds, answers back to camelCase, native errors to typed errors,
// AbortSignal to the native cancel token; it checks only the JavaScript types of what it
// converts. Retries, backoff, idempotency, validation, polling and downloads are Rust's.

const util = require('node:util')
const native = require('./native.js')

/** A key converter that remembers its answers: every answer of a kind has the same few keys,
 * and converting them anew on each of ten thousand calls shows in the per-call cost. Keys are
 * remembered up to a bound (a caller's own keys, such as a misspelt option, are few). */
function remembered(convert) {
  const seen = new Map()
  return (key) => {
    let out = seen.get(key)
    if (out === undefined) {
      out = convert(key)
      if (seen.size < 1024) seen.set(key, out)
    }
    return out
  }
}
const toCamel = remembered((key) => key.replace(/_([a-z0-9])/g, (_, c) => c.toUpperCase()))
const toSnake = remembered((key) => key.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase()))

// Keys whose values are the caller's own data: their inner keys are never renamed.
const OPAQUE = new Set(['metadata', 'webhook_events', 'webhookEvents', 'context'])

function rename(value, convert) {
  if (value === null || typeof value !== 'object') return value
  if (Array.isArray(value)) return value.map((item) => rename(item, convert))
  if (Buffer.isBuffer(value)) return value
  const out = {}
  for (const key of Object.keys(value)) {
    const inner = value[key]
    if (inner === undefined) continue
    out[convert(key)] = OPAQUE.has(key) ? inner : rename(inner, convert)
  }
  return out
}
const camelize = (value) => rename(value, toCamel)
const snakeize = (value) => rename(value, toSnake)

/** Base class of every error the SDK throws; `code` is the same string as in Rust and Python.
 * Built from the native error (its `code` is napi's error status, the rest its properties;
 * see src/errors.rs) or from a payload of the same shape made here. */
class RemoveBGVideoError extends Error {
  constructor(payload) {
    super(payload.message)
    this.name = new.target.name
    this.code = payload.code
    this.kind = payload.kind
    this.status = payload.status ?? null
    this.requestId = payload.request_id ?? null
    this.idempotencyKey = payload.idempotency_key ?? null
    this.retryAfter = payload.retry_after_ms == null ? null : payload.retry_after_ms / 1000
    this.errors = camelize(payload.problems ?? [])
    this.job = payload.job ? camelize(payload.job) : null
  }
}

const errorClasses = { RemoveBGVideoError }
for (const [, name] of native.errorClasses()) {
  // One subclass per kind, named as in Python: `instanceof` and `code` both work.
  errorClasses[name] = { [name]: class extends RemoveBGVideoError {} }[name]
}

/** JSON for the native side. JSON has no Infinity or NaN (`JSON.stringify` would turn them
 * into null, silently a default): they go as strings, which the native side refuses with a
 * ValidationError naming the field. */
function toJson(value) {
  return JSON.stringify(value, (key, v) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v))
}

function abortError(signal) {
  return signal.reason instanceof Error ? signal.reason : new DOMException('The operation was aborted', 'AbortError')
}

/** The typed error of a native one: ours carry their class's name in `class` (napi's own
 * errors, such as a wrong argument type to a native function, pass unchanged). */
function convertError(error) {
  if (error instanceof Error && typeof error.code === 'string' && typeof error.class === 'string') {
    const ErrorClass = errorClasses[error.class] ?? RemoveBGVideoError
    return new ErrorClass(error)
  }
  return error
}

function rethrowConverted(error) {
  throw convertError(error)
}

// One unit convention: seconds in the public API (as in Python, and as `err.retryAfter`),
// milliseconds only on the wire to the native side (`timeout_ms`): `check.seconds` converts.

// One rule for a wrong argument: a ValidationError (as for every other bad input, so that
// `instanceof ValidationError` catches them all), whose problem names the argument as you
// wrote it (`/videoUrl`, "videoUrl must be a string"). This file checks only what JavaScript
// itself knows (the type of a value); the rules of the API (ranges, URLs, formats) are the
// core's, and its problems come back named the same way.

/** A ValidationError raised here, before the native side, in the shape of its own. */
function validationError(path, message, code = 'invalid_type') {
  const payload = { code: 'validation_error', kind: 'validation', message: `invalid request: ${message}`, problems: [{ path, code, message, severity: 'error' }] }
  return new errorClasses.ValidationError(payload)
}

const isObject = (value) => value !== null && typeof value === 'object' && !Array.isArray(value)

const check = {
  string(value, name) {
    if (typeof value !== 'string') throw validationError(`/${name}`, `${name} must be a string`)
    return value
  },
  optionalString(value, name) {
    return value === undefined ? value : check.string(value, name)
  },
  /** A file path: a string or a `file:` URL. */
  path(value, name) {
    if (value instanceof URL) return require('node:url').fileURLToPath(value)
    if (typeof value !== 'string') throw validationError(`/${name}`, `${name} must be a string (a file path) or a file: URL`)
    return value
  },
  optionalPath(value, name) {
    return value === undefined ? value : check.path(value, name)
  },
  object(value, name) {
    if (value !== undefined && !isObject(value)) throw validationError(`/${name}`, `${name} must be an object`)
    return value
  },
  /** Seconds, sent as milliseconds. */
  seconds(value, name) {
    if (value === undefined) return value
    if (typeof value !== 'number' || !Number.isFinite(value)) throw validationError(`/${name}`, `${name} must be a finite number of seconds`)
    return value * 1000
  },
  background(value) {
    if (value === undefined || typeof value === 'string' || Array.isArray(value)) return value
    throw validationError('/background', 'background must be a string (transparent, a preset, #rrggbb, image:URL) or an [r, g, b] array')
  },
}

/** The milliseconds of a duration given as `name` (seconds) or as its deprecated alias
 * `nameMs` (milliseconds); both at once is a ValidationError naming them. */
function durationMs(source, name) {
  const seconds = source?.[name]
  const ms = source?.[`${name}Ms`]
  if (seconds !== undefined && ms !== undefined) {
    throw validationError(`/${name}`, `${name} and ${name}Ms are the same setting (${name}Ms is its deprecated name, in milliseconds): give only ${name}, in seconds`, 'not_applicable')
  }
  if (ms !== undefined && (typeof ms !== 'number' || !Number.isFinite(ms))) {
    throw validationError(`/${name}Ms`, `${name}Ms must be a finite number of milliseconds`)
  }
  return seconds !== undefined ? check.seconds(seconds, name) : ms
}

// The durations of the policies, in seconds in the public API (as in Python's).
const POLL_DURATIONS = new Set(['initialInterval', 'maxInterval', 'minInterval', 'maxHint', 'maxEtaInterval', 'etaMargin'])
const RETRY_DURATIONS = new Set(['baseDelay', 'maxDelay', 'rateLimitBaseDelay', 'rateLimitMaxDelay', 'maxRetryAfter'])

/** A policy's wire form: its durations in milliseconds (`initial_interval_ms`); other fields,
 * misspelt ones included (the native side refuses those by name), as they are. */
function policyWire(policy, durations, name) {
  if (policy === undefined) return undefined
  check.object(policy, name)
  const out = {}
  for (const [key, value] of Object.entries(policy)) {
    if (value === undefined) continue
    if (durations.has(key)) out[`${toSnake(key)}_ms`] = check.seconds(value, `${name}.${key}`)
    else out[toSnake(key)] = value
  }
  return out
}

function headersList(headers, name = 'headers') {
  return check.object(headers, name) ? Object.entries(headers) : undefined
}

/** The params object of a method that also takes a positional form, `method(first, options)`:
 * `first` is then the params' `leading` member. */
function paramsOf(method, leading, first, options) {
  if (isObject(first) && !(first instanceof URL)) {
    if (options !== undefined) throw validationError('', `${method} takes one params object, or ${leading} and then options, not an object and options`)
    return first
  }
  return { ...check.object(options, 'options'), [leading]: first }
}

// Members of every params object that are the call's options, not the operation's arguments.
const CALL_OPTIONS = new Set(['idempotencyKey', 'maxRetries', 'timeout', 'timeoutMs', 'headers', 'signal', 'onProgress'])

/** A params object split: the operation's arguments, and the call's options. */
function split(params, { timeoutIsArgument = false } = {}) {
  const args = {}
  const options = {}
  for (const [key, value] of Object.entries(params ?? {})) {
    const isOption = CALL_OPTIONS.has(key) && !(timeoutIsArgument && (key === 'timeout' || key === 'timeoutMs'))
    ;(isOption ? options : args)[key] = value
  }
  return [args, options]
}

/** How long one hand-over of queued calls to the engine, or one settling of what came back,
 * may hold the event loop. */
const FLUSH_BUDGET_MS = 4

/** The RemoveBGVideo client. Every method returns a Promise; the work runs off the event loop.
 * Each method takes one params object (`createJob({ videoUrl, model })`), or its leading
 * arguments first (`createJob(videoUrl, { model })`). */
/** Each client's native half, for `Batch` (module-private: not reachable from outside). */
const nativeOf = new WeakMap()

class Client {
  #native
  /** Calls under way, by id: their promise's ends and their progress callback. */
  #calls = new Map()
  #lastId = 0
  /** Calls made but not yet handed to the engine. */
  #outbox = []
  /** Messages from the engine not yet settled (see #receive), and whether a settling is due. */
  #inbox = []
  #settling = false
  #description

  constructor(options = {}) {
    check.object(options, 'options')
    const { apiKey, baseUrl, maxRetries, userAgent, headers, idempotency, pollPolicy, retryPolicy, ...rest } = options
    const settings = {
      api_key: check.optionalString(apiKey, 'apiKey'),
      base_url: check.optionalString(baseUrl, 'baseUrl'),
      max_retries: maxRetries,
      timeout_ms: durationMs(options, 'timeout'),
      connect_timeout_ms: durationMs(options, 'connectTimeout'),
      transfer_idle_timeout_ms: durationMs(options, 'transferIdleTimeout'),
      wait_timeout_ms: durationMs(options, 'waitTimeout'),
      user_agent: check.optionalString(userAgent, 'userAgent'),
      headers: headersList(headers),
      idempotency,
      poll_policy: policyWire(pollPolicy, POLL_DURATIONS, 'pollPolicy'),
      retry_policy: policyWire(retryPolicy, RETRY_DURATIONS, 'retryPolicy'),
    }
    // Anything else is a misspelt setting: sent as it is, the native side refuses it by name.
    for (const [key, value] of Object.entries(rest)) {
      if (!/^(timeout|connectTimeout|transferIdleTimeout|waitTimeout)(Ms)?$/.test(key)) settings[toSnake(key)] = value
    }
    try {
      this.#native = new native.NativeClient(toJson(settings), (id, kind, value) => this.#receive(id, kind, value))
    } catch (error) {
      throw convertError(error)
    }
    this.#description = JSON.parse(this.#native.describe())
    nativeOf.set(this, this.#native)
  }

  /** A batch on this client: `client.batch({ manifest, out })` (see `Batch`). */
  batch(params) {
    return new Batch({ ...check.object(params, 'params'), client: this })
  }

  [util.inspect.custom]() {
    return `Client { baseUrl: '${this.#description.base_url}', maxRetries: ${this.#description.max_retries}, apiKey: '[redacted]' }`
  }

  toJSON() {
    return { baseUrl: this.#description.base_url, maxRetries: this.#description.max_retries }
  }

  // Not an async function: a call without a signal (ten thousand waits, say) is one promise
  // chain, with no suspended function holding its arguments while it is pending. It never
  // throws; a wrong argument rejects its promise.
  #call(operation, args, options) {
    try {
      const { signal, onProgress, idempotencyKey, maxRetries, headers } = options
      if (signal !== undefined && !(signal instanceof AbortSignal)) throw validationError('/signal', 'signal must be an AbortSignal')
      if (onProgress !== undefined && typeof onProgress !== 'function') throw validationError('/onProgress', 'onProgress must be a function')
      if (signal?.aborted) throw abortError(signal)
      const callOptions = {
        idempotency_key: check.optionalString(idempotencyKey, 'idempotencyKey'),
        max_retries: maxRetries,
        timeout_ms: durationMs(options, 'timeout'),
        headers: headersList(headers),
      }
      if (signal === undefined) return this.#submit(operation, args, callOptions, null, onProgress).then(camelize, rethrowConverted)
      return this.#callWithSignal(operation, args, callOptions, signal, onProgress)
    } catch (error) {
      return Promise.reject(error)
    }
  }

  async #callWithSignal(operation, args, callOptions, signal, onProgress) {
    // A native cancel token only for a call that can be aborted: ten thousand waits without a
    // signal need ten thousand fewer native objects.
    const cancel = new native.NativeCancel()
    const onAbort = () => cancel.cancel()
    signal.addEventListener('abort', onAbort, { once: true })
    try {
      return camelize(await this.#submit(operation, args, callOptions, cancel, onProgress))
    } catch (error) {
      const converted = convertError(error)
      if (signal.aborted && converted.code === 'cancelled') throw abortError(signal)
      throw converted
    } finally {
      signal.removeEventListener('abort', onAbort)
    }
  }

  // Every call runs on the client's engine. Its events and outcome come back, tagged with the
  // call's id, through the client's one native channel, in order: every event is delivered
  // before the promise settles.
  #submit(operation, args, callOptions, cancel, onProgress) {
    return new Promise((resolve, reject) => {
      const id = ++this.#lastId
      this.#calls.set(id, { resolve, reject, onProgress })
      if (this.#calls.size === 1) this.#native.busy()
      // The JSON is made when the call is handed over (see #flush): ten thousand calls made in
      // one go then cost the event loop little more than their promises.
      this.#outbox.push([id, operation, args, callOptions, cancel])
      if (this.#outbox.length === 1) queueMicrotask(() => this.#flush())
    })
  }

  // Hands queued calls to the engine, a few milliseconds' worth at a time: ten thousand calls
  // made in one go (a `Promise.all` of waits) must not hold the event loop for their whole
  // hand-over.
  #flush() {
    const until = performance.now() + FLUSH_BUDGET_MS
    let sent = 0
    while (sent < this.#outbox.length && (sent === 0 || performance.now() < until)) {
      const [id, operation, args, callOptions, cancel] = this.#outbox[sent]
      sent += 1
      let operationJson, optionsJson
      try {
        // `operation` first: the native side then names a mistake in the arguments by its path.
        operationJson = toJson({ operation, arguments: snakeize(args) })
        optionsJson = toJson(callOptions)
      } catch (error) {
        // An argument JSON cannot carry (a BigInt, a cycle) fails its own call only.
        this.#receive(id, 'error', validationError('/params', `the arguments cannot be sent: ${error.message}`))
        continue
      }
      // Events cross to JS only for a call that listens to them.
      this.#native.submit(id, operationJson, optionsJson, cancel, this.#calls.get(id)?.onProgress !== undefined)
    }
    this.#outbox.splice(0, sent)
    if (this.#outbox.length > 0) setImmediate(() => this.#flush())
  }

  // Node hands the threadsafe function's messages over up to a thousand in one go: settling
  // them as they come (each one's JSON and the continuations of its promise) could hold the
  // loop for that whole burst. They are queued and settled a few milliseconds' worth at a
  // time, in order; a message that finds nothing queued is settled at once.
  #receive(id, kind, value) {
    this.#inbox.push(id, kind, value)
    if (!this.#settling) this.#settle()
  }

  #settle() {
    this.#settling = true
    const until = performance.now() + FLUSH_BUDGET_MS
    let next = 0
    while (next < this.#inbox.length && (next === 0 || performance.now() < until)) {
      const inbox = this.#inbox
      next += 3
      try {
        this.#settleOne(inbox[next - 3], inbox[next - 2], inbox[next - 1])
      } catch (error) {
        // A caller's onProgress that throws must not lose the messages behind it.
        queueMicrotask(() => { throw error })
      }
    }
    this.#inbox.splice(0, next)
    if (this.#inbox.length > 0) setImmediate(() => this.#settle())
    else this.#settling = false
  }

  #settleOne(id, kind, value) {
    const call = this.#calls.get(id)
    if (call === undefined) return
    if (kind === 'event') {
      call.onProgress?.(camelize(JSON.parse(value)))
      return
    }
    this.#calls.delete(id)
    if (this.#calls.size === 0) this.#native.idle()
    if (kind === 'result') call.resolve(JSON.parse(value))
    else call.reject(value)
  }

  /** The job settings shared by create, start and run, checked and in wire form. */
  static #job(args) {
    return { ...args, background: check.background(args.background) }
  }

  /** `GET /health`: whether the API answers. */
  async health(params = {}) {
    const [args, options] = split(check.object(params, 'params'))
    return this.#call('health', args, options)
  }

  /** Uploads a video file (mp4, mov, webm or avi, at most 500 MB), streamed from disk:
   * `upload({ path })` or `upload(path, options)`. */
  async upload(pathOrParams, options) {
    const [args, callOptions] = split(paramsOf('upload', 'path', pathOrParams, options))
    return this.#call('upload', { ...args, path: check.path(args.path, 'path') }, callOptions)
  }

  /** Creates a job from a video URL; it starts at once unless `autoStart: false`:
   * `createJob({ videoUrl, model, ... })` or `createJob(videoUrl, options)`. */
  async createJob(videoUrlOrParams, options) {
    const [args, callOptions] = split(paramsOf('createJob', 'videoUrl', videoUrlOrParams, options))
    check.string(args.videoUrl, 'videoUrl')
    return this.#call('create_job', Client.#job(args), callOptions)
  }

  /** Starts a draft job, or restarts a failed one: `startJob({ jobId, ... })` or
   * `startJob(jobId, options)`. */
  async startJob(jobIdOrParams, options) {
    const [args, callOptions] = split(paramsOf('startJob', 'jobId', jobIdOrParams, options))
    check.string(args.jobId, 'jobId')
    return this.#call('start_job', Client.#job(args), callOptions)
  }

  /** Reads a job: `getJob({ jobId })` or `getJob(jobId, options)`. */
  getJob(jobIdOrParams, options) {
    try {
      const [args, callOptions] = split(paramsOf('getJob', 'jobId', jobIdOrParams, options))
      check.string(args.jobId, 'jobId')
      return this.#call('get_job', args, callOptions)
    } catch (error) {
      return Promise.reject(error)
    }
  }

  /** Lists the key's jobs, newest first. */
  async listJobs(params = {}) {
    const [args, options] = split(check.object(params, 'params'))
    return this.#call('list_jobs', args, options)
  }

  /** Usage totals over the last `days` (1 to 90). */
  async usageSummary(params = {}) {
    const [args, options] = split(check.object(params, 'params'))
    return this.#call('usage_summary', args, options)
  }

  /** Recent usage events (`limit` 1 to 100). */
  async usageEvents(params = {}) {
    const [args, options] = split(check.object(params, 'params'))
    return this.#call('usage_events', args, options)
  }

  /** The legacy download route, the output URL of a completed job: `legacyDownload({ jobId })`
   * or `legacyDownload(jobId, options)`. */
  async legacyDownload(jobIdOrParams, options) {
    const [args, callOptions] = split(paramsOf('legacyDownload', 'jobId', jobIdOrParams, options))
    check.string(args.jobId, 'jobId')
    return this.#call('legacy_download', args, callOptions)
  }

  /** Waits until the job completes (resolves), fails (JobFailedError) or `timeout` seconds
   * pass (WaitTimeoutError; 30 minutes by default). An AbortSignal stops it with an
   * AbortError. `wait({ jobId, timeout, signal })` or `wait(jobId, options)`. */
  // Not async (see #call): the most numerous call of all.
  wait(jobIdOrParams, options) {
    try {
      const [args, callOptions] = split(paramsOf('wait', 'jobId', jobIdOrParams, options), { timeoutIsArgument: true })
      check.string(args.jobId, 'jobId')
      const { timeout, timeoutMs, pollPolicy, ...rest } = args
      const wire = { ...rest, timeoutMs: durationMs(args, 'timeout'), pollPolicy: policyWire(pollPolicy, POLL_DURATIONS, 'pollPolicy') }
      return this.#call('wait', wire, callOptions)
    } catch (error) {
      return Promise.reject(error)
    }
  }

  /** Waits for many jobs at once and yields `{ jobId, job, error }` for each as it ends, first
   * ended first: `for await (const { jobId, job, error } of client.asCompleted({ jobIds }))`.
   * `job` is the job as last read (a failed one too, with `error` a `JobFailedError`); `error`
   * is what ended the wait unless the job completed. The waits run on the client's engine (no
   * thread per job); leaving the loop early, or `signal`, stops the rest. */
  async * asCompleted(jobIdsOrParams, options) {
    const params = Array.isArray(jobIdsOrParams) ? { ...(options ?? {}), jobIds: jobIdsOrParams } : check.object(jobIdsOrParams, 'params')
    const { jobIds, signal, ...waitOptions } = params
    if (!Array.isArray(jobIds)) throw validationError('/jobIds', 'jobIds must be an array of job ids')
    if (signal !== undefined && !(signal instanceof AbortSignal)) throw validationError('/signal', 'signal must be an AbortSignal')
    const stop = new AbortController()
    const onAbort = () => stop.abort(signal.reason)
    signal?.addEventListener('abort', onAbort, { once: true })
    const ended = []
    let wake = null
    const settle = (result) => {
      ended.push(result)
      wake?.()
    }
    for (const jobId of jobIds) {
      this.wait({ ...waitOptions, jobId, signal: stop.signal }).then(
        (job) => settle({ jobId, job, error: null }),
        (error) => settle({ jobId, job: error?.job ?? null, error }),
      )
    }
    try {
      for (let yielded = 0; yielded < jobIds.length; yielded += 1) {
        while (ended.length === 0) await new Promise((resolve) => { wake = resolve })
        wake = null
        yield ended.shift()
      }
    } finally {
      signal?.removeEventListener('abort', onAbort)
      stop.abort()
    }
  }

  /** Downloads a completed job's output to `path`: resumable, length-checked, atomic.
   * `download({ jobId, path })`, `download({ job, path })` (the job as read, which saves a
   * request) or `download(jobOrId, path, options)`. */
  async download(jobOrParams, path, options) {
    let params
    if (path === undefined && options === undefined && isObject(jobOrParams) && !('status' in jobOrParams && 'id' in jobOrParams)) {
      params = jobOrParams
    } else {
      const job = typeof jobOrParams === 'string' ? { jobId: jobOrParams } : { job: check.object(jobOrParams, 'job') }
      params = { ...check.object(options, 'options'), ...job, path }
    }
    const [args, callOptions] = split(params)
    if (args.jobId !== undefined) check.string(args.jobId, 'jobId')
    if (args.job !== undefined) check.object(args.job, 'job')
    return this.#call('download', { ...args, path: check.path(args.path, 'path') }, callOptions)
  }

  /** The whole flow under one deadline: upload (`file`) or `videoUrl`, create, wait, and
   * download to `output` when given. */
  async run(params) {
    if (!isObject(params)) throw validationError('', 'run takes a params object ({ videoUrl } or { file }, and options)')
    const [args, callOptions] = split(params, { timeoutIsArgument: true })
    const { timeout, timeoutMs, pollPolicy, ...rest } = Client.#job(args)
    check.optionalString(rest.videoUrl, 'videoUrl')
    const wire = {
      ...rest,
      file: check.optionalPath(rest.file, 'file'),
      output: check.optionalPath(rest.output, 'output'),
      timeoutMs: durationMs(args, 'timeout'),
      pollPolicy: policyWire(pollPolicy, POLL_DURATIONS, 'pollPolicy'),
    }
    return this.#call('run', wire, callOptions)
  }

  /** Sends this client's jobs' events to `url` (your route, or a tunnel's public URL) and makes
   * its waits hybrid: a wait ends on a verified delivery, confirmed by one read of the job, and
   * polls only every `fallback` seconds (30) once a delivery came. Hand deliveries to
   * `handleWebhook` or `webhookHandler()`. */
  useWebhooks(params) {
    if (!isObject(params)) throw validationError('', 'useWebhooks takes a params object ({ url, secret })')
    const { url, secret, tolerance, fallback, ...rest } = params
    const input = {
      url: check.string(url, 'url'),
      secret: check.string(secret, 'secret'),
      tolerance_ms: check.seconds(tolerance, 'tolerance'),
      fallback_ms: check.seconds(fallback, 'fallback'),
      ...snakeKeys(rest),
    }
    try {
      this.#native.useWebhooks(toJson(input))
    } catch (error) {
      throw convertError(error)
    }
  }

  /** Takes one delivery: `{ body, headers }` with the raw body exactly as received (a Buffer or
   * string). Verified, dropped if a duplicate, else handed to the waits of its job; returns the
   * typed event (`duplicate` true for a redelivery). Throws `WebhookVerificationError` for a
   * forged, stale or malformed one: answer it 400. */
  handleWebhook(params) {
    if (!isObject(params)) throw validationError('', 'handleWebhook takes a params object ({ body, headers })')
    const { body, headers } = params
    if (!Buffer.isBuffer(body) && typeof body !== 'string') {
      throw validationError('/body', 'body must be the raw body, a Buffer or a string (parse JSON only after verifying: use express.raw())')
    }
    const pairs = headerPairs(headers)
    try {
      return camelize(JSON.parse(this.#native.handleWebhook(Buffer.isBuffer(body) ? body : Buffer.from(body), toJson(pairs))))
    } catch (error) {
      throw convertError(error)
    }
  }

  /** A `(req, res)` handler for `http.createServer` or an Express route: reads the raw body
   * (or takes `req.body` when `express.raw()` read it), verifies it with `handleWebhook`, and
   * answers 200, 400 (not verified), 405 (not a POST) or 413 (over 256 KiB). Resolves to the
   * delivery, or null when it was refused; `onDelivery` is called with each one taken. */
  webhookHandler(options = {}) {
    check.object(options, 'options')
    const { onDelivery } = options
    if (onDelivery !== undefined && typeof onDelivery !== 'function') throw validationError('/onDelivery', 'onDelivery must be a function')
    return async (req, res) => {
      const answer = (status, payload) => {
        res.statusCode = status
        res.setHeader('content-type', 'application/json')
        res.end(JSON.stringify(payload))
      }
      if (req.method !== 'POST') {
        res.setHeader('allow', 'POST')
        answer(405, { error: 'method_not_allowed' })
        return null
      }
      let body
      if (Buffer.isBuffer(req.body) || typeof req.body === 'string') {
        body = req.body
      } else if (req.body !== undefined && req.readableEnded) {
        // A body parser turned the bytes into an object: the signature cannot be checked.
        answer(500, { error: 'body_already_parsed', message: 'the route parsed the body before verification: mount it with express.raw({ type: "application/json" })' })
        return null
      } else {
        body = await readBody(req, MAX_WEBHOOK_BODY)
        if (body === null) {
          answer(413, { error: 'payload_too_large' })
          return null
        }
      }
      let delivery
      try {
        delivery = this.handleWebhook({ body, headers: req.headers })
      } catch (error) {
        if (!(error instanceof errorClasses.WebhookVerificationError)) throw error
        answer(400, { error: error.code })
        return null
      }
      answer(200, { received: true, duplicate: delivery.duplicate })
      if (onDelivery) onDelivery(delivery)
      return delivery
    }
  }

  /** Starts a receiver of the SDK's own (an HTTP listener on the native side, `127.0.0.1` on a
   * port the OS picks unless told) and sends this client's jobs' events to it, or to
   * `publicUrl` (a tunnel or gateway forwarding to it). Close it with `close()`. */
  listenForWebhooks(params) {
    if (!isObject(params)) throw validationError('', 'listenForWebhooks takes a params object ({ secret })')
    const { secret, host, port, path, publicUrl, tolerance, fallback, ...rest } = params
    const input = {
      secret: check.string(secret, 'secret'),
      host: check.optionalString(host, 'host'),
      port,
      path: check.optionalString(path, 'path'),
      public_url: check.optionalString(publicUrl, 'publicUrl'),
      tolerance_ms: check.seconds(tolerance, 'tolerance'),
      fallback_ms: check.seconds(fallback, 'fallback'),
      ...snakeKeys(rest),
    }
    try {
      return new WebhookReceiver(this.#native.listenForWebhooks(toJson(input)))
    } catch (error) {
      throw convertError(error)
    }
  }
}

/** The largest delivery `webhookHandler` reads (the receiver's bound, `inbox::MAX_BODY_BYTES`). */
const MAX_WEBHOOK_BODY = 256 * 1024

/** A request's body, or null once it passes `limit` bytes (the rest is drained, not kept). */
function readBody(req, limit) {
  return new Promise((resolve, reject) => {
    const chunks = []
    let size = 0
    req.on('data', (chunk) => {
      size += chunk.length
      if (size <= limit) chunks.push(chunk)
    })
    req.on('end', () => resolve(size > limit ? null : Buffer.concat(chunks)))
    req.on('error', reject)
  })
}

/** Header pairs from Node's `req.headers` (arrays joined), a plain object, a `Headers`, or pairs. */
function headerPairs(headers) {
  if (headers === undefined) return []
  let entries = null
  if (Array.isArray(headers)) entries = headers
  else if (typeof headers?.entries === 'function' && Object.getPrototypeOf(headers) !== Object.prototype) entries = [...headers.entries()]
  else if (isObject(headers)) entries = Object.entries(headers)
  if (entries === null) throw validationError('/headers', 'headers must be an object, a Headers or an array of [name, value] pairs')
  return entries
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => [String(k), Array.isArray(v) ? v.join(', ') : String(v)])
}

/** The caller's other keys, sent as snake_case so that the native side refuses a misspelt one by name. */
function snakeKeys(rest) {
  return Object.fromEntries(Object.entries(rest).map(([k, v]) => [toSnake(k), v]))
}

/** A receiver the SDK runs (`client.listenForWebhooks`). */
class WebhookReceiver {
  #native
  constructor(nativeReceiver) {
    this.#native = nativeReceiver
    /** The URL deliveries are posted to. */
    this.url = nativeReceiver.url
  }

  /** Deliveries `accepted`, `duplicates` and requests `rejected` so far. */
  stats() {
    return JSON.parse(this.#native.stats())
  }

  /** Stops listening; later calls do nothing. */
  close() {
    this.#native.stop()
  }
}

/** Verifies a webhook delivery against the raw body bytes (constant time, timestamp tolerance). */
function verifyWebhook(body, headers, secret, options = {}) {
  if (!Buffer.isBuffer(body) && typeof body !== 'string') throw validationError('/body', 'body must be the raw body, a Buffer or a string')
  if (!Array.isArray(headers) && !isObject(headers)) throw validationError('/headers', 'headers must be an object or an array of [name, value] pairs')
  check.object(options, 'options')
  const pairs = Array.isArray(headers) ? headers : Object.entries(headers)
  const buffer = Buffer.isBuffer(body) ? body : Buffer.from(body)
  try {
    if (options.tolerance !== undefined && options.toleranceSeconds !== undefined) {
      throw validationError('/tolerance', 'tolerance and toleranceSeconds are the same setting (toleranceSeconds is its deprecated name): give only tolerance, in seconds', 'not_applicable')
    }
    if (options.now !== undefined && !(options.now instanceof Date)) throw validationError('/now', 'now must be a Date')
    const input = {
      headers: pairs.map(([k, v]) => [String(k), String(v)]),
      secret: check.string(secret, 'secret'),
      tolerance_ms: options.tolerance !== undefined ? check.seconds(options.tolerance, 'tolerance') : check.seconds(options.toleranceSeconds, 'toleranceSeconds'),
      now_ms: options.now?.getTime(),
    }
    const out = native.verifyWebhook(buffer, toJson(input))
    return camelize(JSON.parse(out))
  } catch (error) {
    throw convertError(error)
  }
}

/** Credits for `durationSeconds` of video with `model` (billed per second, rounded up). */
function estimateCredits(model, durationSeconds) {
  check.string(model, 'model')
  if (typeof durationSeconds !== 'number') throw validationError('/durationSeconds', 'durationSeconds must be a number')
  try {
    return native.estimateCredits(model, durationSeconds)
  } catch (error) {
    throw convertError(error)
  }
}

/** Every problem of a request body by the SDK's rules (the same as Rust's and Python's). */
function validateRequest(typeName, body) {
  check.string(typeName, 'typeName')
  if (!isObject(body)) throw validationError('/body', 'body must be an object')
  try {
    return camelize(JSON.parse(native.validateRequest(typeName, toJson(body))))
  } catch (error) {
    throw convertError(error)
  }
}

/** Many videos from a manifest (a `.csv` or `.jsonl` path) or `items` (objects with the
 * manifest's columns, camelCase or snake_case: `videoUrl` or `file`, `key`, `model`,
 * `outputFormat`, `background`, `textPrompt`, `metadata`, `output`), every transition in a
 * ledger (`out/ledger.sqlite`). `for await (const result of batch)` runs it and yields each
 * item's result as it ends, every item once per run; running the same batch again resumes it
 * without a second job. Leaving the loop early, `signal` or `cancel()` stops new work and
 * leaves everything resumable. The work runs on a thread of its own, off the event loop. */
class Batch {
  #args
  #client
  #onProgress
  #signal
  #cancel = null
  /** The summary of the last run, once it ended. */
  summary = null

  constructor(params) {
    check.object(params, 'params')
    const { manifest, items, out, ledger, batch, client, maxInFlight, budgetCredits, restartFailed, recreateUnknown,
      durability, timeout, lease, maxRequestsPerSecond, onProgress, signal, ...rest } = params
    if (items !== undefined && !Array.isArray(items)) throw validationError('/items', 'items must be an array of objects')
    if (onProgress !== undefined && typeof onProgress !== 'function') throw validationError('/onProgress', 'onProgress must be a function')
    if (signal !== undefined && !(signal instanceof AbortSignal)) throw validationError('/signal', 'signal must be an AbortSignal')
    this.#client = client ?? new Client()
    if (!nativeOf.has(this.#client)) throw validationError('/client', 'client must be a removebgvideo Client')
    this.#args = {
      manifest: check.optionalPath(manifest, 'manifest'),
      items: items?.map((item, i) => snakeize(check.object(item, `items/${i}`))),
      out: check.optionalPath(out, 'out'),
      ledger: check.optionalPath(ledger, 'ledger'),
      batch: check.optionalString(batch, 'batch'),
      max_in_flight: maxInFlight,
      budget_credits: budgetCredits,
      restart_failed: restartFailed,
      recreate_unknown: recreateUnknown,
      durability,
      timeout,
      lease,
      max_requests_per_second: maxRequestsPerSecond,
    }
    // Anything else is a misspelt option: sent as it is, the native side refuses it by name.
    for (const [key, value] of Object.entries(rest)) this.#args[toSnake(key)] = value
    this.#onProgress = onProgress
    this.#signal = signal
  }

  #json() {
    return toJson(this.#args)
  }

  /** Stops new work and ends the calls under way; the batch stays resumable. */
  cancel() {
    this.#cancel?.cancel()
  }

  async * [Symbol.asyncIterator]() {
    const cancel = new native.NativeCancel()
    this.#cancel = cancel
    const queue = []
    let wake = null
    let ended = false
    const push = (message) => {
      queue.push(message)
      wake?.()
    }
    const onAbort = () => cancel.cancel()
    if (this.#signal?.aborted) cancel.cancel()
    this.#signal?.addEventListener('abort', onAbort, { once: true })
    nativeOf.get(this.#client).batchRun(this.#json(), cancel, (kind, value) => {
      if (kind === 'progress') {
        if (this.#onProgress) this.#onProgress(camelize(JSON.parse(value)))
        return
      }
      push([kind, value])
    })
    try {
      for (;;) {
        while (queue.length === 0) await new Promise((resolve) => { wake = resolve })
        wake = null
        const [kind, value] = queue.shift()
        if (kind === 'item') {
          yield camelize(JSON.parse(value))
        } else if (kind === 'summary') {
          ended = true
          this.summary = camelize(JSON.parse(value))
          return
        } else {
          ended = true
          throw convertError(value)
        }
      }
    } finally {
      this.#signal?.removeEventListener('abort', onAbort)
      if (!ended) {
        cancel.cancel()
        // The run stops at its next step; its summary still comes (and is kept).
        for (;;) {
          while (queue.length === 0) await new Promise((resolve) => { wake = resolve })
          const [kind, value] = queue.shift()
          if (kind === 'summary') {
            this.summary = camelize(JSON.parse(value))
            break
          }
          if (kind === 'error') break
        }
      }
    }
  }

  /** Runs the batch to its end (or a stop) and resolves with the summary. */
  async run() {
    for await (const _ of this) {
      // every result is in results.jsonl / errors.jsonl too
    }
    return this.summary
  }

  /** Items per phase and the credits, from the ledger. */
  async status() {
    return camelize(JSON.parse(await native.batchStatus(this.#json()).catch(rethrowConverted)))
  }

  /** The log of the item `key`, oldest first. */
  async events(key) {
    check.string(key, 'key')
    return camelize(JSON.parse(await native.batchEvents(this.#json(), key).catch(rethrowConverted)))
  }

  /** The SLA baseline per model (`{ report, markdown, html }`); with `usage` (the default), the
   * ledger's credits against the API's usage summary and events. */
  async report({ usage = true } = {}) {
    const raw = usage ? nativeOf.get(this.#client).batchReport(this.#json()) : native.batchReport(this.#json())
    const { report, markdown, html } = JSON.parse(await raw.catch(rethrowConverted))
    return { report: camelize(report), markdown, html }
  }
}

/** Checks a manifest's text (`csv` or `jsonl`) without sending or storing anything: its items'
 * keys, or a ValidationError naming every bad row (`/<line>/<column>`). */
function checkManifest(text, format = 'jsonl') {
  check.string(text, 'text')
  try {
    return JSON.parse(native.checkManifest(text, format)).keys
  } catch (error) {
    throw convertError(error)
  }
}

/** The Rust sandbox in-process, for your own tests: `new Sandbox({ speed: 1000 })`, then `stop()`. */
class Sandbox {
  #native
  #keys

  constructor(config = {}) {
    check.object(config, 'config')
    try {
      this.#native = new native.NativeSandbox(toJson(snakeize(config)))
    } catch (error) {
      throw convertError(error)
    }
    this.#keys = JSON.parse(this.#native.keys())
  }

  get baseUrl() {
    return this.#native.baseUrl
  }

  get demoKey() {
    return this.#keys.demo_key
  }

  get noCreditsKey() {
    return this.#keys.no_credits_key
  }

  get rateLimitedKey() {
    return this.#keys.rate_limited_key
  }

  get webhookSecret() {
    return this.#keys.webhook_secret
  }

  /** A Client for this sandbox with the demo key (options override). */
  client(options = {}) {
    return new Client({ apiKey: this.demoKey, baseUrl: this.baseUrl, ...options })
  }

  /** Every request the sandbox has seen. */
  requestLog() {
    return camelize(JSON.parse(this.#native.requestLog()))
  }

  /** Stops the server (idempotent). */
  stop() {
    this.#native.stop()
  }
}

module.exports = { Client, Batch, Sandbox, WebhookReceiver, verifyWebhook, estimateCredits, validateRequest, checkManifest, ...errorClasses }

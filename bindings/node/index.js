'use strict'
// The `removebgvideo` package: a Promise API over the Rust client. This file only converts:
// camelCase options to the native call's snake_case JSON, answers back to camelCase, native
// error payloads to typed errors, AbortSignal to the native cancel token. Retries, backoff,
// idempotency, validation, polling and downloads are Rust's.

const util = require('node:util')
const native = require('./native.js')

const ERROR_PREFIX = 'removebgvideo:'

const toCamel = (key) => key.replace(/_([a-z0-9])/g, (_, c) => c.toUpperCase())
const toSnake = (key) => key.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase())

// Keys whose values are the caller's own data: their inner keys are never renamed.
const OPAQUE = new Set(['metadata', 'webhook_events', 'webhookEvents'])

function rename(value, convert) {
  if (Array.isArray(value)) return value.map((item) => rename(item, convert))
  if (value === null || typeof value !== 'object' || Buffer.isBuffer(value)) return value
  const out = {}
  for (const [key, inner] of Object.entries(value)) {
    if (inner === undefined) continue
    out[convert(key)] = OPAQUE.has(key) ? inner : rename(inner, convert)
  }
  return out
}
const camelize = (value) => rename(value, toCamel)
const snakeize = (value) => rename(value, toSnake)

/** Base class of every error the SDK throws; `code` is the same string as in Rust and Python. */
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

function convertError(error) {
  if (error && typeof error.message === 'string' && error.message.startsWith(ERROR_PREFIX)) {
    const payload = JSON.parse(error.message.slice(ERROR_PREFIX.length))
    const ErrorClass = errorClasses[payload.class] ?? RemoveBGVideoError
    return new ErrorClass(payload)
  }
  return error
}

// One unit convention: seconds in the public API (as in Python, and as `err.retryAfter`),
// milliseconds only on the wire to the native side (`timeout_ms`). Not-a-number values pass
// unchanged, so the native side refuses them naming the field; so do NaN and the infinities
// (`toJson` sends them as strings).
function toMs(seconds) {
  return typeof seconds === 'number' ? seconds * 1000 : seconds
}

/** A ValidationError raised here, before the native side (the same shape as its own). */
function validationError(path, message) {
  const payload = { code: 'validation_error', kind: 'validation', message: `invalid request: ${message}`, problems: [{ path, code: 'not_applicable', message, severity: 'error' }] }
  return new errorClasses.ValidationError(payload)
}

/** The milliseconds of a duration given as `name` (seconds) or as its deprecated alias
 * `nameMs` (milliseconds); both at once is a ValidationError naming them. `where` is the
 * root of the problem's path (`/settings`). */
function durationMs(source, name, where) {
  const seconds = source?.[name]
  const ms = source?.[`${name}Ms`]
  if (seconds !== undefined && ms !== undefined) {
    throw validationError(`${where}/${toSnake(name)}`, `${name} and ${name}Ms are the same setting (${name}Ms is its deprecated name, in milliseconds): give only ${name}, in seconds`)
  }
  return seconds !== undefined ? toMs(seconds) : ms
}

// The durations of the policies, in seconds in the public API (as in Python's).
const POLL_DURATIONS = new Set(['initialInterval', 'maxInterval', 'minInterval', 'maxHint', 'maxEtaInterval', 'etaMargin'])
const RETRY_DURATIONS = new Set(['baseDelay', 'maxDelay', 'rateLimitBaseDelay', 'rateLimitMaxDelay', 'maxRetryAfter'])

/** A policy's wire form: its durations in milliseconds (`initial_interval_ms`); other fields,
 * misspelt ones included (the native side refuses those by name), as they are. */
function policyWire(policy, durations) {
  if (policy == null) return undefined
  const out = {}
  for (const [key, value] of Object.entries(policy)) {
    if (value === undefined) continue
    if (durations.has(key)) out[`${toSnake(key)}_ms`] = toMs(value)
    else out[toSnake(key)] = value
  }
  return out
}

function backgroundSpec(background) {
  if (background == null) return undefined
  if (Array.isArray(background)) return background
  return String(background)
}

function headersList(headers) {
  return headers ? Object.entries(headers) : undefined
}

/** The RemoveBGVideo client. Every method returns a Promise; the work runs off the event loop. */
class Client {
  #native
  #description

  constructor(options = {}) {
    const settings = {
      api_key: options.apiKey,
      base_url: options.baseUrl,
      max_retries: options.maxRetries,
      timeout_ms: durationMs(options, 'timeout', '/settings'),
      connect_timeout_ms: durationMs(options, 'connectTimeout', '/settings'),
      transfer_idle_timeout_ms: durationMs(options, 'transferIdleTimeout', '/settings'),
      wait_timeout_ms: durationMs(options, 'waitTimeout', '/settings'),
      user_agent: options.userAgent,
      headers: headersList(options.headers),
      idempotency: options.idempotency,
      poll_policy: policyWire(options.pollPolicy, POLL_DURATIONS),
      retry_policy: policyWire(options.retryPolicy, RETRY_DURATIONS),
    }
    try {
      this.#native = new native.NativeClient(toJson(settings))
    } catch (error) {
      throw convertError(error)
    }
    this.#description = JSON.parse(this.#native.describe())
  }

  [util.inspect.custom]() {
    return `Client { baseUrl: '${this.#description.base_url}', maxRetries: ${this.#description.max_retries}, apiKey: '[redacted]' }`
  }

  toJSON() {
    return { baseUrl: this.#description.base_url, maxRetries: this.#description.max_retries }
  }

  async #call(operation, args, options = {}) {
    const { signal, onProgress, idempotencyKey, maxRetries, headers } = options
    if (signal?.aborted) throw abortError(signal)
    const cancel = new native.NativeCancel()
    const onAbort = () => cancel.cancel()
    signal?.addEventListener('abort', onAbort, { once: true })
    const callback = onProgress ? (json) => onProgress(camelize(JSON.parse(json))) : undefined
    const callOptions = {
      idempotency_key: idempotencyKey,
      max_retries: maxRetries,
      timeout_ms: durationMs(options, 'timeout', '/options'),
      headers: headersList(headers),
    }
    // `operation` first: the native side then names a mistake in the arguments by its path.
    const operationJson = toJson({ operation, arguments: snakeize(args) })
    try {
      const out = native.isLongOperation(operation)
        ? await this.#callOnThread(operationJson, callOptions, cancel, onProgress)
        : JSON.parse(await this.#native.call(operationJson, toJson(callOptions), cancel, callback))
      return camelize(out)
    } catch (error) {
      const converted = convertError(error)
      if (signal?.aborted && converted.code === 'cancelled') throw abortError(signal)
      throw converted
    } finally {
      signal?.removeEventListener('abort', onAbort)
    }
  }

  // Long calls run on a native thread of their own; events and the outcome come through one
  // ordered channel, so every event is delivered before the promise settles.
  #callOnThread(operationJson, callOptions, cancel, onProgress) {
    return new Promise((resolve, reject) => {
      this.#native.callOnThread(operationJson, toJson(callOptions), cancel, (message) => {
        const parsed = JSON.parse(message)
        if ('event' in parsed) {
          onProgress?.(camelize(parsed.event))
        } else if ('result' in parsed) {
          resolve(parsed.result)
        } else {
          reject(new Error(ERROR_PREFIX + JSON.stringify(parsed.error)))
        }
      })
    })
  }

  /** `GET /health`: whether the API answers. */
  health(options = {}) {
    return this.#call('health', {}, options)
  }

  /** Uploads a video file (mp4, mov, webm or avi, at most 500 MB), streamed from disk. */
  upload(path, options = {}) {
    return this.#call('upload', { path: String(path) }, options)
  }

  /** Creates a job from a video URL; it starts at once unless `autoStart: false`. */
  createJob(videoUrl, options = {}) {
    const { model, outputFormat, background, textPrompt, webhookUrl, autoStart, metadata } = options
    const args = { videoUrl, model, outputFormat, background: backgroundSpec(background), textPrompt, webhookUrl, autoStart, metadata }
    return this.#call('create_job', args, options)
  }

  /** Starts a draft job, or restarts a failed one. */
  startJob(jobId, options = {}) {
    const { model, outputFormat, background, textPrompt, webhookUrl, composition, previewDuration } = options
    const args = { jobId, model, outputFormat, background: backgroundSpec(background), textPrompt, webhookUrl, composition, previewDuration }
    return this.#call('start_job', args, options)
  }

  /** Reads a job. */
  getJob(jobId, options = {}) {
    return this.#call('get_job', { jobId }, options)
  }

  /** Lists the key's jobs, newest first. */
  listJobs(options = {}) {
    return this.#call('list_jobs', { limit: options.limit, offset: options.offset, status: options.status }, options)
  }

  /** Usage totals over the last `days` (1 to 90). */
  usageSummary(options = {}) {
    return this.#call('usage_summary', { days: options.days }, options)
  }

  /** Recent usage events (`limit` 1 to 100). */
  usageEvents(options = {}) {
    return this.#call('usage_events', { limit: options.limit }, options)
  }

  /** The legacy download route: the output URL of a completed job. */
  legacyDownload(jobId, options = {}) {
    return this.#call('legacy_download', { jobId }, options)
  }

  /** Waits until the job completes (resolves), fails (JobFailedError) or `timeout` seconds
   * pass (WaitTimeoutError; 30 minutes by default). An AbortSignal stops it with an AbortError. */
  async wait(jobId, options = {}) {
    const args = { jobId, timeoutMs: durationMs(options, 'timeout', '/arguments'), unbounded: options.unbounded, pollPolicy: policyWire(options.pollPolicy, POLL_DURATIONS) }
    return this.#call('wait', args, { ...options, timeout: undefined, timeoutMs: undefined })
  }

  /** Downloads a completed job's output to `path`: resumable, length-checked, atomic. */
  download(job, path, options = {}) {
    const args = typeof job === 'string' ? { jobId: job, path: String(path) } : { job, path: String(path) }
    return this.#call('download', { ...args, overwrite: options.overwrite }, options)
  }

  /** The whole flow under one deadline: upload (`file`) or `videoUrl`, create, wait, and
   * download to `output` when given. */
  async run(options) {
    const { videoUrl, file, output, model, outputFormat, background, textPrompt, webhookUrl, metadata } = options
    const args = { videoUrl, file, output, model, outputFormat, background: backgroundSpec(background), textPrompt, webhookUrl, metadata,
      timeoutMs: durationMs(options, 'timeout', '/arguments'), unbounded: options.unbounded, pollPolicy: policyWire(options.pollPolicy, POLL_DURATIONS), overwrite: options.overwrite }
    return this.#call('run', args, { ...options, timeout: undefined, timeoutMs: undefined })
  }
}

/** Verifies a webhook delivery against the raw body bytes (constant time, timestamp tolerance). */
function verifyWebhook(body, headers, secret, options = {}) {
  const pairs = Array.isArray(headers) ? headers : Object.entries(headers)
  const buffer = Buffer.isBuffer(body) ? body : Buffer.from(body)
  try {
    if (options.tolerance !== undefined && options.toleranceSeconds !== undefined) {
      throw validationError('/tolerance', 'tolerance and toleranceSeconds are the same setting (toleranceSeconds is its deprecated name): give only tolerance, in seconds')
    }
    const input = {
      headers: pairs.map(([k, v]) => [String(k), String(v)]),
      secret,
      tolerance_ms: toMs(options.tolerance ?? options.toleranceSeconds),
      now_ms: options.now == null ? undefined : options.now.getTime(),
    }
    const out = native.verifyWebhook(buffer, toJson(input))
    return camelize(JSON.parse(out))
  } catch (error) {
    throw convertError(error)
  }
}

/** Credits for `durationSeconds` of video with `model` (billed per second, rounded up). */
function estimateCredits(model, durationSeconds) {
  try {
    return native.estimateCredits(model, durationSeconds)
  } catch (error) {
    throw convertError(error)
  }
}

/** Every problem of a request body by the SDK's rules (the same as Rust's and Python's). */
function validateRequest(typeName, body) {
  try {
    return camelize(JSON.parse(native.validateRequest(typeName, toJson(body))))
  } catch (error) {
    throw convertError(error)
  }
}

/** The Rust sandbox in-process, for your own tests: `new Sandbox({ speed: 1000 })`, then `stop()`. */
class Sandbox {
  #native
  #keys

  constructor(config = {}) {
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

module.exports = { Client, Sandbox, verifyWebhook, estimateCredits, validateRequest, ...errorClasses }

// The package's API (hand-written, merged into index.d.ts by `cargo xtask codegen`).
// Everywhere (methods, functions, constructors) a wrong argument is a `ValidationError` whose
// problems name it as you wrote it; see `Client`.

import type { IncomingMessage, ServerResponse } from 'node:http'

/** Receives progress events: status changes, progress, retries, bytes. */
export type ProgressCallback = (event: Event) => void

/** A background: `transparent`, `green`, `white`, `black`, `blue`, `#rrggbb`, `image:URL`, or normalized `[r, g, b]`. */
export type BackgroundLike = string | [number, number, number]

/** Where the foreground goes on an output canvas (`startJob`). */
export interface Composition {
  canvas?: { width: number; height: number }
  foreground?: { anchor?: string; scale?: number; offset?: { x: number; y: number } }
}

// The options of the positional forms (`createJob(videoUrl, options)`): each operation's params
// without the leading arguments.

/** The settings of a job, as create, start and run take them. */
export type JobSettings = Pick<CreateJobParams, 'model' | 'outputFormat' | 'background' | 'textPrompt' | 'webhookUrl'>
export type CreateJobOptions = Omit<CreateJobParams, 'videoUrl'>
export type StartJobOptions = Omit<StartJobParams, 'jobId'>
export type ListJobsOptions = ListJobsParams
export type WaitOptions = Omit<WaitParams, 'jobId'>
export type DownloadOptions = Omit<DownloadParams, 'jobId' | 'job' | 'path'>
export type RunOptions = RunParams

/** A finished download. */
export interface Download {
  path: string
  bytes: number
  job: Job
}

/** What `run` produced. */
export interface RunResult {
  job: Job
  upload: UploadResult | null
  output: Download | null
}

/** A webhook delivery whose signature and timestamp checked out. */
export interface VerifiedWebhook {
  event: string
  deliveryId: string | null
  timestamp: string
  data: Job
}

/** A verified delivery as a client took it. */
export interface WebhookDelivery extends VerifiedWebhook {
  /** Taken before (a redelivery): answered 2xx again, not handed to the waits again. */
  duplicate: boolean
}

/** Headers as frameworks give them: Node's `req.headers`, a plain object, a `Headers`, or pairs. */
export type WebhookHeaders = Record<string, string | string[] | undefined> | Headers | Array<[string, string]>

/** A receiver the SDK runs (`client.listenForWebhooks`). */
export declare class WebhookReceiver {
  /** The URL deliveries are posted to. */
  readonly url: string
  /** Deliveries accepted, duplicates and requests rejected so far. */
  stats(): { accepted: number; duplicates: number; rejected: number }
  /** Stops listening; later calls do nothing. */
  close(): void
}

/** How one job's wait ended, as `asCompleted` yields it. */
export interface WaitResult {
  jobId: string
  /** The job as last read (completed, or failed with `error` a `JobFailedError`). */
  job: Job | null
  /** What ended the wait, unless the job completed. */
  error: RemoveBGVideoError | null
}

/**
 * The RemoveBGVideo client. Every method returns a Promise; the work runs off the event loop.
 *
 * Each method takes one params object (`createJob({ videoUrl, model })`, `wait({ jobId, signal })`),
 * or its leading arguments first and the rest as options (`createJob(videoUrl, { model })`,
 * `wait(jobId, { timeout })`). Durations are in seconds.
 *
 * A wrong argument is a `ValidationError` (never a bare `TypeError`), whatever finds it: this
 * package for a value of the wrong JavaScript type (`videoUrl must be a string`, `timeout must
 * be a finite number of seconds`), the SDK's rules for the rest (ranges, URLs, formats). Its
 * problems' paths point into the object you passed, in your names (`/videoUrl`,
 * `/pollPolicy/factor`); a misspelt member is refused by name. The promise rejects; nothing
 * throws synchronously.
 */
export declare class Client {
  constructor(options?: ClientOptions)
  /** `GET /health`: whether the API answers. */
  health(params?: HealthParams): Promise<Health>
  /** Uploads a video file (mp4, mov, webm or avi, at most 500 MB), streamed from disk. */
  upload(params: UploadParams): Promise<UploadResult>
  upload(path: string | URL, options?: Omit<UploadParams, 'path'>): Promise<UploadResult>
  /** Creates a job from a video URL; it starts at once unless `autoStart: false`. */
  createJob(params: CreateJobParams): Promise<JobAccepted>
  createJob(videoUrl: string, options?: CreateJobOptions): Promise<JobAccepted>
  /** Starts a draft job, or restarts a failed one. */
  startJob(params: StartJobParams): Promise<JobAccepted>
  startJob(jobId: string, options?: StartJobOptions): Promise<JobAccepted>
  /** Reads a job. */
  getJob(params: GetJobParams): Promise<Job>
  getJob(jobId: string, options?: Omit<GetJobParams, 'jobId'>): Promise<Job>
  /** Lists the key's jobs, newest first. */
  listJobs(params?: ListJobsParams): Promise<JobList>
  /** Usage totals over the last `days` (1 to 90). */
  usageSummary(params?: UsageSummaryParams): Promise<UsageSummary>
  /** Recent usage events (`limit` 1 to 100). */
  usageEvents(params?: UsageEventsParams): Promise<UsageEvents>
  /** The legacy download route: the output URL of a completed job. */
  legacyDownload(params: LegacyDownloadParams): Promise<LegacyDownload>
  legacyDownload(jobId: string, options?: Omit<LegacyDownloadParams, 'jobId'>): Promise<LegacyDownload>
  /** Waits until the job completes (resolves), fails (`JobFailedError`) or `timeout` seconds pass
   * (`WaitTimeoutError`; 30 minutes by default). An AbortSignal stops it with an `AbortError`. */
  wait(params: WaitParams): Promise<Job>
  wait(jobId: string, options?: WaitOptions): Promise<Job>
  /** Waits for many jobs at once and yields `{ jobId, job, error }` for each as it ends:
   * `for await (const r of client.asCompleted({ jobIds }))`. Leaving the loop stops the rest. */
  asCompleted(params: Omit<WaitParams, 'jobId'> & { jobIds: string[] }): AsyncGenerator<WaitResult, void, undefined>
  asCompleted(jobIds: string[], options?: WaitOptions): AsyncGenerator<WaitResult, void, undefined>
  /** Downloads a completed job's output to `path`: resumable, length-checked, atomic. Give
   * `jobId`, or `job` (the job as read, which saves a request). */
  download(params: DownloadParams & ({ jobId: string } | { job: Job })): Promise<Download>
  download(job: string | Job, path: string | URL, options?: DownloadOptions): Promise<Download>
  /** The whole flow under one deadline: upload (`file`) or `videoUrl`, create, wait, and
   * download to `output` when given. */
  run(params: RunParams): Promise<RunResult>
  /** Sends this client's jobs' events to `url` and makes its waits hybrid: a wait ends on a
   * verified delivery (confirmed by one read) and polls only every `fallback` seconds once a
   * delivery came. */
  useWebhooks(params: { url: string; secret: string; tolerance?: number; fallback?: number }): void
  /** Takes one delivery (the raw body exactly as received, and its headers): verified, dropped
   * if a duplicate, else handed to its job's waits. Throws `WebhookVerificationError` (answer 400). */
  handleWebhook(params: { body: Buffer | string; headers?: WebhookHeaders }): WebhookDelivery
  /** A `(req, res)` handler for `http` or Express (mount it with `express.raw()`): resolves to
   * the delivery, or null when it answered 400, 405, 413 or 500 (a body parsed before it). */
  webhookHandler(options?: { onDelivery?: (delivery: WebhookDelivery) => void }): (req: IncomingMessage & { body?: unknown }, res: ServerResponse) => Promise<WebhookDelivery | null>
  /** Starts a receiver of the SDK's own and sends this client's jobs' events to it (or to
   * `publicUrl`, a tunnel forwarding to it). */
  listenForWebhooks(params: { secret: string; host?: string; port?: number; path?: string; publicUrl?: string; tolerance?: number; fallback?: number }): WebhookReceiver
  toJSON(): { baseUrl: string; maxRetries: number }
  /** A batch on this client (see `Batch`). */
  batch(params: Omit<BatchParams, 'client'>): Batch
}

/** The Rust sandbox in-process, for your own tests. */
export declare class Sandbox {
  constructor(config?: { speed?: number; port?: number; outputUrlTtlMs?: number; maxUploadBytes?: number; webhookSecret?: string; webhookRetries?: number })
  readonly baseUrl: string
  readonly demoKey: string
  readonly noCreditsKey: string
  readonly rateLimitedKey: string
  readonly webhookSecret: string
  client(options?: ClientOptions): Client
  requestLog(): Array<Record<string, string | number | boolean | null>>
  stop(): void
}

/** A manifest row given in code (camelCase or snake_case keys). */
export interface BatchItem {
  key?: string
  videoUrl?: string
  file?: string
  model?: string
  outputFormat?: string
  background?: string | [number, number, number]
  textPrompt?: string
  metadata?: Record<string, unknown>
  output?: string
}

/** What `new Batch(...)` takes: a `manifest` path or `items`, and where and how to run. */
export interface BatchParams {
  manifest?: string
  items?: BatchItem[]
  /** Outputs, `results.jsonl`, `errors.jsonl` and (by default) the ledger go here ("out"). */
  out?: string
  /** The ledger file (`out/ledger.sqlite`), or a `postgres://` URL that many workers share. */
  ledger?: string
  batch?: string
  client?: Client
  /** Items with work under way at most (64; halved while the server answers 429). */
  maxInFlight?: number
  /** Credits the batch may commit: a job whose estimate would pass it is never started. */
  budgetCredits?: number
  /** Start a failed job again, up to this many times. */
  restartFailed?: number
  /** Create the items parked as `unknown` again (a second job may result). */
  recreateUnknown?: boolean
  durability?: 'normal' | 'full'
  /** Seconds each job may take. */
  timeout?: number
  /**
   * A shared (`postgres://`) ledger: seconds a worker's claim on an item lasts unless its
   * heartbeat renews it (30): how soon a dead worker's items go to the others.
   */
  lease?: number
  /**
   * Requests per second the API key may be sent at most; with a shared (`postgres://`) ledger,
   * the key's ceiling, split between every worker that uses the key (a 429 any worker gets
   * pauses them all).
   */
  maxRequestsPerSecond?: number
  onProgress?: (progress: BatchProgress) => void
  signal?: AbortSignal
}

/** One item as `results.jsonl` / `errors.jsonl` has it. */
export interface BatchItemResult {
  key: string
  /** `completed`, `failed`, `unknown`, `error`, `held` (over the budget) or `in_progress`. */
  outcome: 'completed' | 'failed' | 'unknown' | 'error' | 'held' | 'in_progress'
  phase: string
  jobId: string | null
  jobStatus: string | null
  videoUrl: string | null
  file: string | null
  model: string
  outputFormat: string
  context: Record<string, unknown>
  generation: number
  creditsEstimated: number | null
  creditsCharged: number | null
  output: { path: string; size: number | null; sha256: string | null } | null
  error: { code: string; message: string | null; requestId: string | null } | null
}

export interface BatchProgress {
  total: number
  done: number
  failed: number
  unknown: number
  errors: number
  held: number
  inFlight: number
  planned: number
  creating: number
  creditsCommitted: number
  budgetCredits: number | null
  ceiling: number
}

export interface BatchSummary {
  batch: string
  progress: BatchProgress
  complete: boolean
  cancelled: boolean
  results: string
  errors: string
  seconds: number
  /** What the ledger cost the run (commits, p50/p99 per commit in microseconds, CPU). */
  ledger: Record<string, number>
}

export interface BatchStatus {
  batch: string
  total: number
  phases: Record<string, number>
  credits: { estimated: number; reserved: number; charged: number }
  /** Each worker's share (each run's, on a SQLite file); `leases`: the items it holds now. */
  workers: Array<{ worker: string; finished: number; takeovers: number; events: number; leases: number }>
}

export interface BatchEvent {
  seq: number
  at: number
  kind: string
  phaseFrom: string | null
  phaseTo: string | null
  statusFrom: string | null
  statusTo: string | null
  requestId: string | null
  httpStatus: number | null
  attempt: number | null
  detail: Record<string, unknown> | null
  /** The worker that wrote it (`host:pid:tag`). */
  worker: string | null
}

/** Many videos from a manifest or items, every transition in a ledger, resumable: iterate it
 * with `for await` to run it and get each item's result as it ends. */
export declare class Batch implements AsyncIterable<BatchItemResult> {
  constructor(params: BatchParams)
  /** The summary of the last run, once it ended. */
  summary: BatchSummary | null
  [Symbol.asyncIterator](): AsyncGenerator<BatchItemResult, void, undefined>
  run(): Promise<BatchSummary>
  cancel(): void
  status(): Promise<BatchStatus>
  events(key: string): Promise<BatchEvent[]>
  report(options?: { usage?: boolean }): Promise<{ report: Record<string, unknown>; markdown: string; html: string }>
}

/** A manifest's text checked: its items' keys, or a ValidationError naming every bad row. */
export declare function checkManifest(text: string, format?: 'csv' | 'jsonl'): string[]

export declare function verifyWebhook(
  body: Buffer | string,
  headers: Record<string, string> | Array<[string, string]>,
  secret: string,
  /** `tolerance`, in seconds, defaults to the SDK's (300). */
  options?: {
    tolerance?: number
    /** @deprecated Use `tolerance` (the same, in seconds). */
    toleranceSeconds?: number
    now?: Date
  },
): VerifiedWebhook
export declare function estimateCredits(model: string, durationSeconds: number): number
export declare function validateRequest(typeName: string, body: Record<string, unknown>): Problem[]

/** Base class of every error; `code` is the same string as in Rust and Python. */
export declare class RemoveBGVideoError extends Error {
  readonly code: string
  readonly kind: string
  readonly status: number | null
  readonly requestId: string | null
  readonly idempotencyKey: string | null
  /** Seconds the server asked to wait (rate limits). */
  readonly retryAfter: number | null
  /** Every problem of a rejected request. */
  readonly errors: Problem[]
  /** The job, for failed jobs and timed-out waits. */
  readonly job: Job | null
}
export declare class AuthenticationError extends RemoveBGVideoError {}
export declare class InsufficientCreditsError extends RemoveBGVideoError {}
export declare class NotFoundError extends RemoveBGVideoError {}
export declare class RateLimitError extends RemoveBGVideoError {}
export declare class InvalidRequestError extends RemoveBGVideoError {}
export declare class ConflictError extends RemoveBGVideoError {}
export declare class ServerError extends RemoveBGVideoError {}
export declare class APIConnectionError extends RemoveBGVideoError {}
export declare class OutcomeUnknownError extends RemoveBGVideoError {}
export declare class ValidationError extends RemoveBGVideoError {}
export declare class JobFailedError extends RemoveBGVideoError {}
export declare class WaitTimeoutError extends RemoveBGVideoError {}
export declare class CancelledError extends RemoveBGVideoError {}
export declare class DownloadError extends RemoveBGVideoError {}
export declare class WebhookVerificationError extends RemoveBGVideoError {}
export declare class UnexpectedResponseError extends RemoveBGVideoError {}
/** The SDK hit a bug of its own (a Rust panic) in this call; nothing else is affected. */
export declare class SDKBugError extends RemoveBGVideoError {}

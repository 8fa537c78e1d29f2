// The package's API (hand-written, merged into index.d.ts by `cargo xtask codegen`).

/** Receives progress events: status changes, progress, retries, bytes. */
export type ProgressCallback = (event: Event) => void

/** A background: `transparent`, `green`, `white`, `black`, `blue`, `#rrggbb`, `image:URL`, or normalized `[r, g, b]`. */
export type BackgroundLike = string | [number, number, number]

/** The polling schedule of waits, in milliseconds; absent fields keep the SDK's defaults. */
export interface PollPolicy {
  initialInterval?: number
  factor?: number
  maxInterval?: number
  jitter?: number
  minInterval?: number
  maxHint?: number
  /** Aim polls at the completion the job's progress projects (default true). */
  progressEta?: boolean
  /** The longest wait towards a projected completion (default 30 000). */
  maxEtaInterval?: number
  /** How long after the projected completion a poll lands (default 100). */
  etaMargin?: number
}

/** How each request is retried, in milliseconds; absent fields keep the SDK's defaults. */
export interface RetryPolicy {
  maxRetries?: number
  baseDelay?: number
  maxDelay?: number
  rateLimitBaseDelay?: number
  rateLimitMaxDelay?: number
  maxRetryAfter?: number
}

/** Client settings; absent ones take the SDK's defaults (2 retries, 60 s per request, 30 min per wait). */
export interface ClientOptions {
  /** Default: `process.env.REMOVEBGVIDEO_API_KEY`. */
  apiKey?: string
  /** Default `https://api.removebgvideo.com`; plain http only to loopback hosts. */
  baseUrl?: string
  maxRetries?: number
  timeoutMs?: number
  connectTimeoutMs?: number
  transferIdleTimeoutMs?: number
  waitTimeoutMs?: number
  userAgent?: string
  headers?: Record<string, string>
  idempotency?: 'detect' | 'honoured' | 'not_honoured'
  pollPolicy?: PollPolicy
  retryPolicy?: RetryPolicy
}

/** Options every call takes. */
export interface CallOptions {
  idempotencyKey?: string
  maxRetries?: number
  timeoutMs?: number
  headers?: Record<string, string>
  signal?: AbortSignal
  onProgress?: ProgressCallback
}

export interface JobSettings {
  model?: string
  outputFormat?: string
  background?: BackgroundLike
  textPrompt?: string
  webhookUrl?: string
}

export interface CreateJobOptions extends CallOptions, JobSettings {
  autoStart?: boolean
  metadata?: Record<string, unknown>
}

export interface Composition {
  canvas?: { width: number; height: number }
  foreground?: { anchor?: string; scale?: number; offset?: { x: number; y: number } }
}

export interface StartJobOptions extends CallOptions, JobSettings {
  composition?: Composition
  previewDuration?: number
}

export interface ListJobsOptions extends CallOptions {
  limit?: number
  offset?: number
  status?: string
}

export interface WaitOptions extends CallOptions {
  /** Give up after this long (WaitTimeoutError). */
  timeoutMs?: number
  unbounded?: boolean
  pollPolicy?: PollPolicy
}

export interface DownloadOptions extends CallOptions {
  overwrite?: boolean
}

export interface RunOptions extends CallOptions, JobSettings {
  videoUrl?: string
  file?: string
  output?: string
  overwrite?: boolean
  metadata?: Record<string, unknown>
  /** The limit of the whole flow. */
  timeoutMs?: number
}

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

/** The RemoveBGVideo client. Every method returns a Promise; the work runs off the event loop. */
export declare class Client {
  constructor(options?: ClientOptions)
  upload(path: string, options?: CallOptions): Promise<UploadResult>
  createJob(videoUrl: string, options?: CreateJobOptions): Promise<JobAccepted>
  startJob(jobId: string, options?: StartJobOptions): Promise<JobAccepted>
  getJob(jobId: string, options?: CallOptions): Promise<Job>
  listJobs(options?: ListJobsOptions): Promise<JobList>
  usageSummary(options?: CallOptions & { days?: number }): Promise<UsageSummary>
  usageEvents(options?: CallOptions & { limit?: number }): Promise<UsageEvents>
  legacyDownload(jobId: string, options?: CallOptions): Promise<LegacyDownload>
  wait(jobId: string, options?: WaitOptions): Promise<Job>
  download(job: string | Job, path: string, options?: DownloadOptions): Promise<Download>
  run(options: RunOptions): Promise<RunResult>
  toJSON(): { baseUrl: string; maxRetries: number }
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

export declare function verifyWebhook(
  body: Buffer | string,
  headers: Record<string, string> | Array<[string, string]>,
  secret: string,
  /** `toleranceSeconds` defaults to 300. */
  options?: { toleranceSeconds?: number; now?: Date },
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

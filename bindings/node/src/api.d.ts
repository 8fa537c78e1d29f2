// The package's API (hand-written, merged into index.d.ts by `cargo xtask codegen`).

/** Receives progress events: status changes, progress, retries, bytes. */
export type ProgressCallback = (event: Event) => void

/** A background: `transparent`, `green`, `white`, `black`, `blue`, `#rrggbb`, `image:URL`, or normalized `[r, g, b]`. */
export type BackgroundLike = string | [number, number, number]

/** The polling schedule of waits, durations in seconds (as in Python); absent fields keep the
 * SDK's defaults. */
export interface PollPolicy {
  /** The first interval (default 1). */
  initialInterval?: number
  /** Growth factor per poll, 1 to 10 (default 1.5). */
  factor?: number
  /** The longest interval (default 10). */
  maxInterval?: number
  /** Jitter, as a fraction either way, 0 to 0.9 (default 0.2). */
  jitter?: number
  /** The shortest interval, whatever jitter or a hint say (default 0.5). */
  minInterval?: number
  /** The longest server hint honoured (default 60). */
  maxHint?: number
  /** Aim polls at the completion the job's progress projects (default true). */
  progressEta?: boolean
  /** The longest wait towards a projected completion (default 30). */
  maxEtaInterval?: number
  /** How long after the projected completion a poll lands (default 0.1). */
  etaMargin?: number
}

/** How each request is retried, durations in seconds (as in Python); absent fields keep the
 * SDK's defaults. */
export interface RetryPolicy {
  /** Retries after the first attempt (default 2). */
  maxRetries?: number
  /** First backoff step (default 0.5). */
  baseDelay?: number
  /** Cap of the backoff step (default 8). */
  maxDelay?: number
  /** First step for a 429 without a hint (default 2). */
  rateLimitBaseDelay?: number
  /** Cap for a 429 without a hint (default 16). */
  rateLimitMaxDelay?: number
  /** The longest Retry-After honoured (default 60). */
  maxRetryAfter?: number
}

/** Client settings; absent ones take the SDK's defaults (2 retries, 60 s per request, 30 min per wait). */
export interface ClientOptions {
  /** Default: `process.env.REMOVEBGVIDEO_API_KEY`. */
  apiKey?: string
  /** Default `https://api.removebgvideo.com`; plain http only to loopback hosts. */
  baseUrl?: string
  maxRetries?: number
  /** The limit of one API call, in seconds (default 60). */
  timeout?: number
  /** The limit of connection setup, in seconds (default 5). */
  connectTimeout?: number
  /** The idle limit of uploads and downloads, in seconds (default 60). */
  transferIdleTimeout?: number
  /** The default limit of waits and runs, in seconds (default 1800). */
  waitTimeout?: number
  /** @deprecated Use `timeout`, in seconds. */
  timeoutMs?: number
  /** @deprecated Use `connectTimeout`, in seconds. */
  connectTimeoutMs?: number
  /** @deprecated Use `transferIdleTimeout`, in seconds. */
  transferIdleTimeoutMs?: number
  /** @deprecated Use `waitTimeout`, in seconds. */
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
  /** The limit of this call, in seconds (for `wait` and `run`: of the whole wait or run). */
  timeout?: number
  /** @deprecated Use `timeout`, in seconds. */
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
  /** Give up after this many seconds (WaitTimeoutError; default 1800). */
  timeout?: number
  /** @deprecated Use `timeout`, in seconds. */
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
  /** The limit of the whole flow, in seconds (default 1800). */
  timeout?: number
  /** @deprecated Use `timeout`, in seconds. */
  timeoutMs?: number
  unbounded?: boolean
  pollPolicy?: PollPolicy
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

// The package's API (hand-written, merged into index.d.ts by `cargo xtask codegen`).

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

/** The RemoveBGVideo client. Every method returns a Promise; the work runs off the event loop. */
export declare class Client {
  constructor(options?: ClientOptions)
  health(params?: HealthParams): Promise<Health>
  upload(path: string, options?: Omit<UploadParams, 'path'>): Promise<UploadResult>
  createJob(videoUrl: string, options?: CreateJobOptions): Promise<JobAccepted>
  startJob(jobId: string, options?: StartJobOptions): Promise<JobAccepted>
  getJob(jobId: string, options?: Omit<GetJobParams, 'jobId'>): Promise<Job>
  listJobs(params?: ListJobsParams): Promise<JobList>
  usageSummary(params?: UsageSummaryParams): Promise<UsageSummary>
  usageEvents(params?: UsageEventsParams): Promise<UsageEvents>
  legacyDownload(jobId: string, options?: Omit<LegacyDownloadParams, 'jobId'>): Promise<LegacyDownload>
  wait(jobId: string, options?: WaitOptions): Promise<Job>
  download(job: string | Job, path: string, options?: DownloadOptions): Promise<Download>
  run(params: RunParams): Promise<RunResult>
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

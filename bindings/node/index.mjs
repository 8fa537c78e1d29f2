// ES module entry: the same API as `require('removebgvideo')`.
import cjs from './index.js'

export const { Client, Batch, Sandbox, verifyWebhook, estimateCredits, validateRequest, checkManifest, RemoveBGVideoError, AuthenticationError, InsufficientCreditsError, NotFoundError, RateLimitError, InvalidRequestError, ConflictError, ServerError, APIConnectionError, OutcomeUnknownError, ValidationError, JobFailedError, WaitTimeoutError, CancelledError, DownloadError, WebhookVerificationError, UnexpectedResponseError, SDKBugError } = cjs
export default cjs

// Uses the API strictly; `tsc --noEmit --strict` checks it against index.d.ts.
import { Client, Event, Job, JobFailedError, WaitTimeoutError, estimateCredits } from '..'

const client = new Client({ maxRetries: 3, timeout: 30 })

function onProgress(event: Event): void {
  if (event.type === 'progress') console.log(`${event.progress.toFixed(0)}%`)
  if (event.type === 'status_changed') console.log(event.from, '->', event.to)
}

export async function process(url: string): Promise<number> {
  const accepted = await client.createJob(url, { model: 'human', background: '#00b140', outputFormat: 'mp4' })
  let job: Job
  try {
    job = await client.wait(accepted.id, { timeout: 600, onProgress, signal: AbortSignal.timeout(700_000) })
  } catch (error) {
    if (error instanceof JobFailedError) console.log(error.code, error.job?.error)
    if (error instanceof WaitTimeoutError) console.log(error.requestId)
    return 0
  }
  const download = await client.download(job, 'out.mp4', { overwrite: true })
  return download.bytes + estimateCredits('pro', 12.5)
}

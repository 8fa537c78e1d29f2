// Uses the API strictly; `tsc --noEmit --strict` checks it against index.d.ts.
import { Client, CreateJobParams, Event, Job, JobFailedError, ValidationError, WaitTimeoutError, estimateCredits } from '..'

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

// One params object per method, as the generated *Params interfaces declare them.
export async function withParams(url: string, signal: AbortSignal): Promise<string> {
  const params: CreateJobParams = { videoUrl: url, model: 'pro', textPrompt: 'the dog', timeout: 30 }
  const accepted = await client.createJob(params)
  const job = await client.wait({ jobId: accepted.id, timeout: 600, signal, pollPolicy: { initialInterval: 0.5 } })
  await client.download({ job, path: 'out.webm', overwrite: true })
  await client.download({ jobId: job.id, path: new URL('file:///tmp/out.webm') })
  const listed = await client.listJobs({ limit: 10, status: 'completed' })
  try {
    await client.getJob({ jobId: accepted.id, maxRetries: 0 })
  } catch (error) {
    if (error instanceof ValidationError) console.log(error.errors.map((p) => p.path))
  }
  return `${listed.jobs.length} ${(await client.health()).status}`
}

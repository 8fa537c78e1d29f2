import { Sandbox, JobFailedError, WaitTimeoutError } from 'removebgvideo'

async function main(): Promise<void> {
  // Against the real API: new Client() reads REMOVEBGVIDEO_API_KEY.
  const sandbox = new Sandbox({ speed: 100 })
  const client = sandbox.client()
  try {
    const result = await client.run({
      videoUrl: 'https://example.com/clip.mp4?duration=5',
      output: 'clip.webm',
      model: 'human',
      onProgress: (event) => {
        if (event.type === 'status_changed') console.log(`${event.from ?? 'new'} -> ${event.to}`)
      },
    })
    console.log(`${result.job.id}: ${result.output?.bytes} bytes in clip.webm`)
  } catch (error) {
    if (error instanceof JobFailedError) console.error('failed:', error.job?.error, error.requestId)
    else if (error instanceof WaitTimeoutError) console.error('still', error.job?.status)
    else throw error
  } finally {
    sandbox.stop()
  }
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})

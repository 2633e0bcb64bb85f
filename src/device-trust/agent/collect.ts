/** The posture of the machine the agent runs on, by platform. */
import type { Posture } from './types.js'

export async function collectPosture (platform: NodeJS.Platform = process.platform): Promise<Posture> {
  switch (platform) {
    case 'linux': return (await import('./linux.js')).collectLinux()
    case 'darwin': return (await import('./macos.js')).collectMacos()
    case 'win32': return (await import('./windows.js')).collectWindows()
    default: throw new Error(`posture collection is not supported on ${platform} (supported: linux, darwin, win32)`)
  }
}

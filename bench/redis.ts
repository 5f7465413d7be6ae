/** The redis-server a run on `--broker auto` starts for itself, through redis-keeper.ts, on a free loopback port. */
import { createInterface } from 'node:readline';
import { freePort } from './local-redis.js';
import { benchScript, forgetPid, killAlsoOnExit, startNode, stopProcess } from './processes.js';

const KEEPER = benchScript('./redis-keeper.js');

export interface RunningRedis {
  url: string;
  /** redis-server's own pid (its CPU and memory), and its keeper's. */
  pid: number;
  keeperPid: number;
  stop(): Promise<void>;
}

async function startOnce(host: string, timeoutMs: number): Promise<RunningRedis> {
  const port = await freePort(host);
  const keeper = startNode(KEEPER, [host, String(port)]);
  let stderr = '';
  keeper.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
  const ready = await new Promise<{ url: string; pid: number }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis-server did not start within ${timeoutMs} ms: ${stderr.trim()}`)), timeoutMs);
    keeper.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited with ${code}: ${stderr.trim().slice(-500)}`));
    });
    createInterface({ input: keeper.stdout! }).on('line', (text) => {
      try {
        const line = JSON.parse(text) as { redis?: unknown; pid?: unknown };
        if (typeof line.redis === 'string' && typeof line.pid === 'number') {
          clearTimeout(timer);
          resolve({ url: line.redis, pid: line.pid });
        }
      } catch {
        // not our line
      }
    });
  }).catch(async (err: unknown) => {
    await stopProcess(keeper, 1000);
    throw err;
  });
  // If the bench exits in a way that kills the keeper outright (SIGKILL), redis-server goes too.
  killAlsoOnExit(ready.pid);
  return {
    url: ready.url,
    pid: ready.pid,
    keeperPid: keeper.pid!,
    async stop() {
      await stopProcess(keeper, 3000);
      forgetPid(ready.pid);
    },
  };
}

/** Starts redis-server on a free port of `host`; a port taken meanwhile by someone else gets two more tries. */
export async function startRedis(host: string, timeoutMs = 10_000): Promise<RunningRedis> {
  let lastError: Error | undefined;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(host, timeoutMs);
    } catch (err) {
      lastError = err as Error;
    }
  }
  throw lastError!;
}

/**
 * The servers the bench compares, each started as its own process with the
 * same flags, and ready once it prints roomcast's "listening" line (JSON with
 * `gateway` and `logic` URLs) on stdout.
 */
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { ClientProtocol } from './messages.js';
import { benchScript, startNode, stopProcess } from './processes.js';

export const TARGET_NAMES = ['roomcast', 'socketio', 'ws'] as const;
export type TargetName = (typeof TARGET_NAMES)[number];

/** How roomcast runs: gateway workers, broker URL, history (see variants.ts); the peers take none of it. */
export interface ServerShape {
  workers: number;
  /** A redis:// URL, or undefined for the memory engine. */
  brokerUrl: string | undefined;
  history: boolean;
}

interface TargetSpec {
  label: string;
  protocol: ClientProtocol;
  script: string;
  args(host: string, shape: ServerShape | undefined): string[];
}

const portArgs = (host: string): string[] => ['--host', host, '--gateway-port', '0', '--logic-port', '0'];

/**
 * roomcast's per-address limits (docs/SECURITY.md) would refuse the bench's
 * load: thousands of connections from each of 8 source addresses, opened as
 * fast as the handshakes go. They are turned off; the peers have none.
 */
export const UNLIMITED = ['--max-connections-per-ip', '0', '--connect-rate-per-ip', '0', '--max-frames-per-second', '0'];

function shapeArgs(shape: ServerShape): string[] {
  const args: string[] = [];
  if (shape.workers > 0) args.push('--workers', String(shape.workers));
  if (shape.brokerUrl !== undefined) args.push('--broker', shape.brokerUrl);
  if (!shape.history) args.push('--history-size', '0');
  return args;
}

export const TARGETS: Record<TargetName, TargetSpec> = {
  roomcast: {
    label: 'roomcast',
    protocol: 'roomcast',
    script: benchScript('../src/cli.js'),
    args: (host, shape) => ['start', ...portArgs(host), ...UNLIMITED, ...(shape === undefined ? [] : shapeArgs(shape)), '--log-level', 'info'],
  },
  socketio: {
    label: 'Socket.IO 4.8',
    protocol: 'socketio',
    script: benchScript('./peers/socketio-server.js'),
    args: portArgs,
  },
  ws: {
    label: 'bare ws loop',
    protocol: 'roomcast',
    script: benchScript('./peers/ws-server.js'),
    args: portArgs,
  },
};

/** Socket.IO is a devDependency of roomcast: an installed roomcast (`npx roomcast bench`) may not have it. */
export function socketIoInstalled(): boolean {
  try {
    import.meta.resolve('socket.io');
    return true;
  } catch {
    return false;
  }
}

export interface RunningTarget {
  pid: number;
  gatewayUrl: string;
  logicUrl: string;
  /** Set when the process exits before `stop()`. */
  exitedEarly(): string | undefined;
  stop(): Promise<void>;
}

const STOP_GRACE_MS = 6000;

export async function startTarget(name: TargetName, shape: ServerShape | undefined, host: string, nodeArgs: string[], timeoutMs: number): Promise<RunningTarget> {
  const spec = TARGETS[name];
  // a group of its own: stopping it ends its cluster workers too, even a hung one
  const child: ChildProcess = startNode(spec.script, spec.args(host, shape), nodeArgs, undefined, true);
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  let stopping = false;
  let early: string | undefined;
  child.once('exit', (code, signal) => {
    if (!stopping) early = `${spec.label} exited with ${signal ?? code}: ${stderr.trim().slice(-800)}`;
  });
  const urls = await new Promise<{ gateway: string; logic: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${spec.label} did not say it was listening within ${timeoutMs} ms: ${stderr.trim()}`)), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      reject(new Error(early ?? `${spec.label} exited`));
    });
    createInterface({ input: child.stdout! }).on('line', (text) => {
      let line: { gateway?: unknown; logic?: unknown };
      try {
        line = JSON.parse(text) as typeof line;
      } catch {
        return; // not a log line
      }
      if (typeof line.gateway === 'string' && typeof line.logic === 'string') {
        clearTimeout(timer);
        resolve({ gateway: line.gateway, logic: line.logic });
      }
    });
  }).catch(async (err: unknown) => {
    await stopProcess(child, 1000);
    throw err;
  });
  return {
    pid: child.pid!,
    gatewayUrl: urls.gateway,
    logicUrl: urls.logic,
    exitedEarly: () => early,
    async stop() {
      stopping = true;
      await stopProcess(child, STOP_GRACE_MS);
    },
  };
}

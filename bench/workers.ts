/** The orchestrator's side of a client worker process: start it, ask it things over IPC, stop it. */
import type { ChildProcess } from 'node:child_process';
import type { Churned, Connected, FromWorker, Progress, ResumeOutcome, ToWorker, WorkerReport } from './messages.js';
import { benchScript, hasExited, startNode, stopProcess } from './processes.js';

type Request = ToWorker extends infer T ? (T extends { id: number } ? Omit<T, 'id'> : never) : never;

interface Replies {
  connect: Connected;
  drop: { op: 'dropped' };
  resume: ResumeOutcome;
  churn: Churned;
  barrier: { op: 'barriered'; failed: number };
  progress: Progress;
  report: WorkerReport;
  close: { op: 'closed' };
}

const WORKER_SCRIPT = benchScript('./client/worker.js');

/** How long after the run's deadline (or after being asked, when asked later) a worker may take to answer. */
const REPLY_GRACE_MS = 2000;

/** A worker that is alive but did not answer a request in time. */
export class WorkerTimeoutError extends Error {
  constructor(pid: number, op: string) {
    super(`client worker ${pid} is stuck: no answer to "${op}" by the time limit (and ${REPLY_GRACE_MS / 1000} s more); the client workers were killed`);
    this.name = 'WorkerTimeoutError';
  }
}

export class Worker {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (m: FromWorker) => void; reject: (e: Error) => void }>();
  private readonly child: ChildProcess;

  constructor() {
    this.child = startNode(WORKER_SCRIPT, [], [], ['ignore', 'inherit', 'inherit', 'ipc']);
    this.child.on('message', (message: FromWorker) => {
      const waiter = this.waiting.get(message.id);
      if (waiter === undefined) return;
      this.waiting.delete(message.id);
      if (message.op === 'error') waiter.reject(new Error(`client worker: ${message.message}`));
      else waiter.resolve(message);
    });
    this.child.once('exit', (code, signal) => {
      for (const waiter of this.waiting.values()) waiter.reject(new Error(`client worker exited with ${signal ?? code}`));
      this.waiting.clear();
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  /**
   * Sends a request; rejects with a WorkerTimeoutError if no answer came by
   * `deadline` (the run's, ms since the epoch), or within a short grace when
   * asked after it (the last report of a run that used all its time).
   */
  request<R extends Request>(request: R, deadline: number): Promise<Replies[R['op']]> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      if (hasExited(this.child)) return reject(new Error('client worker is not running'));
      const now = Date.now();
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new WorkerTimeoutError(this.pid, request.op));
      }, Math.max(deadline, now) + REPLY_GRACE_MS - now);
      this.waiting.set(id, {
        resolve: (message) => {
          clearTimeout(timer);
          (resolve as unknown as (m: FromWorker) => void)(message);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      this.child.send({ id, ...request } as ToWorker);
    });
  }

  /** Closes its connections and waits for it to exit (killed if it takes longer than 5 s). */
  async stop(): Promise<void> {
    if (hasExited(this.child)) return;
    await this.request({ op: 'close' }, Date.now() + 5000 - REPLY_GRACE_MS).catch(() => undefined);
    await stopProcess(this.child, 1000);
  }

  /** Kills it at once (SIGKILL also ends a process that is stopped or busy forever) and waits for it to exit. */
  async kill(): Promise<void> {
    await stopProcess(this.child, 0, 'SIGKILL');
  }
}

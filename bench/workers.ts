/** The orchestrator's side of a client worker process: start it, ask it things over IPC, stop it. */
import type { ChildProcess } from 'node:child_process';
import type { Connected, FromWorker, Progress, ToWorker, WorkerReport } from './messages.js';
import { benchScript, hasExited, startNode, stopProcess } from './processes.js';

type Request = ToWorker extends infer T ? (T extends { id: number } ? Omit<T, 'id'> : never) : never;

interface Replies {
  connect: Connected;
  progress: Progress;
  report: WorkerReport;
  close: { op: 'closed' };
}

const WORKER_SCRIPT = benchScript('./client/worker.js');

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

  request<R extends Request>(request: R): Promise<Replies[R['op']]> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      if (hasExited(this.child)) return reject(new Error('client worker is not running'));
      this.waiting.set(id, { resolve: resolve as unknown as (m: FromWorker) => void, reject });
      this.child.send({ id, ...request } as ToWorker);
    });
  }

  /** Closes its connections and waits for it to exit (killed if it takes longer than 5 s). */
  async stop(): Promise<void> {
    if (hasExited(this.child)) return;
    const closed = this.request({ op: 'close' }).catch(() => undefined);
    const timeout = new Promise((resolve) => setTimeout(resolve, 5000).unref());
    await Promise.race([closed, timeout]);
    await stopProcess(this.child, 1000);
  }
}

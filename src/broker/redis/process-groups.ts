/**
 * The live processes' records (process-settings.ts) as the cluster reports
 * them: grouped by a value they differ on (a setting, the roomcast version),
 * and named in warnings.
 */
import type { ClusterProcess } from '../broker.js';

type NamedRecord = Omit<ClusterProcess, 'id'>;

/** A process of a record, by its id. */
export function clusterProcess(id: string, { role, pid, host }: NamedRecord): ClusterProcess {
  return { id, role, pid, host };
}

/**
 * The processes by the value `valueOf` reads of each (one it reads undefined
 * of is left out), the most common value first, ties in `compare` order;
 * empty when they all run one.
 */
export function processGroups<R extends NamedRecord, V>(
  processes: ReadonlyMap<string, R>,
  valueOf: (record: R) => V | undefined,
  compare: (a: V, b: V) => number,
): { value: V; processes: ClusterProcess[] }[] {
  const byValue = new Map<V, ClusterProcess[]>();
  for (const [id, record] of processes) {
    const value = valueOf(record);
    if (value === undefined) continue;
    const running = byValue.get(value) ?? [];
    running.push(clusterProcess(id, record));
    byValue.set(value, running);
  }
  if (byValue.size < 2) return [];
  return [...byValue].map(([value, running]) => ({ value, processes: running })).sort((a, b) => b.processes.length - a.processes.length || compare(a.value, b.value));
}

/** "gateway x (pid 1 on h) and logic y (...) run 5", for a warning. */
export function runsValue(processes: ClusterProcess[], value: string | number, describe: (p: ClusterProcess) => string): string {
  return `${processes.map(describe).join(' and ')} run${processes.length === 1 ? 's' : ''} ${value}`;
}

/**
 * The roomcast version each process on one Redis runs, from the records of
 * process-settings.ts. Processes of two versions work together while a rolling
 * upgrade passes, but a query one of them does not know is answered by nothing
 * (node-requests.ts leaves that node's part out): so each process warns while
 * another live process runs another version, and GET /stats lists the versions
 * (versionMismatch) until they agree.
 */
import type { ClusterProcess, VersionMismatch } from '../broker.js';
import { processGroups, runsValue } from './process-groups.js';

/** What versionMismatch() reads of a process's record; a record without one is of a version before it was recorded. */
export interface VersionRecord {
  version?: string;
}

type Records = ReadonlyMap<string, VersionRecord & Omit<ClusterProcess, 'id'>>;

const UNRECORDED = 'a version that does not record it';

/** Each version the live processes run, with its processes (by id), the most common first; empty when they all run one. */
export function versionMismatch(processes: Records): VersionMismatch[] {
  return processGroups(processes, ({ version }) => version ?? null, (a, b) => (a ?? '').localeCompare(b ?? '')).map(({ value, processes: running }) => ({
    version: value,
    processes: running.sort((a, b) => a.id.localeCompare(b.id)),
  }));
}

/** The warning for this process while other live processes run other versions, naming them; undefined when every one runs its version. */
export function versionsWarning(ownId: string, processes: Records, describe: (p: ClusterProcess) => string): string | undefined {
  const own = processes.get(ownId)!.version ?? null;
  const others = versionMismatch(processes).filter(({ version }) => version !== own);
  if (others.length === 0) return undefined;
  // in a stable order: the warning is logged again only when it changes
  const runs = others
    .sort((a, b) => (a.version ?? UNRECORDED).localeCompare(b.version ?? UNRECORDED))
    .map(({ version, processes: running }) => runsValue(running, version ?? UNRECORDED, describe));
  return (
    `roomcast versions differ across the cluster: this ${processes.get(ownId)!.role} runs ${own ?? UNRECORDED}, ${runs.join(', ')}; ` +
    'they work together while an upgrade passes, but a query one of them does not know is answered by nothing, and its part is left out of GET /rooms and /stats, until every process runs one version'
  );
}

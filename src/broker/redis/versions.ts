/**
 * The roomcast version each process on one Redis runs, from the records of
 * process-settings.ts. Processes of two versions work together while a rolling
 * upgrade passes, but a query one of them does not know is answered by nothing
 * (node-requests.ts leaves that node's part out): so each process warns while
 * another live process runs another version.
 */
import type { ClusterProcess } from '../broker.js';

/** What versionsWarning() reads of a process's record; a record without one is of a version before it was recorded. */
export interface VersionRecord {
  version?: string;
}

const UNRECORDED = 'a version that does not record it';

/** The warning for this process while other live processes run other versions, naming them; undefined when every one runs its version. */
export function versionsWarning(
  ownId: string,
  processes: ReadonlyMap<string, VersionRecord & Omit<ClusterProcess, 'id'>>,
  describe: (p: ClusterProcess) => string,
): string | undefined {
  const own = processes.get(ownId)!;
  const byVersion = new Map<string, ClusterProcess[]>();
  for (const [id, { version = UNRECORDED, role, pid, host }] of processes) {
    if (version === own.version) continue;
    const running = byVersion.get(version) ?? [];
    running.push({ id, role, pid, host });
    byVersion.set(version, running);
  }
  if (byVersion.size === 0) return undefined;
  // in a stable order: the warning is logged again only when it changes
  const runs = [...byVersion]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([version, running]) => {
      const names = running.sort((a, b) => a.id.localeCompare(b.id)).map(describe);
      return `${names.join(' and ')} run${running.length === 1 ? 's' : ''} ${version}`;
    });
  return (
    `roomcast versions differ across the cluster: this ${own.role} runs ${own.version ?? UNRECORDED}, ${runs.join(', ')}; ` +
    'they work together while an upgrade passes, but a query one of them does not know is answered by nothing, and its part is left out of GET /rooms and /stats, until every process runs one version'
  );
}

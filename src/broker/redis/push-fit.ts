/**
 * The cluster's form of a rule `roomcast start` checks at once (flag-rules.ts):
 * a push of a val of a logic process's --max-val-size must fit in a gateway's
 * --send-buffer-limit. The two flags live in different processes, so each
 * process compares its own against the records of the others and warns.
 */
import type { ClusterProcess } from '../broker.js';
import { clusterProcess } from './process-groups.js';
import { PUSH_FILLS_SEND_BUFFER, PUSH_FRAME_ENVELOPE, pushFillsSendBuffer } from '../../flag-rules.js';

export const MAX_VAL_SIZE = '--max-val-size';
export const SEND_BUFFER_LIMIT = '--send-buffer-limit';

/** What fit() reads of a process's record. */
export interface FitRecord {
  settings: Record<string, number>;
}

/** The pushes each process serves and the send buffer of each gateway, as the processes record them. */
export interface PushLimits {
  /** A logic process's (or start's) --max-val-size. */
  maxValSize?: number;
  /** A gateway's (or start's) --send-buffer-limit. */
  sendBufferLimit?: number;
}

export function pushLimitSettings(limits: PushLimits | undefined): Record<string, number> {
  const settings: Record<string, number> = {};
  if (limits?.maxValSize !== undefined) settings[MAX_VAL_SIZE] = limits.maxValSize;
  if (limits?.sendBufferLimit !== undefined) settings[SEND_BUFFER_LIMIT] = limits.sendBufferLimit;
  return settings;
}

/**
 * The warning for this process, when a push of a val some logic process takes
 * fills the send buffer of some gateway by itself, and one side is this process;
 * undefined when every pair fits.
 */
export function pushFitWarning(
  ownId: string,
  processes: ReadonlyMap<string, FitRecord & Omit<ClusterProcess, 'id'>>,
  describe: (p: ClusterProcess) => string,
): string | undefined {
  const own = processes.get(ownId)?.settings;
  if (own === undefined) return undefined;
  const ownBuffer = own[SEND_BUFFER_LIMIT];
  const ownVal = own[MAX_VAL_SIZE];
  const misfits: string[] = [];
  for (const [id, record] of processes) {
    // `roomcast start` warns of its own pair when it reads its flags (src/flag-rules.ts)
    if (id === ownId) continue;
    const other = clusterProcess(id, record);
    const val = record.settings[MAX_VAL_SIZE];
    const buffer = record.settings[SEND_BUFFER_LIMIT];
    if (ownBuffer !== undefined && val !== undefined && pushFillsSendBuffer(val, ownBuffer)) {
      misfits.push(`this process's --send-buffer-limit ${ownBuffer} is below --max-val-size ${val} of ${describe(other)}`);
    }
    if (ownVal !== undefined && buffer !== undefined && pushFillsSendBuffer(ownVal, buffer)) {
      misfits.push(`--send-buffer-limit ${buffer} of ${describe(other)} is below this process's --max-val-size ${ownVal}`);
    }
  }
  if (misfits.length === 0) return undefined;
  return (
    `${misfits.join('; ')} (plus a push frame's envelope, ${PUSH_FRAME_ENVELOPE} bytes): ${PUSH_FILLS_SEND_BUFFER}; ` +
    'raise --send-buffer-limit or lower --max-val-size'
  );
}

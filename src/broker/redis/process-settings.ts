/**
 * The settings every process on one Redis must run with for recovery to work
 * as documented. Each process records its own in one hash (a field per
 * process, rewritten with its heartbeat, expiring with it, removed when it
 * stops) and compares them with every other live process's: each setting that
 * differs is logged once as a warning, not refused (a rolling change of a flag
 * passes through a mixed cluster), and listed in GET /stats (settingsMismatch).
 */
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { HistoryLimits } from '../../history/ring.js';
import { VERSION } from '../../version.js';
import type { BrokerCounts, ClusterProcess, ProcessRole, SettingsMismatch } from '../broker.js';
import type { RedisCalls } from './calls.js';
import type { RedisNames } from './keys.js';
import { PROCESS_SETTINGS } from './scripts.js';
import { pushFitWarning, pushLimitSettings, type PushLimits } from './push-fit.js';
import { versionMismatch, versionsWarning } from './versions.js';
import { processGroups, runsValue } from './process-groups.js';

interface SharedSetting {
  flag: string;
  value(own: OwnSettings): number;
  /** Which process's value wins, for the warning (docs/REFERENCE.md §7 says the same). */
  effect: string;
}

export interface OwnSettings {
  history: HistoryLimits;
  recoveryWindowMs: number;
  /** Not compared for equality: a logic process's --max-val-size against the gateways' --send-buffer-limit (push-fit.ts). */
  pushLimits?: PushLimits;
}

const SHARED_SETTINGS: readonly SharedSetting[] = [
  {
    flag: '--history-size',
    value: (own) => own.history.size,
    effect: "each push is trimmed to the size of the logic process that accepted it, whatever the gateways' size, so resumes may report recovered:false",
  },
  {
    flag: '--history-ttl',
    value: (own) => own.history.ttlMs,
    effect:
      "a gateway replays only publications younger than its own TTL, and a quiet stream's history expires after the TTL of the logic process that pushed to it last, so resumes may report recovered:false",
  },
  {
    flag: '--recovery-window',
    value: (own) => own.recoveryWindowMs,
    effect:
      'a dropped session is kept for the window of the gateway it dropped from, a logic process with 0 answers 404 for every away session, and one that finds a gateway dead ends its sessions after its own window',
  },
];

/** What a process records of itself in Redis. */
interface ProcessRecord {
  role: ProcessRole;
  pid: number;
  host: string;
  /** The roomcast version it runs (versions.ts); a record of a version before this was recorded has none. */
  version?: string;
  /** By flag. */
  settings: Record<string, number>;
}

type Processes = Map<string, ProcessRecord>;

/** Topics of warnings besides the flags' own. */
const PUSH_FIT = 'push fit';
const VERSIONS = 'versions';

export class ProcessSettings {
  private readonly own: ProcessRecord;
  private readonly ownText: string;
  /** What was last warned of, by topic (a flag, PUSH_FIT, VERSIONS): each is logged again only when it changes. */
  private readonly warned = new Map<string, string>();

  constructor(
    private readonly processId: string,
    role: ProcessRole,
    settings: OwnSettings,
    private readonly names: RedisNames,
    private readonly calls: RedisCalls,
    /** How long a record lives unless rewritten: the heartbeat rewrites it well before. */
    private readonly ttlMs: number,
    private readonly log: Logger,
  ) {
    const values = { ...Object.fromEntries(SHARED_SETTINGS.map((setting) => [setting.flag, setting.value(settings)])), ...pushLimitSettings(settings.pushLimits) };
    this.own = { role, pid: process.pid, host: hostname(), version: VERSION, settings: values };
    this.ownText = JSON.stringify(this.own);
  }

  /** Writes this process's record (at start and with each heartbeat) and warns of each setting another live process runs with a different value. */
  async record(): Promise<void> {
    const processes = this.withOthers(await this.run(this.ownText));
    this.warnOfChanges(settingsMismatch(processes));
    const misfit = pushFitWarning(this.processId, processes, describe);
    if (this.changed(PUSH_FIT, misfit) && misfit !== undefined) this.log.warn(misfit);
    this.warnOfVersions(processes);
  }

  /** Whether `warning` (undefined: none) differs from the last one of `topic`, which it replaces. */
  private changed(topic: string, warning: string | undefined): boolean {
    if (this.warned.get(topic) === warning) return false;
    if (warning === undefined) this.warned.delete(topic);
    else this.warned.set(topic, warning);
    return true;
  }

  /** Warns when another live process runs another roomcast version (or another set of them), and says when they all agree again. */
  private warnOfVersions(processes: Processes): void {
    const warning = versionsWarning(this.processId, processes, describe);
    if (!this.changed(VERSIONS, warning)) return;
    if (warning !== undefined) this.log.warn(warning);
    else this.log.info(`every live process runs roomcast ${VERSION} again`);
  }

  /** The settings and the roomcast versions the live processes (this one too) differ on. */
  async mismatches(): Promise<Pick<BrokerCounts, 'settingsMismatch' | 'versionMismatch'>> {
    const processes = this.withOthers(await this.calls.bounded(() => this.run('')));
    return { settingsMismatch: settingsMismatch(processes), versionMismatch: versionMismatch(processes) };
  }

  /** Takes this process's record out, on close: it no longer counts. */
  async remove(): Promise<void> {
    await this.calls.client.hDel(this.names.settingsKey, this.processId);
  }

  private async run(record: string): Promise<Processes> {
    const reply = (await this.calls.runScript(PROCESS_SETTINGS, [this.names.settingsKey], [this.processId, record, String(this.ttlMs)])) as string[];
    const others: Processes = new Map();
    for (let i = 0; i < reply.length; i += 2) {
      const parsed = parseRecord(reply[i + 1]);
      if (parsed !== undefined) others.set(reply[i], parsed);
    }
    return others;
  }

  private withOthers(others: Processes): Processes {
    return new Map([[this.processId, this.own], ...others]);
  }

  /** One warning per setting whose differing values changed since the last; a line when it agrees again. */
  private warnOfChanges(mismatches: SettingsMismatch[]): void {
    const differing = new Set<string>();
    for (const mismatch of mismatches) {
      const own = this.own.settings[mismatch.flag];
      const others = mismatch.values.filter(({ value }) => value !== own);
      differing.add(mismatch.flag);
      if (!this.changed(mismatch.flag, JSON.stringify(others.map(({ value }) => value).sort((a, b) => a - b)))) continue;
      const setting = SHARED_SETTINGS.find(({ flag }) => flag === mismatch.flag);
      const runs = others.map(({ value, processes }) => runsValue(processes, value, describe));
      this.log.warn(
        { setting: mismatch.flag, value: own, others },
        `${mismatch.flag} differs across the cluster: this ${this.own.role} runs ${own}, ${runs.join(', ')}; ${setting?.effect ?? ''}`,
      );
    }
    for (const { flag } of SHARED_SETTINGS) {
      if (differing.has(flag) || !this.changed(flag, undefined)) continue;
      this.log.info({ setting: flag, value: this.own.settings[flag] }, `${flag} agrees across the cluster again: every live process runs ${this.own.settings[flag]}`);
    }
  }
}

function describe(running: ClusterProcess): string {
  return `${running.role} ${running.id} (pid ${running.pid} on ${running.host})`;
}

/** A record another process wrote, or undefined when it is not one (a later version may add fields, which are kept). */
function parseRecord(text: string): ProcessRecord | undefined {
  try {
    const record = JSON.parse(text) as Partial<ProcessRecord>;
    if (typeof record.role !== 'string' || typeof record.settings !== 'object' || record.settings === null) return undefined;
    return record as ProcessRecord;
  } catch {
    return undefined;
  }
}

/** Each setting the processes run with more than one value of (only flags both sides record are compared). */
export function settingsMismatch(processes: Processes): SettingsMismatch[] {
  const out: SettingsMismatch[] = [];
  for (const { flag } of SHARED_SETTINGS) {
    const values = processGroups(processes, ({ settings }) => (typeof settings[flag] === 'number' ? settings[flag] : undefined), (a, b) => a - b);
    if (values.length > 0) out.push({ flag, values });
  }
  return out;
}

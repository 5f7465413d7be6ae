/**
 * CPU time and memory of a process, read from Linux's /proc (proc(5)):
 * utime + stime from /proc/<pid>/stat, VmRSS and VmHWM from /proc/<pid>/status.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { round } from './histogram.js';

/** Clock ticks per second of /proc/<pid>/stat; 100 on every Linux the bench targets (getconf CLK_TCK). */
const CLOCK_TICKS_PER_SECOND = 100;

const MB = 1024 * 1024;

/** `bytes` in MB, to one decimal: how the bench reports memory. */
export function megabytes(bytes: number): number {
  return round(bytes / MB, 1);
}

export interface ProcSample {
  /** User + system CPU seconds since the process started. */
  cpuSeconds: number;
  /** Resident set size now, in bytes. */
  rssBytes: number;
  /** Peak resident set size, in bytes. */
  peakRssBytes: number;
}

export function readProcSample(pid: number): ProcSample {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Field 2 (comm) may hold spaces and parentheses: count fields from the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of the whole line, so 12 and 13 here (field 3 is index 0).
  const ticks = Number(fields[11]) + Number(fields[12]);
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return {
    cpuSeconds: ticks / CLOCK_TICKS_PER_SECOND,
    rssBytes: kilobytesField(status, 'VmRSS') * 1024,
    peakRssBytes: kilobytesField(status, 'VmHWM') * 1024,
  };
}

function kilobytesField(status: string, name: string): number {
  const match = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status);
  if (match === null) throw new Error(`/proc status has no ${name} line`);
  return Number(match[1]);
}

/** CPU seconds the whole machine has been busy (all cores, from the first line of /proc/stat). */
export function readMachineBusySeconds(): number {
  const [, ...ticks] = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0].trim().split(/\s+/).map(Number);
  // user nice system idle iowait irq softirq steal: all but idle and iowait are busy
  const busy = ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6] + (ticks[7] ?? 0);
  return busy / CLOCK_TICKS_PER_SECOND;
}

/**
 * Waits until the machine has been nearly idle (under 10% of one core busy)
 * for a second, or until `maxMs` passed; resolves to whether it was idle.
 */
export async function waitForIdleMachine(maxMs: number): Promise<boolean> {
  const until = Date.now() + maxMs;
  do {
    const before = readMachineBusySeconds();
    await new Promise((resolve) => setTimeout(resolve, 1000));
    if (readMachineBusySeconds() - before < 0.1) return true;
  } while (Date.now() < until);
  return false;
}

/** This process's own CPU seconds. */
export function ownCpuSeconds(): number {
  const cpu = process.cpuUsage();
  return (cpu.user + cpu.system) / 1e6;
}

/** The pids whose parent is `pid` (a cluster primary's gateway workers), from /proc/<pid>/stat. */
export function childPids(pid: number): number[] {
  const children: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      // the fields after the command name (which may hold spaces and parentheses): state, ppid, ...; a zombie is gone
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(ppid) === pid && state !== 'Z') children.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return children;
}

/** A process and its children, summed (RSS and peak RSS are sums too); a process that is gone counts as nothing. */
export function readTreeSample(pid: number): ProcSample & { pids: number[] } {
  const pids = [pid, ...childPids(pid)];
  const sum: ProcSample & { pids: number[] } = { cpuSeconds: 0, rssBytes: 0, peakRssBytes: 0, pids: [] };
  for (const p of pids) {
    let s: ProcSample;
    try {
      s = readProcSample(p);
    } catch {
      continue;
    }
    sum.cpuSeconds += s.cpuSeconds;
    sum.rssBytes += s.rssBytes;
    sum.peakRssBytes += s.peakRssBytes;
    sum.pids.push(p);
  }
  return sum;
}

/** The soft limit on open files of this process (and of the processes it starts), from /proc/self/limits. */
export function openFilesLimit(): number {
  const match = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  return match === null || match[1] === 'unlimited' ? Infinity : Number(match[1]);
}

/** Open files (sockets included) of a process now, from /proc/<pid>/fd; 0 when it is gone. */
export function openFiles(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return 0;
  }
}

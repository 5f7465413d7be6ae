/**
 * Which loopback addresses the client sockets bind to. A socket bound to an
 * address before it connects gets its port at bind() time, from a search of
 * the whole ephemeral range that cannot reuse a TIME_WAIT port as connect()
 * does: after a few runs left tens of thousands of them, bind() took 2 s of a
 * churn worker's CPU, stalling its event loop 100-470 ms at a time (the churn
 * p99 then read 200 ms where it was 30). So by default (`auto`) the sockets
 * are spread over the addresses only when a run opens more connections than
 * one address can be sure to give ports for.
 */
import { readFileSync } from 'node:fs';
import type { Scenario } from './scenarios.js';

/** What `auto` spreads the sockets over: 127.0.0.2-127.0.0.9. */
export const SPREAD_ADDRESSES: readonly string[] = Array.from({ length: 8 }, (_, i) => `127.0.0.${i + 2}`);

/** `auto`, or the addresses to spread every run over. */
export type SourceChoice = 'auto' | string[];

/** Ports in the kernel's ephemeral range (net.ipv4.ip_local_port_range); Linux's default range when it cannot be read. */
export function ephemeralPortCount(): number {
  try {
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (Number.isInteger(low) && Number.isInteger(high) && high >= low) return high - low + 1;
  } catch {
    // not Linux
  }
  return 60999 - 32768 + 1;
}

/** Every connection the scenario opens in one run: its clients, churn's newcomers, and resume's reconnects. */
export function connectionsOpened(scenario: Scenario): number {
  const newcomers = scenario.churn === undefined ? 0 : scenario.churn.cycles * scenario.churn.perCycle;
  const reconnects = scenario.name === 'resume' ? scenario.conns : 0;
  return scenario.conns + newcomers + reconnects;
}

/**
 * The addresses a run's sockets bind to; none (the kernel picks the source,
 * 127.0.0.1) when `auto` and the run opens at most half the ephemeral range,
 * which leaves room for the TIME_WAIT ports of earlier runs.
 */
export function sourceAddressesFor(choice: SourceChoice, opened: number, ports = ephemeralPortCount()): string[] {
  if (choice !== 'auto') return choice;
  return opened > ports / 2 ? [...SPREAD_ADDRESSES] : [];
}

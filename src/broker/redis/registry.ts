/**
 * A gateway node's entries in the Redis registry: each wsId it holds names it
 * (with an expiry it keeps rewriting) and each session's rooms are kept in
 * Redis, so commands by wsId find the node and a resume elsewhere finds the rooms.
 *
 * While the node cannot reach Redis at all, a logic process may take it for
 * dead and change a session of its (join, leave, kick by wsId answered 2xx);
 * the refresh finds such a connection and closes it (its session was taken,
 * changed or ended meanwhile), rather than write the node's view over it.
 * While only its subscriber is reconnecting (dropped, or Redis restarted with
 * its data), the node's state says so and such commands answer 503 instead
 * (node-state.ts): its sessions are left alone.
 */
import type { GatewayHandler, SessionChange } from '../broker.js';
import type { RedisNames } from './keys.js';
import { REFRESH_CONNS, type LuaScript } from './scripts.js';

/** Connections (or streams) per Redis round trip when a node rewrites its entries. */
export const REGISTRY_BATCH = 1000;

type RunScript = (lua: LuaScript, keys: string[], args: string[]) => Promise<unknown>;

export interface RegistrySettings {
  registryTtlMs: number;
  /** How long a connected session lives unless refreshed; 0 when sessions are not kept. */
  sessionTtlMs: number;
  roomsLimit: number;
}

interface Entry {
  wsId: string;
  uid: string | undefined;
  rooms: string;
  /** Redis may not have the node's view of its session: the node's wins. */
  unsynced: boolean;
}

/** In the order REFRESH_CONNS answers them. */
const CHANGES: readonly SessionChange[] = ['taken', 'ended', 'changed'];

export class NodeRegistry {
  /** wsIds whose session Redis may not hold as the node does: a write of it failed. */
  private readonly unsynced = new Set<string>();

  constructor(
    private readonly names: RedisNames,
    private readonly run: RunScript,
    private readonly onError: (err: unknown, doing: string) => void,
  ) {}

  /** A write of the connection's registration or rooms did not reach Redis. */
  missed(wsId: string): void {
    this.unsynced.add(wsId);
  }

  /** The connection is gone from the node. */
  forget(wsId: string): void {
    this.unsynced.delete(wsId);
  }

  /** Rewrites the node's entries; `full` (after a reconnect, when Redis may have lost its data) rewrites every session too. */
  refresh(gateway: GatewayHandler, settings: RegistrySettings, full: boolean): void {
    let batch: Entry[] = [];
    for (const conn of gateway.connections()) {
      const unsynced = this.unsynced.delete(conn.wsId);
      batch.push({ wsId: conn.wsId, uid: conn.uid, rooms: [...conn.rooms].join(' '), unsynced });
      if (batch.length === REGISTRY_BATCH) {
        this.write(gateway, settings, full, batch);
        batch = [];
      }
    }
    if (batch.length > 0) this.write(gateway, settings, full, batch);
    // what is left names connections gone from the node (a write that failed only after they closed): nothing to rewrite
    this.unsynced.clear();
  }

  private write(gateway: GatewayHandler, settings: RegistrySettings, full: boolean, entries: Entry[]): void {
    const keys = entries.flatMap(({ wsId }) => [this.names.connKey(wsId), this.names.sessionKey(wsId), this.names.kickedKey(wsId)]);
    const args = [gateway.nodeId, String(settings.registryTtlMs), String(settings.sessionTtlMs), String(settings.roomsLimit), full ? '1' : '0'];
    for (const entry of entries) args.push(entry.uid ?? '', entry.rooms, entry.unsynced ? '1' : '0');
    this.run(REFRESH_CONNS, keys, args).then(
      (reply) => {
        (reply as number[][]).forEach((positions, kind) => {
          for (const position of positions) gateway.sessionMoved(entries[position - 1].wsId, CHANGES[kind]);
        });
      },
      (err: unknown) => {
        for (const entry of entries) if (entry.unsynced) this.unsynced.add(entry.wsId);
        this.onError(err, 'refreshing the registry');
      },
    );
  }
}

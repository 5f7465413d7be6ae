/**
 * Reads what the gateway sends (docs/REFERENCE.md §1 "Server → client") into
 * a small union. Never throws: text that is not a frame roomcast sends is
 * `unknown`, and the client ignores it.
 */
import type { Membership, Message } from './types.js';

export type ServerFrame =
  | { kind: 'welcome'; wsId: string; heartbeatMs: number; resume?: string; epoch?: string; seq?: number }
  | { kind: 'resumed'; wsId: string; resume?: string; recovered: boolean; streams: Map<string, { seq: number; epoch: string }> }
  | { kind: 'pong' }
  | { kind: 'push'; message: Message }
  | { kind: 'joined'; membership: Membership }
  | { kind: 'left'; room: string }
  /** `id` is the client's op id: it only sends numbers. */
  | { kind: 'reply'; id: number | undefined; frame: Record<string, unknown> }
  | { kind: 'error'; id: number | undefined; code: string; message: string }
  | { kind: 'unknown' };

const UNKNOWN: ServerFrame = { kind: 'unknown' };

function str(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function int(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isSafeInteger(value) ? value : undefined;
}

function controlFrame(f: Record<string, unknown>): ServerFrame {
  switch (f.op) {
    case 'welcome': {
      const wsId = str(f.wsId) ?? str(f.data);
      if (wsId === undefined) return UNKNOWN;
      return { kind: 'welcome', wsId, heartbeatMs: int(f.heartbeat) ?? 0, resume: str(f.resume), epoch: str(f.epoch), seq: int(f.seq) };
    }
    case 'resumed': {
      const wsId = str(f.wsId);
      if (wsId === undefined) return UNKNOWN;
      const streams = new Map<string, { seq: number; epoch: string }>();
      if (typeof f.streams === 'object' && f.streams !== null) {
        for (const [stream, position] of Object.entries(f.streams as Record<string, { seq?: unknown; epoch?: unknown }>)) {
          const seq = int(position?.seq);
          const epoch = str(position?.epoch);
          if (seq !== undefined && epoch !== undefined) streams.set(stream, { seq, epoch });
        }
      }
      return { kind: 'resumed', wsId, resume: str(f.resume), recovered: f.recovered === true, streams };
    }
    case 'joined': {
      const room = str(f.room);
      return room === undefined ? UNKNOWN : { kind: 'joined', membership: { room, seq: int(f.seq), epoch: str(f.epoch) } };
    }
    case 'left': {
      const room = str(f.room);
      return room === undefined ? UNKNOWN : { kind: 'left', room };
    }
    case 'reply':
      return { kind: 'reply', id: int(f.id), frame: f };
    case 'error':
      return { kind: 'error', id: int(f.id), code: str(f.code) ?? 'unknown', message: str(f.message) ?? '' };
    default:
      return UNKNOWN;
  }
}

export function parseServerFrame(text: string): ServerFrame {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return UNKNOWN;
  }
  // no frame but an object has a `type`: JSON null, a number, a string or an array is unknown by the check below
  const f = parsed as Record<string, unknown> | null;
  const type = int(f?.type);
  if (type === 0) return controlFrame(f!);
  if (type === 1) return { kind: 'pong' };
  if (type === undefined || type < 2 || typeof f!.data !== 'string') return UNKNOWN;
  return { kind: 'push', message: { tag: type, data: f!.data, room: str(f!.room), seq: int(f!.seq) } };
}

/**
 * The soak's delivery invariants (bench/soak.ts), checked once the run has settled.
 *
 * Membership of a client in a room over a push's window [sent, answered] is
 * `in` when the last join/leave the soak made before it was a join answered 2xx
 * before the push was sent and no reconnect since said `recovered:false`, `out` when it was a leave answered before the push
 * was sent (or there was none), and `unknown` when a change was in flight
 * during the window or had an unknown outcome. REFERENCE.md §3: a join or leave
 * answered 2xx is in effect for every push accepted after it.
 *
 * A client's last `connected` that did not say `recovered:true` (its first one
 * too) is its reset: pushes sent before it may be lost (§7: recovered:false says
 * something could not be replayed). Pushes sent after it to a room it was `in`
 * must all have arrived, once, in seq order. A frame of a push to a room the
 * client was `out` of must never arrive. A frame of a push to a user (`POST
 * /push/user`) must never reach a client connected as another user, or as none.
 */
import type { MembershipOp, SoakClient } from './soak-client.js';

export interface Push {
  data: string;
  /** Room id, `*`, `conn`, or `user:<uid>`. */
  stream: string;
  sent: number;
  answered?: number;
  /** From a 2xx answer. */
  seq?: number;
  /** The push was refused (4xx) and made nothing; a 5xx or no answer leaves it `undefined` with no seq (it may or may not have been made). */
  refused?: boolean;
}

export type Membership = 'in' | 'out' | 'unknown';

/** Membership of `client` in `room` throughout [from, to]. */
export function membership(client: SoakClient, room: string, from: number, to: number): Membership {
  let last: MembershipOp | undefined;
  for (const op of client.ops) if (op.room === room && !op.refused && op.sent <= to) last = op;
  if (last === undefined) return 'out';
  if (last.unknown || last.ok === undefined || last.ok >= from) return 'unknown';
  if (last.kind === 'leave') return 'out';
  // a connection that did not recover may have lost the session's rooms (a Redis that lost its keys lets the wsId come back in no room, §7),
  // also rooms the client never heard it was in: the app rejoins them, so from then on it is not known
  if (client.connects.some((c) => c.reset && c.t > last.ok! && c.t <= to)) return 'unknown';
  // the server took the room away since (a session that could not be taken back): from then on it is not known
  const lostAt = client.serverLefts.find((l) => l.room === room && l.t > last.ok!);
  if (lostAt !== undefined && lostAt.t <= to) return 'unknown';
  return 'in';
}

/** A push's id, without the padding that sizes its val. */
const short = (data: string): string => data.slice(0, data.indexOf('.') + 1 || undefined);

export interface ClientVerdict {
  required: number;
  delivered: number;
  violations: string[];
}

const MAX_LISTED = 5;

export function checkClient(client: SoakClient, pushes: Map<string, Push>, byStream: Map<string, Push[]>, end: number): ClientVerdict {
  const violations: string[] = [];
  const name = `client ${client.id}`;
  const resets = client.connects.filter((c) => c.reset).map((c) => c.t);
  if (resets.length === 0) return { required: 0, delivered: 0, violations: [`${name} never connected`] };
  const lastReset = resets[resets.length - 1];

  // order and duplicates within each stretch between resets (a `joined` frame starts a room's count again); a reset
  // ends the stretch at the drop before it, and every retry up to it is a stretch of its own: what a connection sent
  // before `connected` (pushes to all before a resume refused or closed with 1013, a replay in a new epoch:
  // client/README.md) is of that connection, whose epoch may differ from the next one's after a Redis restart
  const boundaries = client.connects.flatMap((c, i) => {
    if (!c.reset) return [];
    const previous = i === 0 ? -Infinity : client.connects[i - 1].t;
    return [...client.drops.filter((d) => d.t > previous && d.t <= c.t).map((d) => d.t), c.t];
  });
  let nextReset = 0;
  const lastSeq = new Map<string, number>();
  const seen = new Set<string>();
  let joinIndex = 0;
  const joins = client.serverJoins;
  let delivered = 0;
  const wrong: string[] = [];
  for (const frame of client.received) {
    while (nextReset < boundaries.length && boundaries[nextReset] <= frame.t) {
      nextReset++;
      lastSeq.clear();
      seen.clear();
    }
    while (joinIndex < joins.length && joins[joinIndex].t <= frame.t) lastSeq.delete(joins[joinIndex++].room);
    if (frame.stream === 'conn') {
      // pushes to one connection and to a user arrive alike: the soak's vals tell them apart
      const push = pushes.get(frame.data);
      if (push === undefined) wrong.push(`${short(frame.data)} to one connection: no such push`);
      else if (push.stream.startsWith('user:') && push.stream !== `user:${client.user ?? ''}`) {
        wrong.push(`${short(frame.data)} to ${push.stream} reached a client of ${client.user === undefined ? 'no user' : `user:${client.user}`}`);
      } else if (push.stream !== 'conn' && !push.stream.startsWith('user:')) wrong.push(`${short(frame.data)} of ${push.stream} arrived as a push to one connection`);
      continue;
    }
    delivered++;
    if (seen.has(frame.data)) wrong.push(`${frame.stream} ${short(frame.data)} (seq ${frame.seq}) arrived twice`);
    seen.add(frame.data);
    const before = lastSeq.get(frame.stream);
    if (frame.seq !== undefined) {
      if (before !== undefined && frame.seq <= before) wrong.push(`${frame.stream} seq ${frame.seq} after seq ${before} (${short(frame.data)})`);
      lastSeq.set(frame.stream, frame.seq);
    }
    const push = pushes.get(frame.data);
    if (push === undefined) {
      wrong.push(`${frame.stream} ${short(frame.data)}: no such push`);
      continue;
    }
    if (push.stream !== frame.stream) wrong.push(`${short(frame.data)} of ${push.stream} arrived as ${frame.stream}`);
    else if (push.seq !== undefined && frame.seq !== push.seq) {
      wrong.push(`${frame.stream} ${short(frame.data)}: seq ${frame.seq} in the frame, ${push.seq} in the answer`);
    }
    if (push.stream !== '*' && push.refused !== true && membership(client, push.stream, push.sent, push.answered ?? end) === 'out') {
      wrong.push(`${short(frame.data)} to ${push.stream} arrived while the client was not in it (push sent ${Math.round(push.sent)}, answered ${Math.round(push.answered ?? -1)})`);
    }
  }

  // completeness since the last reset
  const got = new Set(client.received.map((r) => r.data));
  let required = 0;
  const missing: string[] = [];
  for (const [stream, list] of byStream) {
    if (stream === 'conn' || stream.startsWith('user:')) continue;
    for (const push of list) {
      if (push.seq === undefined || push.answered === undefined || push.sent <= lastReset) continue;
      if (stream !== '*' && membership(client, stream, push.sent, push.answered) !== 'in') continue;
      required++;
      if (!got.has(push.data)) missing.push(`${stream} seq ${push.seq} (${short(push.data)}, sent ${Math.round(push.sent)})`);
    }
  }

  // the rooms the client ends in are those the soak left it in
  const rooms = new Set(client.client.rooms);
  const touched = new Set(client.ops.map((o) => o.room));
  for (const room of touched) {
    const expected = membership(client, room, end, end);
    if (expected === 'in' && !rooms.has(room)) wrong.push(`ends outside ${room}, which it was joined to`);
    if (expected === 'out' && rooms.has(room)) wrong.push(`ends in ${room}, which it left`);
  }

  if (missing.length > 0) violations.push(`${name} (wsId ${client.client.wsId}) missed ${missing.length} of ${required} pushes since its last reset: ${missing.slice(0, MAX_LISTED).join('; ')}`);
  for (const w of wrong.slice(0, MAX_LISTED)) violations.push(`${name} (wsId ${client.client.wsId}): ${w}`);
  if (wrong.length > MAX_LISTED) violations.push(`${name}: ${wrong.length - MAX_LISTED} more of these`);
  return { required, delivered, violations };
}

/**
 * One gateway node: the connections it holds, their rooms, and fan-out.
 * Implements the broker's `GatewayHandler`, so whichever engine runs, a
 * publication or a command by wsId lands here the same way.
 */
import type { Logger } from 'pino';
import {
  emptyNodeCounters,
  type Broker,
  type ConnCommand,
  type ConnInfo,
  type GatewayHandler,
  type NodeCounters,
  type NodeStats,
  type Publication,
  type ReplyTo,
  type StreamPosition,
  type UserPush,
} from '../broker/broker.js';
import { joinedFrame, leftFrame, pushFrame, welcomeFrame } from '../protocol/frames.js';
import { ALL_STREAM } from '../protocol/room-id.js';
import { encodeTextFrame } from '../protocol/ws-frame.js';
import type { Connection } from './connection.js';
import { GapRepair, type StreamTrack } from './gaps.js';
import { Hub } from './hub.js';
import { NEWCOMER_HOLD_BYTES, Newcomers } from './newcomers.js';
import type { ResumeTokens } from './resume-token.js';

export class GatewayNode implements GatewayHandler {
  readonly hub = new Hub();
  readonly counters: NodeCounters = emptyNodeCounters();
  /** Set from outside (metrics) to time each publication's fan-out: two clock reads per publication, none per member. */
  onFanout: ((seconds: number) => void) | undefined;
  /** `*` and every room this node has members in (or is opening). */
  private readonly streams = new Map<string, StreamTrack>();
  private readonly opening = new Map<string, Promise<void>>();
  private readonly newcomers = new Newcomers();
  private readonly gaps: GapRepair;
  private resumeTokens: ResumeTokens | undefined;
  /** False when the gateway was given its own --resume-secret: the broker's shared one does not apply. */
  private secretFromBroker = false;

  constructor(
    readonly nodeId: string,
    readonly broker: Broker,
    private readonly heartbeatMs: number,
    private readonly log: Logger,
    /** Rooms one connection may be in; 0: no limit. */
    private readonly maxRoomsPerConnection = 0,
  ) {
    this.gaps = new GapRepair(
      {
        broker,
        trackOf: (stream) => this.streams.get(stream),
        tracks: () => this.streams.entries(),
        fanOut: (track, pub) => this.fanOut(track, pub),
        lose: (stream) => this.closeMembers(stream),
      },
      log,
    );
  }

  get tokens(): ResumeTokens {
    if (this.resumeTokens === undefined) throw new Error('the gateway node has not started');
    return this.resumeTokens;
  }

  /** Once attached to the broker: learns where the `*` stream stands. `secretFromBroker`: the tokens follow the broker's shared secret. */
  async start(tokens: ResumeTokens, secretFromBroker = false): Promise<void> {
    this.resumeTokens = tokens;
    this.secretFromBroker = secretFromBroker;
    await this.track(ALL_STREAM);
  }

  stop(): void {
    this.newcomers.clear();
    this.gaps.stop();
  }

  onSubscriptionsLost(): void {
    this.gaps.interrupted();
  }

  onSubscriptionsRestored(): void {
    this.gaps.restored();
  }

  onResumeSecret(secret: string): void {
    if (this.secretFromBroker) this.tokens.adopt(secret);
  }

  /** Resolves once this node has seen every stream reach the given seq (same epoch), or after `timeoutMs`. */
  async caughtUp(positions: Record<string, StreamPosition>, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const behind = (): boolean =>
      Object.entries(positions).some(([stream, { seq, epoch }]) => {
        const track = this.streams.get(stream);
        return track !== undefined && track.epoch === epoch && track.seq < seq;
      });
    while (behind() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 2));
  }

  /** Where a stream stands here; only for `*` and rooms this node has members in. */
  position(stream: string): StreamPosition | undefined {
    const track = this.streams.get(stream);
    return track?.ready ? { seq: track.seq, epoch: track.epoch } : undefined;
  }

  addConnection(conn: Connection): void {
    this.hub.add(conn);
    this.broker.connOpened(this.nodeId, conn.wsId, conn.uid);
    if (conn.uid !== undefined) this.fileUser(conn, conn.uid);
    const all = this.streams.get(ALL_STREAM)!;
    conn.welcomeAll = { seq: all.seq, epoch: all.epoch };
    conn.enqueue(
      encodeTextFrame(welcomeFrame({ wsId: conn.wsId, heartbeatMs: this.heartbeatMs, resume: this.tokens.issue(conn.wsId), epoch: all.epoch, seq: all.seq, uid: conn.uid })),
    );
    // Until its first frame says whether it resumes, live frames wait (up to a budget), so a resume can replay in order.
    conn.holdLive(NEWCOMER_HOLD_BYTES);
    this.newcomers.add(conn);
  }

  /** The connection's first frame arrived and it is not a resume: send what waited. */
  settle(conn: Connection): void {
    conn.releaseHeld();
  }

  /** An anonymous connection authenticated: from now on it is one of the user's connections. */
  identify(conn: Connection, uid: string): void {
    if (this.hub.conns.get(conn.wsId) === conn) {
      this.fileUser(conn, uid);
      this.broker.connOpened(this.nodeId, conn.wsId, uid);
    }
  }

  /** The connection is gone; with `keepSession` its session stays resumable for the recovery window. */
  removeConnection(conn: Connection, keepSession: boolean): void {
    if (this.hub.conns.get(conn.wsId) !== conn) return;
    const rooms = [...conn.rooms];
    for (const room of this.hub.remove(conn)) this.closeRoom(room);
    const uid = conn.uid;
    if (uid !== undefined && this.hub.removeUser(conn, uid)) this.closeUser(uid);
    this.broker.connClosed(this.nodeId, conn.wsId, keepSession ? { rooms, uid } : undefined);
  }

  /** Gives the connection its resumed session's id. */
  adopt(conn: Connection, wsId: string): boolean {
    const provisional = conn.wsId;
    if (!this.hub.rename(conn, wsId)) return false;
    this.broker.connClosed(this.nodeId, provisional);
    this.broker.connOpened(this.nodeId, wsId, conn.uid);
    return true;
  }

  /** Joins a room; `announce` sends the joined frame (a resume announces rooms itself). */
  async join(conn: Connection, room: string, announce = true): Promise<{ changed: boolean; refused?: string }> {
    if (this.maxRoomsPerConnection > 0 && !conn.rooms.has(room) && conn.rooms.size >= this.maxRoomsPerConnection) {
      this.counters.roomLimitRefusals++;
      return { changed: false, refused: `the connection is in ${conn.rooms.size} rooms, the limit (--max-rooms-per-connection)` };
    }
    let track = this.streams.get(room);
    while (!conn.rooms.has(room) && (track === undefined || !track.ready)) {
      await this.track(room);
      track = this.streams.get(room);
    }
    if (conn.rooms.has(room)) return { changed: false };
    if (this.hub.conns.get(conn.wsId) !== conn) {
      // the connection went away while the room was opening
      if (!this.hub.rooms.has(room)) this.closeRoom(room);
      return { changed: false };
    }
    this.hub.join(conn, room);
    if (announce) conn.send(encodeTextFrame(joinedFrame(room, track!.seq, track!.epoch)));
    this.broker.sessionJoined(conn.wsId, room);
    return { changed: true };
  }

  async leave(conn: Connection, room: string): Promise<{ changed: boolean }> {
    const change = this.hub.leave(conn, room);
    if (change.changed) {
      conn.send(encodeTextFrame(leftFrame(room)));
      this.broker.sessionLeft(conn.wsId, room);
    }
    if (change.roomEdge) this.closeRoom(room);
    return { changed: change.changed };
  }

  onPublication(pub: Publication): void {
    const track = this.streams.get(pub.stream);
    if (track !== undefined) this.gaps.receive(track, pub);
  }

  private fanOut(track: StreamTrack, pub: Publication): void {
    track.seq = pub.seq;
    track.epoch = pub.epoch;
    const isAll = pub.stream === ALL_STREAM;
    const members = isAll ? this.hub.conns : this.hub.rooms.get(pub.stream);
    if (members === undefined || members.size === 0) return;
    const started = this.onFanout === undefined ? 0 : performance.now();
    const frame = encodeTextFrame(pushFrame(pub.tag, pub.val, isAll ? undefined : pub.stream, pub.seq));
    let delivered = 0;
    for (const conn of members.values()) if (conn.send(frame, pub.stream, pub.seq)) delivered++;
    this.counters.deliveries += delivered;
    if (this.onFanout !== undefined) this.onFanout((performance.now() - started) / 1000);
  }

  onUserPush(push: UserPush): void {
    const conns = this.hub.users.get(push.uid);
    if (conns === undefined) return;
    const frame = encodeTextFrame(pushFrame(push.tag, push.val));
    for (const conn of conns) if (conn.send(frame)) this.counters.deliveries++;
  }

  userConnections(uid: string): ConnInfo[] {
    return [...(this.hub.users.get(uid) ?? [])].map((conn) => this.describe(conn));
  }

  async onCommand<C extends ConnCommand>(cmd: C): Promise<ReplyTo<C> | undefined> {
    const conn = this.hub.conns.get(cmd.wsId);
    if (conn === undefined || !conn.isOpen) return undefined;
    return (await this.applyCommand(conn, cmd)) as ReplyTo<C>;
  }

  roomCounts(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const [room, members] of this.hub.rooms) counts.set(room, members.size);
    return counts;
  }

  roomMembers(room: string): string[] {
    const members = this.hub.rooms.get(room);
    return members === undefined ? [] : [...members].map((conn) => conn.wsId);
  }

  *connections(): Iterable<{ wsId: string; uid: string | undefined; rooms: Iterable<string> }> {
    for (const conn of this.hub.conns.values()) yield { wsId: conn.wsId, uid: conn.uid, rooms: conn.rooms };
  }

  stats(): NodeStats {
    return { connections: this.hub.conns.size, rooms: this.hub.rooms.size, ...this.counters };
  }

  private async applyCommand(conn: Connection, cmd: ConnCommand): Promise<ReplyTo<ConnCommand>> {
    switch (cmd.op) {
      case 'join':
        return this.join(conn, cmd.room);
      case 'leave':
        return this.leave(conn, cmd.room);
      case 'push': {
        const delivered = conn.send(encodeTextFrame(pushFrame(cmd.tag, cmd.val)));
        if (delivered) this.counters.deliveries++;
        return { delivered };
      }
      case 'kick':
        this.counters.kicks++;
        conn.close('kicked');
        return { kicked: true };
      case 'info':
        return this.describe(conn);
    }
  }

  private describe(conn: Connection): ConnInfo {
    return {
      wsId: conn.wsId,
      state: 'connected',
      node: this.nodeId,
      ...(conn.uid === undefined ? {} : { uid: conn.uid }),
      rooms: [...conn.rooms],
      remoteAddress: conn.remoteAddress,
      connectedAt: new Date(conn.connectedAt).toISOString(),
    };
  }

  /**
   * Opens a stream here: subscribes (rooms) and learns its position. A
   * publication that arrives meanwhile is newer than the fetched position and wins.
   */
  private track(stream: string): Promise<void> {
    const pending = this.opening.get(stream);
    if (pending !== undefined) return pending;
    const track: StreamTrack = { seq: -1, epoch: '', ready: false };
    this.streams.set(stream, track);
    const opening = (async () => {
      if (stream !== ALL_STREAM) await this.broker.roomOpened(this.nodeId, stream);
      const position = await this.broker.streamPosition(stream);
      if (track.seq === -1) {
        track.seq = position.seq;
        track.epoch = position.epoch;
      }
      track.ready = true;
      this.gaps.opened(stream, track);
    })();
    this.opening.set(stream, opening);
    opening.then(
      () => this.opening.delete(stream),
      () => {
        this.opening.delete(stream);
        if (this.streams.get(stream) === track) this.closeRoom(stream);
      },
    );
    return opening;
  }

  private fileUser(conn: Connection, uid: string): void {
    if (!this.hub.addUser(conn, uid)) return;
    this.broker.userOpened(this.nodeId, uid).catch((err: unknown) => this.log.warn({ err, uid }, 'broker could not open user'));
  }

  private closeUser(uid: string): void {
    this.broker.userClosed(this.nodeId, uid).catch((err: unknown) => this.log.warn({ err, uid }, 'broker could not close user'));
  }

  /** The stream's local members missed publications history cannot give back: they reconnect and resume (`recovered:false`). */
  private closeMembers(stream: string): void {
    const members = stream === ALL_STREAM ? this.hub.conns.values() : this.hub.rooms.get(stream)?.values();
    let closed = 0;
    for (const conn of [...(members ?? [])]) {
      if (conn.closeCode !== undefined) continue;
      conn.close('missedMessages');
      closed++;
    }
    this.counters.missedMessageCloses += closed;
    if (closed > 0) this.log.warn({ stream, closed }, 'closed the members of a stream that missed publications, so they resume');
  }

  private closeRoom(room: string): void {
    this.streams.delete(room);
    this.broker.roomClosed(this.nodeId, room).catch((err: unknown) => {
      this.log.warn({ err, room }, 'broker could not close room');
    });
  }
}

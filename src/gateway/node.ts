/**
 * One gateway node: the connections it holds, their rooms, and fan-out.
 * Implements the broker's `GatewayHandler`, so whichever engine runs, a
 * publication or a command by wsId lands here the same way.
 */
import type { Logger } from 'pino';
import {
  emptyNodeCounters,
  roomLimitRefusal,
  type Broker,
  type ConnCommand,
  type ConnInfo,
  type GatewayHandler,
  type NodeCounters,
  type NodeReport,
  type NodeStats,
  type Publication,
  type ReplyTo,
  type SessionChange,
  type StreamPosition,
  type TakenSession,
  type UserPush,
  type YieldAnswer,
} from '../broker/broker.js';
import { awayInfo } from '../broker/away.js';
import { nodeMemberPage, type MemberPage } from '../broker/room-page.js';
import { keepsSession, type CloseCodeName } from '../protocol/close-codes.js';
import { joinedFrame, leftFrame, publicationFrame, pushFrame, welcomeFrame } from '../protocol/frames.js';
import { ALL_STREAM } from '../protocol/room-id.js';
import { encodeTextFrame } from '../protocol/ws-frame.js';
import { AwayLedger, type AwayLimits } from './away-ledger.js';
import { caughtUp, isBehind, wakeCaughtUp } from './catch-up.js';
import type { Connection } from './connection.js';
import { FanoutTimes } from './fanout-times.js';
import { GapRepair, type StreamTrack } from './gaps.js';
import { Hub } from './hub.js';
import { NEWCOMER_HOLD_BYTES, Newcomers } from './newcomers.js';
import { processReport } from './process-report.js';
import { ReplayFrames } from './replay-frames.js';
import { SharedHistoryReads } from './shared-reads.js';
import type { ResumeTokens } from './resume-token.js';

/** How a connection whose session the broker holds otherwise is closed, and what is counted. */
const SESSION_CHANGES: Record<SessionChange, { close: CloseCodeName; counter: 'sessionTakenCloses' | 'missedMessageCloses' | 'kicks'; why: string }> = {
  taken: { close: 'sessionTaken', counter: 'sessionTakenCloses', why: 'another node holds the session of a connection here' },
  changed: { close: 'missedMessages', counter: 'missedMessageCloses', why: 'the session of a connection here changed while the node could not reach the broker' },
  ended: { close: 'kicked', counter: 'kicks', why: 'the session of a connection here was ended (kicked) while the node could not reach the broker' },
};

export class GatewayNode implements GatewayHandler {
  readonly hub = new Hub();
  readonly counters: NodeCounters = emptyNodeCounters();
  /** Each publication's fan-out time: two clock reads per publication, none per member. */
  private readonly fanoutTimes = new FanoutTimes();
  /** `*` and every room this node has members in (or is opening). */
  private readonly streams = new Map<string, StreamTrack>();
  private readonly opening = new Map<string, Promise<void>>();
  private readonly newcomers = new Newcomers();
  /** Frames of the history entries resumes replay, each encoded once. */
  readonly replayFrames = new ReplayFrames();
  /** History reads of resumes, shared while in flight. */
  readonly historyReads: SharedHistoryReads;
  /**
   * The rooms each connection is joining, while they open: they count against
   * the rooms limit, and a leave of one waits for its join to finish.
   */
  private readonly joining = new Map<Connection, Map<string, Promise<{ changed: boolean }>>>();
  /** Sessions a resume on this node is claiming from the broker (not adopted yet). */
  private readonly claiming = new Set<string>();
  /** The claims under way: a shutdown waits for them, so each leaves its session away (giveBack) before the broker closes. */
  private readonly claims = new Set<Promise<unknown>>();
  /**
   * The rooms (and where the session joined them) of a session a resume took
   * that its connection is not back in yet: the broker no longer holds them,
   * so a close meanwhile must leave them to the away session.
   */
  private readonly unrestored = new Map<Connection, Map<string, StreamPosition | undefined>>();
  /**
   * Users with connections here whose channel the broker failed to open (e.g.
   * the subscriber connection dropped before Redis answered the SUBSCRIBE,
   * which it then forgets): opened again once the subscriptions are back.
   */
  private readonly unheardUsers = new Set<string>();
  private readonly gaps: GapRepair;
  /** The sessions this node sent away, within its limits of them. */
  private readonly awaySessions: AwayLedger;
  private resumeTokens: ResumeTokens | undefined;
  /** False when the gateway was given its own --resume-secret: the broker's shared one does not apply. */
  private secretFromBroker = false;

  constructor(
    readonly nodeId: string,
    readonly broker: Broker,
    private readonly heartbeatMs: number,
    private readonly log: Logger,
    /** Rooms one connection may be in; 0: no limit. */
    readonly maxRoomsPerConnection = 0,
    awayLimits: AwayLimits = { perNode: 0, perAddress: 0 },
  ) {
    this.awaySessions = new AwayLedger(awayLimits, broker.recoveryWindowMs);
    this.historyReads = new SharedHistoryReads((stream, after, limit) => broker.history(stream, after, limit));
    this.gaps = new GapRepair(
      {
        broker,
        trackOf: (stream) => this.streams.get(stream),
        tracks: () => this.streams.entries(),
        fanOut: (pub) => this.fanOut(pub),
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

  /** How many sessions this node sent away and still keeps in its ledger. */
  get awaySessionCount(): number {
    return this.awaySessions.size;
  }

  /** Lets go of what ended by itself (away sessions past their window); the gateway's sweep calls it. */
  sweep(now: number): void {
    this.awaySessions.forgetEnded(now);
  }

  onSubscriptionsLost(): void {
    this.gaps.interrupted();
  }

  onSubscriptionsRestored(): void {
    this.gaps.restored();
    for (const uid of [...this.unheardUsers]) this.openUser(uid);
  }

  onResumeSecret(secret: string): void {
    if (this.secretFromBroker) this.tokens.adopt(secret);
  }

  /** Resolves with true once this node has fanned every stream out up to the given seq (same epoch), or with false after `timeoutMs`. */
  caughtUp(positions: ReadonlyMap<string, StreamPosition>, timeoutMs: number): Promise<boolean> {
    const behind: [StreamTrack, StreamPosition][] = [];
    for (const [stream, position] of positions) {
      const track = this.streams.get(stream);
      if (track !== undefined && isBehind(track, position)) behind.push([track, position]);
    }
    return caughtUp(behind, timeoutMs);
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
    conn.enteredAt = this.historyReads.now(); // it is in `*` from now on
    conn.enqueue(
      encodeTextFrame(welcomeFrame({ wsId: conn.wsId, heartbeatMs: this.heartbeatMs, resume: this.tokens.issue(conn.wsId, conn.uid), epoch: all.epoch, seq: all.seq, uid: conn.uid })),
    );
    // Until its first frame says whether it resumes, live frames wait (up to a budget), so a resume can replay in order.
    conn.holdLive(NEWCOMER_HOLD_BYTES);
    this.newcomers.add(conn);
  }

  /** The connection's first frame arrived and it is not a resume: send what waited. */
  settle(conn: Connection): void {
    conn.welcomeAll = undefined;
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
    const unrestored = this.unrestored.get(conn);
    const rooms = this.detach(conn);
    if (rooms === undefined) return;
    // a resume cut short keeps the session's rooms it had not put the connection back in yet
    const left = unrestored === undefined || unrestored.size === 0 ? rooms : new Map([...unrestored, ...rooms]);
    this.broker.connClosed(this.nodeId, conn.wsId, keepSession ? { rooms: left, uid: conn.uid } : undefined);
    if (keepSession) this.sentAway(conn.wsId, conn.remoteAddress);
  }

  /** The session is away now: the oldest away sessions end where that passes the node's or the address's limit. */
  private sentAway(away: string, address: string): void {
    if (this.broker.recoveryWindowMs === 0) return;
    for (const wsId of this.awaySessions.add(away, address)) {
      this.broker.dropAway(this.nodeId, wsId).then(
        (ended) => {
          if (ended) this.counters.awaySessionsEnded++;
        },
        (err: unknown) => this.log.warn({ err, wsId }, 'broker could not end an away session past the limits'),
      );
    }
  }

  /**
   * Claims a session for a resume on this node. A connection holding it here
   * (one the client has given up on, e.g. half-open) is closed first; the
   * broker takes it from any other node. Until `adopt` or `giveBack`, another
   * resume of it, here or on another node, hears that it is being claimed.
   */
  async claimSession(wsId: string, uid: string | undefined): Promise<TakenSession> {
    const here = this.yieldSession(wsId, uid);
    if (here === 'claiming') return { status: 'busy' };
    if (here === 'foreign') return { status: 'foreign' };
    this.claiming.add(wsId);
    const claim = this.broker.takeSession(this.nodeId, wsId, uid);
    this.claims.add(claim);
    try {
      const taken = await claim;
      if (taken.status !== 'taken' && taken.status !== 'gone') this.claiming.delete(wsId);
      return taken;
    } catch (err) {
      this.claiming.delete(wsId);
      throw err;
    } finally {
      this.claims.delete(claim);
    }
  }

  /**
   * Resolves once every claim under way has settled and its resume has taken
   * the session or left it away (that step follows a claim at once); a
   * shutdown waits for this before it lets the broker go.
   */
  async claimsSettled(): Promise<void> {
    while (this.claims.size > 0) {
      await Promise.allSettled([...this.claims]);
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  /** Gives the connection the id of the session it claimed; false if that id is in use here. */
  adopt(conn: Connection, wsId: string): boolean {
    this.claiming.delete(wsId);
    this.awaySessions.delete(wsId);
    const provisional = conn.wsId;
    if (!this.hub.rename(conn, wsId)) return false;
    this.broker.connClosed(this.nodeId, provisional);
    this.broker.connOpened(this.nodeId, wsId, conn.uid);
    return true;
  }

  /** The connection that claimed a session is gone before it took it: the session is left as it was found. */
  giveBack(conn: Connection, taken: TakenSession, wsId: string): void {
    this.claiming.delete(wsId);
    if (taken.status !== 'taken') return this.broker.connClosed(this.nodeId, wsId);
    this.broker.connClosed(this.nodeId, wsId, { rooms: taken.session.rooms, uid: conn.uid });
    this.sentAway(wsId, conn.remoteAddress);
  }

  yieldSession(wsId: string, uid: string | undefined): YieldAnswer {
    const conn = this.hub.conns.get(wsId);
    if (conn === undefined) return this.claiming.has(wsId) ? 'claiming' : 'absent';
    if (conn.uid !== uid) return 'foreign';
    this.removeConnection(conn, conn.closeCode === undefined || keepsSession(conn.closeCode));
    if (conn.closeCode === undefined) this.counters.sessionTakenCloses++;
    conn.close('sessionTaken');
    return 'yielded';
  }

  sessionMoved(wsId: string, change: SessionChange): void {
    const conn = this.hub.conns.get(wsId);
    if (conn === undefined || this.detach(conn) === undefined) return;
    const { close, counter, why } = SESSION_CHANGES[change];
    if (conn.closeCode === undefined) this.counters[counter]++;
    conn.close(close);
    this.log.warn({ wsId }, `${why}: closed the connection`);
  }

  /**
   * Joins a room, within the rooms limit. A join waits for its room to open, so
   * it holds a slot from the start: joins sent together (one socket write, or
   * concurrent API calls) can never pass the limit between them.
   */
  async join(conn: Connection, room: string): Promise<{ changed: boolean; refused?: string }> {
    if (conn.rooms.has(room)) return { changed: false };
    const joining = this.joining.get(conn);
    // a join (or the restore) of this very room is under way and holds its slot
    const under = joining?.get(room);
    if (under !== undefined) {
      await under.catch(() => undefined);
      return this.enter(conn, room, true);
    }
    const limit = this.maxRoomsPerConnection;
    const rooms = conn.rooms.size + (joining?.size ?? 0);
    if (limit > 0 && rooms >= limit) {
      this.counters.roomLimitRefusals++;
      return { changed: false, refused: roomLimitRefusal(rooms) };
    }
    return this.entering(conn, room, this.enter(conn, room, true));
  }

  /** The connection is entering the room: until it has, the room holds a slot, and a leave or join of it waits. */
  private async entering(conn: Connection, room: string, entering: Promise<{ changed: boolean }>): Promise<{ changed: boolean }> {
    let joining = this.joining.get(conn);
    if (joining === undefined) {
      joining = new Map();
      this.joining.set(conn, joining);
    }
    joining.set(room, entering);
    try {
      return await entering;
    } finally {
      joining.delete(room);
      if (joining.size === 0 && this.joining.get(conn) === joining) this.joining.delete(conn);
    }
  }

  /**
   * Puts a resumed connection back in one of its session's rooms, without a
   * joined frame (the resume announces rooms itself) and past the limit if need
   * be: each room was joined within a limit, and a join answered 2xx stays in effect.
   * `joinedAt`: where the client's knowledge of the room starts, when known.
   */
  async restore(conn: Connection, room: string, joinedAt: StreamPosition | undefined): Promise<{ changed: boolean }> {
    // a leave by wsId while the room opens applies after it (answered changed:false, it would be undone)
    const entered = await this.entering(conn, room, this.enter(conn, room, false, joinedAt));
    this.unrestored.get(conn)?.delete(room);
    return entered;
  }

  /**
   * The connection took a session with these rooms: until `restore` has put it
   * back in each (or `restoreEnded`), a close leaves them to its away session.
   */
  restoreBegins(conn: Connection, rooms: ReadonlyMap<string, StreamPosition | undefined>): void {
    if (rooms.size > 0) this.unrestored.set(conn, new Map(rooms));
  }

  /** The resume has put the connection back in every room, or has closed it (a room could not be entered; `removeConnection` came first). */
  restoreEnded(conn: Connection): void {
    this.unrestored.delete(conn);
  }

  /** `joinedAt` defaults to where the room stands now: the position a `joined` frame announces. */
  private async enter(conn: Connection, room: string, announce: boolean, joinedAt?: StreamPosition): Promise<{ changed: boolean }> {
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
    this.hub.join(conn, room, joinedAt ?? { seq: track!.seq, epoch: track!.epoch });
    conn.enteredAt = this.historyReads.now();
    if (announce) conn.send(encodeTextFrame(joinedFrame(room, track!.seq, track!.epoch)));
    this.broker.sessionJoined(conn.wsId, room);
    return { changed: true };
  }

  async leave(conn: Connection, room: string): Promise<{ changed: boolean }> {
    // a leave sent after a join applies after it, even while the room is still opening
    const joining = this.joining.get(conn)?.get(room);
    if (joining !== undefined) await joining.catch(() => undefined);
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

  private fanOut(pub: Publication): void {
    const members = this.hub.members(pub.stream);
    if (members === undefined || members.size === 0) return;
    const started = performance.now();
    const frame = encodeTextFrame(publicationFrame(pub));
    let delivered = 0;
    for (const conn of members.values()) if (conn.send(frame, pub.stream, pub.seq)) delivered++;
    this.counters.deliveries += delivered;
    this.fanoutTimes.observe((performance.now() - started) / 1000);
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

  /**
   * Undefined when the connection is not here, or went away while the command
   * waited (a join whose room was opening): the broker then applies it to the
   * session the connection left away, if there is one.
   */
  async onCommand<C extends ConnCommand>(cmd: C): Promise<ReplyTo<C> | undefined> {
    const conn = this.hub.conns.get(cmd.wsId);
    if (conn === undefined) return undefined;
    if (!conn.isOpen) return (await this.applyWhileClosing(conn, cmd)) as ReplyTo<C> | undefined;
    return (await this.applyCommand(conn, cmd)) as ReplyTo<C> | undefined;
  }

  /**
   * A command for a connection whose close handshake is under way. Joins and
   * leaves change its rooms here, which its close hands to the away session
   * (a change made to the session in the broker meanwhile would be written over);
   * a push or info finds it away when its close keeps the session.
   */
  private async applyWhileClosing(conn: Connection, cmd: ConnCommand): Promise<ReplyTo<ConnCommand> | undefined> {
    switch (cmd.op) {
      case 'kick':
        return this.endClosing(conn);
      case 'join':
      case 'leave':
        return this.applyCommand(conn, cmd);
      case 'push':
        return this.closeKeepsSession(conn) ? { delivered: false } : undefined;
      case 'info':
        return this.closeKeepsSession(conn) ? this.describeAway(conn) : undefined;
    }
  }

  /**
   * Whether the close under way (one the server started, as 4000 for a client
   * that stopped reading) leaves the session away: then, to the API, it is away
   * already, on either engine, rather than gone until the client answers the
   * close (or the grace to do so ends).
   */
  private closeKeepsSession(conn: Connection): boolean {
    return this.broker.recoveryWindowMs > 0 && conn.closeCode !== undefined && keepsSession(conn.closeCode);
  }

  /** A closing connection's session as it will be away: its window starts once the socket is gone, within the close grace. */
  private describeAway(conn: Connection): ConnInfo {
    const rooms = new Set([...conn.rooms.keys(), ...(this.unrestored.get(conn)?.keys() ?? [])]);
    return awayInfo(conn.wsId, { uid: conn.uid, rooms: [...rooms], expiresAt: Date.now() + this.broker.recoveryWindowMs });
  }

  /**
   * A kick of a connection whose close handshake is under way (e.g. its client
   * said 1001): its session ends now, instead of being kept away once the socket is gone.
   */
  private endClosing(conn: Connection): ReplyTo<{ op: 'kick'; wsId: string }> {
    this.removeConnection(conn, false);
    return { kicked: true };
  }

  roomIds(): IterableIterator<string> {
    return this.hub.rooms.keys();
  }

  roomSize(room: string): number {
    return this.hub.rooms.get(room)?.size ?? 0;
  }

  holds(wsId: string): boolean {
    return this.hub.conns.has(wsId);
  }

  roomMemberPage(room: string, first: number): MemberPage {
    return nodeMemberPage(wsIdsOf(this.hub.rooms.get(room) ?? []), first);
  }

  *connections(): Iterable<{ wsId: string; uid: string | undefined; rooms: Iterable<string> }> {
    for (const conn of this.hub.conns.values()) yield { wsId: conn.wsId, uid: conn.uid, rooms: conn.rooms.keys() };
  }

  stats(): NodeStats {
    return { connections: this.hub.conns.size, rooms: this.hub.rooms.size, ...this.counters };
  }

  report(): NodeReport {
    return { nodeId: this.nodeId, stats: this.stats(), fanout: this.fanoutTimes.snapshot(), process: processReport() };
  }

  private async applyCommand(conn: Connection, cmd: ConnCommand): Promise<ReplyTo<ConnCommand> | undefined> {
    switch (cmd.op) {
      case 'join':
        return this.unlessGone(conn, await this.join(conn, cmd.room));
      case 'leave':
        return this.unlessGone(conn, await this.leave(conn, cmd.room));
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

  /** A join or leave that changed nothing because the connection went away meanwhile is not answered here: its away session takes it. */
  private unlessGone<R extends { changed: boolean }>(conn: Connection, reply: R): R | undefined {
    return !reply.changed && this.hub.conns.get(conn.wsId) !== conn ? undefined : reply;
  }

  private describe(conn: Connection): ConnInfo {
    return {
      wsId: conn.wsId,
      state: 'connected',
      node: this.nodeId,
      ...(conn.uid === undefined ? {} : { uid: conn.uid }),
      rooms: [...conn.rooms.keys()],
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
      this.gaps.opened(stream, track, await this.broker.streamPosition(stream));
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

  /** Takes the connection out of this node's rooms and users; the rooms it was in (with where it joined them), or undefined when it was not here. */
  private detach(conn: Connection): ReadonlyMap<string, StreamPosition> | undefined {
    if (this.hub.conns.get(conn.wsId) !== conn) return undefined;
    const rooms = conn.rooms;
    for (const room of this.hub.remove(conn)) this.closeRoom(room);
    const uid = conn.uid;
    if (uid !== undefined && this.hub.users.delete(uid, conn)) this.closeUser(uid);
    return rooms;
  }

  private fileUser(conn: Connection, uid: string): void {
    // the user's first connection here
    if (this.hub.users.add(uid, conn)) this.openUser(uid);
  }

  private openUser(uid: string): void {
    this.unheardUsers.delete(uid);
    this.broker.userOpened(this.nodeId, uid).catch((err: unknown) => {
      this.log.warn({ err, uid }, 'broker could not open user; opening it again once the subscriptions are back');
      if (this.hub.users.has(uid)) this.unheardUsers.add(uid);
    });
  }

  private closeUser(uid: string): void {
    this.unheardUsers.delete(uid);
    this.broker.userClosed(this.nodeId, uid).catch((err: unknown) => this.log.warn({ err, uid }, 'broker could not close user'));
  }

  /** The stream's local members missed publications history cannot give back: they reconnect and resume (`recovered:false`). */
  private closeMembers(stream: string): void {
    let closed = 0;
    for (const conn of [...(this.hub.members(stream)?.values() ?? [])]) {
      if (conn.closeCode !== undefined) continue;
      conn.close('missedMessages');
      closed++;
    }
    this.counters.missedMessageCloses += closed;
    if (closed > 0) this.log.warn({ stream, closed }, 'closed the members of a stream that missed publications, so they resume');
  }

  private closeRoom(room: string): void {
    const track = this.streams.get(room);
    this.streams.delete(room);
    // no longer fanned out here: a resume waiting on it has nothing to wait for
    if (track !== undefined) wakeCaughtUp(track, true);
    this.broker.roomClosed(this.nodeId, room).catch((err: unknown) => {
      this.log.warn({ err, room }, 'broker could not close room');
    });
  }
}

function* wsIdsOf(conns: Iterable<Connection>): Iterable<string> {
  for (const conn of conns) yield conn.wsId;
}

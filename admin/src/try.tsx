/**
 * "Try it": a WebSocket console for the gateway. Connect, see every frame
 * in and out, send PING, join and leave rooms (where the server allows
 * clients to), or send any text. The page's own heartbeat PINGs and their
 * PONGs are left out of the log unless "show heartbeats" is on.
 */
import { render } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { PING_FRAME, PONG_FRAME } from '../../src/protocol/frames.js';
import { loadConfig } from './api';
import { formatTime } from './format';
import './style.css';

interface LogLine {
  n: number;
  at: number;
  kind: 'in' | 'out' | 'event';
  text: string;
  /** A heartbeat PING the page sent by itself, or the PONG that answered it. */
  heartbeat: boolean;
}

const MAX_LINES = 500;

function defaultUrl(gateway: { port: number; path: string } | null): string {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  return `${scheme}://${location.hostname}:${gateway?.port ?? 8888}${gateway?.path ?? '/connect'}`;
}

function Try() {
  const [url, setUrl] = useState('');
  const [token, setToken] = useState('');
  const [socket, setSocket] = useState<WebSocket>();
  const [status, setStatus] = useState('not connected');
  const [wsId, setWsId] = useState<string>();
  const [heartbeat, setHeartbeat] = useState<number>();
  const [lines, setLines] = useState<LogLine[]>([]);
  const [room, setRoom] = useState('');
  const [raw, setRaw] = useState('');
  const [autoPing, setAutoPing] = useState(true);
  const [showHeartbeats, setShowHeartbeats] = useState(false);
  /** The socket's handlers and the ping timer outlive a render: they read the switch here. */
  const heartbeatsShown = useRef(showHeartbeats);
  heartbeatsShown.current = showHeartbeats;
  const counter = useRef(0);
  const nextOpId = useRef(1);
  /** Whether each PING still waiting for its PONG was sent automatically (those two are logged only with "show heartbeats"). */
  const pings = useRef<boolean[]>([]);
  const logEnd = useRef<HTMLDivElement>(null);

  useEffect(() => {
    loadConfig().then(
      (config) => setUrl((current) => (current === '' ? defaultUrl(config.gateway) : current)),
      () => setUrl((current) => (current === '' ? defaultUrl(null) : current)),
    );
  }, []);

  useEffect(() => logEnd.current?.scrollIntoView({ block: 'end' }), [lines]);

  const log = (kind: LogLine['kind'], text: string, heartbeat = false): void => {
    if (heartbeat && !heartbeatsShown.current) return;
    setLines((all) => [...all.slice(-(MAX_LINES - 1)), { n: ++counter.current, at: Date.now(), kind, text, heartbeat }]);
  };

  const send = (text: string, auto = false): void => {
    if (socket === undefined || socket.readyState !== WebSocket.OPEN) return log('event', 'not connected');
    if (text === PING_FRAME) pings.current.push(auto);
    socket.send(text);
    log('out', text, auto);
  };

  const connect = (): void => {
    let target: URL;
    try {
      target = new URL(url);
      if (target.protocol !== 'ws:' && target.protocol !== 'wss:') throw new Error('the URL must start with ws:// or wss://');
      if (token !== '') target.searchParams.set('token', token);
    } catch (err) {
      return log('event', err instanceof Error ? err.message : String(err));
    }
    const ws = new WebSocket(target);
    pings.current = [];
    setStatus('connecting');
    log('event', `connecting to ${target.toString()}`);
    ws.onopen = () => setStatus('open');
    ws.onmessage = (event) => {
      const text = typeof event.data === 'string' ? event.data : '(binary frame)';
      log('in', text, text === PONG_FRAME && pings.current.shift() === true);
      try {
        const frame = JSON.parse(text) as { op?: string; wsId?: string; heartbeat?: number };
        if (frame.op === 'welcome' && typeof frame.wsId === 'string') {
          setWsId(frame.wsId);
          setStatus(`open · heartbeat ${frame.heartbeat ?? '?'} ms`);
          setHeartbeat(frame.heartbeat);
        }
      } catch {
        // shown as it came
      }
    };
    ws.onclose = (event) => {
      log('event', `closed: ${event.code}${event.reason === '' ? '' : ` ${event.reason}`}`);
      setStatus(`closed (${event.code})`);
      setWsId(undefined);
      setHeartbeat(undefined);
      setSocket((current) => (current === ws ? undefined : current));
    };
    setSocket(ws);
  };

  // Ping at a third of the welcome's heartbeat, as a client must, unless switched off.
  useEffect(() => {
    if (!autoPing || socket === undefined || heartbeat === undefined || heartbeat <= 0) return undefined;
    const timer = setInterval(() => send(PING_FRAME, true), Math.max(100, Math.floor(heartbeat / 3)));
    return () => clearInterval(timer);
  }, [socket, heartbeat, autoPing]);

  const membership = (op: 'join' | 'leave'): void => send(JSON.stringify({ op, room, id: nextOpId.current++ }));
  const connected = socket !== undefined;

  return (
    <>
      <header>
        <h1>roomcast: try it</h1>
        <nav>
          <a href="/admin">Admin</a>
        </nav>
      </header>
      <main class="try">
        <section class="card">
          <form
            class="row"
            onSubmit={(event) => {
              event.preventDefault();
              if (connected) socket.close(1000, 'closed from the try-it page');
              else connect();
            }}
          >
            <input class="grow" aria-label="gateway URL" data-testid="try-url" value={url} onInput={(e) => setUrl(e.currentTarget.value)} />
            <input
              placeholder="token (optional)"
              title="a client JWT, for a gateway run with --auth; npx roomcast token --sub <uid> prints one"
              aria-label="token"
              value={token}
              onInput={(e) => setToken(e.currentTarget.value)}
            />
            <button type="submit" data-testid="try-connect">
              {connected ? 'Disconnect' : 'Connect'}
            </button>
          </form>
          <p class="muted small" data-testid="try-status">
            {status}
            {wsId !== undefined && ` · wsId ${wsId}`}
          </p>
          <div class="row">
            <button type="button" data-testid="try-ping" disabled={!connected} onClick={() => send(PING_FRAME)}>
              Send PING
            </button>
            <label class="small">
              <input type="checkbox" checked={autoPing} onChange={(e) => setAutoPing(e.currentTarget.checked)} /> ping every third of the heartbeat
            </label>
            <label class="small">
              <input type="checkbox" data-testid="try-show-heartbeats" checked={showHeartbeats} onChange={(e) => setShowHeartbeats(e.currentTarget.checked)} /> show heartbeats (those PINGs and their PONGs)
            </label>
          </div>
          <div class="row">
            <input placeholder="room id" aria-label="room" data-testid="try-room" value={room} onInput={(e) => setRoom(e.currentTarget.value)} />
            <button type="button" data-testid="try-join" disabled={!connected} onClick={() => membership('join')}>
              Join
            </button>
            <button type="button" data-testid="try-leave" disabled={!connected} onClick={() => membership('leave')}>
              Leave
            </button>
            <span class="muted small">needs a server started with --allow-client-join</span>
          </div>
          <form
            class="row"
            onSubmit={(event) => {
              event.preventDefault();
              send(raw);
            }}
          >
            <input class="grow" placeholder='any text, e.g. {"type":1,"data":"PING"}' aria-label="raw frame" value={raw} onInput={(e) => setRaw(e.currentTarget.value)} />
            <button type="submit" disabled={!connected}>
              Send
            </button>
          </form>
        </section>
        <section class="card log" data-testid="try-log">
          {lines.length === 0 && <p class="muted">frames appear here</p>}
          {lines.map((line) => (
            <div key={line.n} class={`line ${line.kind}${line.heartbeat ? ' heartbeat' : ''}`} title={line.heartbeat ? 'heartbeat' : undefined}>
              <span class="at">{formatTime(line.at)}</span>
              <span class="dir">{line.kind === 'in' ? '←' : line.kind === 'out' ? '→' : '·'}</span>
              <code>{line.text}</code>
            </div>
          ))}
          <div ref={logEnd} />
        </section>
      </main>
    </>
  );
}

render(<Try />, document.getElementById('app') as HTMLElement);

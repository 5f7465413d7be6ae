import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { authErrorOf, callApi, type Answer, type AuthError, type ConnInfo } from '../api';
import { formatAge } from '../format';
import { AnswerView } from './AnswerView';

interface Props {
  apiKey: string | undefined;
  wsId: string;
  onWsId: (wsId: string) => void;
  onAuth: (error: AuthError) => void;
}

function useNow(everyMs: number): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), everyMs);
    return () => clearInterval(timer);
  }, [everyMs]);
  return now;
}

export function Inspector({ apiKey, wsId, onWsId, onAuth }: Props) {
  const [typed, setTyped] = useState(wsId);
  const [info, setInfo] = useState<Answer<ConnInfo>>();
  const [kick, setKick] = useState<Answer<unknown>>();
  const now = useNow(1000);
  /** Counts look-ups: an answer to one that a later look-up replaced is dropped, whichever comes first. */
  const lookUps = useRef(0);

  const lookUp = async (id: string): Promise<void> => {
    const current = ++lookUps.current;
    if (id === '') return setInfo(undefined);
    const answer = await callApi<ConnInfo>(apiKey, 'GET', `/conns/${encodeURIComponent(id)}`);
    if (current !== lookUps.current) return;
    const refused = authErrorOf(answer);
    if (refused !== undefined) onAuth(refused);
    setInfo(answer);
  };

  // A layout effect runs as the new wsId renders; an effect runs only after a paint, and
  // would put the old wsId back over anything typed meanwhile (a quick second Inspect).
  useLayoutEffect(() => {
    setTyped(wsId);
    setKick(undefined);
    void lookUp(wsId);
  }, [wsId, apiKey]);

  const data = info?.body.data;
  return (
    <section class="card">
      <h2>Connection</h2>
      <form
        class="row"
        onSubmit={(event) => {
          event.preventDefault();
          const id = typed.trim();
          // a new wsId is looked up by the effect below; the same one again, here
          if (id === wsId) void lookUp(id);
          else onWsId(id);
        }}
      >
        <input placeholder="wsId" aria-label="wsId to inspect" data-testid="inspect-wsid" value={typed} onInput={(e) => setTyped(e.currentTarget.value)} />
        <button type="submit">Inspect</button>
      </form>
      {info !== undefined && data === undefined && <p class="error">{info.body.msg}</p>}
      {data !== undefined && (
        <div data-testid="conn-info">
          <dl class="info">
            <dt>wsId</dt>
            <dd>{data.wsId}</dd>
            <dt>state</dt>
            <dd data-testid="conn-state">{data.state === 'away' ? `away (resumable until ${new Date(data.awayUntil).toLocaleTimeString()})` : 'connected'}</dd>
            {data.state === 'connected' && (
              <>
                <dt>address</dt>
                <dd data-testid="conn-address">{data.remoteAddress}</dd>
                <dt>age</dt>
                <dd data-testid="conn-age">{formatAge(Date.parse(data.connectedAt), now)}</dd>
              </>
            )}
            <dt>rooms</dt>
            <dd data-testid="conn-rooms">{data.rooms.length === 0 ? 'none' : data.rooms.join(', ')}</dd>
            {data.state === 'connected' && (
              <>
                <dt>node</dt>
                <dd class="small">{data.node}</dd>
              </>
            )}
          </dl>
          <button
            type="button"
            class="danger"
            data-testid="kick"
            onClick={async () => {
              setKick(await callApi(apiKey, 'POST', '/conn/kick', { wsId: data.wsId }));
              await lookUp(data.wsId);
            }}
          >
            Kick (close with 4003)
          </button>
        </div>
      )}
      {kick !== undefined && <AnswerView answer={kick} testId="kick-answer" />}
    </section>
  );
}

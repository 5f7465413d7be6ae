import { useState } from 'preact/hooks';
import { callApi, type Answer } from '../api';
import { AnswerView } from './AnswerView';

type Target = 'all' | 'room' | 'conn';

const PATHS: Record<Target, string> = { all: '/push/all', room: '/push/room', conn: '/push/conn' };

export function PushForm({ apiKey, wsId }: { apiKey: string | undefined; wsId: string }) {
  const [target, setTarget] = useState<Target>('all');
  const [room, setRoom] = useState('');
  const [conn, setConn] = useState('');
  const [tag, setTag] = useState('2');
  const [val, setVal] = useState('');
  const [answer, setAnswer] = useState<Answer<unknown>>();
  const [sending, setSending] = useState(false);

  const send = async (): Promise<void> => {
    const body: Record<string, unknown> = { tag, val };
    if (target === 'room') body.id = room;
    if (target === 'conn') body.wsId = conn === '' ? wsId : conn;
    setSending(true);
    try {
      setAnswer(await callApi(apiKey, 'POST', PATHS[target], body));
    } finally {
      setSending(false);
    }
  };

  return (
    <section class="card">
      <h2>Push</h2>
      <form
        class="push"
        data-testid="push-form"
        onSubmit={(event) => {
          event.preventDefault();
          void send();
        }}
      >
        <fieldset class="targets">
          {(['all', 'room', 'conn'] as const).map((t) => (
            <label key={t}>
              <input type="radio" name="target" value={t} checked={target === t} onChange={() => setTarget(t)} /> {t === 'conn' ? 'connection' : t}
            </label>
          ))}
        </fieldset>
        {target === 'room' && (
          <label>
            room <input name="room" data-testid="push-room" value={room} onInput={(e) => setRoom(e.currentTarget.value)} />
          </label>
        )}
        {target === 'conn' && (
          <label>
            wsId <input name="wsId" data-testid="push-wsid" placeholder={wsId} value={conn} onInput={(e) => setConn(e.currentTarget.value)} />
          </label>
        )}
        <label>
          tag <input name="tag" data-testid="push-tag" inputMode="numeric" value={tag} onInput={(e) => setTag(e.currentTarget.value)} />
        </label>
        <label class="wide">
          val <textarea name="val" data-testid="push-val" rows={3} value={val} onInput={(e) => setVal(e.currentTarget.value)} />
        </label>
        <button type="submit" data-testid="push-send" disabled={sending}>
          Send to {PATHS[target]}
        </button>
      </form>
      {answer !== undefined && <AnswerView answer={answer} testId="push-answer" />}
    </section>
  );
}

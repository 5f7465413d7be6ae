/** The admin page: live totals, rooms, a connection inspector and a push form. */
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { loadConfig, type AdminConfig, type AuthError, type LiveStats } from './api';
import { Inspector } from './components/Inspector';
import { KeyPrompt } from './components/KeyPrompt';
import { PushForm } from './components/PushForm';
import { Rooms } from './components/Rooms';
import { Totals } from './components/Totals';
import { storedKey, storeKey } from './key';
import { followStats } from './live';
import './style.css';

function App() {
  const [config, setConfig] = useState<AdminConfig>();
  const [configError, setConfigError] = useState<string>();
  const [key, setKey] = useState(storedKey());
  const [authProblem, setAuthProblem] = useState<string>();
  const [stats, setStats] = useState<{ now?: LiveStats; before?: LiveStats }>({});
  const [problem, setProblem] = useState<string>();
  const [wsId, setWsId] = useState('');

  useEffect(() => {
    loadConfig().then(setConfig, (err: unknown) => setConfigError(String(err)));
  }, []);

  const needsKey = config?.apiKey === true && key === undefined;
  const onAuth = (error: AuthError): void => {
    if (config?.apiKey === true) {
      storeKey(undefined);
      setKey(undefined);
    }
    setAuthProblem(error.message);
  };

  useEffect(() => {
    if (config === undefined || needsKey || authProblem !== undefined) return undefined;
    return followStats(key, {
      // no rate across two streams: the logic process may have restarted, its counters from 0
      stats: (now, first) => setStats((s) => ({ now, before: first ? undefined : s.now })),
      problem: setProblem,
      unauthorized: onAuth,
    });
  }, [config, key, needsKey, authProblem]);

  let body;
  if (configError !== undefined) body = <p class="error">{configError}</p>;
  else if (config === undefined) body = <p class="muted">loading…</p>;
  else if (needsKey || (authProblem !== undefined && config.apiKey)) {
    body = (
      <KeyPrompt
        message={authProblem}
        onKey={(k) => {
          storeKey(k);
          setAuthProblem(undefined);
          setKey(k);
        }}
      />
    );
  } else if (authProblem !== undefined) {
    body = <p class="error card" data-testid="forbidden">{authProblem}</p>;
  } else {
    body = (
      <>
        <Totals stats={stats.now} previous={stats.before} problem={problem} />
        <div class="columns">
          <Rooms apiKey={key} onAuth={onAuth} onInspect={setWsId} />
          <div>
            <Inspector apiKey={key} wsId={wsId} onWsId={setWsId} onAuth={onAuth} />
            <PushForm apiKey={key} wsId={wsId} />
          </div>
        </div>
      </>
    );
  }

  return (
    <>
      <header>
        <h1>roomcast admin</h1>
        <nav>
          <a href="/admin/try">Try it</a>
          {key !== undefined && (
            <button
              type="button"
              class="link"
              onClick={() => {
                storeKey(undefined);
                setKey(undefined);
              }}
            >
              Forget key
            </button>
          )}
        </nav>
      </header>
      <main>{body}</main>
    </>
  );
}

render(<App />, document.getElementById('app') as HTMLElement);

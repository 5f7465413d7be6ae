import { useState } from 'preact/hooks';
import { unsendableKeyProblem } from '../key';

export function KeyPrompt({ message, onKey }: { message: string | undefined; onKey: (key: string) => void }) {
  const [key, setKey] = useState('');
  const [refused, setRefused] = useState<string>();
  const shown = refused ?? message;
  return (
    <form
      class="card key-prompt"
      data-testid="key-prompt"
      onSubmit={(event) => {
        event.preventDefault();
        const typed = key.trim();
        if (typed === '') return;
        // such a key would make every API call fail before it is sent, and the page retry forever
        const problem = unsendableKeyProblem(typed);
        setRefused(problem);
        if (problem === undefined) onKey(typed);
      }}
    >
      <h2>API key</h2>
      <p>This roomcast wants its API key (the value of <code>--api-key</code>). It stays in this tab only.</p>
      {shown !== undefined && <p class="error">{shown}</p>}
      <label>
        Key <input type="password" name="key" autocomplete="off" value={key} onInput={(e) => setKey(e.currentTarget.value)} />
      </label>
      <button type="submit">Use this key</button>
    </form>
  );
}

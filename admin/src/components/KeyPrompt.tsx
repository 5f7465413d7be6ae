import { useState } from 'preact/hooks';

export function KeyPrompt({ message, onKey }: { message: string | undefined; onKey: (key: string) => void }) {
  const [key, setKey] = useState('');
  return (
    <form
      class="card key-prompt"
      data-testid="key-prompt"
      onSubmit={(event) => {
        event.preventDefault();
        if (key.trim() !== '') onKey(key.trim());
      }}
    >
      <h2>API key</h2>
      <p>This roomcast wants its API key (the value of <code>--api-key</code>). It stays in this tab only.</p>
      {message !== undefined && <p class="error">{message}</p>}
      <label>
        Key <input type="password" name="key" autocomplete="off" value={key} onInput={(e) => setKey(e.currentTarget.value)} />
      </label>
      <button type="submit">Use this key</button>
    </form>
  );
}

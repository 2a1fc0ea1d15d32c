import { useState } from 'preact/hooks';
import { api, errorText, type Session } from '../api.ts';

/** Sign in with a user name and password, or with an API key (a kiosk's device key, the first-start admin key). */
export function LoginPage({ onSignedIn }: { onSignedIn: (s: Session) => void }) {
  const [mode, setMode] = useState<'password' | 'key'>('password');
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [key, setKey] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (event: Event): Promise<void> => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const body = mode === 'key' ? { key: key.trim() } : { username: username.trim(), password };
      onSignedIn(await api.post<Session>('/api/v1/auth/login', body));
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <main class="login">
      <form class="card login-card" onSubmit={(e) => void submit(e)} aria-labelledby="login-title">
        <h1 id="login-title">Sign in to Facegate</h1>
        <div class="tabs" role="tablist">
          <button type="button" role="tab" aria-selected={mode === 'password'} onClick={() => setMode('password')}>
            User and password
          </button>
          <button type="button" role="tab" aria-selected={mode === 'key'} onClick={() => setMode('key')}>
            API key
          </button>
        </div>
        {mode === 'password' ? (
          <>
            <label>
              User name
              <input name="username" autoComplete="username" required value={username} onInput={(e) => setUsername(e.currentTarget.value)} />
            </label>
            <label>
              Password
              <input name="password" type="password" autoComplete="current-password" required value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
            </label>
          </>
        ) : (
          <label>
            API key
            <input name="key" type="password" autoComplete="off" required placeholder="fg_…" value={key} onInput={(e) => setKey(e.currentTarget.value)} />
            <small>A kiosk signs in with a device key. On a first start, the server printed an admin key: sign in with it, then create a user in Settings.</small>
          </label>
        )}
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" class="primary" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}

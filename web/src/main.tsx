import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, setCsrfToken, whenSignedOut, type Session } from './api.ts';
import { navigate, onLinkClick, usePath } from './router.ts';
import { LoginPage } from './pages/login.tsx';
import { KioskPage } from './pages/kiosk.tsx';
import { PeoplePage } from './pages/people.tsx';
import { PersonPage } from './pages/person.tsx';
import { AttendancePage } from './pages/attendance.tsx';
import { LivePage } from './pages/live.tsx';
import { SettingsPage } from './pages/settings.tsx';
import { WsTesterPage } from './pages/ws-tester.tsx';
import './styles.css';

const LEVELS = ['public', 'device', 'operator', 'admin'] as const;
const atLeast = (s: Session, level: Session['level']): boolean => LEVELS.indexOf(s.level) >= LEVELS.indexOf(level);

const NAV: { path: string; label: string; level: Session['level'] }[] = [
  { path: '/kiosk', label: 'Kiosk', level: 'device' },
  { path: '/people', label: 'People', level: 'operator' },
  { path: '/attendance', label: 'Attendance', level: 'operator' },
  { path: '/live', label: 'Live', level: 'operator' },
  { path: '/settings', label: 'Settings', level: 'operator' },
  { path: '/ws-tester', label: 'WS tester', level: 'device' },
];

function Page({ path, session }: { path: string; session: Session }) {
  const person = /^\/people\/([^/]+)$/.exec(path);
  if (person) return <PersonPage id={decodeURIComponent(person[1]!)} session={session} />;
  switch (path) {
    case '/kiosk':
      return <KioskPage session={session} />;
    case '/people':
      return <PeoplePage session={session} />;
    case '/attendance':
      return <AttendancePage session={session} />;
    case '/live':
      return <LivePage session={session} />;
    case '/settings':
      return <SettingsPage session={session} />;
    case '/ws-tester':
      return <WsTesterPage />;
    default:
      return (
        <main class="page">
          <h1>Not found</h1>
          <p>
            There is no page at <code>{path}</code>. <a href="/">Go to the start page</a>.
          </p>
        </main>
      );
  }
}

function App() {
  const path = usePath();
  const [session, setSession] = useState<Session | null>(null);

  const refresh = async (): Promise<void> => {
    const s = await api.get<Session>('/api/v1/auth/session');
    setCsrfToken(s.csrfToken);
    setSession(s);
  };

  useEffect(() => {
    whenSignedOut(() => void refresh());
    refresh().catch(() => setSession({ signedIn: false, name: null, level: 'public', via: 'none', csrfToken: null }));
  }, []);

  useEffect(() => {
    if (!session) return;
    if (!session.signedIn && path !== '/login') navigate(`/login?next=${encodeURIComponent(path)}`, true);
    else if (session.signedIn && (path === '/' || path === '/login')) {
      const next = new URLSearchParams(location.search).get('next');
      navigate(next && next.startsWith('/') && next !== '/login' ? next : atLeast(session, 'operator') ? '/people' : '/kiosk', true);
    }
  }, [session, path]);

  if (!session) return <p class="loading">Loading…</p>;
  if (!session.signedIn) return <LoginPage onSignedIn={(s) => (setCsrfToken(s.csrfToken), setSession(s))} />;

  const signOut = async (): Promise<void> => {
    await api.post('/api/v1/auth/logout').catch(() => {});
    setCsrfToken(null);
    setSession({ signedIn: false, name: null, level: 'public', via: 'none', csrfToken: null });
  };

  const kiosk = path === '/kiosk';
  return (
    <div class={kiosk ? 'shell shell-kiosk' : 'shell'} onClick={onLinkClick}>
      <header class="topbar">
        <a class="brand" href="/">
          Facegate
        </a>
        <nav aria-label="Main">
          {NAV.filter((n) => atLeast(session, n.level)).map((n) => (
            <a key={n.path} href={n.path} aria-current={path === n.path || path.startsWith(`${n.path}/`) ? 'page' : undefined}>
              {n.label}
            </a>
          ))}
        </nav>
        <span class="who">
          {session.name} · {session.level}
        </span>
        <button type="button" class="link" title={`Signed in as ${session.name ?? ''} (${session.level})`} onClick={() => void signOut()}>
          Sign out
        </button>
      </header>
      {path === '/' || path === '/login' ? <p class="loading">Loading…</p> : <Page path={path} session={session} />}
    </div>
  );
}

render(<App />, document.getElementById('app')!);

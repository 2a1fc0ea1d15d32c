import { useEffect, useState } from 'preact/hooks';
import { api, errorText, type Face, type Page, type Person, type Session } from '../api.ts';
import { navigate } from '../router.ts';
import { ErrorLine, Modal } from '../ui.tsx';
import { DeletePersonDialog, PersonForm, type PersonFields } from './person-form.tsx';

const PAGE_SIZE = 50;

/** People: search, list with a face thumbnail, add, open, delete. */
export function PeoplePage({ session }: { session: Session }) {
  const [search, setSearch] = useState('');
  const [offset, setOffset] = useState(0);
  const [page, setPage] = useState<Page<Person> | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [adding, setAdding] = useState(false);
  const [deleting, setDeleting] = useState<Person | null>(null);
  const [reload, setReload] = useState(0);
  const isAdmin = session.level === 'admin';

  useEffect(() => {
    const query = new URLSearchParams({ limit: String(PAGE_SIZE), offset: String(offset) });
    if (search.trim()) query.set('search', search.trim());
    let current = true;
    const timer = setTimeout(() => {
      api
        .get<Page<Person>>(`/api/v1/people?${query.toString()}`)
        .then((p) => {
          if (!current) return;
          setPage(p);
          setError(null);
        })
        .catch((err) => current && setError(errorText(err)));
    }, 200);
    return () => {
      current = false;
      clearTimeout(timer);
    };
  }, [search, offset, reload]);

  const create = async (fields: PersonFields, photos: File[]): Promise<string | null> => {
    const person = await api.post<Person>('/api/v1/people', fields);
    if (photos.length > 0) {
      const form = new FormData();
      for (const f of photos) form.append('image', f);
      const res = await api.post<{ added: number; results: { status: string; message?: string }[] }>(`/api/v1/people/${person.id}/faces`, form);
      const refused = res.results.filter((r) => r.status === 'refused');
      if (refused.length > 0) {
        navigate(`/people/${person.id}`);
        return `Saved ${person.name}; ${refused.length} photo(s) refused: ${refused.map((r) => r.message).join('; ')}`;
      }
    }
    setAdding(false);
    setReload((n) => n + 1);
    return null;
  };

  return (
    <main class="page">
      <div class="page-head">
        <h1>People</h1>
        {isAdmin && (
          <button type="button" class="primary" onClick={() => setAdding(true)}>
            Add person
          </button>
        )}
      </div>
      <label class="search">
        <span class="visually-hidden">Search people</span>
        <input type="search" placeholder="Search by name, code, email, department" value={search} onInput={(e) => (setSearch(e.currentTarget.value), setOffset(0))} />
      </label>
      <ErrorLine error={error} />
      {page && page.items.length === 0 && <p class="empty">{search ? 'Nobody matches this search.' : 'Nobody is enrolled yet. Add a person with a photo to start.'}</p>}
      <ul class="people-list">
        {page?.items.map((p) => (
          <li key={p.id} class="person-row">
            <Thumb personId={p.id} name={p.name} version={`${reload}:${p.updatedAt}`} />
            <a class="person-name" href={`/people/${p.id}`}>
              {p.name}
            </a>
            <span class="muted">{[p.externalId, p.department, p.type].filter(Boolean).join(' · ') || '—'}</span>
            {!p.active && <span class="tag">inactive</span>}
            {isAdmin && (
              <button type="button" class="danger small" onClick={() => setDeleting(p)} aria-label={`Delete ${p.name}`}>
                Delete
              </button>
            )}
          </li>
        ))}
      </ul>
      {page && (page.total ?? 0) > PAGE_SIZE && (
        <div class="pager">
          <button type="button" disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - PAGE_SIZE))}>
            Previous
          </button>
          <span>
            {offset + 1}–{Math.min(offset + PAGE_SIZE, page.total ?? 0)} of {page.total}
          </span>
          <button type="button" disabled={offset + PAGE_SIZE >= (page.total ?? 0)} onClick={() => setOffset(offset + PAGE_SIZE)}>
            Next
          </button>
        </div>
      )}
      {adding && (
        <Modal title="Add a person" onClose={() => setAdding(false)}>
          <PersonForm withPhotos onSubmit={create} onCancel={() => setAdding(false)} submitLabel="Save person" />
        </Modal>
      )}
      {deleting && (
        <DeletePersonDialog
          person={deleting}
          onClose={() => setDeleting(null)}
          onDeleted={() => {
            setDeleting(null);
            setReload((n) => n + 1);
          }}
        />
      )}
    </main>
  );
}

/** The person's first face thumbnail, or their initials; fetched again whenever `version` changes (the list reloaded). */
export function Thumb({ personId, name, version = '' }: { personId: string; name: string; version?: string }) {
  const [url, setUrl] = useState<string | null>(null);
  useEffect(() => {
    // An answer to an older fetch must not overwrite a newer one.
    let current = true;
    api
      .get<{ items: Face[] }>(`/api/v1/people/${personId}/faces`)
      .then((r) => current && setUrl(r.items.find((f) => f.thumbnailUrl)?.thumbnailUrl ?? null))
      .catch(() => current && setUrl(null));
    return () => {
      current = false;
    };
  }, [personId, version]);
  const initials = name
    .split(/\s+/)
    .map((w) => w[0] ?? '')
    .join('')
    .slice(0, 2)
    .toUpperCase();
  return url ? <img class="thumb" src={url} alt="" loading="lazy" /> : <span class="thumb initials" aria-hidden="true">{initials}</span>;
}

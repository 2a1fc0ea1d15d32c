import { useEffect, useState } from 'preact/hooks';

/* A tiny history router: the server answers index.html for every UI path. */

const listeners = new Set<() => void>();

export function navigate(path: string, replace = false): void {
  if (path === location.pathname + location.search) return;
  if (replace) history.replaceState(null, '', path);
  else history.pushState(null, '', path);
  for (const fn of listeners) fn();
}

addEventListener('popstate', () => {
  for (const fn of listeners) fn();
});

/** The current path, re-rendering on navigation. */
export function usePath(): string {
  const [path, setPath] = useState(location.pathname);
  useEffect(() => {
    const update = (): void => setPath(location.pathname);
    listeners.add(update);
    return () => listeners.delete(update);
  }, []);
  return path;
}

/** Links inside the app navigate without a page load. */
export function onLinkClick(event: MouseEvent): void {
  const a = (event.target as HTMLElement).closest('a');
  if (!a || a.target || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
  const href = a.getAttribute('href');
  if (!href?.startsWith('/') || href.startsWith('/api/') || href.startsWith('/docs')) return;
  event.preventDefault();
  navigate(href);
}

import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, errorText } from './api.ts';

/* Small shared pieces: a modal dialog, an error line, a form's submit/cancel row, a reloadable list, time formatting. */

/** A modal on the native <dialog>: focus is trapped by the browser, Escape closes it. */
export function Modal({ title, onClose, children }: { title: string; onClose: () => void; children: ComponentChildren }) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const dialog = ref.current;
    if (dialog && !dialog.open) dialog.showModal();
  }, []);
  return (
    <dialog ref={ref} class="modal" aria-labelledby="modal-title" onClose={onClose} onCancel={onClose}>
      <h2 id="modal-title">{title}</h2>
      {children}
    </dialog>
  );
}

export function ErrorLine({ error }: { error: string | null }) {
  if (!error) return null;
  return (
    <p class="error" role="alert">
      {error}
    </p>
  );
}

/** The foot of a dialog form: its error, then the submit button and Cancel. */
export function FormActions({
  error,
  onCancel,
  children,
  kind = 'primary',
  disabled,
}: {
  error: string | null;
  onCancel: () => void;
  /** The submit button's label. */
  children: ComponentChildren;
  kind?: 'primary' | 'danger';
  disabled?: boolean;
}) {
  return (
    <>
      <ErrorLine error={error} />
      <div class="buttons">
        <button type="submit" class={kind} disabled={disabled}>
          {children}
        </button>
        <button type="button" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </>
  );
}

/**
 * GET a `{ items }` list and fetch it again when the url changes or `reload()` is called. items stays null until the
 * first answer; a failed fetch sets error (a later success does not clear it: the caller's action may have set it).
 */
export function useItems<T>(url: string) {
  const [items, setItems] = useState<T[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [generation, setGeneration] = useState(0);
  useEffect(() => {
    api
      .get<{ items: T[] }>(url)
      .then((r) => setItems(r.items))
      .catch((err) => setError(errorText(err)));
  }, [url, generation]);
  return { items, error, setError, reload: () => setGeneration((n) => n + 1) };
}

export function formatTime(ms: number | string | null | undefined): string {
  if (ms === null || ms === undefined) return '—';
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? '—' : d.toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' });
}

export function formatClock(ms: number | string | null | undefined): string {
  if (ms === null || ms === undefined) return '—';
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? '—' : d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

/** Today as YYYY-MM-DD in the browser's time zone. */
export function isoDay(d = new Date()): string {
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}

import { useState } from 'preact/hooks';
import { api, errorText, type Person } from '../api.ts';
import { ErrorLine, FormActions, Modal } from '../ui.tsx';

export interface PersonFields {
  name: string;
  externalId: string | null;
  email: string | null;
  department: string | null;
  type: string | null;
}

/** The person's fields (and, when adding, photos); onSubmit answers an error text or null. */
export function PersonForm({
  initial,
  withPhotos = false,
  onSubmit,
  onCancel,
  submitLabel,
}: {
  initial?: Partial<Person>;
  withPhotos?: boolean;
  onSubmit: (fields: PersonFields, photos: File[]) => Promise<string | null>;
  onCancel: () => void;
  submitLabel: string;
}) {
  const [fields, setFields] = useState({
    name: initial?.name ?? '',
    externalId: initial?.externalId ?? '',
    email: initial?.email ?? '',
    department: initial?.department ?? '',
    type: initial?.type ?? '',
  });
  const [photos, setPhotos] = useState<File[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const set = (key: keyof typeof fields) => (e: Event) => setFields({ ...fields, [key]: (e.currentTarget as HTMLInputElement).value });

  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    const orNull = (v: string): string | null => (v.trim() ? v.trim() : null);
    try {
      const message = await onSubmit(
        { name: fields.name.trim(), externalId: orNull(fields.externalId), email: orNull(fields.email), department: orNull(fields.department), type: orNull(fields.type) },
        photos,
      );
      if (message) setError(message);
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <form class="form" onSubmit={(e) => void submit(e)}>
      <label>
        Name
        <input name="name" required maxLength={200} value={fields.name} onInput={set('name')} />
      </label>
      <div class="form-row">
        <label>
          Employee code / roll number
          <input name="externalId" maxLength={200} value={fields.externalId} onInput={set('externalId')} />
        </label>
        <label>
          Department
          <input name="department" maxLength={200} value={fields.department} onInput={set('department')} />
        </label>
      </div>
      <div class="form-row">
        <label>
          Email
          <input name="email" type="email" maxLength={320} value={fields.email} onInput={set('email')} />
        </label>
        <label>
          Type
          <input name="type" maxLength={100} placeholder="employee, student, visitor…" value={fields.type} onInput={set('type')} />
        </label>
      </div>
      {withPhotos && (
        <label>
          Face photos (one face per photo)
          <input name="photos" type="file" accept="image/jpeg,image/png,image/webp" multiple onChange={(e) => setPhotos([...(e.currentTarget.files ?? [])])} />
        </label>
      )}
      <FormActions error={error} onCancel={onCancel} disabled={busy}>
        {busy ? 'Saving…' : submitLabel}
      </FormActions>
    </form>
  );
}

/** Deleting a person erases their biometric data: the dialog says so and asks for the name. */
export function DeletePersonDialog({ person, onClose, onDeleted }: { person: Person; onClose: () => void; onDeleted: () => void }) {
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const remove = async (): Promise<void> => {
    setBusy(true);
    try {
      await api.del(`/api/v1/people/${person.id}`);
      onDeleted();
    } catch (err) {
      setError(errorText(err));
      setBusy(false);
    }
  };
  return (
    <Modal title={`Delete ${person.name}?`} onClose={onClose}>
      <p>
        This erases <strong>{person.name}</strong>’s biometric data for good: every face template, every stored face image and their entries in the search index. They
        will no longer be recognised. Their attendance history goes with them. This cannot be undone.
      </p>
      <ErrorLine error={error} />
      <div class="buttons">
        <button type="button" class="danger" disabled={busy} onClick={() => void remove()}>
          {busy ? 'Erasing…' : 'Erase person and biometric data'}
        </button>
        <button type="button" onClick={onClose} autoFocus>
          Keep
        </button>
      </div>
    </Modal>
  );
}

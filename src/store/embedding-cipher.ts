import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { AppError } from '../domain/errors.ts';

/*
 * Embeddings at rest, sealed with AES-256-GCM: MAGIC | 12-byte IV | 16-byte tag | ciphertext.
 * The template id is the additional authenticated data, so a sealed vector cannot be moved to
 * another row (or person) without failing to open. 4 + 12 + 16 = 32 bytes of overhead keeps the
 * length a multiple of 4, and the magic tells sealed rows from rows written before a key was set.
 */
const MAGIC = Buffer.from('FGE1', 'latin1');
const IV_BYTES = 12;
const TAG_BYTES = 16;
const HEADER_BYTES = MAGIC.length + IV_BYTES + TAG_BYTES;

/** Parses privacy key text: 64 hex digits or base64 of 32 bytes. */
export function parseEmbeddingKey(text: string): Buffer {
  const key = /^[0-9a-fA-F]{64}$/.test(text) ? Buffer.from(text, 'hex') : Buffer.from(text, 'base64');
  if (key.length !== 32) throw new RangeError('the embedding key must be 32 bytes (64 hex digits or base64)');
  return key;
}

/** Whether stored bytes are a sealed embedding (as opposed to plain Float32 bytes). */
export function isSealed(bytes: Uint8Array): boolean {
  return bytes.byteLength > HEADER_BYTES && Buffer.from(bytes.buffer, bytes.byteOffset, MAGIC.length).equals(MAGIC);
}

export class EmbeddingCipher {
  readonly #key: Buffer;

  constructor(key: Buffer) {
    if (key.length !== 32) throw new RangeError('AES-256-GCM needs a 32-byte key');
    this.#key = Buffer.from(key);
  }

  seal(plain: Uint8Array, templateId: string): Buffer {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv);
    cipher.setAAD(Buffer.from(templateId, 'utf8'));
    const body = Buffer.concat([cipher.update(plain), cipher.final()]);
    return Buffer.concat([MAGIC, iv, cipher.getAuthTag(), body]);
  }

  open(sealed: Uint8Array, templateId: string): Buffer {
    const bytes = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
    const iv = bytes.subarray(MAGIC.length, MAGIC.length + IV_BYTES);
    const tag = bytes.subarray(MAGIC.length + IV_BYTES, HEADER_BYTES);
    const decipher = createDecipheriv('aes-256-gcm', this.#key, iv);
    decipher.setAAD(Buffer.from(templateId, 'utf8'));
    decipher.setAuthTag(tag);
    try {
      return Buffer.concat([decipher.update(bytes.subarray(HEADER_BYTES)), decipher.final()]);
    } catch {
      throw new AppError('embedding_key_mismatch', 500, `the embedding of template ${templateId} does not open with the configured key (wrong key, or the row was tampered with)`);
    }
  }
}

/** Stored bytes → plain Float32 bytes: opens sealed rows, passes plain ones through. */
export function openStoredEmbedding(stored: Uint8Array, templateId: string, cipher: EmbeddingCipher | undefined): Uint8Array {
  if (!isSealed(stored)) return stored;
  if (!cipher) {
    throw new AppError('embedding_key_missing', 500, 'stored embeddings are encrypted but no key is configured (set FACEGATE_TRUST__EMBEDDING_KEY)');
  }
  return cipher.open(stored, templateId);
}

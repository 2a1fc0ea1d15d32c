import fastifyMultipart from '@fastify/multipart';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AppError } from '../domain/errors.ts';

/*
 * Images arrive three ways: multipart files, base64 strings in JSON (a data: URL prefix is
 * tolerated), or URLs the server fetches. This reads the first two into bytes with the request
 * limits applied, and turns malformed input into 4xx AppErrors (problem+json), never a 500.
 */

/** Most images one request may carry (multipart files or JSON array entries). */
export const MAX_IMAGES_PER_REQUEST = 10;

/** Registers multipart parsing in the caller's plugin scope, with the image size limit per file. */
export async function registerMultipart(app: FastifyInstance, maxImageBytes: number): Promise<void> {
  await app.register(fastifyMultipart, {
    limits: {
      fileSize: maxImageBytes,
      files: MAX_IMAGES_PER_REQUEST,
      fields: 10,
      parts: MAX_IMAGES_PER_REQUEST + 10,
      fieldSize: 4096,
      headerPairs: 100,
    },
  });
}

export interface MultipartInput {
  /** Files in the order they were sent. */
  files: { field: string; bytes: Uint8Array }[];
  /** Text fields by name. */
  fields: Record<string, string>;
}

const MULTIPART_ERRORS: Record<string, [number, string, string]> = {
  FST_REQ_FILE_TOO_LARGE: [413, 'image_too_large', 'an uploaded image is larger than the configured limit'],
  FST_FILES_LIMIT: [413, 'too_many_images', `at most ${MAX_IMAGES_PER_REQUEST} images per request`],
  FST_PARTS_LIMIT: [413, 'too_many_parts', 'the multipart body has too many parts'],
  FST_FIELDS_LIMIT: [413, 'too_many_fields', 'the multipart body has too many fields'],
  FST_PROTO_VIOLATION: [400, 'invalid_multipart', 'a field name is not allowed'],
  FST_MP_PREMATURE_CLOSE: [400, 'invalid_multipart', 'the multipart body ended early'],
};

/**
 * Reads a multipart body: files only under the named file fields, text only under the named
 * fields (anything else is a 400, as an unknown JSON field is). Fails with 400 no_image when
 * no file was sent.
 */
export async function readMultipart(request: FastifyRequest, allowed: { files: readonly string[]; fields: readonly string[] }): Promise<MultipartInput> {
  const input: MultipartInput = { files: [], fields: {} };
  try {
    for await (const part of request.parts()) {
      if (part.type === 'file') {
        if (!allowed.files.includes(part.fieldname)) {
          part.file.resume();
          throw new AppError('validation_failed', 400, `unexpected file field "${part.fieldname}"; expected ${allowed.files.map((f) => `"${f}"`).join(' or ')}`);
        }
        const bytes = await part.toBuffer();
        input.files.push({ field: part.fieldname, bytes: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) });
      } else {
        if (!allowed.fields.includes(part.fieldname)) throw new AppError('validation_failed', 400, `unexpected field "${part.fieldname}"`);
        if (part.valueTruncated) throw new AppError('validation_failed', 400, `field "${part.fieldname}" is too long`);
        if (part.fieldname in input.fields) throw new AppError('validation_failed', 400, `field "${part.fieldname}" was sent twice`);
        // Text PostgreSQL could not store (see nulCharacterPath in hardening.ts).
        if (String(part.value).includes('\u0000')) throw new AppError('validation_failed', 400, `field "${part.fieldname}" contains a NUL character (\\u0000)`);
        input.fields[part.fieldname] = String(part.value);
      }
    }
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    const mapped = typeof code === 'string' ? MULTIPART_ERRORS[code] : undefined;
    if (mapped) throw new AppError(mapped[1], mapped[0], mapped[2]);
    if (err instanceof AppError) throw err;
    // Busboy's parse errors (a broken boundary, a malformed header) are the client's.
    if (err instanceof Error && !(err as { statusCode?: number }).statusCode) throw new AppError('invalid_multipart', 400, `the multipart body could not be read: ${err.message}`);
    throw err;
  }
  if (input.files.length === 0) throw new AppError('no_image', 400, `the multipart body holds no image file (send it as ${allowed.files.map((f) => `"${f}"`).join(' or ')})`);
  return input;
}

const DATA_URL_PREFIX = /^data:[\w.+-]+\/[\w.+-]+(;[\w-]+=[\w.-]+)*;base64,/i;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const BASE64URL = /^[A-Za-z0-9_-]*$/;

/** Decodes a base64 (or base64url) image string, with or without a data: URL prefix; 400 invalid_base64 otherwise. */
export function decodeBase64Image(text: string, field: string): Uint8Array {
  const body = text.replace(DATA_URL_PREFIX, '').replace(/\s+/g, '');
  const valid = body.length > 0 && (BASE64.test(body) ? body.replace(/=+$/, '').length % 4 !== 1 : BASE64URL.test(body) && body.length % 4 !== 1);
  if (!valid) throw new AppError('invalid_base64', 400, `${field} is not valid base64 image data`, { field });
  const bytes = Buffer.from(body, BASE64.test(body) ? 'base64' : 'base64url');
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

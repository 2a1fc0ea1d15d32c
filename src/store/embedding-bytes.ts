import { endianness } from 'node:os';

/*
 * Embeddings are stored as Float32 little-endian bytes (blob / bytea). On a little-endian host
 * (every platform Node ships for) writing is a zero-copy view; reading copies once, into memory
 * the Float32Array owns, because driver buffers are often unaligned slices of a shared pool.
 */
const LITTLE_ENDIAN_HOST = endianness() === 'LE';

/** The stored bytes of an embedding: a view on the same memory when the host is little-endian. */
export function embeddingToBytes(embedding: Float32Array): Buffer {
  if (LITTLE_ENDIAN_HOST) return Buffer.from(embedding.buffer, embedding.byteOffset, embedding.byteLength);
  const bytes = Buffer.allocUnsafe(embedding.byteLength);
  for (let i = 0; i < embedding.length; i++) bytes.writeFloatLE(embedding[i]!, i * 4);
  return bytes;
}

/** An embedding read back from its stored bytes, bit-exact. */
export function bytesToEmbedding(bytes: Uint8Array): Float32Array {
  if (bytes.byteLength % 4 !== 0) throw new RangeError(`embedding bytes length ${bytes.byteLength} is not a multiple of 4`);
  const embedding = new Float32Array(bytes.byteLength / 4);
  if (LITTLE_ENDIAN_HOST) {
    new Uint8Array(embedding.buffer).set(bytes);
  } else {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < embedding.length; i++) embedding[i] = view.getFloat32(i * 4, true);
  }
  return embedding;
}

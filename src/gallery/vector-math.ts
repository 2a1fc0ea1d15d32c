/*
 * Small vector helpers shared by the indexes. Gallery vectors are cosine-compared, so every index
 * stores unit vectors and similarity = dot product.
 */

/** Writes v / |v| into out at offset; throws on a zero or non-finite vector. */
export function normalizeInto(v: Float32Array, out: Float32Array, offset = 0): void {
  let sum = 0;
  for (let i = 0; i < v.length; i++) sum += v[i]! * v[i]!;
  if (!(sum > 0) || !Number.isFinite(sum)) throw new RangeError('a gallery vector must be finite and non-zero');
  const inv = 1 / Math.sqrt(sum);
  for (let i = 0; i < v.length; i++) out[offset + i] = v[i]! * inv;
}

/** A unit-length copy of v, in memory of its own (offset 0, which usearch's exactSearch needs). */
export function normalized(v: Float32Array): Float32Array {
  const out = new Float32Array(v.length);
  normalizeInto(v, out);
  return out;
}

/**
 * Quantises a unit vector to int8 with its own scale (127 / max |component|), into out at offset,
 * and returns |u − x| where u is the quantised vector rescaled to unit length: the most the cosine
 * of the int8 copy can differ from the float one, per side (|x·q − u·v| ≤ |x − u| + |q − v|).
 * usearch's own f32→i8 cast scales by 127/|x| and truncates, which for a 512-d unit vector (max
 * component ≈ 0.15) leaves ~5 levels of the 127: far too coarse to rank faces.
 */
export function quantizeI8Into(unit: Float32Array, unitOffset: number, dims: number, out: Int8Array, offset: number): number {
  let maxAbs = 0;
  for (let i = 0; i < dims; i++) {
    const a = Math.abs(unit[unitOffset + i]!);
    if (a > maxAbs) maxAbs = a;
  }
  const scale = 127 / maxAbs;
  let norm2 = 0;
  for (let i = 0; i < dims; i++) {
    const q = Math.round(unit[unitOffset + i]! * scale);
    out[offset + i] = q;
    norm2 += q * q;
  }
  const inv = 1 / Math.sqrt(norm2);
  let err2 = 0;
  for (let i = 0; i < dims; i++) {
    const d = unit[unitOffset + i]! - out[offset + i]! * inv;
    err2 += d * d;
  }
  return Math.sqrt(err2);
}

/** Dot product of a row of a matrix with a vector. */
export function dotRow(matrix: Float32Array, row: number, dims: number, v: Float32Array): number {
  const o = row * dims;
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let i = 0;
  for (; i + 3 < dims; i += 4) {
    s0 += matrix[o + i]! * v[i]!;
    s1 += matrix[o + i + 1]! * v[i + 1]!;
    s2 += matrix[o + i + 2]! * v[i + 2]!;
    s3 += matrix[o + i + 3]! * v[i + 3]!;
  }
  for (; i < dims; i++) s0 += matrix[o + i]! * v[i]!;
  return s0 + s1 + s2 + s3;
}

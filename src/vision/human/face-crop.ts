import type { RgbImage } from '../../domain/types.ts';
import type { FaceSquare } from './mesh-geometry.ts';

/**
 * Samples a square of the image into sizePx × sizePx RGB floats in 0..1 (interleaved, row-major),
 * bilinearly, sampling outside the image as 0 — what Human's tf.image.cropAndResize(…) / 255 gives
 * its face models, without uploading the whole image as a tensor. rotationRad turns the square
 * about its centre (positive = clockwise in the image), to straighten a rolled face.
 */
export function cropFaceSquare(image: RgbImage, square: FaceSquare, sizePx: number, rotationRad = 0): Float32Array {
  const out = new Float32Array(sizePx * sizePx * 3);
  const { width, height, data } = image;
  // cropAndResize maps the first and last output pixels onto the square's edges.
  const step = sizePx > 1 ? square.sidePx / (sizePx - 1) : 0;
  const half = (sizePx - 1) / 2;
  const cos = Math.cos(rotationRad) * step;
  const sin = Math.sin(rotationRad) * step;
  const scale = 1 / 255;
  let o = 0;
  for (let v = 0; v < sizePx; v++) {
    const dv = v - half;
    for (let u = 0; u < sizePx; u++, o += 3) {
      const du = u - half;
      // Coordinates are pixel indices, as in Human's mesh and tfjs's cropAndResize.
      const x = square.centerX + du * cos - dv * sin;
      const y = square.centerY + du * sin + dv * cos;
      if (x < 0 || y < 0 || x > width - 1 || y > height - 1) continue;
      const x0 = Math.floor(x);
      const y0 = Math.floor(y);
      const x1 = x0 + 1 < width ? x0 + 1 : x0;
      const y1 = y0 + 1 < height ? y0 + 1 : y0;
      const fx = x - x0;
      const fy = y - y0;
      const i00 = (y0 * width + x0) * 3;
      const i01 = (y0 * width + x1) * 3;
      const i10 = (y1 * width + x0) * 3;
      const i11 = (y1 * width + x1) * 3;
      const w00 = (1 - fx) * (1 - fy) * scale;
      const w01 = fx * (1 - fy) * scale;
      const w10 = (1 - fx) * fy * scale;
      const w11 = fx * fy * scale;
      out[o] = data[i00]! * w00 + data[i01]! * w01 + data[i10]! * w10 + data[i11]! * w11;
      out[o + 1] = data[i00 + 1]! * w00 + data[i01 + 1]! * w01 + data[i10 + 1]! * w10 + data[i11 + 1]! * w11;
      out[o + 2] = data[i00 + 2]! * w00 + data[i01 + 2]! * w01 + data[i10 + 2]! * w10 + data[i11 + 2]! * w11;
    }
  }
  return out;
}

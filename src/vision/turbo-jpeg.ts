import { createRequire } from 'node:module';

/** The part of @julusian/jpeg-turbo (libjpeg-turbo's TurboJPEG API) that decodePlainJpeg uses. */
export interface TurboJpeg {
  readonly FORMAT_RGB: number;
  /** Decodes into `out` (which must be large enough) on the calling thread; throws on errors and warnings. */
  decompressSync(image: Buffer, out: Buffer, options: { format: number }): { data: Buffer; width: number; height: number; size: number };
}

/**
 * The prebuilt libjpeg-turbo binding, or null where it does not load (no prebuild for the
 * platform: its install script is not run, see package.json allowScripts). Without it every
 * image is decoded by libvips, as correct and ≈2 ms a frame slower.
 */
export const turboJpeg: TurboJpeg | null = (() => {
  try {
    return createRequire(import.meta.url)('@julusian/jpeg-turbo') as TurboJpeg;
  } catch {
    return null;
  }
})();

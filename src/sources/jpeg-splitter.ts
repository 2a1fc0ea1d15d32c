/**
 * Splits a byte stream of concatenated JPEG images (ffmpeg's `-f image2pipe -c:v mjpeg`) into
 * whole images, whatever the chunk boundaries. It walks the JPEG marker structure instead of
 * searching for the first FF D9: marker segments are skipped by their length (so an EXIF
 * thumbnail's own FF D9 cannot end the image early), and inside entropy-coded data only a marker
 * that is not byte stuffing (FF 00) or a restart (FF D0..D7) ends the scan. Garbage between
 * images is skipped, and an image growing past maxFrameBytes is dropped and the parser
 * resynchronises on the next SOI, so memory stays bounded by one image.
 */

export interface JpegSplitterOptions {
  /** Largest image accepted, in bytes; a larger one is discarded (counted in `oversize`). */
  maxFrameBytes: number;
}

export interface JpegSplitterCounters {
  frames: number;
  /** Bytes skipped outside any image (before an SOI, or of broken images). */
  garbageBytes: number;
  /** Images discarded because their marker structure was broken. */
  corrupt: number;
  /** Images discarded for exceeding maxFrameBytes. */
  oversize: number;
}

const enum State {
  SeekSoi,
  Segments,
  Entropy,
}

const MARKER = 0xff;
const SOI = 0xd8;
const EOI = 0xd9;
const SOS = 0xda;
const TEM = 0x01;

function isStandalone(marker: number): boolean {
  return marker === TEM || (marker >= 0xd0 && marker <= 0xd7);
}

export class JpegSplitter {
  private buffer: Uint8Array;
  private length = 0;
  /** Where parsing resumes, an offset in buffer. */
  private pos = 0;
  /** Offset of the current image's SOI, when inside one. */
  private start = 0;
  private state: State = State.SeekSoi;
  private readonly maxFrameBytes: number;
  private readonly count: JpegSplitterCounters = { frames: 0, garbageBytes: 0, corrupt: 0, oversize: 0 };

  constructor(options: JpegSplitterOptions) {
    if (!(options.maxFrameBytes >= 4)) throw new RangeError('maxFrameBytes must be at least 4');
    this.maxFrameBytes = options.maxFrameBytes;
    this.buffer = new Uint8Array(Math.min(options.maxFrameBytes, 256 * 1024));
  }

  get counters(): JpegSplitterCounters {
    return { ...this.count };
  }

  /** Bytes held for an unfinished image. */
  get bufferedBytes(): number {
    return this.length;
  }

  /** Feeds a chunk; returns the images it completed (copies, safe to keep). */
  push(chunk: Uint8Array): Uint8Array[] {
    const frames: Uint8Array[] = [];
    let offset = 0;
    while (offset < chunk.length) {
      // Never hold more than one image's worth (+ one marker header) whatever the chunk size.
      const room = this.maxFrameBytes + 4 - this.length;
      const take = Math.min(room, chunk.length - offset);
      if (take <= 0) {
        // Unreachable by the size check in parse(); kept so that a bug cannot spin forever.
        this.count.oversize++;
        this.count.garbageBytes += this.length;
        this.reset();
        continue;
      }
      this.append(chunk.subarray(offset, offset + take));
      offset += take;
      this.parse(frames);
    }
    return frames;
  }

  /** Forgets any partial image (after the producer restarts). */
  reset(): void {
    this.length = 0;
    this.pos = 0;
    this.start = 0;
    this.state = State.SeekSoi;
  }

  private append(bytes: Uint8Array): void {
    if (this.length + bytes.length > this.buffer.length) {
      const grown = new Uint8Array(Math.max(this.buffer.length * 2, this.length + bytes.length));
      grown.set(this.buffer.subarray(0, this.length));
      this.buffer = grown;
    }
    this.buffer.set(bytes, this.length);
    this.length += bytes.length;
  }

  /** Drops buffer[0, upTo) and shifts offsets. */
  private discard(upTo: number): void {
    if (upTo <= 0) return;
    this.buffer.copyWithin(0, upTo, this.length);
    this.length -= upTo;
    this.pos -= upTo;
    this.start = Math.max(0, this.start - upTo);
  }

  /**
   * Abandons the current image. A broken one is rescanned for an SOI from just after its own (a
   * truncated image's header lengths may have skipped over the next image's start); an oversize
   * one is dropped whole.
   */
  private resync(reason: 'corrupt' | 'oversize'): void {
    this.count[reason]++;
    const from = reason === 'corrupt' ? this.start + 2 : Math.min(this.pos, this.length);
    this.count.garbageBytes += from - this.start;
    this.discard(from);
    this.pos = 0;
    this.state = State.SeekSoi;
  }

  private parse(frames: Uint8Array[]): void {
    const buf = this.buffer;
    for (;;) {
      if (this.state !== State.SeekSoi && this.pos - this.start > this.maxFrameBytes) {
        this.resync('oversize');
        continue;
      }
      if (this.state === State.SeekSoi) {
        let i = this.pos;
        while (i + 1 < this.length && !(buf[i] === MARKER && buf[i + 1] === SOI)) i++;
        if (i + 1 >= this.length) {
          // Keep a trailing FF: it may be the first half of the next SOI.
          const keep = this.length > 0 && buf[this.length - 1] === MARKER ? 1 : 0;
          this.count.garbageBytes += this.length - keep;
          this.pos = this.length - keep;
          this.discard(this.pos);
          return;
        }
        this.count.garbageBytes += i;
        this.pos = i;
        this.discard(i);
        this.start = 0;
        this.pos = 2;
        this.state = State.Segments;
        continue;
      }
      if (this.state === State.Segments) {
        if (this.pos + 1 >= this.length) return;
        if (buf[this.pos] !== MARKER) {
          this.resync('corrupt');
          continue;
        }
        const marker = buf[this.pos + 1]!;
        if (marker === MARKER) {
          this.pos++; // fill byte
          continue;
        }
        if (marker === EOI) {
          const end = this.pos + 2;
          frames.push(buf.slice(this.start, end));
          this.count.frames++;
          this.pos = end;
          this.discard(end);
          this.state = State.SeekSoi;
          continue;
        }
        if (marker === SOI) {
          // A new image began before this one ended: this one was truncated.
          this.resync('corrupt');
          continue;
        }
        if (isStandalone(marker)) {
          this.pos += 2;
          continue;
        }
        if (this.pos + 3 >= this.length) return;
        const segmentLength = (buf[this.pos + 2]! << 8) | buf[this.pos + 3]!;
        if (segmentLength < 2) {
          this.resync('corrupt');
          continue;
        }
        this.pos += 2 + segmentLength;
        if (marker === SOS) this.state = State.Entropy;
        if (this.pos > this.length) {
          // The segment continues in later chunks; the size check above still applies.
          if (this.pos - this.start > this.maxFrameBytes) continue;
          return;
        }
        continue;
      }
      // Entropy-coded data: look for a marker that is neither stuffing nor a restart.
      let i = this.pos;
      const end = this.length - 1;
      let found = -1;
      while (i < end) {
        if (buf[i] !== MARKER) {
          i++;
          continue;
        }
        const next = buf[i + 1]!;
        if (next === 0x00 || (next >= 0xd0 && next <= 0xd7)) {
          i += 2;
        } else if (next === MARKER) {
          i++;
        } else {
          found = i;
          break;
        }
      }
      if (found < 0) {
        this.pos = Math.max(this.pos, i);
        if (this.pos - this.start > this.maxFrameBytes) continue;
        return;
      }
      this.pos = found;
      this.state = State.Segments;
    }
  }
}

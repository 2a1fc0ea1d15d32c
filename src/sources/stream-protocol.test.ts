import { describe, expect, it } from 'vitest';
import { decodeBase64, parseStreamMessage, sniffImageFormat, type StreamLimits } from './stream-protocol.ts';

const limits: StreamLimits = { maxImageBytes: 1000, formats: ['jpeg', 'png', 'webp'] };
const jpegBytes = new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3, 0xff, 0xd9]);
const pngBytes = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0]);
const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64');

describe('sniffImageFormat', () => {
  it('recognises image signatures and nothing else', () => {
    expect(sniffImageFormat(jpegBytes)).toBe('jpeg');
    expect(sniffImageFormat(pngBytes)).toBe('png');
    expect(sniffImageFormat(new TextEncoder().encode('RIFF\0\0\0\0WEBPVP8 '))).toBe('webp');
    expect(sniffImageFormat(new TextEncoder().encode('GIF89a..'))).toBe('gif');
    expect(sniffImageFormat(new TextEncoder().encode('\0\0\0\x1cftypavif'))).toBe('avif');
    expect(sniffImageFormat(new TextEncoder().encode('hello world'))).toBeNull();
    expect(sniffImageFormat(new Uint8Array([0xff, 0xd8]))).toBeNull();
  });
});

describe('decodeBase64', () => {
  it('decodes strict base64 and refuses anything else', () => {
    expect(Array.from(decodeBase64('AQID')!)).toEqual([1, 2, 3]);
    expect(Array.from(decodeBase64('AQI=')!)).toEqual([1, 2]);
    expect(Array.from(decodeBase64('AQ ID\n')!)).toEqual([1, 2, 3]);
    expect(decodeBase64('AQ*D')).toBeNull();
    expect(decodeBase64('A')).toBeNull();
    expect(decodeBase64('AQ=I')).toBeNull();
  });
});

describe('parseStreamMessage', () => {
  it('accepts a binary image', () => {
    expect(parseStreamMessage(jpegBytes, true, limits)).toEqual({ kind: 'frame', bytes: jpegBytes });
  });

  it("accepts seed 003's JSON frame, echoing frame_id and timestamp, with or without a data: URL prefix", () => {
    const message = JSON.stringify({ type: 'frame', data: b64(jpegBytes), frame_id: 7, timestamp: 1234567890 });
    const parsed = parseStreamMessage(message, false, limits);
    expect(parsed).toMatchObject({ kind: 'frame', frameId: 7, clientTimestamp: 1234567890 });
    expect(Array.from((parsed as { bytes: Uint8Array }).bytes)).toEqual(Array.from(jpegBytes));
    const withPrefix = parseStreamMessage(JSON.stringify({ type: 'frame', data: `data:image/jpeg;base64,${b64(jpegBytes)}`, frame_id: 'a-1' }), false, limits);
    expect(withPrefix).toMatchObject({ kind: 'frame', frameId: 'a-1' });
    expect('clientTimestamp' in withPrefix).toBe(false);
    // Text frames may arrive as bytes (ws gives a Buffer).
    expect(parseStreamMessage(new TextEncoder().encode(message), false, limits)).toMatchObject({ kind: 'frame', frameId: 7 });
  });

  it('answers a ping', () => {
    expect(parseStreamMessage('{"type":"ping"}', false, limits)).toEqual({ kind: 'ping' });
  });

  it.each([
    ['not json', 'invalid_json'],
    ['[1,2]', 'invalid_message'],
    ['"frame"', 'invalid_message'],
    ['{"type":"hello"}', 'unknown_type'],
    ['{"data":"AQID"}', 'unknown_type'],
    ['{"type":"frame"}', 'invalid_message'],
    ['{"type":"frame","data":42}', 'invalid_message'],
    ['{"type":"frame","data":"AQID","frame_id":{"x":1}}', 'invalid_message'],
    ['{"type":"frame","data":"AQID","timestamp":"yesterday"}', 'invalid_message'],
    ['{"type":"frame","data":"%%%not base64%%%"}', 'invalid_base64'],
    ['{"type":"frame","data":"aGVsbG8gd29ybGQ="}', 'invalid_image'],
    ['{"type":"frame","data":""}', 'invalid_image'],
  ])('refuses %s with %s', (text, code) => {
    expect(parseStreamMessage(text, false, limits)).toMatchObject({ kind: 'error', code });
  });

  it('refuses oversize images, binary or base64, and formats not accepted', () => {
    const big = new Uint8Array(1001);
    big.set(jpegBytes.subarray(0, 3));
    expect(parseStreamMessage(big, true, limits)).toMatchObject({ kind: 'error', code: 'image_too_large' });
    expect(parseStreamMessage(JSON.stringify({ type: 'frame', data: b64(big) }), false, limits)).toMatchObject({ kind: 'error', code: 'image_too_large' });
    expect(parseStreamMessage(`{"type":"frame","data":"${'A'.repeat(200_000)}"}`, false, limits)).toMatchObject({ kind: 'error', code: 'image_too_large' });
    expect(parseStreamMessage(new TextEncoder().encode('GIF89a....'), true, limits)).toMatchObject({ kind: 'error', code: 'invalid_image' });
    expect(parseStreamMessage(pngBytes, true, { ...limits, formats: ['jpeg'] })).toMatchObject({ kind: 'error', code: 'invalid_image' });
  });
});

import { describe, expect, it } from 'vitest';
import { listeningLine } from './serve.ts';

describe('listeningLine', () => {
  it('names the machine’s network addresses, with the bound port, when the server listens on every interface', () => {
    const line = listeningLine('http://127.0.0.1:41234', '0.0.0.0', '1 vision worker', ['192.168.1.20', '10.0.0.5']);
    expect(line).toBe('facegate: listening on http://127.0.0.1:41234 (1 vision worker; every interface, e.g. http://192.168.1.20:41234, http://10.0.0.5:41234)');
    // Scripts and tests read the first address from this line.
    expect(/listening on (http:\/\/[\d.]+:\d+)/.exec(line)?.[1]).toBe('http://127.0.0.1:41234');
    expect(listeningLine('http://127.0.0.1:8080', '::', 'x', [])).toBe('facegate: listening on http://127.0.0.1:8080 (x; every interface)');
  });

  it('says only the address for a host of its own', () => {
    expect(listeningLine('http://127.0.0.1:8080', '127.0.0.1', 'x', ['192.168.1.20'])).toBe('facegate: listening on http://127.0.0.1:8080 (x)');
  });
});

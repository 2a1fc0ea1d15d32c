import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/config.ts';
import { blockedAddressReason, fetchImage, UrlFetchError, type UrlFetchOptions } from '../../src/sources/url-image.ts';

const PNG_BYTES = Buffer.from(
  '89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da63f8cfc0f01f0005000201' + 'a5d1d8d80000000049454e44ae426082',
  'hex',
);

async function expectFetchError(promise: Promise<unknown>, code: string, status?: number): Promise<UrlFetchError> {
  const err = await promise.then(
    () => {
      throw new Error(`expected ${code}, the fetch succeeded`);
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(UrlFetchError);
  expect((err as UrlFetchError).code).toBe(code);
  if (status !== undefined) expect((err as UrlFetchError).status).toBe(status);
  return err as UrlFetchError;
}

describe('fetchImage (a real HTTP server on 127.0.0.1)', () => {
  let server: Server;
  let port: number;
  let base: string;
  const hits: string[] = [];
  const sockets = new Set<Socket>();

  const routes: Record<string, (req: IncomingMessage, res: ServerResponse) => void> = {
    '/face.png': (_req, res) => {
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': PNG_BYTES.length });
      res.end(PNG_BYTES);
    },
    '/face-charset.jpg': (_req, res) => {
      res.writeHead(200, { 'content-type': 'Image/JPEG; charset=binary' });
      res.end(PNG_BYTES);
    },
    '/redirect': (_req, res) => {
      res.writeHead(302, { location: '/face.png' });
      res.end();
    },
    '/redirect-twice': (_req, res) => {
      res.writeHead(301, { location: `${base}/redirect` });
      res.end();
    },
    '/redirect-to-localhost': (_req, res) => {
      res.writeHead(302, { location: `http://localhost:${port}/face.png` });
      res.end();
    },
    '/redirect-to-v6-loopback': (_req, res) => {
      res.writeHead(307, { location: `http://[::1]:${port}/face.png` });
      res.end();
    },
    '/redirect-to-file': (_req, res) => {
      res.writeHead(302, { location: 'file:///etc/passwd' });
      res.end();
    },
    '/big-declared': (_req, res) => {
      res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': 10_000_000 });
      res.write(Buffer.alloc(1000));
      // never finishes: the client must refuse on the header alone
    },
    '/big-streamed': (_req, res) => {
      res.writeHead(200, { 'content-type': 'image/jpeg' }); // chunked, no length
      const chunk = Buffer.alloc(16 * 1024);
      let sent = 0;
      const pump = (): void => {
        while (sent < 5_000_000) {
          sent += chunk.length;
          if (!res.write(chunk)) {
            res.once('drain', pump);
            return;
          }
        }
        res.end();
      };
      pump();
    },
    '/slow-headers': () => {
      // accepts the request and never answers
    },
    '/slow-body': (_req, res) => {
      res.writeHead(200, { 'content-type': 'image/png' });
      res.write(PNG_BYTES.subarray(0, 10));
      // ...and stalls
    },
    '/page.html': (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<html></html>');
    },
    '/no-type': (_req, res) => {
      res.writeHead(200);
      res.end(PNG_BYTES);
    },
    '/missing': (_req, res) => {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('nope');
    },
  };

  beforeAll(async () => {
    server = createServer((req, res) => {
      hits.push(req.url ?? '');
      const route = routes[req.url ?? ''];
      if (route) route(req, res);
      else {
        res.writeHead(404);
        res.end();
      }
    });
    server.on('connection', (s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
    base = `http://127.0.0.1:${port}`;
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  });

  const options = (over: Partial<UrlFetchOptions> = {}): UrlFetchOptions => ({ ...parseConfig({}).urlFetch, allowPrivateNetworks: true, ...over });
  /** Only the test server's own address counts as public: lets the first hop through, and nothing else. */
  const onlyTestServer = (address: string): string | null => (address === '127.0.0.1' ? null : 'not the test server');

  it('fetches an image when private networks are allowed', async () => {
    const image = await fetchImage(`${base}/face.png`, options());
    expect(Buffer.from(image.bytes).equals(PNG_BYTES)).toBe(true);
    expect(image.contentType).toBe('image/png');
    expect(image.finalUrl).toBe(`${base}/face.png`);
  });

  it('normalises the content type (case, parameters)', async () => {
    const image = await fetchImage(`${base}/face-charset.jpg`, options());
    expect(image.contentType).toBe('image/jpeg');
  });

  it('follows redirects up to maxRedirects, and no further', async () => {
    const image = await fetchImage(`${base}/redirect-twice`, options({ maxRedirects: 2 }));
    expect(image.finalUrl).toBe(`${base}/face.png`);
    const err = await expectFetchError(fetchImage(`${base}/redirect-twice`, options({ maxRedirects: 1 })), 'url_fetch_failed', 502);
    expect(err.message).toMatch(/more than 1 redirects/);
    await expectFetchError(fetchImage(`${base}/redirect`, options({ maxRedirects: 0 })), 'url_fetch_failed');
  });

  it('refuses the loopback server when private networks are not allowed, without connecting', async () => {
    const before = hits.length;
    const err = await expectFetchError(fetchImage(`${base}/face.png`, options({ allowPrivateNetworks: false })), 'url_not_allowed', 422);
    expect(err.message).toMatch(/loopback/);
    expect(hits.length).toBe(before);
  });

  it('refuses a host name that resolves to loopback ("localhost"), without connecting', async () => {
    const before = hits.length;
    const err = await expectFetchError(fetchImage(`http://localhost:${port}/face.png`, options({ allowPrivateNetworks: false })), 'url_not_allowed');
    expect(err.message).toMatch(/localhost resolves to a non-public address/);
    expect(hits.length).toBe(before);
  });

  it('refuses literal loopback IPs in every spelling', async () => {
    for (const url of [
      `http://2130706433:${port}/face.png`,
      `http://0x7f.1:${port}/face.png`,
      `http://0177.0.0.1:${port}/face.png`,
      `http://127.1:${port}/face.png`,
      `http://[::ffff:127.0.0.1]:${port}/face.png`,
      `http://[::ffff:7f00:1]:${port}/face.png`,
      `http://[::1]:${port}/face.png`,
      `http://[0:0:0:0:0:0:0:1]:${port}/face.png`,
      `http://0.0.0.0:${port}/face.png`,
      `http://[::]:${port}/face.png`,
    ]) {
      const before = hits.length;
      await expectFetchError(fetchImage(url, options({ allowPrivateNetworks: false })), 'url_not_allowed');
      expect(hits.length, url).toBe(before);
    }
  });

  it('re-checks every redirect target', async () => {
    // The first hop is allowed (the policy treats the test server as public); its redirect is not.
    const policy = { addressPolicy: onlyTestServer };
    const ok = await fetchImage(`${base}/redirect`, options({ allowPrivateNetworks: false }), policy);
    expect(ok.finalUrl).toBe(`${base}/face.png`);
    const before = hits.length;
    await expectFetchError(fetchImage(`${base}/redirect-to-v6-loopback`, options({ allowPrivateNetworks: false }), policy), 'url_not_allowed');
    // localhost resolves to 127.0.0.1 AND ::1 here: one non-public answer refuses the name.
    const resolvesBoth = async () => [
      { address: '127.0.0.1', family: 4 },
      { address: '::1', family: 6 },
    ];
    await expectFetchError(
      fetchImage(`${base}/redirect-to-localhost`, options({ allowPrivateNetworks: false }), { ...policy, resolve: resolvesBoth }),
      'url_not_allowed',
    );
    await expectFetchError(fetchImage(`${base}/redirect-to-file`, options({ allowPrivateNetworks: false }), policy), 'url_not_allowed');
    // Only the redirecting pages were requested; the refused targets never were.
    expect(hits.slice(before)).toEqual(['/redirect-to-v6-loopback', '/redirect-to-localhost', '/redirect-to-file']);
  });

  it('connects to the address its own lookup checked (a name the system cannot resolve)', async () => {
    const asked: string[] = [];
    const resolve = async (hostname: string) => {
      asked.push(hostname);
      return [{ address: '127.0.0.1', family: 4 }];
    };
    const image = await fetchImage(`http://photos.invalid:${port}/face.png`, options({ allowPrivateNetworks: false }), { resolve, addressPolicy: onlyTestServer });
    expect(image.contentType).toBe('image/png');
    expect(asked).toEqual(['photos.invalid']);
  });

  it('refuses a name whose answers mix public and private addresses', async () => {
    const resolve = async () => [
      { address: '93.184.216.34', family: 4 },
      { address: '10.0.0.5', family: 4 },
    ];
    const err = await expectFetchError(fetchImage('http://mixed.invalid/face.png', options({ allowPrivateNetworks: false }), { resolve }), 'url_not_allowed');
    expect(err.details).toEqual({ address: '10.0.0.5' });
  });

  it('refuses an image whose Content-Length is over the limit before reading it', async () => {
    const started = Date.now();
    await expectFetchError(fetchImage(`${base}/big-declared`, options({ maxBytes: 1_000_000 })), 'url_too_large', 413);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('stops reading a streamed image at the size limit', async () => {
    await expectFetchError(fetchImage(`${base}/big-streamed`, options({ maxBytes: 100_000 })), 'url_too_large', 413);
  });

  it('times out a server that never answers, and one that stalls mid-body', async () => {
    for (const path of ['/slow-headers', '/slow-body']) {
      const started = Date.now();
      await expectFetchError(fetchImage(`${base}${path}`, options({ timeoutMs: 300 })), 'url_timeout', 504);
      const elapsedMs = Date.now() - started;
      expect(elapsedMs).toBeGreaterThanOrEqual(250);
      expect(elapsedMs).toBeLessThan(3000);
    }
  });

  it('refuses a content type that is not an accepted image type', async () => {
    const err = await expectFetchError(fetchImage(`${base}/page.html`, options()), 'unsupported_media_type', 415);
    expect(err.details).toEqual({ contentType: 'text/html' });
    await expectFetchError(fetchImage(`${base}/no-type`, options()), 'unsupported_media_type');
    await expectFetchError(fetchImage(`${base}/face.png`, options({ contentTypes: ['image/jpeg'] })), 'unsupported_media_type');
  });

  it('reports an HTTP error status from the server', async () => {
    const err = await expectFetchError(fetchImage(`${base}/missing`, options()), 'url_fetch_failed', 502);
    expect(err.details).toEqual({ upstreamStatus: 404 });
  });

  it('refuses what is not an http(s) URL', async () => {
    await expectFetchError(fetchImage('not a url', options()), 'url_invalid');
    await expectFetchError(fetchImage('ftp://example.com/a.jpg', options()), 'url_not_allowed');
    await expectFetchError(fetchImage('file:///etc/passwd', options()), 'url_not_allowed');
    await expectFetchError(fetchImage(`http://user:pw@127.0.0.1:${port}/face.png`, options()), 'url_not_allowed');
  });

  it('reports a connection failure as url_fetch_failed', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const freePort = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    await expectFetchError(fetchImage(`http://127.0.0.1:${freePort}/x.png`, options()), 'url_fetch_failed');
  });
});

describe('blockedAddressReason', () => {
  it('lets public unicast addresses through', () => {
    for (const a of ['8.8.8.8', '93.184.216.34', '2606:4700:4700::1111', '::ffff:8.8.8.8', '64:ff9b::808:808']) expect(blockedAddressReason(a), a).toBeNull();
  });

  it('refuses every non-public range, in IPv4 and IPv6 forms', () => {
    const blocked = {
      '127.0.0.1': 'loopback',
      '10.1.2.3': 'private',
      '172.16.0.1': 'private',
      '192.168.1.1': 'private',
      '169.254.169.254': 'linkLocal',
      '100.64.0.1': 'carrierGradeNat',
      '0.0.0.0': 'unspecified',
      '224.0.0.1': 'multicast',
      '255.255.255.255': 'broadcast',
      '::1': 'loopback',
      '::': 'unspecified',
      'fe80::1': 'linkLocal',
      'fd00::1': 'uniqueLocal',
      'ff02::1': 'multicast',
      '::ffff:127.0.0.1': 'IPv4-mapped loopback',
      '::ffff:10.0.0.1': 'IPv4-mapped private',
      '::ffff:169.254.169.254': 'IPv4-mapped linkLocal',
      '64:ff9b::a00:1': 'NAT64 private',
      '2002:7f00:1::': '6to4',
    };
    for (const [address, reason] of Object.entries(blocked)) expect(blockedAddressReason(address), address).toBe(reason);
    expect(blockedAddressReason('not-an-ip')).toBe('not an IP address');
  });
});

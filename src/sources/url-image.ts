import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { request as httpRequest, type ClientRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';
import type { Config } from '../config/config.ts';
import { AppError } from '../domain/errors.ts';

/*
 * Fetches an image a client named by URL without letting that URL reach into the server's own
 * network (SSRF). The host is resolved once, by our own lookup, every address it resolves to must
 * be a public unicast address, and the socket connects to exactly the address that was checked:
 * a DNS answer that changes between the check and the connect (rebinding) has nothing to exploit.
 * Redirects are followed by hand so that each target is checked the same way. Size, time and
 * content type are limited while the response streams in.
 */

export type UrlFetchOptions = Config['urlFetch'];

export interface FetchedImage {
  bytes: Uint8Array;
  /** The response's media type, lower-case, without parameters (e.g. "image/jpeg"). */
  contentType: string;
  /** The URL the bytes came from, after redirects. */
  finalUrl: string;
}

/** Resolves a host name to every address it has (tests replace it to play a DNS server). */
export type HostResolver = (hostname: string) => Promise<LookupAddress[]>;

/** Why an address may not be connected to, or null when it may. */
export type AddressPolicy = (address: string) => string | null;

export interface FetchImageDeps {
  resolve?: HostResolver;
  /** Replaces the address rule (default: blockedAddressReason, or allow all with allowPrivateNetworks). */
  addressPolicy?: AddressPolicy;
  userAgent?: string;
}

/**
 * Error codes and statuses. url_invalid / url_not_allowed are the caller's URL (422: the request
 * was well-formed, its target is unusable); url_fetch_failed is the remote end failing (502);
 * url_timeout 504; url_too_large 413; unsupported_media_type 415.
 */
export class UrlFetchError extends AppError {
  constructor(code: 'url_invalid' | 'url_not_allowed' | 'url_fetch_failed' | 'url_timeout' | 'url_too_large' | 'unsupported_media_type', message: string, details?: Record<string, unknown>) {
    super(code, URL_FETCH_STATUS[code], message, details);
    this.name = 'UrlFetchError';
  }
}

const URL_FETCH_STATUS = {
  url_invalid: 422,
  url_not_allowed: 422,
  url_fetch_failed: 502,
  url_timeout: 504,
  url_too_large: 413,
  unsupported_media_type: 415,
} as const;

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

const defaultResolve: HostResolver = (hostname) =>
  new Promise((resolve, reject) => {
    dnsLookup(hostname, { all: true, verbatim: true }, (err, addresses) => (err ? reject(err) : resolve(addresses)));
  });

/**
 * Why an address may not be fetched from, or null when it is public unicast. Only ipaddr.js's
 * 'unicast' range passes (private, loopback, link-local, unique-local, multicast, unspecified,
 * CGNAT, broadcast, reserved, documentation… are all refused); IPv6 forms that carry an IPv4
 * address (mapped, NAT64) are judged by that IPv4 address; 6to4, Teredo and SIIT are refused.
 */
export function blockedAddressReason(address: string): string | null {
  let parsed: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    parsed = ipaddr.parse(address.replace(/^\[|\]$/g, ''));
  } catch {
    return 'not an IP address';
  }
  if (parsed.kind() === 'ipv6') {
    const v6 = parsed as ipaddr.IPv6;
    const range = v6.range();
    if (range === 'ipv4Mapped') return withPrefix('IPv4-mapped', blockedAddressReason(v6.toIPv4Address().toString()));
    if (range === 'rfc6052') {
      const p = v6.parts;
      const embedded = new ipaddr.IPv4([p[6]! >> 8, p[6]! & 0xff, p[7]! >> 8, p[7]! & 0xff]);
      return withPrefix('NAT64', blockedAddressReason(embedded.toString()));
    }
    return range === 'unicast' ? null : range;
  }
  const range = (parsed as ipaddr.IPv4).range();
  return range === 'unicast' ? null : range;
}

const allowEveryAddress: AddressPolicy = () => null;

function withPrefix(prefix: string, reason: string | null): string | null {
  return reason === null ? null : `${prefix} ${reason}`;
}

/** Checks a URL's scheme, credentials and (when it is a literal IP) its address; returns it parsed. */
function checkUrl(raw: string, policy: AddressPolicy): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UrlFetchError('url_invalid', 'the photo URL is not a valid absolute URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UrlFetchError('url_not_allowed', `only http and https URLs are fetched, not ${url.protocol.replace(/:$/, '')}`);
  }
  if (url.username || url.password) throw new UrlFetchError('url_not_allowed', 'URLs with embedded credentials are not fetched');
  // WHATWG parsing has already turned 2130706433, 0x7f.1 and 017700000001 into 127.0.0.1.
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (isIP(host) !== 0) {
    const reason = policy(host);
    if (reason) throw new UrlFetchError('url_not_allowed', `the URL points at a non-public address (${reason})`, { address: host });
  }
  return url;
}

/**
 * A net lookup that resolves through `resolve`, refuses the host when ANY of its addresses is not
 * public (a name that mixes public and private answers is not trusted), and hands the socket only
 * addresses it checked. The first refusal is kept in `refusal` so the caller can report it.
 */
function guardedLookup(resolve: HostResolver, policy: AddressPolicy, onRefused: (error: UrlFetchError) => void): LookupFunction {
  return (hostname, options, callback) => {
    resolve(hostname).then(
      (addresses) => {
        const family = typeof options === 'object' && options !== null ? options.family : undefined;
        const wanted = addresses.filter((a) => !family || family === 0 || a.family === family);
        if (wanted.length === 0) {
          const err = Object.assign(new Error(`no address found for ${hostname}`), { code: 'ENOTFOUND' });
          callback(err, '', 0);
          return;
        }
        for (const a of addresses) {
          const reason = policy(a.address);
          if (reason) {
            const refusal = new UrlFetchError('url_not_allowed', `${hostname} resolves to a non-public address (${reason})`, { address: a.address });
            onRefused(refusal);
            callback(refusal, '', 0);
            return;
          }
        }
        if (typeof options === 'object' && options !== null && options.all) callback(null, wanted);
        else callback(null, wanted[0]!.address, wanted[0]!.family);
      },
      (err: NodeJS.ErrnoException) => callback(err, '', 0),
    );
  };
}

function mediaTypeOf(header: string | undefined): string {
  return (header ?? '').split(';')[0]!.trim().toLowerCase();
}

/**
 * Downloads an image from an http(s) URL within the urlFetch limits. Throws UrlFetchError (an
 * AppError) with codes url_invalid, url_not_allowed, url_fetch_failed, url_timeout, url_too_large
 * or unsupported_media_type.
 */
export async function fetchImage(rawUrl: string, options: UrlFetchOptions, deps: FetchImageDeps = {}): Promise<FetchedImage> {
  const resolve = deps.resolve ?? defaultResolve;
  const policy = deps.addressPolicy ?? (options.allowPrivateNetworks ? allowEveryAddress : blockedAddressReason);
  const accepted = new Set(options.contentTypes.map((t) => t.toLowerCase()));
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, options.timeoutMs);
  try {
    let url = checkUrl(rawUrl, policy);
    for (let redirects = 0; ; redirects++) {
      const res = await openResponse(url, options, resolve, policy, controller.signal, deps.userAgent ?? 'facegate', () => timedOut);
      const status = res.statusCode ?? 0;
      if (REDIRECT_STATUSES.has(status)) {
        res.destroy();
        const location = res.headers.location;
        if (!location) throw new UrlFetchError('url_fetch_failed', `the server answered ${status} without a Location`, { upstreamStatus: status });
        if (redirects >= options.maxRedirects) {
          throw new UrlFetchError('url_fetch_failed', `more than ${options.maxRedirects} redirects`, { upstreamStatus: status });
        }
        let next: string;
        try {
          next = new URL(location, url).href;
        } catch {
          throw new UrlFetchError('url_fetch_failed', 'the server redirected to an invalid URL', { upstreamStatus: status });
        }
        url = checkUrl(next, policy);
        continue;
      }
      if (status < 200 || status > 299) {
        res.destroy();
        throw new UrlFetchError('url_fetch_failed', `the server answered HTTP ${status}`, { upstreamStatus: status });
      }
      const contentType = mediaTypeOf(res.headers['content-type']);
      if (!accepted.has(contentType)) {
        res.destroy();
        throw new UrlFetchError('unsupported_media_type', `the URL served ${contentType || 'no content type'}, not one of ${[...accepted].join(', ')}`, {
          contentType: contentType || null,
        });
      }
      const declared = Number(res.headers['content-length']);
      if (Number.isFinite(declared) && declared > options.maxBytes) {
        res.destroy();
        throw new UrlFetchError('url_too_large', `the image is ${declared} bytes, more than the ${options.maxBytes} allowed`, { maxBytes: options.maxBytes });
      }
      const bytes = await readBody(res, options.maxBytes, () => timedOut);
      return { bytes, contentType, finalUrl: url.href };
    }
  } finally {
    clearTimeout(timer);
  }
}

function timeoutError(options: UrlFetchOptions): UrlFetchError {
  return new UrlFetchError('url_timeout', `the URL did not answer within ${options.timeoutMs} ms`);
}

function openResponse(
  url: URL,
  options: UrlFetchOptions,
  resolve: HostResolver,
  policy: AddressPolicy,
  signal: AbortSignal,
  userAgent: string,
  timedOut: () => boolean,
): Promise<IncomingMessage> {
  return new Promise((resolvePromise, reject) => {
    let refusal: UrlFetchError | undefined;
    const requestOptions: RequestOptions = {
      method: 'GET',
      // A fresh agent per request: no pooled socket outlives the lookup that checked it.
      agent: false,
      signal,
      lookup: guardedLookup(resolve, policy, (e) => (refusal = e)),
      headers: { 'user-agent': userAgent, accept: options.contentTypes.join(', '), 'accept-encoding': 'identity' },
    };
    let req: ClientRequest;
    try {
      req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, requestOptions);
    } catch {
      reject(new UrlFetchError('url_invalid', 'the photo URL cannot be requested'));
      return;
    }
    req.on('response', (res) => {
      // Defence in depth: the socket must be connected to an address the lookup let through.
      const remote = res.socket.remoteAddress;
      if (remote && policy(remote)) {
        res.destroy();
        reject(new UrlFetchError('url_not_allowed', 'the connection went to a non-public address', { address: remote }));
        return;
      }
      resolvePromise(res);
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (refusal) reject(refusal);
      else if (timedOut()) reject(timeoutError(options));
      else reject(new UrlFetchError('url_fetch_failed', `could not fetch the URL (${err.code ?? err.message})`));
    });
    req.end();
  });
}

function readBody(res: IncomingMessage, maxBytes: number, timedOut: () => boolean): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    let settled = false;
    const fail = (error: UrlFetchError): void => {
      if (settled) return;
      settled = true;
      res.destroy();
      reject(error);
    };
    res.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received > maxBytes) {
        fail(new UrlFetchError('url_too_large', `the image is more than the ${maxBytes} bytes allowed`, { maxBytes }));
        return;
      }
      chunks.push(chunk);
    });
    res.on('end', () => {
      if (settled) return;
      settled = true;
      const all = Buffer.concat(chunks, received);
      resolve(new Uint8Array(all.buffer, all.byteOffset, all.byteLength));
    });
    const onAbort = (): void =>
      fail(timedOut() ? new UrlFetchError('url_timeout', 'the URL did not finish sending in time') : new UrlFetchError('url_fetch_failed', 'the connection broke while reading the image'));
    res.on('aborted', onAbort);
    res.on('error', onAbort);
    res.on('close', () => {
      if (!settled && !res.complete) onAbort();
    });
  });
}

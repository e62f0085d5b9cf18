/**
 * Web Push settings (docs/server.md "Web Push"): the VAPID key pair (given, or generated once and kept in
 * the database so that every node of a cluster signs with the same one), the VAPID subject, and how often
 * one device may be woken.
 */
import { createECDH } from 'node:crypto';

/** What `startServer` accepts under `push`; everything is optional. */
export interface PushOptions {
  /** The VAPID public key (base64url, 65-byte uncompressed P-256 point); with `vapidPrivateKey`, instead of the stored pair. */
  vapidPublicKey?: string;
  /** The VAPID private key (base64url, 32 bytes). */
  vapidPrivateKey?: string;
  /** The contact push services see in the VAPID token: a `mailto:` or `https:` URL. Default {@link DEFAULT_VAPID_SUBJECT}. */
  vapidSubject?: string;
  /** After a push, a device gets at most one more (for everything queued meanwhile) this long later. Default 20 s. */
  minIntervalMs?: number;
  /**
   * In a cluster, when the device's account is online on some node, the device may be connected there:
   * the push waits this long and is sent only if what woke it is still queued (unacknowledged). Default 3 s.
   */
  ackGraceMs?: number;
  /** How long a push service keeps an undelivered push (the `TTL` header), seconds. Default 1 day. */
  ttlSeconds?: number;
  /** A push service request that takes longer is abandoned. Default 10 s. */
  timeoutMs?: number;
  /** Push service requests in flight at once on this node. Default 32. */
  maxConcurrent?: number;
  /** Tests only: accept `http://` endpoints on loopback (127.0.0.0/8, ::1, localhost). Default false. */
  allowLoopbackHttp?: boolean;
}

/** The resolved push settings. */
export interface PushConfig {
  /** Both keys, or undefined to use the stored (or a newly generated) pair. */
  readonly vapidKeys: { readonly publicKey: string; readonly privateKey: string } | undefined;
  readonly vapidSubject: string;
  readonly minIntervalMs: number;
  readonly ackGraceMs: number;
  readonly ttlSeconds: number;
  readonly timeoutMs: number;
  readonly maxConcurrent: number;
  readonly allowLoopbackHttp: boolean;
}

/** The default VAPID subject. Operators should name a real contact (`--vapid-subject`); some push services check it. */
export const DEFAULT_VAPID_SUBJECT = 'mailto:postmaster@localhost';

const BASE64URL = /^[A-Za-z0-9_-]+={0,2}$/;

/** Decodes base64url (padding optional); undefined when malformed. */
export function fromBase64Url(value: string): Uint8Array | undefined {
  if (!BASE64URL.test(value)) return undefined;
  return new Uint8Array(Buffer.from(value.replace(/=+$/, ''), 'base64url'));
}

/** Unpadded base64url. */
export function toBase64Url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

/**
 * Checks a VAPID key pair: a 65-byte uncompressed P-256 public key and the 32-byte private key it belongs
 * to. Throws RangeError naming what is wrong (never the private key).
 */
export function checkVapidKeys(publicKey: string, privateKey: string): { publicKey: string; privateKey: string } {
  const pub = fromBase64Url(publicKey);
  const priv = fromBase64Url(privateKey);
  if (pub === undefined || pub.length !== 65 || pub[0] !== 4) throw new RangeError('the VAPID public key is a base64url 65-byte uncompressed P-256 point');
  if (priv === undefined || priv.length !== 32) throw new RangeError('the VAPID private key is 32 bytes, base64url');
  let derived: Uint8Array;
  try {
    const ecdh = createECDH('prime256v1');
    ecdh.setPrivateKey(priv);
    derived = ecdh.getPublicKey();
  } catch {
    throw new RangeError('the VAPID private key is not a P-256 private key');
  }
  if (!Buffer.from(derived).equals(Buffer.from(pub))) throw new RangeError('the VAPID public key does not belong to the private key');
  return { publicKey: toBase64Url(pub), privateKey: toBase64Url(priv) };
}

/** Checks a VAPID subject: a `mailto:` address or an `https:` URL. */
export function checkVapidSubject(subject: string): string {
  let url: URL;
  try {
    url = new URL(subject);
  } catch {
    throw new RangeError('the VAPID subject is a mailto: address or an https: URL');
  }
  if (url.protocol !== 'mailto:' && url.protocol !== 'https:') throw new RangeError('the VAPID subject is a mailto: address or an https: URL');
  return subject;
}

function positiveInt(name: string, value: number, max: number): number {
  if (!Number.isInteger(value) || value <= 0 || value > max) throw new RangeError(`push ${name} must be an integer in 1..${max}`);
  return value;
}

/** Fills in defaults and checks ranges; throws RangeError. */
export function resolvePushConfig(options: PushOptions = {}): PushConfig {
  const { vapidPublicKey: pub, vapidPrivateKey: priv } = options;
  if ((pub === undefined) !== (priv === undefined)) throw new RangeError('the VAPID public and private keys go together');
  return {
    vapidKeys: pub === undefined || priv === undefined ? undefined : checkVapidKeys(pub, priv),
    vapidSubject: checkVapidSubject(options.vapidSubject ?? DEFAULT_VAPID_SUBJECT),
    minIntervalMs: positiveInt('minIntervalMs', options.minIntervalMs ?? 20_000, 86_400_000),
    ackGraceMs: positiveInt('ackGraceMs', options.ackGraceMs ?? 3000, 600_000),
    ttlSeconds: positiveInt('ttlSeconds', options.ttlSeconds ?? 86_400, 28 * 86_400),
    timeoutMs: positiveInt('timeoutMs', options.timeoutMs ?? 10_000, 600_000),
    maxConcurrent: positiveInt('maxConcurrent', options.maxConcurrent ?? 32, 10_000),
    allowLoopbackHttp: options.allowLoopbackHttp ?? false,
  };
}

/**
 * Parley's protocol core: the Signal Protocol (PQXDH, Double Ratchet, Sender Keys, safety numbers),
 * wire-compatible with libsignal 0.90. Pure and isomorphic: primitives come from an injected
 * {@link CryptoProvider}, stores and clocks are parameters.
 */
export * from './address.js';
export * from './bytes.js';
export * from './crypto.js';
export * from './device-identity.js';
export * from './errors.js';
export * from './kem.js';
export * from './keys.js';
export * from './messages.js';
export * from './records.js';
export * from './session.js';
export * from './session-cipher.js';
export * from './sender-keys.js';
export * from './fingerprint.js';
export * from './session-record.js';
export * from './stores.js';
export { WebCryptoProvider, type WebCryptoLike } from './webcrypto-provider.js';

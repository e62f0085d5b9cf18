// The crypto provider the protocol tests run with. In Node it is node:crypto; the browser harness
// (test/browser) swaps this module for one that returns the WebCrypto provider.
import { NodeCryptoProvider } from '../../src/node/crypto-provider.ts';
import type { CryptoProvider } from '../../src/protocol/crypto.ts';

export const provider: CryptoProvider = new NodeCryptoProvider();
export const providerName = 'node:crypto';

// The browser's replacement for test/support/provider.ts: the harness swaps that module for this one, so
// the protocol tests run against the WebCrypto provider in Chromium.
import type { CryptoProvider } from '../../src/protocol/crypto.ts';
import { WebCryptoProvider } from '../../src/protocol/webcrypto-provider.ts';

export const provider: CryptoProvider = new WebCryptoProvider();
export const providerName = 'webcrypto';

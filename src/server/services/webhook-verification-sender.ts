import type { PhoneNumber } from '../ids.js';
import type { VerificationSender } from './verification-sender.js';

/**
 * POSTs `{"number": "+1...", "code": "123456"}` as JSON to a URL (an SMS gateway or a bridge to one).
 * Any 2xx answer counts as sent; anything else, a network error or the timeout rejects.
 */
export class WebhookVerificationSender implements VerificationSender {
  readonly #url: string;
  readonly #timeoutMs: number;

  constructor(url: string, timeoutMs = 10_000) {
    this.#url = url;
    this.#timeoutMs = timeoutMs;
  }

  async send(number: PhoneNumber, code: string): Promise<void> {
    const response = await fetch(this.#url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ number, code }),
      signal: AbortSignal.timeout(this.#timeoutMs),
      redirect: 'error',
    });
    // Drain the body so the connection can be reused; its content is not needed.
    await response.arrayBuffer().catch(() => undefined);
    if (!response.ok) throw new Error(`verification webhook answered ${response.status}`);
  }
}

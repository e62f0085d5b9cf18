import { maskPhoneNumber, type PhoneNumber } from '../ids.js';
import type { Logger } from '../log.js';
import type { VerificationSender } from './verification-sender.js';

/**
 * Writes the code to the server log. This is the only log line allowed to contain a code, and it shows
 * the number masked (`+1555*****01`): the operator reads the code off the log and tells the user.
 */
export class LogVerificationSender implements VerificationSender {
  readonly #logger: Logger;

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  async send(number: PhoneNumber, code: string): Promise<void> {
    this.#logger.info({ event: 'verification_code', to: maskPhoneNumber(number), verificationCode: code }, 'verification code issued');
  }
}

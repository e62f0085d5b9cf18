/**
 * How a verification code reaches the owner of a number. Pluggable: the `log` sender writes it to the
 * server log (development, small deployments), the `webhook` sender posts it to an SMS gateway.
 */
import type { PhoneNumber } from '../ids.js';

/** Delivers a verification code. Rejects when the code could not be handed over. */
export interface VerificationSender {
  send(number: PhoneNumber, code: string): Promise<void>;
}

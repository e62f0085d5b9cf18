/** The order of message statuses: an outgoing message's status only moves forward. */
import type { MessageStatus } from './store/types.js';

const RANK: Readonly<Record<MessageStatus, number>> = {
  failed: 0,
  pending: 1,
  sent: 2,
  received: 2,
  delivered: 3,
  read: 4,
  viewed: 5,
};

/** `next` when it is further along than `current`, else `current`. A failed message can still be sent later. */
export function advanceStatus(current: MessageStatus, next: MessageStatus): MessageStatus {
  return RANK[next] > RANK[current] ? next : current;
}

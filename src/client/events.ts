/** The typed events a {@link Client} emits. */
import type { AccountId, E164, GroupId, MessageId } from './ids.js';
import type { IdentityChangeNotice } from './protocol-stores.js';
import type { AttachmentRecord, GroupRecord, MessageRecord, VerificationStatus } from './store/types.js';
import type { StateChange } from './transport/websocket.js';
import type { CallEvent, CallRejectedEvent } from './calls/manager.js';
import type { GroupCallEvent } from './calls/group-manager.js';
import type { GroupView } from './groups/state.js';

export type { CallEvent, CallRejectedEvent } from './calls/manager.js';
export type { GroupCallEvent } from './calls/group-manager.js';

/** A call was recorded in its chat (a `call` message: missed, declined, answered with its duration, ...). */
export interface CallRecordedEvent {
  readonly message: MessageRecord;
}

/** Who sent something: the account and device, and the phone number once the server's directory confirmed it. */
export interface Sender {
  readonly accountId: AccountId;
  readonly deviceId: number;
  /** The confirmed number, or the sender's own unconfirmed claim (then `numberVerified` is false). */
  readonly number: E164 | undefined;
  readonly numberVerified: boolean;
}

export interface MessageEvent {
  readonly from: Sender;
  readonly message: MessageRecord;
}

export interface ReactionEvent {
  readonly from: Sender;
  /** The group it happened in (undefined in a 1:1 conversation). */
  readonly groupId: GroupId | undefined;
  readonly targetId: MessageId;
  readonly emoji: string;
  readonly remove: boolean;
  readonly timestamp: number;
  /** The message reacted to, when stored here. */
  readonly message: MessageRecord | undefined;
}

export interface EditEvent {
  readonly from: Sender;
  /** The group it happened in (undefined in a 1:1 conversation). */
  readonly groupId: GroupId | undefined;
  readonly targetId: MessageId;
  readonly timestamp: number;
  readonly body: string;
  readonly message: MessageRecord | undefined;
}

export interface DeleteEvent {
  readonly from: Sender;
  /** The group it happened in (undefined in a 1:1 conversation). */
  readonly groupId: GroupId | undefined;
  readonly targetId: MessageId;
  readonly timestamp: number;
}

export type ReceiptKind = 'delivery' | 'read' | 'viewed';

export interface ReceiptEvent {
  readonly from: Sender;
  readonly kind: ReceiptKind;
  readonly timestamp: number;
  /** The sender timestamps of our messages the receipt is for. */
  readonly timestamps: readonly number[];
  /** Our messages whose status advanced because of it. */
  readonly updated: readonly MessageRecord[];
}

export interface TypingEvent {
  readonly from: Sender;
  /** The group it happened in (undefined in a 1:1 conversation). */
  readonly groupId: GroupId | undefined;
  readonly started: boolean;
  readonly timestamp: number;
}

/** Someone changed a conversation's disappearing-message timer (a peer, a group member, or another device of ours). */
export interface TimerEvent {
  readonly from: Sender;
  /** The group it happened in (undefined in a 1:1 conversation). */
  readonly groupId: GroupId | undefined;
  readonly expireTimer: number;
  readonly timestamp: number;
  /**
   * The `timer` system message now in the chat's history ("Alice set disappearing messages to 1 week"; its
   * `conversationId` says which chat); undefined for a redelivered change that was recorded before.
   */
  readonly message: MessageRecord | undefined;
}

/** What made a group's state change without a system message. */
export type GroupStateCause =
  /** A member's sender key arrived (with the group's master key when this device lacked it). */
  | 'sender-key'
  /** The group's state was fetched from the server (after being added, or when this device may have been behind). */
  | 'refreshed';

/**
 * A group became usable or changed quietly: after being added, its master key (name, members' names,
 * description) and its members' sender keys arrive in messages of their own, and the group's state is fetched
 * in the background. Re-read the group ({@link GroupStateEvent.group}) and its chat.
 */
export interface GroupStateEvent {
  readonly groupId: GroupId;
  readonly cause: GroupStateCause;
  /** The group as this device now knows it (undefined while it is known only by id: its state not fetched yet). */
  readonly group: GroupView | undefined;
  /** Whether this device holds the group's master key (without it the name and attributes cannot be read). */
  readonly hasMasterKey: boolean;
}

/** A message that could not be decrypted: the user sees it, and the sender was asked to send it again. */
export interface DecryptionFailedEvent {
  readonly from: Sender;
  /** The group it happened in (undefined in a 1:1 conversation). */
  readonly groupId: GroupId | undefined;
  readonly timestamp: number;
  /** The error code (`PROTOCOL_*` or `CLIENT_*`). */
  readonly code: string;
  /** Whether a RetryRequest was queued for the sender. */
  readonly retryRequested: boolean;
}

/** A group changed (created, members added or removed, promoted, name changed, ...): its system message and new state. */
export interface GroupUpdateEvent {
  readonly groupId: GroupId;
  /** The `group-update` system message (its `groupUpdate` says what changed). */
  readonly message: MessageRecord;
  readonly group: GroupRecord;
}

/** A peer's identity key changed (a re-registration, or someone in the middle: compare safety numbers). */
export interface IdentityChangedEvent extends Omit<IdentityChangeNotice, 'status'> {
  readonly number: E164 | undefined;
  /** `verification-required` when the contact was verified: sending to it is blocked until re-verified. */
  readonly status: VerificationStatus;
}

/**
 * An account's linked devices changed (its signed device list added or removed companions): shown to the user,
 * as a safety-number change is; also for our own account.
 */
export interface DevicesChangedEvent {
  readonly accountId: AccountId;
  readonly added: readonly number[];
  readonly removed: readonly number[];
}

/** A newly linked companion imported the history its primary sent it. */
export interface HistorySyncedEvent {
  /** Messages imported (those already here are not counted). */
  readonly messages: number;
  readonly contacts: number;
  readonly groups: number;
}

/** Another device of this account read messages: they are marked read here too (no receipts are sent from here). */
export interface ReadSyncedEvent {
  readonly messages: readonly MessageRecord[];
}

/** An outgoing message's status changed (sent, failed, delivered, read, viewed). */
export interface MessageStatusEvent {
  readonly message: MessageRecord;
}

/** Messages whose disappearing timer ran out were deleted. */
export interface ExpiredEvent {
  readonly ids: readonly MessageId[];
}

/** An attachment's download finished: saved (`state: 'saved'`, `path`) or failed (`state: 'failed'`, `error`). */
export interface AttachmentEvent {
  readonly messageId: MessageId;
  /** Its index in the message's attachments. */
  readonly index: number;
  readonly attachment: AttachmentRecord;
}

/** A background failure worth logging (it never carries plaintext). */
export interface ErrorEvent {
  readonly context: string;
  readonly error: unknown;
}

export interface ClientEvents {
  /** The connection's state. */
  state: StateChange;
  message: MessageEvent;
  reaction: ReactionEvent;
  edit: EditEvent;
  delete: DeleteEvent;
  receipt: ReceiptEvent;
  typing: TypingEvent;
  timer: TimerEvent;
  decryptionFailed: DecryptionFailedEvent;
  groupUpdate: GroupUpdateEvent;
  /** A group's keys or state arrived (it may have just become usable: its name readable, its messages decryptable). */
  groupState: GroupStateEvent;
  identityChanged: IdentityChangedEvent;
  devicesChanged: DevicesChangedEvent;
  historySynced: HistorySyncedEvent;
  readSynced: ReadSyncedEvent;
  messageStatus: MessageStatusEvent;
  expired: ExpiredEvent;
  attachment: AttachmentEvent;
  /** A call rang here, rang at the callee, connected, or ended (see `call.state` and `call.end`). */
  call: CallEvent;
  /** A call message was refused (malformed, stale, replayed, or from someone not in the call). */
  callRejected: CallRejectedEvent;
  /** A group call rang here, runs without this device, was joined here, or ended here (see `call.state`). */
  groupCall: GroupCallEvent;
  callRecorded: CallRecordedEvent;
  /** The server delivered everything that was queued for this device while it was offline. */
  queueEmpty: Record<string, never>;
  error: ErrorEvent;
}

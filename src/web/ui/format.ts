/** Dates, times and labels as the screens show them. */
import type { GroupUpdateRecord, MessageRecord, OutgoingStatus } from '../../client/index.js';
import { callText } from './call-format.js';

const time = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const weekday = new Intl.DateTimeFormat(undefined, { weekday: 'long' });
const shortDate = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short', year: 'numeric' });

export function clockTime(ms: number): string {
  return time.format(ms);
}

function startOfDay(ms: number): number {
  const d = new Date(ms);
  d.setHours(0, 0, 0, 0);
  return d.getTime();
}

/** The day a message belongs to, for date separators ("Today", "Yesterday", a weekday, a date). */
export function dayLabel(ms: number, now = Date.now()): string {
  const days = Math.round((startOfDay(now) - startOfDay(ms)) / 86_400_000);
  if (days === 0) return 'Today';
  if (days === 1) return 'Yesterday';
  if (days > 1 && days < 7) return weekday.format(ms);
  return shortDate.format(ms);
}

export function sameDay(a: number, b: number): boolean {
  return startOfDay(a) === startOfDay(b);
}

/** The time shown in the chats list: a clock time today, else the day. */
export function listTime(ms: number, now = Date.now()): string {
  return sameDay(ms, now) ? clockTime(ms) : dayLabel(ms, now);
}

export function lastSeen(ms: number, now = Date.now()): string {
  if (ms <= 0) return '';
  if (now - ms < 60_000) return 'last seen just now';
  return sameDay(ms, now) ? `last seen today at ${clockTime(ms)}` : `last seen ${dayLabel(ms, now).toLowerCase()} at ${clockTime(ms)}`;
}

/** Timer choices of the disappearing-message menu, seconds. */
export const TIMER_CHOICES: ReadonlyArray<readonly [number, string]> = [
  [0, 'Off'],
  [30, '30 seconds'],
  [300, '5 minutes'],
  [3600, '1 hour'],
  [86_400, '1 day'],
  [604_800, '1 week'],
];

export function timerLabel(seconds: number): string {
  const known = TIMER_CHOICES.find(([s]) => s === seconds);
  if (known) return known[1];
  if (seconds < 60) return `${seconds} seconds`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} minutes`;
  if (seconds < 86_400) return `${Math.round(seconds / 3600)} hours`;
  return `${Math.round(seconds / 86_400)} days`;
}

export const STATUS_WORDS: Readonly<Record<OutgoingStatus, string>> = {
  pending: 'Sending',
  sent: 'Sent',
  delivered: 'Delivered',
  read: 'Read',
  viewed: 'Opened',
  failed: 'Not sent',
};

/** The sentence of a group system message. */
export function groupUpdateText(u: GroupUpdateRecord, name: (id: string) => string): string {
  const actor = name(u.actorId);
  const list = (ids: readonly string[]): string => ids.map(name).join(', ');
  const parts: string[] = [];
  if (u.created) parts.push(`${actor} created the group${u.name ? ` “${u.name}”` : ''}`);
  if (u.joinedByLink) parts.push(`${actor} joined by invite link`);
  if (u.left) parts.push(`${actor} left`);
  if (u.added.length > 0 && !u.created) parts.push(`${actor} added ${list(u.added)}`);
  if (u.removed.length > 0 && !u.left) parts.push(`${actor} removed ${list(u.removed)}`);
  if (u.promoted.length > 0) parts.push(`${actor} made ${list(u.promoted)} admin`);
  if (u.demoted.length > 0) parts.push(`${actor} dismissed ${list(u.demoted)} as admin`);
  if (u.name !== undefined && !u.created) parts.push(`${actor} renamed the group to “${u.name}”`);
  if (u.descriptionChanged) parts.push(`${actor} changed the description`);
  if (u.avatarChanged) parts.push(`${actor} changed the group picture`);
  if (u.settingsChanged) parts.push(`${actor} changed the group settings`);
  if (u.inviteLinkChanged) parts.push(`${actor} changed the invite link`);
  return parts.length > 0 ? parts.join('; ') : `${actor} updated the group`;
}

/** A one-line preview of a message (chats list, replies, notifications). */
export function preview(m: MessageRecord, name: (id: string) => string): string {
  if (m.deleted) return 'This message was deleted';
  switch (m.kind) {
    case 'timer':
      return m.expireTimer === 0 ? 'Disappearing messages off' : `Disappearing messages: ${timerLabel(m.expireTimer)}`;
    case 'undecryptable':
      return 'A message could not be decrypted';
    case 'group-update':
      return m.groupUpdate ? groupUpdateText(m.groupUpdate, name) : 'Group updated';
    case 'call':
      return callText(m);
    case 'text':
      break;
  }
  if (m.viewOnce) return m.direction === 'incoming' && m.status !== 'viewed' ? 'View-once message' : 'Opened';
  const a = m.attachments[0];
  if (a) {
    const what = a.voiceNote ? 'Voice message' : a.type === 'image' ? 'Photo' : a.type === 'video' ? 'Video' : a.type === 'audio' ? 'Audio' : (a.fileName ?? 'File');
    return m.body ? `${what}: ${m.body}` : what;
  }
  return m.body;
}

export function fileSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(0)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

/** Calls in words: durations and a call's record (chat, chats list, notifications). */
import type { MessageRecord } from '../../client/index.js';

/** 0:07, 12:34, 1:02:03 */
export function duration(ms: number): string {
  const total = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

/** A call in words, for the chat and the chats list ("Missed voice call", "Video call · 1:23"). */
export function callText(m: MessageRecord): string {
  const c = m.call;
  if (!c) return 'Call';
  const kind = c.media === 'video' ? 'video call' : 'voice call';
  const Kind = c.media === 'video' ? 'Video call' : 'Voice call';
  switch (c.outcome) {
    case 'answered':
      return `${m.direction === 'outgoing' ? 'Outgoing' : 'Incoming'} ${kind} · ${duration(c.durationMs ?? 0)}`;
    case 'missed':
      return `Missed ${kind}`;
    case 'declined':
      return m.direction === 'outgoing' ? `${Kind} declined` : `Declined ${kind}`;
    case 'busy':
      return `${Kind}: busy`;
    case 'unanswered':
      return `${Kind}: no answer`;
    case 'answered-elsewhere':
      return `${Kind} answered on another device`;
    case 'failed':
      return `${Kind} failed`;
  }
}

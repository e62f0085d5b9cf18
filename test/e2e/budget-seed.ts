// Bundled by budgets.ts for the browser: writes a long conversation straight into a profile's IndexedDB store
// (the same store the app uses), so that opening a 10,000-message chat can be timed without sending 10,000
// messages. Exposes globalThis.parleySeed.
import { messageId, type AccountId, type E164, type MessageRecord } from '../../src/client/index.ts';
import { newMessageRecord } from '../../src/client/message-records.ts';
import { openBrowserStore } from '../../src/web/store/index.ts';

async function seed(profile: string, count: number, peer: AccountId, number: E164): Promise<number> {
  const store = await openBrowserStore(profile);
  try {
    const account = await store.transaction((tx) => tx.account.get());
    if (!account) throw new Error('the profile holds no account');
    const start = Date.now() - count * 60_000;
    const batch = 1000;
    for (let from = 0; from < count; from += batch) {
      await store.transaction(async (tx) => {
        if (from === 0 && !(await tx.contacts.get(peer))) {
          await tx.contacts.put({ accountId: peer, number, numberVerified: true, expireTimer: 0, createdAt: start, updatedAt: start });
        }
        for (let i = from; i < Math.min(count, from + batch); i++) {
          const incoming = i % 3 !== 0;
          const timestamp = start + i * 60_000;
          const m: MessageRecord = newMessageRecord({
            id: messageId(incoming ? peer : account.accountId, timestamp),
            conversationId: peer,
            senderId: incoming ? peer : account.accountId,
            direction: incoming ? 'incoming' : 'outgoing',
            timestamp,
            serverTimestamp: incoming ? timestamp + 5 : undefined,
            receivedAt: timestamp + 10,
            kind: 'text',
            body: `Message ${i + 1}${i % 7 === 0 ? ': a longer line that wraps over more than one line of the bubble, as real messages often do' : ''}`,
            status: incoming ? 'read' : 'read',
          });
          await tx.messages.put(m);
        }
      });
    }
    return count;
  } finally {
    await store.close();
  }
}

(globalThis as unknown as { parleySeed: typeof seed }).parleySeed = seed;

/** Groups: creating one, its info (members, add, remove, promote, leave), and who read a message. */
import { useState } from 'preact/hooks';
import type { ConversationId, GroupView, MessageRecord } from '../../client/index.js';
import { errorInWords } from '../model/errors.js';
import type { Session } from '../model/session.js';
import { clockTime } from './format.js';
import { Modal } from './modal.js';

function numbersOf(text: string): string[] {
  return text
    .split(/[\s,;]+/)
    .map((s) => s.replace(/[()-]/g, ''))
    .filter((s) => s !== '');
}

export function NewGroup(props: { session: Session; onClose: () => void; onCreated: (id: ConversationId) => void }): preact.JSX.Element {
  const [name, setName] = useState('');
  const [members, setMembers] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>();
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      props.onCreated(await props.session.createGroup(name.trim(), numbersOf(members)));
    } catch (err) {
      setError(errorInWords(err));
      setBusy(false);
    }
  };
  return (
    <Modal title="New group" onClose={props.onClose}>
      <form onSubmit={(e) => void submit(e)}>
        <label>
          Group name
          <input name="group-name" value={name} required maxLength={100} onInput={(e) => setName(e.currentTarget.value)} />
        </label>
        <label>
          Members (phone numbers, separated by commas)
          <textarea name="members" rows={3} value={members} placeholder="+15550100002, +15550100003" onInput={(e) => setMembers(e.currentTarget.value)} />
        </label>
        {error && <p class="error" role="alert">{error}</p>}
        <button class="primary" type="submit" disabled={busy || name.trim() === ''}>
          {busy ? 'Creating…' : 'Create group'}
        </button>
      </form>
    </Modal>
  );
}

export function GroupInfo(props: { session: Session; id: ConversationId; onClose: () => void }): preact.JSX.Element {
  const { session, id } = props;
  const g = session.group(id);
  const [add, setAdd] = useState('');
  const [busy, setBusy] = useState(false);
  if (!g) {
    return (
      <Modal title="Group info" onClose={props.onClose}>
        <p>This group is not known here yet.</p>
      </Modal>
    );
  }
  const me = g.members.find((m) => m.self);
  const admin = me?.admin ?? false;
  const mayManage = admin || !g.settings.adminsManageMembers;
  const run = (work: Parameters<Session['changeGroup']>[1]): void => {
    setBusy(true);
    void session.changeGroup(id, work).finally(() => setBusy(false));
  };
  return (
    <Modal title="Group info" onClose={props.onClose}>
      <h3>{g.name || 'Unnamed group'}</h3>
      {g.description && <p>{g.description}</p>}
      {!g.active && <p class="hint">You are no longer a member of this group.</p>}
      <h4>{g.members.length} members</h4>
      <ul class="members" aria-label="Members">
        {g.members.map((m) => {
          const label = m.self ? 'You' : (m.number ?? session.nameOf(m.accountId));
          return (
            <li key={m.accountId}>
              <span>{label}</span>
              {m.admin && <span class="badge">admin</span>}
              {!m.self && g.active && admin && !m.admin && (
                <button disabled={busy} aria-label={`Make ${label} admin`} onClick={() => run((c) => c.promote(id, [m.accountId]))}>
                  Make admin
                </button>
              )}
              {!m.self && g.active && mayManage && (admin || !m.admin) && (
                <button disabled={busy} aria-label={`Remove ${label}`} onClick={() => run((c) => c.removeMembers(id, [m.accountId]))}>
                  Remove
                </button>
              )}
            </li>
          );
        })}
      </ul>
      {g.active && mayManage && (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            const numbers = numbersOf(add);
            if (numbers.length === 0) return;
            setAdd('');
            run((c) => c.addMembers(id, numbers));
          }}
        >
          <label>
            Add members
            <input name="add-members" value={add} placeholder="+15550100004" onInput={(e) => setAdd(e.currentTarget.value)} />
          </label>
          <button type="submit" disabled={busy || add.trim() === ''}>
            Add
          </button>
        </form>
      )}
      {g.active && (
        <button
          class="danger"
          disabled={busy}
          onClick={() => {
            if (confirm('Leave this group? Its history stays on this device.')) run((c) => c.leaveGroup(id));
          }}
        >
          Leave group
        </button>
      )}
    </Modal>
  );
}

/** Per-member receipts of an outgoing group message. */
export function MessageInfo(props: { session: Session; group: GroupView; m: MessageRecord; onClose: () => void }): preact.JSX.Element {
  const { session, group, m } = props;
  const others = group.members.filter((x) => !x.self);
  const by = new Map(m.receipts.map((r) => [r.accountId, r]));
  const read = others.filter((x) => ['read', 'viewed'].includes(by.get(x.accountId)?.status ?? ''));
  const delivered = others.filter((x) => by.get(x.accountId)?.status === 'delivered');
  const waiting = others.filter((x) => !by.has(x.accountId));
  const name = (x: (typeof others)[number]): string => x.number ?? session.nameOf(x.accountId);
  const section = (title: string, list: typeof others): preact.JSX.Element => (
    <section>
      <h4>
        {title} ({list.length})
      </h4>
      <ul class="receipts-list">
        {list.map((x) => (
          <li key={x.accountId}>
            {name(x)}
            {by.get(x.accountId) && <time> {clockTime(by.get(x.accountId)?.at ?? 0)}</time>}
          </li>
        ))}
      </ul>
    </section>
  );
  return (
    <Modal title="Message info" onClose={props.onClose}>
      <p class="summary">
        Read by {read.length} of {others.length}
      </p>
      {section('Read by', read)}
      {section('Delivered to', delivered)}
      {section('Waiting for', waiting)}
    </Modal>
  );
}

/** The safety number of a 1:1 conversation: 60 digits and a QR code to compare in person. */
import { useEffect, useState } from 'preact/hooks';
import type { AccountId, SafetyNumber } from '../../client/index.js';
import { errorInWords } from '../model/errors.js';
import type { Session } from '../model/session.js';
import { Modal } from './modal.js';
import { QrCode } from './qr.js';

function base64(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

export function SafetyNumberView(props: { session: Session; accountId: AccountId; onClose: () => void }): preact.JSX.Element {
  const { session, accountId } = props;
  const [sn, setSn] = useState<SafetyNumber | undefined>();
  const [error, setError] = useState<string | undefined>();
  const [version, setVersion] = useState(0);
  useEffect(() => {
    session.client
      .safetyNumber(accountId)
      .then(setSn)
      .catch((err: unknown) => setError(errorInWords(err)));
  }, [accountId, version]);
  const mark = (verified: boolean): void => {
    const work = verified ? session.client.markVerified(accountId, sn?.identityKey) : session.client.markUnverified(accountId);
    work.then(() => setVersion(version + 1)).catch((err: unknown) => setError(errorInWords(err)));
  };
  return (
    <Modal title="Safety number" onClose={props.onClose}>
      {error && <p class="error" role="alert">{error}</p>}
      {sn && (
        <div class="safety">
          <p class="hint">Compare these numbers with {session.title(accountId)}, in person or on a call. If they match, your messages are end-to-end encrypted with the right keys.</p>
          <QrCode text={`parley-safety:${base64(sn.scannable)}`} label="Safety number QR code" size={200} />
          <p class="digits" aria-label="Safety number digits" data-digits={sn.digits}>
            {sn.formatted}
          </p>
          <p>
            Status: <strong>{sn.status === 'verified' ? 'Verified' : sn.status === 'verification-required' ? 'Changed: check it again' : 'Not verified'}</strong>
          </p>
          {sn.status === 'verified' ? (
            <button onClick={() => mark(false)}>Clear verification</button>
          ) : (
            <>
              <button class="primary" onClick={() => mark(true)}>
                Mark as verified
              </button>
              {sn.status === 'verification-required' && <button onClick={() => mark(false)}>Accept without verifying</button>}
            </>
          )}
        </div>
      )}
    </Modal>
  );
}

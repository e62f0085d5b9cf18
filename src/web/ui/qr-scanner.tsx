/**
 * Scanning a QR code with the camera (the primary scans the code a companion shows to link it).
 *
 * The camera is asked for with getUserMedia (the rear camera when there is one); frames are drawn onto a small
 * canvas a few times a second and decoded by `jsqr`, which is loaded only when the scanner opens (it stays out
 * of the first-load bundle). The camera is released as soon as a code is accepted, the scanner is closed, or
 * the component goes away. Failures (no camera, permission denied, camera busy) are shown in words; the caller
 * keeps pasting the code as the fallback.
 */
import { useEffect, useRef, useState } from 'preact/hooks';

/** How often a frame is decoded, ms (decoding a 640 px frame takes a few ms; the camera runs at 30 fps). */
const SCAN_EVERY_MS = 150;
/** Frames are scaled down to this longest side before decoding (enough for a code that fills part of the view). */
const MAX_SIDE = 640;

type Decode = (data: Uint8ClampedArray, width: number, height: number, options?: { inversionAttempts?: 'dontInvert' | 'onlyInvert' | 'attemptBoth' | 'invertFirst' }) => { data: string } | null;

/** Why the camera could not be used, in words (the DOMException names of getUserMedia). */
export function cameraErrorInWords(err: unknown): string {
  const name = err instanceof DOMException || err instanceof Error ? err.name : '';
  switch (name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return 'Camera permission was denied. Allow the camera for this site in the browser’s settings, or paste the code instead.';
    case 'NotFoundError':
    case 'OverconstrainedError':
      return 'No camera was found on this device. Paste the code instead.';
    case 'NotReadableError':
    case 'AbortError':
      return 'The camera is in use by another app or could not be started. Close that app and try again, or paste the code instead.';
    default:
      return 'The camera could not be started. Paste the code instead.';
  }
}

/** jsqr, loaded on first use (CommonJS: its function is the default export, or that export's own default). */
async function loadDecoder(): Promise<Decode> {
  const mod = (await import('jsqr')) as unknown as { default: Decode | { default: Decode } };
  return typeof mod.default === 'function' ? mod.default : mod.default.default;
}

export interface QrScannerProps {
  /** Called once with the text of the first code that `accept` takes; the camera is stopped before. */
  onResult: (text: string) => void;
  onClose: () => void;
  /** Which codes to take (others show `rejectHint` and scanning goes on). Default: any. */
  accept?: (text: string) => boolean;
  rejectHint?: string;
  label?: string;
}

export function QrScanner(props: QrScannerProps): preact.JSX.Element {
  const video = useRef<HTMLVideoElement>(null);
  const [state, setState] = useState<'starting' | 'scanning' | 'failed'>('starting');
  const [error, setError] = useState<string | undefined>();
  const [hint, setHint] = useState<string | undefined>();
  // The latest callbacks, without restarting the camera when the parent re-renders.
  const latest = useRef(props);
  latest.current = props;

  useEffect(() => {
    let live = true;
    let stream: MediaStream | undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const release = (): void => {
      live = false;
      clearTimeout(timer);
      stream?.getTracks().forEach((t) => t.stop());
      stream = undefined;
      if (video.current) video.current.srcObject = null;
    };
    const fail = (message: string): void => {
      if (!live) return;
      release();
      setError(message);
      setState('failed');
    };
    const start = async (): Promise<void> => {
      if (!navigator.mediaDevices?.getUserMedia) return fail('This browser gives no access to a camera here (it needs https). Paste the code instead.');
      const decoder = loadDecoder();
      try {
        stream = await navigator.mediaDevices.getUserMedia({ audio: false, video: { facingMode: { ideal: 'environment' }, width: { ideal: 1280 }, height: { ideal: 720 } } });
      } catch (err) {
        return fail(cameraErrorInWords(err));
      }
      if (!live) return release();
      const v = video.current;
      if (!v) return release();
      v.srcObject = stream;
      try {
        await v.play();
      } catch (err) {
        return fail(cameraErrorInWords(err));
      }
      let decode: Decode;
      try {
        decode = await decoder;
      } catch {
        return fail('The QR reader could not be loaded (offline?). Paste the code instead.');
      }
      if (!live) return;
      setState('scanning');
      const canvas = document.createElement('canvas');
      const ctx = canvas.getContext('2d', { willReadFrequently: true });
      if (!ctx) return fail('This browser cannot read camera frames. Paste the code instead.');
      const tick = (): void => {
        if (!live) return;
        if (v.readyState >= HTMLMediaElement.HAVE_CURRENT_DATA && v.videoWidth > 0) {
          const scale = Math.min(1, MAX_SIDE / Math.max(v.videoWidth, v.videoHeight));
          const w = Math.round(v.videoWidth * scale);
          const h = Math.round(v.videoHeight * scale);
          if (canvas.width !== w || canvas.height !== h) Object.assign(canvas, { width: w, height: h });
          ctx.drawImage(v, 0, 0, w, h);
          const code = decode(ctx.getImageData(0, 0, w, h).data, w, h, { inversionAttempts: 'dontInvert' });
          if (code && code.data !== '') {
            const { accept, onResult, rejectHint } = latest.current;
            if (!accept || accept(code.data)) {
              release();
              onResult(code.data);
              return;
            }
            setHint(rejectHint ?? 'That QR code is not the one expected.');
          }
        }
        timer = setTimeout(tick, SCAN_EVERY_MS);
      };
      tick();
    };
    void start();
    return release;
  }, []);

  return (
    <div class="qr-scanner" role="group" aria-label={props.label ?? 'QR code scanner'} data-state={state}>
      {state !== 'failed' && (
        <video ref={video} muted playsInline aria-label="Camera view" style={{ display: 'block', width: '100%', maxWidth: '360px', margin: '8px auto', borderRadius: '8px', background: '#000' }} />
      )}
      {state === 'starting' && <p aria-busy="true">Starting the camera…</p>}
      {state === 'scanning' && <p class="hint">Point the camera at the QR code the other device shows.</p>}
      {hint && state === 'scanning' && <p class="hint" role="status">{hint}</p>}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <button type="button" onClick={() => latest.current.onClose()}>
        {state === 'failed' ? 'Close scanner' : 'Stop scanning'}
      </button>
    </div>
  );
}

/** A QR code of a text, drawn by the `qrcode` package (loaded on demand: only a few screens need it). */
import { useEffect, useState } from 'preact/hooks';

export function QrCode(props: { text: string; label: string; size?: number }): preact.JSX.Element {
  const [url, setUrl] = useState<string | undefined>();
  const [failed, setFailed] = useState(false);
  useEffect(() => {
    let live = true;
    import('qrcode')
      .then((m) => m.toDataURL(props.text, { margin: 1, width: props.size ?? 240, errorCorrectionLevel: 'M' }))
      .then((u) => live && setUrl(u))
      .catch(() => live && setFailed(true));
    return () => {
      live = false;
    };
  }, [props.text, props.size]);
  if (failed) return <p class="hint">The QR code could not be drawn; use the text below.</p>;
  return url ? <img class="qr" src={url} alt={props.label} width={props.size ?? 240} height={props.size ?? 240} /> : <div class="qr placeholder" aria-busy="true" />;
}

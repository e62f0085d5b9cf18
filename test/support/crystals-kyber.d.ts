// Types for the devDependency crystals-kyber 5.1.0 (a JavaScript round-3 CRYSTALS-Kyber, used only as an
// independent reference in the Node-only KEM interop test). Only the Kyber1024 functions are declared.
declare module 'crystals-kyber' {
  /** A fresh key pair: [public key (1568 bytes), secret key (3168 bytes)] as arrays of byte values. */
  export function KeyGen1024(): [number[], number[]];
  /** Encapsulates to `publicKey`: [ciphertext (1568 bytes), shared secret (32 bytes)]. */
  export function Encrypt1024(publicKey: ArrayLike<number>): [number[], Uint8Array];
  /** Decapsulates `ciphertext` with `secretKey` (round-3 implicit rejection on failure). */
  export function Decrypt1024(ciphertext: ArrayLike<number>, secretKey: ArrayLike<number>): Uint8Array;
  const kyber: {
    KeyGen1024: typeof KeyGen1024;
    Encrypt1024: typeof Encrypt1024;
    Decrypt1024: typeof Decrypt1024;
  };
  export default kyber;
}

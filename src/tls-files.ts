/** The PEM files of --tls-cert and --tls-key, read and checked (at startup, and when they are renewed): a bad one is an error naming its flag. */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { errorMessage } from './error-message.js';

/** Reads a file a flag names; an unreadable one is an error naming the flag and the file. */
export function readFlagFile(flag: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new Error(`${flag} ${path}: cannot read it: ${errorMessage(err)}`, { cause: err });
  }
}

/** A certificate and its private key, as PEM. */
export interface TlsPair {
  cert: Buffer;
  key: Buffer;
}

export function readTlsFiles(certPath: string, keyPath: string): TlsPair {
  const cert = readFlagFile('--tls-cert', certPath);
  const key = readFlagFile('--tls-key', keyPath);
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(cert);
  } catch (err) {
    throw new Error(`--tls-cert ${certPath} does not hold a PEM certificate: ${errorMessage(err)}`, { cause: err });
  }
  try {
    if (!certificate.checkPrivateKey(createPrivateKey(key))) throw new Error(`it is not the key of the certificate in ${certPath} (--tls-cert)`);
  } catch (err) {
    throw new Error(`--tls-key ${keyPath} does not hold the PEM private key of --tls-cert: ${errorMessage(err)}`, { cause: err });
  }
  // OpenSSL refuses some pairs the checks above pass (a key too small for its security level): refused here, naming
  // the flags, rather than by the TLS server (at startup, unnamed; at a renewal, once the pair was taken as applied)
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    throw new Error(`--tls-cert ${certPath} and --tls-key ${keyPath} cannot be served: ${errorMessage(err)}`, { cause: err });
  }
  return { cert, key };
}

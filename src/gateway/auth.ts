/**
 * Client tokens (JWT, verified with jose): who a client is (`sub`), until when
 * (`exp`), and which rooms it may join by itself (`rooms`: exact ids, or
 * prefixes ending in `*`). Only the algorithms of the configured key are
 * accepted, so `alg: none` and algorithm confusion never verify.
 */
import { createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { createLocalJWKSet, errors, jwtVerify, type JSONWebKeySet, type JWTVerifyGetKey, type JWTVerifyResult } from 'jose';
import type { Logger } from 'pino';
import { ROOM_ID_PATTERN } from '../protocol/room-id.js';
import { isUserId, USER_ID_RULE } from '../protocol/user-id.js';
import { readFlagFile } from '../tls-files.js';
import { errorMessage } from '../error-message.js';

export interface ClientIdentity {
  uid: string;
  /** When the token expires (ms since the epoch), if it does. */
  expiresAt: number | undefined;
  /** When the connection is closed for it (ms since the epoch): `expiresAt` plus the clock tolerance. */
  closesAt: number | undefined;
  rooms: RoomGrant;
}

const MAX_ROOM_PATTERNS = 1000;
const PREFIX_PATTERN = /^[A-Za-z0-9_.:@-]{0,127}\*$/;

/** The rooms a token lets its client join by itself. */
export class RoomGrant {
  static readonly none = new RoomGrant(new Set(), []);

  private constructor(
    private readonly exact: ReadonlySet<string>,
    private readonly prefixes: readonly string[],
  ) {}

  /** Reads the `rooms` claim; a string says what is wrong with it. */
  static parse(claim: unknown): RoomGrant | string {
    if (claim === undefined) return RoomGrant.none;
    if (!Array.isArray(claim) || claim.length > MAX_ROOM_PATTERNS) return `the rooms claim must be an array of at most ${MAX_ROOM_PATTERNS} room ids or prefix:* patterns`;
    const exact = new Set<string>();
    const prefixes: string[] = [];
    for (const item of claim) {
      if (typeof item === 'string' && ROOM_ID_PATTERN.test(item)) exact.add(item);
      else if (typeof item === 'string' && PREFIX_PATTERN.test(item)) prefixes.push(item.slice(0, -1));
      else return `the rooms claim holds ${JSON.stringify(item)}, which is neither a room id nor a prefix ending in *`;
    }
    return new RoomGrant(exact, prefixes);
  }

  allows(room: string): boolean {
    return this.exact.has(room) || this.prefixes.some((prefix) => room.startsWith(prefix));
  }
}

export class TokenError extends Error {
  override name = 'TokenError';
}

type Key = Uint8Array | KeyObject | JWTVerifyGetKey;

const HMAC = ['HS256', 'HS384', 'HS512'];
/** RFC 7518 §3.2: an HMAC key at least as long as the hash (256 bits for HS256); a shorter one can be brute-forced from any token. */
export const MIN_JWT_SECRET_BYTES = 32;

/** What to say of a --jwt-secret shorter than MIN_JWT_SECRET_BYTES (naming only its length), or undefined. */
export function weakSecretWarning(secret: string): string | undefined {
  const bytes = Buffer.byteLength(secret);
  if (bytes >= MIN_JWT_SECRET_BYTES) return undefined;
  return `--jwt-secret is ${bytes} bytes long: use at least ${MIN_JWT_SECRET_BYTES} random bytes (openssl rand -base64 48), or anyone holding one client token can find it by brute force and sign tokens of their own`;
}
/** What jose verifies with: RSA keys (rsaEncryption), EC keys on these curves, Ed25519 keys. */
const RSA_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];
const ALGORITHM_BY_CURVE: Record<string, string> = { prime256v1: 'ES256', secp384r1: 'ES384', secp521r1: 'ES512' };
const ED25519_ALGORITHMS = ['EdDSA', 'Ed25519'];

/**
 * How tokens are checked beyond their signature: claims they must carry, when the operator names
 * them (--jwt-audience, --jwt-issuer), and the seconds `nbf` may be ahead and `exp` behind this
 * clock (--jwt-clock-tolerance; none when left out).
 */
export interface ClaimRules {
  audience?: string;
  issuer?: string;
  clockTolerance?: number;
}

export class TokenVerifier {
  private readonly options: ClaimRules & { algorithms: string[] };
  private readonly toleranceMs: number;

  private constructor(
    private readonly key: Key,
    algorithms: string[],
    rules: ClaimRules,
  ) {
    this.options = { algorithms, ...rules };
    this.toleranceMs = (rules.clockTolerance ?? 0) * 1000;
  }

  /** Warns (naming only the secret's length) when the secret is shorter than MIN_JWT_SECRET_BYTES. */
  static fromSecret(secret: string, log: Pick<Logger, 'warn'>, rules: ClaimRules = {}): TokenVerifier {
    const key = new TextEncoder().encode(secret);
    const weak = weakSecretWarning(secret);
    if (weak !== undefined) log.warn({ jwtSecretBytes: key.length }, weak);
    return new TokenVerifier(key, HMAC, rules);
  }

  /** A PEM public key, or a JWKS document (`{"keys":[...]}`). */
  static fromPublicKeyFile(path: string, rules: ClaimRules = {}): TokenVerifier {
    const flag = `--jwt-public-key ${path}`;
    const text = readFlagFile('--jwt-public-key', path).toString('utf8');
    if (text.trimStart().startsWith('{')) {
      let jwks: JSONWebKeySet;
      try {
        jwks = JSON.parse(text) as JSONWebKeySet;
      } catch (err) {
        throw new Error(`${flag} is neither a PEM public key nor a JWKS JSON document`, { cause: err });
      }
      if (!Array.isArray(jwks.keys)) throw new Error(`${flag} is JSON but has no "keys" array (a JWKS document)`);
      const algorithms = algorithmsOfKeySet(jwks, flag);
      return new TokenVerifier(createLocalJWKSet(jwks), algorithms, rules);
    }
    let key: KeyObject;
    try {
      key = createPublicKey(text);
    } catch (err) {
      throw new Error(`${flag} does not hold a PEM public key: ${errorMessage(err)}`, { cause: err });
    }
    return new TokenVerifier(key, algorithmsOf(key, flag), rules);
  }

  async verify(token: string): Promise<ClientIdentity> {
    if (token.length > 8192) throw new TokenError('the token is longer than 8192 characters');
    let payload;
    try {
      ({ payload } = await this.verifySignature(token));
    } catch (err) {
      throw new TokenError(`the token is not valid: ${describe(err)}`, { cause: err });
    }
    if (!isUserId(payload.sub)) throw new TokenError(`the token has no sub claim (a user id: ${USER_ID_RULE})`);
    const rooms = RoomGrant.parse(payload.rooms);
    if (typeof rooms === 'string') throw new TokenError(rooms);
    // jose refuses a token once exp <= now - tolerance: the connection is closed at that same moment
    const expiresAt = typeof payload.exp === 'number' ? payload.exp * 1000 : undefined;
    return { uid: payload.sub, expiresAt, closesAt: expiresAt === undefined ? undefined : expiresAt + this.toleranceMs, rooms };
  }

  private async verifySignature(token: string): Promise<JWTVerifyResult> {
    const { key, options } = this;
    if (typeof key !== 'function') return jwtVerify(token, key, options);
    try {
      return await jwtVerify(token, key, options);
    } catch (err) {
      if (!(err instanceof errors.JWKSMultipleMatchingKeys)) throw err;
      // a token naming no kid (or a kid several keys share): each key that could verify it is tried, as in a key rotation
      for await (const candidate of err) {
        try {
          return await jwtVerify(token, candidate, options);
        } catch (inner) {
          if (!(inner instanceof errors.JWSSignatureVerificationFailed)) throw inner;
        }
      }
      throw new errors.JWSSignatureVerificationFailed();
    }
  }
}

/** jose verifies RS* and PS* tokens only with RSA keys this long (RFC 7518 §3.3). */
const MIN_RSA_BITS = 2048;

/** The algorithms jose verifies with a public key; throws, naming the key, when it verifies none. */
function algorithmsOf(key: KeyObject, name: string): string[] {
  const type = key.asymmetricKeyType;
  if (type === 'rsa') {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < MIN_RSA_BITS) throw new Error(`${name} holds a ${bits}-bit RSA key: tokens are verified only with RSA keys of at least ${MIN_RSA_BITS} bits`);
    return RSA_ALGORITHMS;
  }
  if (type === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve ?? 'unknown';
    const algorithm = ALGORITHM_BY_CURVE[curve];
    if (algorithm === undefined) throw new Error(`${name} holds an EC key on curve ${curve}: tokens are verified only with EC keys on P-256 (ES256), P-384 (ES384) or P-521 (ES512)`);
    return [algorithm];
  }
  if (type === 'ed25519') return ED25519_ALGORITHMS;
  if (type === 'rsa-pss') {
    throw new Error(`${name} holds an RSA-PSS key (SPKI id-RSASSA-PSS), which jose cannot verify with: give the same key as a plain RSA public key (rsaEncryption), which verifies PS256/384/512 tokens too`);
  }
  throw new Error(`${name} holds an ${String(type)} key, which cannot verify JWTs: give an RSA, EC (P-256, P-384, P-521) or Ed25519 public key`);
}

/**
 * The algorithms a JWKS document's keys verify. Refuses at startup a key set
 * that would refuse tokens without a word: a private or symmetric key (jose
 * never verifies with one), a key that does not parse or that jose cannot
 * verify with, one whose `alg` its key cannot verify, or no key that can verify
 * at all. Keys meant for encryption (`"use":"enc"`, or `key_ops` without
 * `verify`) are left out, as jose leaves them out.
 */
function algorithmsOfKeySet(jwks: JSONWebKeySet, flag: string): string[] {
  const algorithms = new Set<string>();
  jwks.keys.forEach((jwk: unknown, i) => {
    if (typeof jwk !== 'object' || jwk === null) throw new Error(`${flag}: key ${i} is not a JSON object (a JWK)`);
    const { kid, use, kty, alg, key_ops: keyOps } = jwk as { kid?: unknown; use?: unknown; kty?: unknown; alg?: unknown; key_ops?: unknown };
    const name = `${flag}: key ${i}${typeof kid === 'string' ? ` (kid ${kid})` : ''}`;
    if (use === 'enc' || (Array.isArray(keyOps) && !keyOps.includes('verify'))) return;
    if (use !== undefined && use !== 'sig') throw new Error(`${name} has "use":${JSON.stringify(use)}: a key that verifies tokens has "use":"sig" or no "use" ("enc" leaves it out)`);
    if (kty === 'oct') throw new Error(`${name} is a symmetric (oct) key: give an HMAC secret with --jwt-secret instead`);
    if ('d' in jwk) throw new Error(`${name} is a private key: the gateway needs only its public part (leave out "d" and the other private members)`);
    let key: KeyObject;
    try {
      key = createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' });
    } catch (err) {
      throw new Error(`${name} is not a valid public key: ${errorMessage(err)}`, { cause: err });
    }
    const verifies = algorithmsOf(key, name);
    if (alg !== undefined && !verifies.includes(alg as string)) {
      throw new Error(`${name} names "alg":${JSON.stringify(alg)}, which it cannot verify (it verifies ${verifies.join(', ')}): jose would never pick it`);
    }
    for (const algorithm of alg === undefined ? verifies : [alg as string]) algorithms.add(algorithm);
  });
  if (algorithms.size === 0) {
    throw new Error(`${flag} holds no key that can verify tokens (an RSA, EC or Ed25519 public key not meant for encryption: no "use":"enc", and "key_ops", if any, naming "verify")`);
  }
  return [...algorithms];
}

function describe(err: unknown): string {
  const code = (err as { code?: string }).code;
  switch (code) {
    case 'ERR_JWT_EXPIRED':
      return 'it has expired';
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return 'its signature does not match the key';
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return 'its algorithm is not accepted here';
    case 'ERR_JWS_INVALID':
    case 'ERR_JWT_INVALID':
      return 'it is malformed';
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      return (err as Error).message;
    case 'ERR_JWKS_NO_MATCHING_KEY':
      return 'no key of the key set matches it';
    default:
      return 'it cannot be verified';
  }
}

// Password hashes: scrypt in PHC string form ($scrypt$ln=..,r=..,p=..$salt$hash).
import { createHmac, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

const LN = 14; // N = 2^14: ~50 ms and 16 MiB per check on this class of machine
const R = 8;
const P = 1;
const KEYLEN = 32;

function scryptAsync(password: string, salt: Buffer, ln: number, r: number, p: number, keylen: number): Promise<Buffer> {
  const N = 2 ** ln;
  return new Promise((resolve, reject) =>
    scrypt(password, salt, keylen, { N, r, p, maxmem: 256 * N * r + 1024 * 1024 }, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptAsync(password, salt, LN, R, P, KEYLEN);
  return `$scrypt$ln=${LN},r=${R},p=${P}$${salt.toString('base64')}$${key.toString('base64')}`;
}

const PHC = /^\$scrypt\$ln=(\d+),r=(\d+),p=(\d+)\$([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2})$/;

export async function verifyPassword(password: string, hash: string): Promise<boolean> {
  const m = PHC.exec(hash);
  if (!m) return false;
  const [ln, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (ln > 20 || r > 32 || p > 16) return false;
  const expected = Buffer.from(m[5]!, 'base64');
  const got = await scryptAsync(password, Buffer.from(m[4]!, 'base64'), ln, r, p, expected.length);
  return timingSafeEqual(got, expected);
}

/**
 * Checks Basic credentials against scrypt hashes. A successful check is
 * remembered for `ttlMs` under an HMAC of the credentials with a per-process
 * key, so a keep-alive client enrolling thousands of times pays scrypt once;
 * failures are never cached, so guessing stays slow.
 */
export class PasswordVerifier {
  private readonly cacheKey = randomBytes(32);
  private readonly ok = new Map<string, number>();

  constructor(
    private readonly users: Record<string, { password_hash: string }>,
    private readonly ttlMs = 5 * 60_000,
    private readonly maxEntries = 10_000,
  ) {}

  async verify(user: string, password: string, now = Date.now()): Promise<boolean> {
    const entry = Object.hasOwn(this.users, user) ? this.users[user] : undefined;
    if (!entry) {
      await scryptAsync(password, this.cacheKey.subarray(0, 16), LN, R, P, KEYLEN); // same cost as a real miss
      return false;
    }
    const k = createHmac('sha256', this.cacheKey).update(user).update('\0').update(password).update('\0').update(entry.password_hash).digest('base64');
    const until = this.ok.get(k);
    if (until !== undefined && until > now) return true;
    const good = await verifyPassword(password, entry.password_hash);
    if (good) {
      if (this.ok.size >= this.maxEntries) this.ok.clear();
      this.ok.set(k, now + this.ttlMs);
    }
    return good;
  }
}

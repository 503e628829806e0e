// MQTT passwords in Mosquitto 2.0's own format, so the credentials the controller keeps can be written out
// as a Mosquitto password file unchanged: "$7$<iterations>$<base64 salt>$<base64 hash>", PBKDF2-HMAC-SHA512
// with 101 iterations, a 12-byte salt and a 64-byte output (what `mosquitto_passwd` 2.0 writes; a test
// checks a hash made here against a real Mosquitto).
// 101 iterations is weak for a password a person chose; these are not: sesame generates every password with
// 144 random bits, so a stolen hash cannot be searched whatever the iteration count.
import { pbkdf2Sync, randomBytes, timingSafeEqual } from "node:crypto";
import { randomSecretText } from "./tokens";

const ITERATIONS = 101;
const SALT_BYTES = 12;
const HASH_BYTES = 64;
const FORMAT = /^\$7\$(\d{1,7})\$([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2})$/;

/** A new password: 18 random bytes (144 bits), base64url, safe in a shell, a URL, a password file and after a flag. */
export function newMqttPassword(): string {
  return randomSecretText(18);
}

export function hashMqttPassword(password: string): string {
  const salt = randomBytes(SALT_BYTES);
  const hash = pbkdf2Sync(password, salt, ITERATIONS, HASH_BYTES, "sha512");
  return `$7$${ITERATIONS}$${salt.toString("base64")}$${hash.toString("base64")}`;
}

/** Whether `password` is the one `stored` was made from; constant time in the password. False for a malformed hash. */
export function verifyMqttPassword(password: Uint8Array | string, stored: string): boolean {
  const m = FORMAT.exec(stored);
  const iterations = m === null ? ITERATIONS : Number(m[1]);
  const salt = m === null ? Buffer.alloc(SALT_BYTES) : Buffer.from(m[2], "base64");
  const expected = m === null ? Buffer.alloc(HASH_BYTES) : Buffer.from(m[3], "base64");
  // A malformed or foreign hash still costs one derivation, so the time taken says nothing about the row.
  const got = pbkdf2Sync(password, salt, iterations >= 1 && iterations <= 100_000 ? iterations : ITERATIONS, HASH_BYTES, "sha512");
  return m !== null && expected.length === HASH_BYTES && timingSafeEqual(got, expected);
}

/** A hash no password matches: verified against when a username is unknown, so that costs the same time. */
export const NO_PASSWORD = hashMqttPassword(randomBytes(32).toString("base64"));

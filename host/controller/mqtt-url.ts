// An external broker's address as operators write it (--mqtt-url mqtts://user:password@host:8883) and the TLS
// files that go with it: checked before anything connects, printed without the password.

/** For mqtts:// and wss://: the CA that signed the broker's certificate, and a client certificate if it asks for one (PEM). */
export type BrokerTls = { ca?: Buffer; cert?: Buffer; key?: Buffer };

const URL_SCHEMES = new Set(["mqtt:", "mqtts:", "tcp:", "ssl:", "ws:", "wss:"]);
const TLS_SCHEMES = new Set(["mqtts:", "ssl:", "wss:"]);

/** Throws a TypeError saying what is wrong with an external broker's URL and TLS files together. */
export function checkBrokerUrl(url: string, tls: BrokerTls | undefined): void {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new TypeError(`MQTT broker URL ${JSON.stringify(printableUrl(url))} is not a URL; write it like mqtt://host:1883`);
  }
  if (!URL_SCHEMES.has(u.protocol)) throw new TypeError(`MQTT broker URL must start with mqtt://, mqtts://, ws:// or wss://, not ${u.protocol}//`);
  if (u.hostname === "") throw new TypeError(`MQTT broker URL ${JSON.stringify(printableUrl(url))} names no host`);
  if (tls !== undefined && Object.values(tls).some((v) => v !== undefined) && !TLS_SCHEMES.has(u.protocol)) {
    throw new TypeError(`a CA or client certificate for the MQTT broker needs a TLS URL (mqtts:// or wss://), not ${u.protocol}//`);
  }
  if ((tls?.cert === undefined) !== (tls?.key === undefined)) throw new TypeError("a client certificate for the MQTT broker needs both the certificate and its key");
}

/** The URL with any password replaced, for logs and errors. */
export function printableUrl(url: string): string {
  return url.replace(/(\/\/[^:@/\s]*):[^@/\s]*@/, "$1:***@");
}

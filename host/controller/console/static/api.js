// The admin API, as the console calls it: the bearer token is kept in this tab's sessionStorage (gone when
// the tab closes, never in a URL, a cookie or localStorage) and sent in the Authorization header, so a page
// on another site cannot make the browser call the API with it (no cookie to ride on: no CSRF).
// The live view reads the server-sent event stream with fetch, which can send that header (EventSource
// cannot), and opens it again when it ends.

const KEY = "sesame.console.token";

export const token = {
  get: () => sessionStorage.getItem(KEY),
  set: (t) => sessionStorage.setItem(KEY, t),
  clear: () => sessionStorage.removeItem(KEY),
};

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** A JSON call; throws ApiError with the server's message on a refusal. */
export async function api(path, { method = "GET", body, bearer = token.get() } = {}) {
  const headers = { authorization: `Bearer ${bearer ?? ""}` };
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store", credentials: "omit" });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new ApiError(res.status, data.message ?? `${res.status} ${res.statusText}`);
  return data;
}

/**
 * Follows an event stream until `stop()`: `on[event](data)` for each event, `state("live" | "reconnecting"
 * | "denied")` as it goes. Reconnects after an error or the server's "bye", waiting longer each time (up to 15 s).
 */
export function follow(path, on, state) {
  const ctl = new AbortController();
  let wait = 500;
  const run = async () => {
    while (!ctl.signal.aborted) {
      try {
        const res = await fetch(path, { headers: { authorization: `Bearer ${token.get() ?? ""}` }, signal: ctl.signal, cache: "no-store", credentials: "omit" });
        if (res.status === 401 || res.status === 403) return state("denied");
        if (!res.ok || res.body === null) throw new Error(`${res.status}`);
        state("live");
        wait = 500;
        await read(res.body, on, ctl.signal);
      } catch (e) {
        if (ctl.signal.aborted) return;
      }
      state("reconnecting");
      await new Promise((r) => setTimeout(r, wait));
      wait = Math.min(15_000, wait * 2);
    }
  };
  void run();
  return () => ctl.abort();
}

/** Parses text/event-stream: "event:" and "data:" lines, an empty line ends an event; ":" lines are comments. */
async function read(body, on, signal) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  signal.addEventListener("abort", () => void reader.cancel().catch(() => {}));
  let buf = "", event = "message", data = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    let nl;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl).replace(/\r$/, "");
      buf = buf.slice(nl + 1);
      if (line === "") {
        if (data !== "") on[event]?.(JSON.parse(data));
        event = "message";
        data = "";
      } else if (line.startsWith("event:")) event = line.slice(6).trim();
      else if (line.startsWith("data:")) data += line.slice(5).trim();
    }
  }
}

/** "02 01" or "0201" -> base64; throws on anything but hex digit pairs. */
export function hexToBase64(hex) {
  const clean = hex.replace(/\s+/g, "");
  if (clean === "" || !/^([0-9a-fA-F]{2})+$/.test(clean)) throw new Error("the command must be bytes in hex, e.g. 02 01");
  let bin = "";
  for (let i = 0; i < clean.length; i += 2) bin += String.fromCharCode(parseInt(clean.slice(i, i + 2), 16));
  return btoa(bin);
}

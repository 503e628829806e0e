// The worked example application: a sensor that reports every `period` seconds and obeys commands.
//
//   reading (device -> gateway):  value (2 bytes, signed, big-endian: hundredths of a degree) | count (2 bytes)
//   command (gateway -> device):  0x01 | seconds (2 bytes)   report every `seconds` from now on
//                                 0x02 | 0 or 1              LED off / on
// Both travel as acknowledged messages (firmware/runtime/messages.ts): each reading reaches the gateway's
// application once, or its id is reported lost.
import { alloc, Bytes, fdiv, shl, shr } from "#target";
import { Runtime, rtSend } from "../runtime/runtime";

export const CMD_PERIOD = 1;
export const CMD_LED = 2;

export type Sensor = { rt: Runtime; periodMs: number; next: number; count: number; led: boolean };

export function encodeReading(value: number, count: number): Bytes {
  const v = value < 0 ? value + 0x10000 : value;
  const b = alloc(4);
  b[0] = shr(v, 8) & 0xff;
  b[1] = v & 0xff;
  b[2] = shr(count, 8) & 0xff;
  b[3] = count & 0xff;
  return b;
}

/** Applies one command; unknown or short commands are ignored (the sender's problem, not the board's). */
export function sensorCommand(a: Sensor, cmd: Bytes): void {
  if (cmd.length >= 3 && cmd[0] === CMD_PERIOD) {
    const s = shl(cmd[1], 8) + cmd[2];
    if (s > 0) {
      a.periodMs = s * 1000;
      a.next = a.rt.hal.now() + a.periodMs;
    }
  } else if (cmd.length >= 2 && cmd[0] === CMD_LED) {
    a.led = cmd[1] !== 0;
    a.rt.hal.led(a.led);
  }
}

function sensorTick(a: Sensor): void {
  const now = a.rt.hal.now();
  if (now < a.next) return;
  a.next = now + a.periodMs;
  a.count = (a.count + 1) & 0xffff;
  rtSend(a.rt, encodeReading(a.rt.hal.sensor(), a.count));
}

/**
 * Starts reporting every `periodS` seconds. The first reading goes after a random part of one period:
 * boards switched on together (a site's power coming back) would otherwise report in the same second
 * forever, and on LoRa, where every frame is seconds on air, their readings and every retry would collide.
 */
export function sensorStart(rt: Runtime, periodS: number): Sensor {
  const periodMs = periodS * 1000;
  const phase = fdiv(periodMs, 256) * rt.hal.provider.random(1)[0];
  const a: Sensor = { rt: rt, periodMs: periodMs, next: rt.hal.now() + phase, count: 0, led: false };
  rt.onCommand = (cmd: Bytes) => sensorCommand(a, cmd);
  rt.hal.every(1000, () => sensorTick(a));
  return a;
}

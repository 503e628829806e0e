// A device configuration as a QR code, drawn on a canvas: the encoder is qrcode-generator (served from its
// npm package, no network), error correction M, the smallest version the text fits.
import qrcode from "./vendor/qrcode.mjs";

export function drawQr(canvas, text, { scale = 4, margin = 4 } = {}) {
  const qr = qrcode(0, "M");
  qr.addData(text, "Byte");
  qr.make();
  const n = qr.getModuleCount();
  const size = (n + 2 * margin) * scale;
  canvas.width = size;
  canvas.height = size;
  const g = canvas.getContext("2d");
  g.fillStyle = "#fff";
  g.fillRect(0, 0, size, size);
  g.fillStyle = "#000";
  for (let r = 0; r < n; r++) for (let c = 0; c < n; c++) if (qr.isDark(r, c)) g.fillRect((c + margin) * scale, (r + margin) * scale, scale, scale);
  canvas.dataset.modules = String(n);
  return n;
}

// What the board-bundle passes (espruino-slim, espruino-inline, espruino-split) share to rewrite a bundle:
// output built from literal text and copies of the input, each copy recorded so the source map can follow
// (espruino-slim.ts remap).

/** The node types that open a function scope. */
export const FUNCTIONS = new Set(["FunctionDeclaration", "FunctionExpression", "ArrowFunctionExpression"]);

/** input[from, to) landed at output offset `at`. */
export type Piece = { from: number; to: number; at: number };

/** Output built from literal text and copies of the input, each copy recorded for the source map. */
export class Out {
  text = "";
  pieces: Piece[] = [];
  constructor(private readonly code: string) {}
  lit(s: string): void {
    this.text += s;
  }
  copy(from: number, to: number): void {
    if (to <= from) return;
    this.pieces.push({ from, to, at: this.text.length });
    this.text += this.code.slice(from, to);
  }
  /** code[from, to) with each identifier in `swap` written as its replacement. */
  copyWith(from: number, to: number, swap: { start: number; end: number; text: string }[]): void {
    let at = from;
    for (const s of swap) {
      if (s.start < at || s.end > to) continue;
      this.copy(at, s.start);
      this.lit(s.text);
      at = s.end;
    }
    this.copy(at, to);
  }
}

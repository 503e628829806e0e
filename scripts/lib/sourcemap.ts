// A minimal reader for version-3 source maps (the kind esbuild writes): enough to turn a position in a
// built artefact back into the TypeScript file and line it came from, without a source-map dependency.
import * as path from "node:path";

export type RawSourceMap = {
  version: number;
  sources: string[];
  sourcesContent?: (string | null)[];
  sourceRoot?: string;
  mappings: string;
  names?: string[];
};

/** One mapping segment: generated column, source index, original line and column (0-based), name index or -1. */
type Segment = [number, number, number, number, number];

export type OriginalPosition = {
  /** The original file: relative to `relativeTo` when given, else as resolved against the map's directory. */
  file: string;
  /** 1-based. */
  line: number;
  /** 1-based. */
  column: number;
  /** The original source line, when the map carries sourcesContent. */
  lineText?: string;
  /** The original name of the identifier that starts exactly here, where the map records one. */
  name?: string;
};

const BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const BASE64_VALUE: number[] = [];
for (let i = 0; i < BASE64.length; i++) BASE64_VALUE[BASE64.charCodeAt(i)] = i;

/** Decodes the VLQ `mappings` string into segments per generated line (absolute values, not deltas). */
export function decodeMappings(mappings: string): Segment[][] {
  const lines: Segment[][] = [];
  let line: Segment[] = [];
  // Source index, line and column are deltas across the whole file; the generated column resets per line.
  let source = 0;
  let srcLine = 0;
  let srcCol = 0;
  let genCol = 0;
  let name = 0;
  let fields: number[] = [];
  let value = 0;
  let shift = 0;
  const endSegment = () => {
    if (fields.length >= 4) {
      genCol += fields[0];
      source += fields[1];
      srcLine += fields[2];
      srcCol += fields[3];
      if (fields.length >= 5) name += fields[4];
      line.push([genCol, source, srcLine, srcCol, fields.length >= 5 ? name : -1]);
    } else if (fields.length === 1) {
      genCol += fields[0]; // a segment with no source: advances the column only
    }
    fields = [];
  };
  for (let i = 0; i < mappings.length; i++) {
    const ch = mappings.charCodeAt(i);
    if (ch === 59 /* ; */) {
      endSegment();
      lines.push(line);
      line = [];
      genCol = 0;
    } else if (ch === 44 /* , */) {
      endSegment();
    } else {
      const digit = BASE64_VALUE[ch];
      if (digit === undefined) throw new Error(`source map: bad character '${mappings[i]}' in mappings`);
      value += (digit & 31) * 2 ** shift;
      if (digit & 32) {
        shift += 5;
      } else {
        // The lowest bit of a VLQ value is its sign.
        fields.push(value % 2 === 1 ? -Math.floor(value / 2) : Math.floor(value / 2));
        value = 0;
        shift = 0;
      }
    }
  }
  endSegment();
  lines.push(line);
  return lines;
}

export class SourceMapReader {
  private readonly lines: Segment[][];
  private readonly sources: string[];
  private readonly contentLines: (string[] | undefined)[];

  /**
   * @param map the parsed map
   * @param mapDir the directory the map's `sources` are relative to (the artefact's directory)
   * @param relativeTo if given, reported files are made relative to this directory (the repository root)
   */
  constructor(private readonly map: RawSourceMap, mapDir: string, relativeTo?: string) {
    this.lines = decodeMappings(map.mappings);
    const root = map.sourceRoot ? path.resolve(mapDir, map.sourceRoot) : mapDir;
    this.sources = map.sources.map((s) => {
      const abs = path.resolve(root, s);
      return relativeTo ? path.relative(relativeTo, abs).split(path.sep).join("/") : abs;
    });
    this.contentLines = (map.sourcesContent ?? []).map((c) => (typeof c === "string" ? c.split(/\r?\n/) : undefined));
  }

  /** The original position of generated (1-based line, 0-based column), or undefined where unmapped. */
  originalPositionFor(line: number, column: number): OriginalPosition | undefined {
    const segments = this.lines[line - 1];
    if (!segments || segments.length === 0) return undefined;
    // The last segment starting at or before the column covers it.
    let lo = 0;
    let hi = segments.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (segments[mid][0] <= column) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    if (found < 0) found = 0; // before the first mapped token of the line: the line's first token is closest
    const [genCol, source, srcLine, srcCol, nameIndex] = segments[found];
    const file = this.sources[source];
    if (file === undefined) return undefined;
    const name = genCol === column && nameIndex >= 0 ? this.map.names?.[nameIndex] : undefined;
    return { file, line: srcLine + 1, column: srcCol + 1, lineText: this.contentLines[source]?.[srcLine], ...(name !== undefined ? { name } : {}) };
  }
}

/** Shifts a map down by `lines` generated lines: for code prepended to a mapped artefact. */
export function prependLines(map: RawSourceMap, lines: number): RawSourceMap {
  return { ...map, mappings: ";".repeat(lines) + map.mappings };
}

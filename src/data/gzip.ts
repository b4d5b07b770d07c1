/**
 * Bounded gunzip. A gzip file says nothing trustworthy about its inflated size (the trailer's
 * ISIZE is mod 2^32 and trivially forged), and a few MB can inflate to many GB. The format inside
 * does say: an IDX header's dimensions fix the byte count to the last byte. So the stream is
 * inflated chunk by chunk, the inner header is read as soon as its bytes arrive, and inflation
 * stops the moment the output passes the size that header declares — a bomb fails at once, with
 * memory bounded by the declared size, instead of after gigabytes.
 */
import { createGunzip } from 'node:zlib';
import { constants as bufferConstants } from 'node:buffer';
import { RuntimeFailure, errorMessage } from '../errors.js';

/**
 * What the inflated bytes seen so far say about the total: the declared total in bytes, 'more'
 * (the header is not complete yet), or 'invalid' (not this format: stop; the parser will say why
 * from the bytes kept).
 */
export type DeclaredSize = (head: Uint8Array) => number | 'more' | 'invalid';

/** Largest array Node can hold in one buffer; a header declaring more is refused up front. */
export const MAX_DECLARED_BYTES = bufferConstants.MAX_LENGTH;

/** Bytes kept while the header is still incomplete (an IDX header is at most 1,024 bytes). */
const MAX_HEADER_BYTES = 1 << 16;

export class DecompressionBeyondDeclared extends RuntimeFailure {}

/**
 * Inflates `gz`, refusing output beyond what `declared` allows. `what` names the file in errors.
 * Invalid gzip → RuntimeFailure with zlib's reason.
 */
export async function gunzipCapped(gz: Uint8Array, what: string, declared: DeclaredSize): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const z = createGunzip();
    const chunks: Buffer[] = [];
    let total = 0;
    let limit: number | null = null;
    let settled = false;
    const finish = (err: Error | null, out?: Buffer): void => {
      if (settled) return;
      settled = true;
      z.removeAllListeners('data');
      z.destroy();
      if (err) reject(err);
      else resolve(out!);
    };
    z.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      total += chunk.length;
      if (limit === null) {
        const head = Buffer.concat(chunks, total);
        const d = declared(head);
        if (d === 'invalid') return finish(null, head);
        if (d === 'more') {
          if (total > MAX_HEADER_BYTES) return finish(null, head);
          return;
        }
        if (d > MAX_DECLARED_BYTES) {
          return finish(new DecompressionBeyondDeclared(`${what} declares ${d} bytes of data, more than one array can hold (${MAX_DECLARED_BYTES}); the file is corrupt`));
        }
        limit = d;
      }
      if (total > limit) {
        finish(new DecompressionBeyondDeclared(
          `${what} decompresses beyond its declared size: its header declares ${limit} bytes, the gzip stream holds more`,
          'the file is corrupt or hostile; download it again (`layerprobe datasets fetch …`)',
        ));
      }
    });
    z.on('error', (e) => finish(new RuntimeFailure(`${what} is not valid gzip (${errorMessage(e)}); the file is corrupt or truncated`, 'download it again (`layerprobe datasets fetch …`) or check its sha256')));
    z.on('end', () => finish(null, Buffer.concat(chunks, total)));
    z.end(gz);
  });
}

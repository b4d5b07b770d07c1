/**
 * Work out how raw dataset items become this model's input when the user did not say: layout
 * from the input shape (a leading 1 or 3 channel dim means NCHW), resizing and channel
 * conversion when the model's image size differs, and a reshape for non-image inputs such as
 * [784] or [784,1]. Anything the user gives overrides the inference.
 */
import type { Dataset, PreprocessSpec } from '../data/types.js';
import { UsageError } from '../errors.js';

export function inferPreprocess(
  inputShape: readonly (number | null)[],
  dataset: Pick<Dataset, 'itemShape' | 'maxValue'>,
  given: Partial<PreprocessSpec> = {},
): PreprocessSpec {
  const dims = inputShape.slice(1);
  const [h0, w0, c0] = dataset.itemShape;
  // Data already in [0,1] stays as it is; anything wider is taken for 8-bit pixel values.
  const spec: PreprocessSpec = { scale: dataset.maxValue <= 1 ? 1 : 255, layout: 'NHWC' };
  if (dims.length === 3) {
    const channelsFirst = (dims[0] === 1 || dims[0] === 3) && !(dims[2] === 1 || dims[2] === 3);
    spec.layout = channelsFirst ? 'NCHW' : 'NHWC';
    const [c, h, w] = channelsFirst ? [dims[0], dims[1], dims[2]] : [dims[2], dims[0], dims[1]];
    if (typeof h === 'number' && typeof w === 'number' && (h !== h0 || w !== w0)) spec.size = [h, w];
    if ((c === 1 || c === 3) && c !== c0) spec.channels = c;
  } else if (dims.length > 0 && dims.every((d): d is number => typeof d === 'number' && d > 0)) {
    const need = dims.reduce((a, b) => a * b, 1);
    const have = h0 * w0 * c0;
    if (need !== have) {
      // A square grey or RGB image of the right element count is the only guess worth making.
      const side = Math.round(Math.sqrt(need / c0));
      if (side * side * c0 === need) spec.size = [side, side];
      else if (Math.round(Math.sqrt(need)) ** 2 === need) {
        const s = Math.round(Math.sqrt(need));
        spec.size = [s, s];
        spec.channels = 1;
      } else {
        throw new UsageError(
          `model input [${dims.join(',')}] (${need} values) does not fit dataset items of ${h0}×${w0}×${c0}`,
          'declare the preprocessing: --size H,W --channels C --reshape ...',
        );
      }
    }
    spec.reshape = dims;
    // Not an image to the model ([784], [784,1]): no layout to record; pixels flatten in HWC order.
    delete spec.layout;
  }
  return { ...spec, ...stripUndefined(given) };
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

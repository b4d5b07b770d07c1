/**
 * LayerPlan: which layer to capture and how to reduce it to one vector per sample. It lives with
 * the reducers because it is their pairing with a layer; the pipeline executes plans and the
 * report's manifest records them, so both import it from here (the report never reaches up into
 * the pipeline for it).
 */
import type { LayerInfo } from '../runtime/types.js';
import type { Reducer } from './reduce.js';

export interface LayerPlan {
  layer: LayerInfo;
  reducer: Reducer;
}

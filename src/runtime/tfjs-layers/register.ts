/**
 * Side-effect module: registers layerprobe's custom TF.js layers (the ViT pieces) so that any
 * model.json naming them loads through tf.loadLayersModel. It imports tf-parts.ts
 * itself because registration must precede the first load and loadTf() offers no hook; that is
 * the object loadTf() hands out, so the registry is shared.
 */
import { tf } from '../tf-parts.js';
import { registerVitLayers } from './vit-layers.js';

registerVitLayers(tf);

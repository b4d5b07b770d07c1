/**
 * Side-effect module: registers layerprobe's custom TF.js layers (the ViT pieces) so that any
 * model.json naming them loads through tf.loadLayersModel. It imports @tensorflow/tfjs itself
 * because registration must precede the first load and loadTf() offers no hook; the module is
 * the same instance loadTf() returns, so the registry is shared.
 */
import * as tf from '@tensorflow/tfjs';
import { registerVitLayers } from './vit-layers.js';

registerVitLayers(tf);

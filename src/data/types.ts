// The two kinds of data the lab trains on. Both are plain typed arrays so that the same parse functions
// serve the browser (fetch) and Node (fs), and so that batches are gathered without allocating.

/** Labelled rows for a classifier (MNIST, synthetic 2-D sets). */
export interface ClassificationSet {
  name: string;
  count: number;
  features: number;
  numClasses: number;
  /**
   * Row-major [count, features]. Bytes are pixels (0..255) and are scaled by 1/255 when gathered;
   * floats are used as they are.
   */
  inputs: Float32Array | Uint8Array;
  labels: Uint8Array | Uint32Array;
  /** Set for images (features = height * width): enables shift augmentation. */
  image?: { height: number; width: number };
}

export interface ClassificationData {
  train: ClassificationSet;
  test: ClassificationSet;
}

/** A character-level corpus, already split and encoded with one vocabulary. */
export interface TextData {
  name: string;
  /** vocab[id] is the character of token id. */
  vocab: string[];
  train: Uint32Array;
  val: Uint32Array;
}

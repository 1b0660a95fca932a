// The baseline a character model must beat: an add-one-smoothed bigram model fitted on the training
// split, scored on validation in nats per character.

export interface BigramModel {
  vocabSize: number;
  /** logProb[prev * V + next] = log p(next | prev). */
  logProb: Float64Array;
}

export function fitBigram(train: ArrayLike<number>, vocabSize: number): BigramModel {
  const counts = new Float64Array(vocabSize * vocabSize).fill(1); // add-one smoothing
  for (let i = 1; i < train.length; i++) counts[train[i - 1] * vocabSize + train[i]] += 1;
  const logProb = new Float64Array(vocabSize * vocabSize);
  for (let prev = 0; prev < vocabSize; prev++) {
    let total = 0;
    for (let next = 0; next < vocabSize; next++) total += counts[prev * vocabSize + next];
    for (let next = 0; next < vocabSize; next++) {
      logProb[prev * vocabSize + next] = Math.log(counts[prev * vocabSize + next] / total);
    }
  }
  return { vocabSize, logProb };
}

/** Mean negative log-likelihood of each character given the previous one (nats/char). */
export function bigramNll(model: BigramModel, tokens: ArrayLike<number>): number {
  if (tokens.length < 2) throw new Error('need at least 2 tokens to score a bigram model');
  let sum = 0;
  for (let i = 1; i < tokens.length; i++) sum -= model.logProb[tokens[i - 1] * model.vocabSize + tokens[i]];
  return sum / (tokens.length - 1);
}

/** Entropy of the unigram distribution of `tokens` (nats/char): what a model that ignores context gets. */
export function unigramEntropy(tokens: ArrayLike<number>, vocabSize: number): number {
  const counts = new Float64Array(vocabSize);
  for (let i = 0; i < tokens.length; i++) counts[tokens[i]] += 1;
  let h = 0;
  for (const c of counts) if (c > 0) h -= (c / tokens.length) * Math.log(c / tokens.length);
  return h;
}

// Loads the data set a config names: prepared binaries served from public/data (MNIST, the State of the
// Union corpus), generated 2-D sets, or the user's own text. Nothing is fetched from the internet.
import { fetchMnist } from '../data/mnist';
import { syntheticData } from '../data/synthetic';
import { fetchSotu, textDataFromString } from '../data/text';
import type { ClassificationData, TextData } from '../data/types';
import type { LabConfig } from './config';

export type LoadedData = { kind: 'classification'; data: ClassificationData } | { kind: 'text'; data: TextData };

export async function loadDataset(config: LabConfig, base: string, userText?: string): Promise<LoadedData> {
  switch (config.dataset) {
    case 'mnist':
      return { kind: 'classification', data: await fetchMnist(base) };
    case 'sotu':
      return { kind: 'text', data: await fetchSotu(base) };
    case 'text':
      if (!userText) throw new Error('dataset=text needs a text file: drop one onto the page first');
      return { kind: 'text', data: textDataFromString(userText) };
    default:
      return { kind: 'classification', data: syntheticData({ kind: config.dataset, seed: config.seed }) };
  }
}

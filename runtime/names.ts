// Random container names in docker's adjective_surname style, for containers run without --name.
import { randomInt } from '../storage/random-hex.js';

const LEFT = ['admiring', 'bold', 'brave', 'calm', 'eager', 'focused', 'gallant', 'happy', 'keen', 'lucid', 'nifty', 'quirky', 'serene', 'tender', 'vibrant', 'zealous'];
const RIGHT = ['babbage', 'curie', 'darwin', 'euler', 'fermat', 'hopper', 'kepler', 'lovelace', 'noether', 'pascal', 'ritchie', 'shannon', 'thompson', 'turing', 'wozniak', 'yalow'];

export function randomName(): string {
  return `${LEFT[randomInt(0, LEFT.length)]}_${RIGHT[randomInt(0, RIGHT.length)]}_${randomInt(1000, 10000)}`;
}

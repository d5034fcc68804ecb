/** What a refused request throws: the error's name, the field it blames (when it names one) and its message. */
export interface Refusal {
  name: string;
  field?: string;
  message: string;
}

/** Runs `work` and returns what it threw; fails the test when it throws nothing. */
export function refusal(work: () => unknown): Refusal {
  try {
    work();
  } catch (error) {
    return error as Refusal;
  }
  throw new Error('expected a refusal');
}

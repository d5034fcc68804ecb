import { runDocumentProblems, runDocumentSchema, type RunDocument } from '../core/workflow/run-document.ts';
import { RunnerFailure } from './failures.ts';

/** Parses the run document the runner was handed; an invalid one is the run's input failure, every problem named. */
export function parseRunDocument(value: unknown): RunDocument {
  const problems = runDocumentProblems(value);
  if (problems.length > 0) throw new RunnerFailure('input', `invalid run document: ${problems.join('; ')}`);
  return runDocumentSchema.parse(value);
}

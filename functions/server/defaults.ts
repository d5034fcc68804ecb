/** How many sessions the embedded server lets run Ansible at once unless told otherwise: one per core of a small machine. */
export const DEFAULT_MAX_CONCURRENT_RUNS = 2;

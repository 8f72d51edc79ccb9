/** Votes needed among `nodeCount` nodes: a strict majority. */
export function quorumOf(nodeCount: number): number {
  return Math.floor(nodeCount / 2) + 1;
}

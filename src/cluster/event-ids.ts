/*
 * Event ids when several nodes share one database (issue 9): the database sequence
 * facegate_event_ids hands each node a block of ids (0007_cluster), so two nodes never give out
 * the same one, and the bus still gets an id synchronously at emit. The next block is fetched in
 * the background when half of the current one is used. Should the database stall for so long
 * that both run out, numbering goes on past the block (logged once): those ids may collide with
 * another node's, but with the database away those events are not being stored anyway.
 */

export interface EventIdSource {
  /** A fresh block: ids [first, first + size). */
  reserveEventIds(): Promise<{ first: number; size: number }>;
}

export class EventIdAllocator {
  #blocks: { start: number; next: number; end: number }[] = [];
  #fetching: Promise<void> | null = null;
  #overrun = false;
  #last = 0;

  constructor(
    private readonly source: EventIdSource,
    private readonly log: (message: string) => void = () => undefined,
  ) {}

  /** Fetches the first block; call before the first next(). */
  async prime(): Promise<void> {
    await this.#fetch();
  }

  /** The next id, at once. */
  next(): number {
    while (this.#blocks[0] && this.#blocks[0].next >= this.#blocks[0].end) this.#blocks.shift();
    const block = this.#blocks[0];
    if (!block) {
      if (!this.#overrun) {
        this.#overrun = true;
        this.log('cluster: no event id block could be fetched in time (is the database reachable?); numbering continues past the last block');
      }
      this.#prefetch();
      return ++this.#last;
    }
    const id = block.next++;
    this.#last = id;
    // Half of the last block used: fetch the next one while this one lasts.
    if (this.#blocks.length === 1 && block.next - block.start >= (block.end - block.start) / 2) this.#prefetch();
    return id;
  }

  #prefetch(): void {
    if (this.#fetching) return;
    this.#fetching = this.#fetch()
      .catch((err: unknown) => this.log(`cluster: fetching event ids failed: ${(err as Error).message}`))
      .finally(() => (this.#fetching = null));
  }

  async #fetch(): Promise<void> {
    const { first, size } = await this.source.reserveEventIds();
    this.#overrun = false;
    this.#blocks.push({ start: first, next: first, end: first + size });
  }
}

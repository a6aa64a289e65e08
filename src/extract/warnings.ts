/** Warnings of one file, bounded: a damaged file cannot grow the list (or the result) without limit. */
export const MAX_WARNINGS = 50;

export class Warnings {
  private readonly items: string[] = [];
  private dropped = 0;

  push(...warnings: string[]): void {
    for (const w of warnings) {
      if (this.items.length < MAX_WARNINGS) this.items.push(w.length > 500 ? `${w.slice(0, 500)}…` : w);
      else this.dropped++;
    }
  }

  unshift(...warnings: string[]): void {
    this.items.unshift(...warnings);
    while (this.items.length > MAX_WARNINGS) {
      this.items.pop();
      this.dropped++;
    }
  }

  get length(): number {
    return this.items.length + this.dropped;
  }

  list(): string[] {
    return this.dropped ? [...this.items, `… and ${this.dropped} more warning(s)`] : [...this.items];
  }
}
